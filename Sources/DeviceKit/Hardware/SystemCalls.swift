/// Typed Swift access to the Linux ioctls DeviceKit needs: evdev queries and grabs, and serial modem lines.
///
/// The C side is `CDeviceSys/shim.h`; this file turns its `-1`/`errno` results into `Errno`
/// and then into `DeviceControlError`, whose descriptions say plainly what was wrong.
/// All calls take a raw file descriptor and neither open nor close it.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CDeviceSys

// MARK: - Errno

/// A C `errno` value, shaped like swift-system's `Errno` without depending on it.
public struct Errno: Error, RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: CInt

    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(rawValue: errno) }

    /// The system's message for this value, from `strerror`.
    public var description: String {
        guard let message = strerror(rawValue) else { return "errno \(rawValue)" }
        return String(cString: message)
    }

    public static var interrupted: Errno { Errno(rawValue: EINTR) }
    public static var inappropriateIOCTLForDevice: Errno { Errno(rawValue: ENOTTY) }
    public static var invalidArgument: Errno { Errno(rawValue: EINVAL) }
    public static var noSuchFileOrDirectory: Errno { Errno(rawValue: ENOENT) }
    public static var noSuchDevice: Errno { Errno(rawValue: ENODEV) }
    public static var ioError: Errno { Errno(rawValue: EIO) }
    public static var resourceBusy: Errno { Errno(rawValue: EBUSY) }
    public static var badFileDescriptor: Errno { Errno(rawValue: EBADF) }
}

/// Calls `body` again for as long as it fails with `EINTR`; returns its first other result,
/// or throws the `errno` it failed with. A result of `-1` is a failure, as in C.
public func retryingEINTR<Value: FixedWidthInteger & SignedInteger>(
    _ body: () -> Value
) throws(Errno) -> Value {
    while true {
        let result = body()
        if result != -1 { return result }
        let error = Errno.current
        if error != .interrupted { throw error }
    }
}

// MARK: - Errors

/// Why a device control call failed, in words that say what to check.
public enum DeviceControlError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A modem-line call (`TIOCMGET`, `TIOCMIWAIT`, `TIOCGICOUNT`) got `ENOTTY` or `EINVAL`:
    /// the descriptor is a pseudo-terminal, not a terminal at all, or its driver lacks the call.
    case noModemLines(call: String, errno: Errno)
    /// An evdev call got `ENOTTY`: the descriptor is not a `/dev/input/event*` device.
    case notAnInputDevice(call: String, errno: Errno)
    /// `ENODEV` or `EIO`: the device was unplugged or its driver let go of it.
    case deviceGone(call: String, errno: Errno)
    /// `EVIOCGRAB` got `EBUSY`: another descriptor already holds the grab.
    case grabbedElsewhere
    /// The request was refused before reaching the kernel; `reason` says why.
    case invalidRequest(call: String, reason: String)
    /// Any other failure.
    case failed(call: String, errno: Errno)

    public var description: String {
        switch self {
        case let .noModemLines(call, errno):
            return "\(call): this port has no modem lines (it is a pseudo-terminal or the driver lacks \(call)) [\(errno)]"
        case let .notAnInputDevice(call, errno):
            return "\(call): this file is not an evdev input device (/dev/input/event*) [\(errno)]"
        case let .deviceGone(call, errno):
            return "\(call): the device is gone (unplugged, or its driver released it) [\(errno)]"
        case .grabbedElsewhere:
            return "EVIOCGRAB: another process or descriptor has already grabbed this input device"
        case let .invalidRequest(call, reason):
            return "\(call): \(reason)"
        case let .failed(call, errno):
            return "\(call) failed: \(errno)"
        }
    }
}

/// Runs one ioctl wrapper, retrying on `EINTR`, and classifies its failure.
private func control(
    _ call: String,
    notSupported: (String, Errno) -> DeviceControlError,
    _ body: () -> CInt
) throws(DeviceControlError) -> CInt {
    do {
        return try retryingEINTR(body)
    } catch {
        switch error {
        case .inappropriateIOCTLForDevice: throw notSupported(call, error)
        case .noSuchDevice, .ioError: throw .deviceGone(call: call, errno: error)
        default: throw .failed(call: call, errno: error)
        }
    }
}

