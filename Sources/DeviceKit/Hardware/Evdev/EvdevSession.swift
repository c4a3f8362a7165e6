import Glibc

/// One open-to-close life of an evdev device, shared by the call-button source and `diag watch/record`:
/// open non-blocking, read the identity, switch its timestamps to `CLOCK_MONOTONIC`, grab if asked, hand over to `setUp`, then deliver whole decoded
/// `input_event` records until the task is cancelled or the device goes away. Always ungrabs and closes.
public struct EvdevSession: Sendable {
    public enum End: Hashable, Sendable {
        case cancelled
        /// The device is gone or unusable; the reason is in plain words.
        case gone(String)
    }

    /// The open device, as the callbacks see it.
    public struct Device {
        public let fd: CInt
        let control: any InputDeviceControl

        /// `EVIOCGKEY`: the keys held down now.
        public func heldKeys() throws(DeviceControlError) -> EventCodeBits { try control.keyState(fd) }

        /// `EVIOCGBIT(type)`: the codes it can send for `type`.
        public func codes(of type: UInt16) throws(DeviceControlError) -> EventCodeBits {
            try control.capabilities(fd, eventType: type)
        }
    }

    public let path: String
    public let grab: Bool
    public let control: any InputDeviceControl
    public let layout: InputEventLayout
    /// The setting that named `path` (`button.device`), for advice in errors; `nil` for a path typed on
    /// the command line (`diag watch`, `diag record`), whose advice names the argument instead.
    public let pathSetting: String?

    public init(
        path: String, grab: Bool, control: any InputDeviceControl = LinuxInputDeviceControl(), layout: InputEventLayout = .native,
        pathSetting: String? = "button.device"
    ) {
        self.path = path
        self.grab = grab
        self.control = control
        self.layout = layout
        self.pathSetting = pathSetting
    }

    /// How long `poll` waits before the loop looks at the cancellation flag again.
    static let pollSlice: CInt = 100

    /// Runs one session on the calling (dedicated) thread. Errors thrown by the callbacks other than
    /// `DeviceControlError` end the session and propagate; a `DeviceControlError` ends it as `.gone`.
    public func run(
        _ flag: CancellationFlag,
        setUp: (Device, EvdevDeviceInfo) throws -> Void,
        events: (Device, [InputEvent]) throws -> Void
    ) throws -> End {
        let fd: CInt
        do { fd = try DeviceFile.open(path, O_RDONLY | O_NONBLOCK) } catch {
            return .gone(Self.explain(error, path: path))
        }
        var grabbed = false
        defer {
            if grabbed { try? control.setGrabbed(false, fd) }
            DeviceFile.close(fd)
        }
        let device = Device(fd: fd, control: control)
        do {
            let info = try EvdevDeviceInfo.read(path: path, fd: fd, control: control)
            try control.useMonotonicClock(fd)
            if grab {
                try control.setGrabbed(true, fd)
                grabbed = true
            }
            try setUp(device, info)
        } catch let error as DeviceControlError {
            return .gone(Self.explain(error, path: path, setting: pathSetting))
        }
        var buffer: [UInt8] = []
        while !flag.isCancelled {
            let bytes: [UInt8]?
            do {
                guard try DeviceFile.waitReadable(fd, timeoutMilliseconds: Self.pollSlice) else { continue }
                bytes = try DeviceFile.read(fd, capacity: 64 * layout.size)
            } catch {
                return .gone(error == .noSuchDevice || error == .ioError
                    ? "\(path) was unplugged (\(error))" : "reading \(path) failed: \(error)")
            }
            guard let bytes else { return .gone("\(path) was closed by its driver: the button was unplugged") }
            buffer += bytes
            let (decoded, consumed) = layout.decode(buffer)
            buffer.removeFirst(consumed)
            do { try events(device, decoded) } catch let error as DeviceControlError {
                return .gone(Self.explain(error, path: path, setting: pathSetting))
            }
        }
        return .cancelled
    }

    /// Why an open failed, in words a technician can act on.
    public static func explain(_ error: Errno, path: String) -> String {
        switch error.rawValue {
        case ENOENT: "\(path) does not exist: the button is unplugged or its driver is not loaded"
        case ENODEV, ENXIO: "\(path) has no device behind it: the button was unplugged"
        case EACCES, EPERM: "no permission to read \(path): add the user to group input (or run as the devicekit user)"
        default: "cannot open \(path): \(error)"
        }
    }

    /// `setting` is the setting that named `path` (`button.device`); `nil` when it was typed on a command line.
    public static func explain(_ error: DeviceControlError, path: String, setting: String? = "button.device") -> String {
        switch error {
        case .grabbedElsewhere:
            "another program has grabbed \(path) (EVIOCGRAB: busy), so its presses never reach this device: find it with `devicesim diag list` and stop it"
                + (setting == nil ? "" : ", or set button.grab = false")
        case .notAnInputDevice:
            "\(path) is not an input event device: "
                + (setting.map { "point \($0) at /dev/input/event* or a /dev/input/by-path link" }
                    ?? "give a /dev/input/event* device or a /dev/input/by-path link (devicesim diag list shows them)")
        case .deviceGone: "\(path) was unplugged"
        default: "\(path): \(error)"
        }
    }
}
