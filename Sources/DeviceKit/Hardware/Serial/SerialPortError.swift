#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a serial port could not be opened or read, in words that say what to do.
///
/// A struct around a kind, so kinds can be added without breaking callers; compare `kind` to the static
/// members (`error.kind == .permissionDenied`).
public struct SerialPortError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case notFound = "not found"
            case permissionDenied = "permission denied"
            case notATerminal = "not a serial port"
            case busy
            case gone
            case unsupportedSpeed = "unsupported speed"
            case failed
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No such file (`ENOENT`): the adapter is not plugged in, or the name is wrong.
        public static let notFound = Kind(.notFound)
        /// `EACCES`/`EPERM`: the user is not in group dialout.
        public static let permissionDenied = Kind(.permissionDenied)
        /// The file is not a terminal device (`ENOTTY`, `EISDIR`).
        public static let notATerminal = Kind(.notATerminal)
        /// `EBUSY`: another program holds the port exclusively.
        public static let busy = Kind(.busy)
        /// `EIO`, `ENODEV`, `ENXIO` or a hang-up: the device was unplugged or its driver let go of it.
        public static let gone = Kind(.gone)
        /// The requested speed is not one termios can set.
        public static let unsupportedSpeed = Kind(.unsupportedSpeed)
        /// Anything else; the description carries the system's message.
        public static let failed = Kind(.failed)

        public var description: String { base.rawValue }
    }

    public let kind: Kind
    /// The port's path as given.
    public let path: String
    /// The system call that failed: `open`, `tcsetattr`, `read`, ...
    public let call: String
    public let errno: Errno?
    private let detail: String?
    private let speed: Int?

    /// Classifies a failed system call by its `errno`.
    public init(path: String, call: String, errno: Errno) {
        let kind: Kind = switch errno.rawValue {
        case ENOENT, ENOTDIR: .notFound
        case EACCES, EPERM: .permissionDenied
        case ENOTTY, EISDIR: .notATerminal
        case EBUSY: .busy
        case EIO, ENODEV, ENXIO: .gone
        default: .failed
        }
        self.init(kind, path: path, call: call, errno: errno)
    }

    init(
        _ kind: Kind, path: String, call: String, errno: Errno? = nil, detail: String? = nil, speed: Int? = nil
    ) {
        self.kind = kind
        self.path = path
        self.call = call
        self.errno = errno
        self.detail = detail
        self.speed = speed
    }

    /// Whether waiting and opening again can help: the port is absent, gone or busy for now.
    public var isTransient: Bool {
        kind == .notFound || kind == .gone || kind == .busy
    }

    public var description: String {
        let cause = detail ?? errno.map(\.description) ?? call
        switch kind {
        case .notFound:
            return "\(path) does not exist: is the serial adapter plugged in and is the name right? "
                + "(ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/ lists the ports)"
        case .permissionDenied:
            return "no permission to open \(path): add the user to group dialout "
                + "(sudo usermod -aG dialout USER, then log in again)"
        case .notATerminal:
            return "\(path) is not a serial port (\(call): \(cause)): name a tty such as /dev/ttyUSB0"
        case .busy:
            return "\(path) is busy: another program holds it (ModemManager, a terminal program or another "
                + "devicesim); stop that program"
        case .gone:
            return "\(path) is gone (\(cause)): the adapter was unplugged or its driver let go of it"
        case .unsupportedSpeed:
            let speeds = SerialPortSettings.speeds.map(String.init).joined(separator: ", ")
            return "\(speed.map(String.init) ?? "that") baud is not a speed a serial port can be set to: use one of \(speeds)"
        default:
            return "\(call) on \(path) failed: \(cause)"
        }
    }
}
