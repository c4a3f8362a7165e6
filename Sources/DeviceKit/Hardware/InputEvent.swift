import CDeviceSys

/// One `struct input_event` as an evdev device delivers it, decoded from its bytes.
///
/// Layouts (see `CDeviceSys/shim.h`): with 64-bit `long` the record is 24 bytes (seconds i64, microseconds
/// i64, type u16, code u16, value i32); with 32-bit `long` it is 16 bytes (seconds, microseconds as 32-bit;
/// with 64-bit `time_t` the kernel still writes 32-bit unsigned seconds). Both are little- or big-endian as
/// the host is; DeviceKit runs on little-endian boards (x86-64, arm64, armhf), so the decoder is little-endian.
public struct InputEvent: Hashable, Sendable, CustomStringConvertible {
    public var seconds: Int64
    public var microseconds: Int64
    public var type: UInt16
    public var code: UInt16
    /// For `EV_KEY`: 0 release, 1 press, 2 autorepeat.
    public var value: Int32

    public init(seconds: Int64 = 0, microseconds: Int64 = 0, type: UInt16, code: UInt16, value: Int32) {
        self.seconds = seconds
        self.microseconds = microseconds
        self.type = type
        self.code = code
        self.value = value
    }

    /// The event's timestamp as a duration since the clock's origin (`CLOCK_REALTIME` unless changed).
    public var time: Duration { .seconds(seconds) + .microseconds(microseconds) }

    public var isSynReport: Bool { type == InputEventNames.evSyn && code == InputEventNames.synReport }
    public var isSynDropped: Bool { type == InputEventNames.evSyn && code == InputEventNames.synDropped }

    /// `EV_KEY KEY_PROG1 1`, as evtest prints it.
    public var description: String {
        "\(InputEventNames.type(type)) \(InputEventNames.code(type: type, code: code)) \(value)"
    }
}

/// The two record sizes of `struct input_event`.
public enum InputEventLayout: Int, Sendable, CaseIterable {
    /// 32-bit `long`: 16 bytes.
    case bits32 = 16
    /// 64-bit `long`: 24 bytes.
    case bits64 = 24

    /// The layout of the running build, from the C compiler's `sizeof(struct input_event)`.
    public static let native: InputEventLayout = cdevicesys_input_event_size() == 16 ? .bits32 : .bits64

    public var size: Int { rawValue }

    /// Decodes whole records from `bytes`; a trailing partial record is left for the next read.
    public func decode(_ bytes: some Collection<UInt8>) -> (events: [InputEvent], consumed: Int) {
        let array = Array(bytes)
        var events: [InputEvent] = []
        events.reserveCapacity(array.count / size)
        var offset = 0
        while offset + size <= array.count {
            events.append(decodeOne(array, at: offset))
            offset += size
        }
        return (events, offset)
    }

    private func decodeOne(_ b: [UInt8], at o: Int) -> InputEvent {
        func le(_ at: Int, _ count: Int) -> UInt64 {
            (0..<count).reduce(UInt64(0)) { $0 | UInt64(b[o + at + $1]) << (8 * UInt64($1)) }
        }
        let word = self == .bits64 ? 8 : 4
        let seconds = self == .bits64 ? Int64(bitPattern: le(0, 8)) : Int64(le(0, 4))
        let micros = self == .bits64 ? Int64(bitPattern: le(8, 8)) : Int64(Int32(bitPattern: UInt32(le(4, 4))))
        return InputEvent(
            seconds: seconds, microseconds: micros, type: UInt16(le(2 * word, 2)), code: UInt16(le(2 * word + 2, 2)),
            value: Int32(bitPattern: UInt32(le(2 * word + 4, 4))))
    }

    /// The record's bytes, as the kernel would write them.
    public func encode(_ event: InputEvent) -> [UInt8] {
        func le(_ value: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
        let word = self == .bits64 ? 8 : 4
        return le(UInt64(bitPattern: event.seconds), word) + le(UInt64(bitPattern: event.microseconds), word)
            + le(UInt64(event.type), 2) + le(UInt64(event.code), 2) + le(UInt64(UInt32(bitPattern: event.value)), 4)
    }
}

/// The kernel's names for event types and codes (`KEY_PROG1`, `SYN_DROPPED`), as evtest and evemu print them.
public enum InputEventNames {
    public static let evSyn: UInt16 = 0x00
    public static let evKey: UInt16 = 0x01
    public static let evRel: UInt16 = 0x02
    public static let evAbs: UInt16 = 0x03
    public static let evMsc: UInt16 = 0x04
    public static let evRep: UInt16 = 0x14
    public static let synReport: UInt16 = 0
    public static let synDropped: UInt16 = 3
    /// `KEY_MAX`: the highest key code.
    public static let keyMax = 0x2ff
    /// `EV_MAX`.
    public static let evMax = 0x1f

    /// `EV_KEY`, or `EV_0x1a` for a type without a name.
    public static func type(_ type: UInt16) -> String {
        InputEventCodeNames.types[type] ?? "EV_0x\(String(type, radix: 16))"
    }

    /// `KEY_PROG1`, `SYN_REPORT`, or the number for a code without a name.
    public static func code(type: UInt16, code: UInt16) -> String {
        let table: [UInt16: String]?
        switch type {
        case evSyn: table = InputEventCodeNames.syn
        case evKey: table = InputEventCodeNames.keys
        case evMsc: table = InputEventCodeNames.misc
        case 0x05: table = InputEventCodeNames.switches
        case 0x11: table = InputEventCodeNames.leds
        case evRep: table = InputEventCodeNames.autorepeat
        default: table = nil
        }
        return table?[code] ?? "\(code)"
    }

    private static let keyCodesByName: [String: UInt16] = {
        var byName: [String: UInt16] = [:]
        for (code, name) in InputEventCodeNames.keys { byName[name] = code }
        return byName
    }()

    /// `KEY_PROG1` → 148; also accepts a decimal or `0x` hexadecimal number. `nil` for anything else.
    public static func keyCode(named name: String) -> UInt16? {
        if let code = keyCodesByName[name.uppercased()] { return code }
        let number = name.lowercased().hasPrefix("0x") ? UInt16(name.dropFirst(2), radix: 16) : UInt16(name)
        guard let number, Int(number) <= keyMax else { return nil }
        return number
    }

    /// Key codes that systemd-logind acts on by default (power, suspend, hibernate, reboot): a call button
    /// must never send one.
    public static let logindKeys: [UInt16: String] = [
        116: "power off (HandlePowerKey)", 356: "power off (HandlePowerKey)", 142: "suspend (HandleSuspendKey)",
        205: "hibernate (HandleHibernateKey)", 0x198: "reboot (HandleRebootKey)",
    ]

    /// Keys a call button must never send, with what would happen: those systemd-logind acts on
    /// (`logindKeys`), and `KEY_WAKEUP`, which drivers send by themselves when the system resumes (the ACPI
    /// power button, touch-to-wake), so an "alarm" could come with nobody pressing. `diag selftest` FAILs them
    /// on every backend.
    public static let systemKeys: [UInt16: String] = logindKeys.mapValues { "systemd-logind: \($0)" }.merging(
        [143: "KEY_WAKEUP: drivers send it by themselves on resume from suspend"], uniquingKeysWith: { a, _ in a })
}
