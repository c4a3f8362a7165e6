#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A serial port opened raw for a button: `/dev/ttyUSB*`, `/dev/ttyACM*`, `/dev/ttyS*` or a pseudo-terminal.
///
/// Opened `O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC` (the port never becomes our controlling terminal, and
/// reads never block: callers wait with `waitReadable` in short slices so they can be cancelled), then set to
/// raw 8N1 without flow control: no echo, no line editing, no CR/LF translation, `CLOCAL` (ignore carrier,
/// so a missing DCD neither blocks nor hangs up), `CREAD`, `VMIN = 1`, `VTIME = 0` (with `O_NONBLOCK`: an
/// empty port reads as `EAGAIN`, a hung-up one as end of file). Input buffered before the open is discarded
/// (`tcflush(TCIFLUSH)`), so a stale state is never taken for a new one. The settings the driver actually took
/// are read back into `settings` for diagnostics.
///
/// One thread uses a port at a time; `close()` (or the last reference going away) closes the descriptor.
public final class SerialPort {
    /// The path it was opened by (a symlink such as `/dev/serial/by-id/…` stays as given).
    public let path: String
    /// The open descriptor; valid until `close()`.
    public let descriptor: CInt
    /// The line settings as the driver reports them after configuration.
    public let settings: SerialPortSettings
    /// Whether this is a pseudo-terminal (`/dev/pts/*`), which has no modem lines.
    public let isPseudoTerminal: Bool

    private var isOpen = true

    /// Opens `path` raw at `speed` baud, 8N1, no flow control.
    public static func open(_ path: String, speed: Int = 9600) throws(SerialPortError) -> SerialPort {
        guard let speedCode = SerialPortSettings.speedCode(for: speed) else {
            throw SerialPortError(.unsupportedSpeed, path: path, call: "cfsetspeed", speed: speed)
        }
        let fd: CInt
        do {
            fd = try DeviceFile.open(path, O_RDWR | O_NOCTTY | O_NONBLOCK)
        } catch {
            throw SerialPortError(path: path, call: "open", errno: error)
        }
        do {
            var options = termios()
            try check(path, "tcgetattr") { tcgetattr(fd, &options) }
            cfmakeraw(&options)
            options.c_cflag &= ~tcflag_t(CSIZE | PARENB | CSTOPB)
            options.c_cflag &= ~tcflag_t(truncatingIfNeeded: CRTSCTS)
            options.c_cflag |= tcflag_t(CS8 | CLOCAL | CREAD)
            options.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY)
            // VMIN 1, VTIME 0: with O_NONBLOCK a read never waits, and an empty port answers EAGAIN.
            // VMIN 0 would answer 0 instead, which a reader cannot tell from a hang-up.
            withUnsafeMutableBytes(of: &options.c_cc) { cc in
                cc[Int(VMIN)] = 1
                cc[Int(VTIME)] = 0
            }
            try check(path, "cfsetispeed") { cfsetispeed(&options, speedCode) }
            try check(path, "cfsetospeed") { cfsetospeed(&options, speedCode) }
            try check(path, "tcsetattr") { tcsetattr(fd, TCSANOW, &options) }
            // hardware/serial-box-protocol.md §1: what was buffered before opening is stale; drop it.
            try check(path, "tcflush") { tcflush(fd, TCIFLUSH) }
            // tcsetattr succeeds when any change took; read back what the driver really did.
            var actual = termios()
            try check(path, "tcgetattr") { tcgetattr(fd, &actual) }
            return SerialPort(
                path: path, descriptor: fd, settings: SerialPortSettings(actual),
                isPseudoTerminal: Self.isPseudoTerminal(fd)
            )
        } catch {
            DeviceFile.close(fd)
            throw error
        }
    }

    private init(path: String, descriptor: CInt, settings: SerialPortSettings, isPseudoTerminal: Bool) {
        self.path = path
        self.descriptor = descriptor
        self.settings = settings
        self.isPseudoTerminal = isPseudoTerminal
    }

    deinit { close() }

    public func close() {
        guard isOpen else { return }
        isOpen = false
        DeviceFile.close(descriptor)
    }

    /// Waits up to `timeout` for bytes; `true` when there are some, or when the port hung up (then `read`
    /// says so).
    public func waitReadable(timeout: Duration) throws(SerialPortError) -> Bool {
        let milliseconds = CInt(clamping: max(0, timeout.milliseconds))
        do {
            return try DeviceFile.waitReadable(descriptor, timeoutMilliseconds: milliseconds)
        } catch {
            throw SerialPortError(path: path, call: "poll", errno: error)
        }
    }

    /// The bytes waiting now (possibly none). A hang-up (end of file) or `EIO`/`ENODEV` throws `.gone`.
    public func read(capacity: Int = 256) throws(SerialPortError) -> [UInt8] {
        let bytes: [UInt8]?
        do {
            bytes = try DeviceFile.read(descriptor, capacity: capacity)
        } catch {
            throw SerialPortError(path: path, call: "read", errno: error)
        }
        guard let bytes else {
            throw SerialPortError(.gone, path: path, call: "read", detail: "the port hung up")
        }
        return bytes
    }

    /// Writes all of `bytes` (for tests and loopback checks; a button box needs nothing sent).
    public func write(_ bytes: [UInt8]) throws(SerialPortError) {
        do {
            try DeviceFile.write(descriptor, bytes)
        } catch {
            throw SerialPortError(path: path, call: "write", errno: error)
        }
    }

    private static func check(_ path: String, _ call: String, _ body: () -> CInt) throws(SerialPortError) {
        do {
            _ = try retryingEINTR(body)
        } catch {
            throw SerialPortError(path: path, call: call, errno: error)
        }
    }

    /// Unix98 pseudo-terminal devices: masters have majors 128–135, slaves (`/dev/pts/*`) 136–143.
    private static func isPseudoTerminal(_ fd: CInt) -> Bool {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return false }
        let device = UInt64(status.st_rdev)
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        return (128...143).contains(major)
    }
}

