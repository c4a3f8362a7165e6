import Glibc

/// The call button as one key of a Linux input device: a USB HID button box, or a GPIO button through the
/// gpio-keys driver.
///
/// On open it reads the identity, checks that the device can send the key, optionally grabs it
/// (`EVIOCGRAB`: no desktop, console or logind sees the presses) and reads whether the key is already held
/// (`EVIOCGKEY`), which becomes `.present(initiallyDown:)`. Then it reads whole `input_event` records,
/// follows the key through `EvdevKeyTracker` (packets, autorepeat, `SYN_DROPPED` resynchronised with
/// `EVIOCGKEY`) and emits its levels.
///
/// Unplugging (`ENODEV` from `read`, or end of file) is reported once as `.missing`; the source reopens the
/// path every `reopenInterval` and reports `.present` when the button is back. A grab held by another
/// program (`EBUSY`) is reported as `.missing` with what to do, and retried the same way. Only a device that
/// cannot send the configured key throws: retrying does not fix a configuration.
public struct EvdevButtonSource: ButtonSource {
    public let path: String
    public let key: UInt16?
    public let grab: Bool
    public let reopenInterval: Duration
    public let layout: InputEventLayout
    private let control: any InputDeviceControl

    public init(
        settings: EvdevButtonSettings, control: any InputDeviceControl = LinuxInputDeviceControl(),
        layout: InputEventLayout = .native, reopenInterval: Duration = .seconds(1)
    ) {
        self.path = settings.device
        self.key = settings.key
        self.grab = settings.grab
        self.control = control
        self.layout = layout
        self.reopenInterval = reopenInterval
    }

    public var description: String {
        "evdev \(path)" + (key.map { " " + InputEventNames.code(type: InputEventNames.evKey, code: $0) } ?? "")
    }

    public func run(_ emit: @escaping @Sendable (ButtonEvent) -> Void) async throws {
        try await onDedicatedThread(name: "evdev \(path)") { flag in try loop(flag, emit) }
    }

    /// How long `poll` waits before the loop looks at the cancellation flag again.
    static let pollSlice: CInt = 100

    private func loop(_ flag: CancellationFlag, _ emit: (ButtonEvent) -> Void) throws {
        var missingReason: String?
        func missing(_ reason: String) {
            if missingReason != reason { emit(.missing(reason: reason)) }
            missingReason = reason
        }
        while !flag.isCancelled {
            switch try openAndRead(flag, emit, reportedMissing: missingReason != nil) {
            case .cancelled: return
            case .gone(let reason):
                missing(reason)
                flag.sleep(for: reopenInterval)
            }
        }
    }

    private enum End { case cancelled, gone(String) }

    /// One life of the device: open, set up, read until it goes away or the task is cancelled.
    private func openAndRead(_ flag: CancellationFlag, _ emit: (ButtonEvent) -> Void, reportedMissing: Bool) throws -> End {
        let fd: CInt
        do { fd = try DeviceFile.open(path, O_RDONLY | O_NONBLOCK) } catch {
            return .gone(Self.explain(error, path: path))
        }
        defer {
            if grab { try? control.setGrabbed(false, fd) }
            DeviceFile.close(fd)
        }
        var tracker: EvdevKeyTracker
        do {
            let info = try EvdevDeviceInfo.read(path: path, fd: fd, control: control)
            let key = try info.callButtonKey(configured: key)
            if grab { try control.setGrabbed(true, fd) }
            tracker = EvdevKeyTracker(key: key, initiallyDown: try control.keyState(fd).contains(Int(key)))
        } catch let error as DeviceControlError {
            return .gone(Self.explain(error, path: path))
        }
        emit(.present(initiallyDown: tracker.isDown))
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
            let (events, consumed) = layout.decode(buffer)
            buffer.removeFirst(consumed)
            for event in events {
                for output in tracker.feed(event) {
                    switch output {
                    case .level(let down): emit(.level(down: down))
                    case .resynchronise:
                        let down: Bool
                        do { down = try control.keyState(fd).contains(Int(tracker.key)) } catch {
                            return .gone(Self.explain(error, path: path))
                        }
                        for case .level(let down) in tracker.resynchronised(down: down) { emit(.level(down: down)) }
                    }
                }
            }
        }
        return .cancelled
    }

    /// Why an open failed, in words a technician can act on.
    static func explain(_ error: Errno, path: String) -> String {
        switch error.rawValue {
        case ENOENT: "\(path) does not exist: the button is unplugged or its driver is not loaded"
        case ENODEV, ENXIO: "\(path) has no device behind it: the button was unplugged"
        case EACCES, EPERM: "no permission to read \(path): add the user to group input (or run as the devicekit user)"
        default: "cannot open \(path): \(error)"
        }
    }

    static func explain(_ error: DeviceControlError, path: String) -> String {
        switch error {
        case .grabbedElsewhere:
            "another program has grabbed \(path) (EVIOCGRAB: busy), so its presses never reach this device: find it with `devicesim diag list` and stop it, or set button.grab = false"
        case .notAnInputDevice:
            "\(path) is not an input event device: point button.device at /dev/input/event* or a /dev/input/by-path link"
        case .deviceGone: "\(path) was unplugged"
        default: "\(path): \(error)"
        }
    }
}
