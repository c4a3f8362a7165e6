/// Follows one key of an evdev device through its event stream, the way libevdev does: events count only
/// when their `SYN_REPORT` arrives; after `SYN_DROPPED` (the kernel's buffer overflowed) everything up to and
/// including the next `SYN_REPORT` is discarded and the key's state is read again with `EVIOCGKEY`.
///
/// Pure: the owner feeds decoded events and, when asked with `.resynchronise`, the key state it read.
public struct EvdevKeyTracker: Sendable {
    public enum Output: Hashable, Sendable {
        /// The key went down or up.
        case level(down: Bool)
        /// Events were lost: read the key state (`EVIOCGKEY`) and pass it to `resynchronised(down:)`.
        case resynchronise
    }

    public let key: UInt16
    public private(set) var isDown: Bool
    /// Autorepeat events (value 2) of the key: a key held long enough for the kernel's repeat.
    public private(set) var autorepeats = 0
    /// `SYN_DROPPED` events seen.
    public private(set) var drops = 0
    /// Events of the key in the current, unfinished packet.
    private var pending: [Int32] = []
    private var dropping = false

    public init(key: UInt16, initiallyDown: Bool) {
        self.key = key
        self.isDown = initiallyDown
    }

    public mutating func feed(_ event: InputEvent) -> [Output] {
        if dropping {
            guard event.isSynReport else { return [] }
            dropping = false
            return [.resynchronise]
        }
        if event.isSynDropped {
            drops += 1
            pending.removeAll()
            dropping = true
            return []
        }
        if event.isSynReport {
            defer { pending.removeAll() }
            var outputs: [Output] = []
            for value in pending {
                switch value {
                case 2: autorepeats += 1
                case 0, 1:
                    let down = value == 1
                    if down != isDown {
                        isDown = down
                        outputs.append(.level(down: down))
                    }
                default: continue  // not a key value: ignore
                }
            }
            return outputs
        }
        if event.type == InputEventNames.evKey, event.code == key { pending.append(event.value) }
        return []
    }

    /// The key state read after a drop; reports the change the lost events hid, if any.
    public mutating func resynchronised(down: Bool) -> [Output] {
        guard down != isDown else { return [] }
        isDown = down
        return [.level(down: down)]
    }
}