/// Line settings of a serial port as `tcgetattr` reports them.
public struct SerialPortSettings: Hashable, Sendable, CustomStringConvertible {
    public enum Parity: String, Hashable, Sendable {
        case none, even, odd
    }

    /// Baud rate; `nil` when the driver reports a speed code outside `SerialPortSettings.speeds`.
    public var speed: Int?
    public var dataBits: Int
    public var parity: Parity
    public var stopBits: Int
    /// RTS/CTS (`CRTSCTS`).
    public var hardwareFlowControl: Bool
    /// XON/XOFF (`IXON` or `IXOFF`).
    public var softwareFlowControl: Bool
    /// `CLOCAL`: the carrier line (DCD) is ignored.
    public var ignoresCarrier: Bool

    public init(
        speed: Int?, dataBits: Int = 8, parity: Parity = .none, stopBits: Int = 1,
        hardwareFlowControl: Bool = false, softwareFlowControl: Bool = false, ignoresCarrier: Bool = true
    ) {
        self.speed = speed
        self.dataBits = dataBits
        self.parity = parity
        self.stopBits = stopBits
        self.hardwareFlowControl = hardwareFlowControl
        self.softwareFlowControl = softwareFlowControl
        self.ignoresCarrier = ignoresCarrier
    }

    init(_ options: termios) {
        var copy = options
        let code = cfgetispeed(&copy)
        speed = Self.table.first { $0.code == code }?.speed
        switch options.c_cflag & tcflag_t(CSIZE) {
        case tcflag_t(CS5): dataBits = 5
        case tcflag_t(CS6): dataBits = 6
        case tcflag_t(CS7): dataBits = 7
        default: dataBits = 8
        }
        if options.c_cflag & tcflag_t(PARENB) == 0 {
            parity = .none
        } else {
            parity = options.c_cflag & tcflag_t(PARODD) == 0 ? .even : .odd
        }
        stopBits = options.c_cflag & tcflag_t(CSTOPB) == 0 ? 1 : 2
        hardwareFlowControl = options.c_cflag & tcflag_t(truncatingIfNeeded: CRTSCTS) != 0
        softwareFlowControl = options.c_iflag & tcflag_t(IXON | IXOFF) != 0
        ignoresCarrier = options.c_cflag & tcflag_t(CLOCAL) != 0
    }

    /// "9600 8N1, no flow control".
    public var description: String {
        let baud = speed.map(String.init) ?? "unknown speed"
        let letter = switch parity {
        case .none: "N"
        case .even: "E"
        case .odd: "O"
        }
        let flow = switch (hardwareFlowControl, softwareFlowControl) {
        case (false, false): "no flow control"
        case (true, false): "RTS/CTS flow control"
        case (false, true): "XON/XOFF flow control"
        case (true, true): "RTS/CTS and XON/XOFF flow control"
        }
        return "\(baud) \(dataBits)\(letter)\(stopBits), \(flow)"
    }

    /// The speeds a port can be opened at.
    public static var speeds: [Int] { table.map(\.speed) }

    static func speedCode(for speed: Int) -> speed_t? {
        table.first { $0.speed == speed }?.code
    }

    private static let table: [(speed: Int, code: speed_t)] = [
        (1200, speed_t(B1200)), (2400, speed_t(B2400)), (4800, speed_t(B4800)), (9600, speed_t(B9600)),
        (19200, speed_t(B19200)), (38400, speed_t(B38400)), (57600, speed_t(B57600)),
        (115200, speed_t(B115200)), (230400, speed_t(B230400)), (460800, speed_t(B460800)),
        (921600, speed_t(B921600)),
    ]
}
