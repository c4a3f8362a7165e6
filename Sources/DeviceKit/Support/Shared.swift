/// A value held once behind a reference, so that copies of a struct that holds it share it: the settings of
/// the machines, which every device of a load run has in common, are stored once a run and not once a device
/// (a load run holds a million `DeviceMachine`s).
///
/// Reading costs a pointer; writing replaces the reference with a new one (the box is immutable), so a write
/// through one copy is never seen by another: value semantics, as `Array` gives, without the uniqueness check.
public struct Shared<Value: Sendable>: Sendable {
    private final class Box: Sendable {
        let value: Value
        init(_ value: Value) { self.value = value }
    }

    private var box: Box

    public init(_ value: Value) { box = Box(value) }

    public var value: Value {
        get { box.value }
        set { box = Box(newValue) }
    }
}