private func evdev(_ call: String, _ body: () -> CInt) throws(DeviceControlError) -> CInt {
    try control(call, notSupported: DeviceControlError.notAnInputDevice, body)
}

private func modem(_ call: String, _ body: () -> CInt) throws(DeviceControlError) -> CInt {
    do {
        return try control(call, notSupported: DeviceControlError.noModemLines, body)
    } catch .failed(let call, let errno) where errno == .invalidArgument {
        throw .noModemLines(call: call, errno: errno)
    }
}

// MARK: - evdev

/// The identity an input device reports through `EVIOCGID`.
public struct InputDeviceIdentity: Hashable, Sendable {
    public var busType: UInt16
    public var vendor: UInt16
    public var product: UInt16
    public var version: UInt16

    public init(busType: UInt16, vendor: UInt16, product: UInt16, version: UInt16) {
        self.busType = busType
        self.vendor = vendor
        self.product = product
        self.version = version
    }
}

/// A kernel bitmap of event codes (`EVIOCGBIT`, `EVIOCGKEY`), kept as its `unsigned long` words.
public struct EventCodeBits: Hashable, Sendable {
    /// The words as the kernel wrote them; bit `n % UInt.bitWidth` of word `n / UInt.bitWidth` is code `n`.
    public var words: [UInt]

    public init(words: [UInt]) { self.words = words }

    /// Whether `code` is set. Codes outside the bitmap are not set.
    public func contains(_ code: Int) -> Bool {
        guard code >= 0 else { return false }
        let (word, bit) = code.quotientAndRemainder(dividingBy: UInt.bitWidth)
        guard word < words.count else { return false }
        return words[word] & (1 << UInt(bit)) != 0
    }

    /// The codes that are set, ascending.
    public var codes: [Int] {
        (0..<(words.count * UInt.bitWidth)).filter(contains)
    }
}

/// The evdev ioctls DeviceKit uses on an open `/dev/input/event*` descriptor.
public protocol InputDeviceControl: Sendable {
    /// `EVIOCGVERSION`: the evdev protocol version.
    func driverVersion(_ fd: CInt) throws(DeviceControlError) -> CInt
    /// `EVIOCGNAME`: the device's name.
    func name(_ fd: CInt) throws(DeviceControlError) -> String
    /// `EVIOCGPHYS`: its physical location, or `nil` if the driver gives none.
    func physicalLocation(_ fd: CInt) throws(DeviceControlError) -> String?
    /// `EVIOCGUNIQ`: its unique identifier (often a serial number), or `nil` if the driver gives none.
    func uniqueIdentifier(_ fd: CInt) throws(DeviceControlError) -> String?
    /// `EVIOCGID`: bus, vendor, product and version.
    func identity(_ fd: CInt) throws(DeviceControlError) -> InputDeviceIdentity
    /// `EVIOCGBIT`: the codes it can send for `eventType` (`EV_KEY`, ...); type 0 gives the event types.
    func capabilities(_ fd: CInt, eventType: UInt16) throws(DeviceControlError) -> EventCodeBits
    /// `EVIOCGPROP`: its input properties (`INPUT_PROP_POINTER`, `INPUT_PROP_DIRECT`, ...).
    func properties(_ fd: CInt) throws(DeviceControlError) -> EventCodeBits
    /// `EVIOCGKEY`: the keys held down right now.
    func keyState(_ fd: CInt) throws(DeviceControlError) -> EventCodeBits
    /// `EVIOCGRAB`: take (`true`) or release (`false`) exclusive delivery of its events.
    func setGrabbed(_ grabbed: Bool, _ fd: CInt) throws(DeviceControlError)
    /// `EVIOCSCLOCKID(CLOCK_MONOTONIC)`: stamp this descriptor's events with the monotonic clock.
    func useMonotonicClock(_ fd: CInt) throws(DeviceControlError)
}

/// `InputDeviceControl` through the real ioctls.
public struct LinuxInputDeviceControl: InputDeviceControl {
    /// Longest name, location or identifier read (the kernel truncates to this).
    static let stringCapacity = 256
    /// Words in a bitmap big enough for every event type's codes (`KEY_MAX` is the largest).
    static let bitmapWords = (Int(KEY_CNT) + UInt.bitWidth - 1) / UInt.bitWidth

    public init() {}

    public func driverVersion(_ fd: CInt) throws(DeviceControlError) -> CInt {
        var version: CInt = 0
        _ = try evdev("EVIOCGVERSION") { cdevicesys_eviocgversion(fd, &version) }
        return version
    }

    public func name(_ fd: CInt) throws(DeviceControlError) -> String {
        try string("EVIOCGNAME", fd, cdevicesys_eviocgname) ?? ""
    }

    public func physicalLocation(_ fd: CInt) throws(DeviceControlError) -> String? {
        try string("EVIOCGPHYS", fd, cdevicesys_eviocgphys)
    }

    public func uniqueIdentifier(_ fd: CInt) throws(DeviceControlError) -> String? {
        try string("EVIOCGUNIQ", fd, cdevicesys_eviocguniq)
    }

    public func identity(_ fd: CInt) throws(DeviceControlError) -> InputDeviceIdentity {
        var id = input_id()
        _ = try evdev("EVIOCGID") { cdevicesys_eviocgid(fd, &id) }
        return InputDeviceIdentity(busType: id.bustype, vendor: id.vendor, product: id.product, version: id.version)
    }

    public func capabilities(_ fd: CInt, eventType: UInt16) throws(DeviceControlError) -> EventCodeBits {
        let call = "EVIOCGBIT(\(eventType))"
        guard eventType <= EV_MAX else {
            throw .invalidRequest(call: call, reason: "event type \(eventType) is above EV_MAX (\(EV_MAX))")
        }
        return try bitmap(call) { cdevicesys_eviocgbit(fd, CUnsignedInt(eventType), $0, $1) }
    }

    public func properties(_ fd: CInt) throws(DeviceControlError) -> EventCodeBits {
        try bitmap("EVIOCGPROP") { cdevicesys_eviocgprop(fd, $0, $1) }
    }

    public func keyState(_ fd: CInt) throws(DeviceControlError) -> EventCodeBits {
        try bitmap("EVIOCGKEY") { cdevicesys_eviocgkey(fd, $0, $1) }
    }

    public func setGrabbed(_ grabbed: Bool, _ fd: CInt) throws(DeviceControlError) {
        do {
            _ = try evdev("EVIOCGRAB") { cdevicesys_eviocgrab(fd, grabbed ? 1 : 0) }
        } catch .failed(_, let errno) where errno == .resourceBusy {
            throw .grabbedElsewhere
        }
    }

    public func useMonotonicClock(_ fd: CInt) throws(DeviceControlError) {
        _ = try evdev("EVIOCSCLOCKID") { cdevicesys_eviocsclockid(fd, CLOCK_MONOTONIC) }
    }

    /// Reads a string ioctl; `nil` when the kernel says the device has none (`ENOENT`).
    private func string(
        _ call: String,
        _ fd: CInt,
        _ wrapper: (CInt, UnsafeMutablePointer<CChar>?, Int) -> CInt
    ) throws(DeviceControlError) -> String? {
        var buffer = [CChar](repeating: 0, count: Self.stringCapacity)
        let copied: CInt
        do {
            copied = try buffer.withUnsafeMutableBufferPointer { (raw) throws(DeviceControlError) -> CInt in
                try evdev(call) { wrapper(fd, raw.baseAddress, raw.count) }
            }
        } catch .failed(_, let errno) where errno == .noSuchFileOrDirectory {
            return nil
        }
        // The kernel copies at most the buffer, NUL included unless it had to truncate.
        let bytes = buffer.prefix(Int(copied)).prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads a bitmap ioctl into a zeroed buffer sized for any event type.
    private func bitmap(
        _ call: String,
        _ wrapper: (UnsafeMutableRawPointer?, Int) -> CInt
    ) throws(DeviceControlError) -> EventCodeBits {
        var words = [UInt](repeating: 0, count: Self.bitmapWords)
        _ = try words.withUnsafeMutableBufferPointer { (raw) throws(DeviceControlError) -> CInt in
            try evdev(call) {
                wrapper(UnsafeMutableRawPointer(raw.baseAddress), raw.count * MemoryLayout<UInt>.stride)
            }
        }
        return EventCodeBits(words: words)
    }
}

// MARK: - Serial modem lines

/// The RS-232 modem-control lines as `TIOCMGET` reports them.
public struct ModemLines: OptionSet, Hashable, Sendable {
    public let rawValue: CInt
    public init(rawValue: CInt) { self.rawValue = rawValue }

    /// Clear To Send (input).
    public static let cts = ModemLines(rawValue: TIOCM_CTS)
    /// Data Set Ready (input).
    public static let dsr = ModemLines(rawValue: TIOCM_DSR)
    /// Data Carrier Detect (input).
    public static let dcd = ModemLines(rawValue: TIOCM_CD)
    /// Ring Indicator (input).
    public static let ri = ModemLines(rawValue: TIOCM_RI)
    /// Request To Send (output).
    public static let rts = ModemLines(rawValue: TIOCM_RTS)
    /// Data Terminal Ready (output).
    public static let dtr = ModemLines(rawValue: TIOCM_DTR)

    /// The lines `TIOCMIWAIT` can wait on.
    public static let inputs: ModemLines = [.cts, .dsr, .dcd, .ri]
}

/// How many times each input line has changed since the port was opened (`TIOCGICOUNT`).
public struct SerialInterruptCounters: Hashable, Sendable {
    public var cts: Int
    public var dsr: Int
    /// Ring indicator changes (the kernel's `rng`).
    public var rng: Int
    public var dcd: Int

    public init(cts: Int, dsr: Int, rng: Int, dcd: Int) {
        self.cts = cts
        self.dsr = dsr
        self.rng = rng
        self.dcd = dcd
    }
}

/// The modem-line ioctls DeviceKit uses on an open serial port descriptor.
public protocol SerialLineControl: Sendable {
    /// `TIOCMGET`: the lines that are asserted now.
    func modemLines(_ fd: CInt) throws(DeviceControlError) -> ModemLines
    /// `TIOCMIWAIT`: blocks the calling thread until a line in `mask` changes.
    /// Call it from a dedicated thread, never an event loop or the cooperative pool.
    func waitForModemLineChange(_ fd: CInt, mask: ModemLines) throws(DeviceControlError)
    /// `TIOCGICOUNT`: the change counters of the input lines.
    func interruptCounters(_ fd: CInt) throws(DeviceControlError) -> SerialInterruptCounters
    /// `TIOCMBIS`: asserts the output lines in `lines` (`.dtr`, `.rts`) and leaves every other line as it is.
    func assertModemLines(_ fd: CInt, _ lines: ModemLines) throws(DeviceControlError)
}

/// `SerialLineControl` through the real ioctls.
public struct LinuxSerialLineControl: SerialLineControl {
    public init() {}

    public func modemLines(_ fd: CInt) throws(DeviceControlError) -> ModemLines {
        var bits: CInt = 0
        _ = try modem("TIOCMGET") { cdevicesys_tiocmget(fd, &bits) }
        return ModemLines(rawValue: bits)
    }

    public func waitForModemLineChange(_ fd: CInt, mask: ModemLines) throws(DeviceControlError) {
        guard !mask.isDisjoint(with: .inputs) else {
            throw .invalidRequest(
                call: "TIOCMIWAIT",
                reason: "the mask names no input line (.cts, .dsr, .dcd or .ri), so the wait could never end"
            )
        }
        _ = try modem("TIOCMIWAIT") { cdevicesys_tiocmiwait(fd, mask.intersection(.inputs).rawValue) }
    }

    public func interruptCounters(_ fd: CInt) throws(DeviceControlError) -> SerialInterruptCounters {
        var counts = serial_icounter_struct()
        _ = try modem("TIOCGICOUNT") { cdevicesys_tiocgicount(fd, &counts) }
        return SerialInterruptCounters(
            cts: Int(counts.cts), dsr: Int(counts.dsr), rng: Int(counts.rng), dcd: Int(counts.dcd)
        )
    }

    public func assertModemLines(_ fd: CInt, _ lines: ModemLines) throws(DeviceControlError) {
        var bits = lines.rawValue
        // TIOCMBIS is a plain integer, so Glibc's ioctl overlay reaches it without a C wrapper.
        _ = try modem("TIOCMBIS") { ioctl(fd, UInt(TIOCMBIS), &bits) }
    }
}
