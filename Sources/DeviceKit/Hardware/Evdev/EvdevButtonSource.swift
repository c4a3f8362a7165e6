import Glibc

/// The call button as one key of a Linux input device: a USB HID button box, or a GPIO button through the
/// gpio-keys driver.
///
/// On open it reads the identity, checks that the device can send the key, optionally grabs it
/// (`EVIOCGRAB`: no desktop, console or logind sees the presses) and reads whether the key is already held
/// (`EVIOCGKEY`), which becomes `.present(initiallyDown:)`. Then it reads whole `input_event` records,
/// follows the key through `EvdevKeyTracker` (packets, autorepeat, `SYN_DROPPED` resynchronised with
/// `EVIOCGKEY`) and emits its levels with the kernel's timestamps.
///
/// Unplugging (`ENODEV` from `read`, or end of file) is reported once as `.missing`; the source reopens the
/// path every `reopenInterval` and reports `.present` when the button is back. A grab held by another
/// program (`EBUSY`) is reported as `.missing` with what to do, and retried the same way. Only a device that
/// cannot send the configured key throws: retrying does not fix a configuration.
public struct EvdevButtonSource: ButtonSource {
    public let path: String
    public let key: UInt16?
    public let grab: Bool
    public let allowPointerDevice: Bool
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
        self.allowPointerDevice = settings.allowPointerDevice
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

    private func loop(_ flag: CancellationFlag, _ emit: (ButtonEvent) -> Void) throws {
        var missingReason: String?
        func missing(_ reason: String) {
            if missingReason != reason { emit(.missing(reason: reason)) }
            missingReason = reason
        }
        while !flag.isCancelled {
            switch try openAndRead(flag, emit) {
            case .cancelled: return
            case .gone(let reason):
                missing(reason)
                flag.sleep(for: reopenInterval)
            }
        }
    }

    /// One life of the device: open, set up, read until it goes away or the task is cancelled.
    private func openAndRead(_ flag: CancellationFlag, _ emit: (ButtonEvent) -> Void) throws -> EvdevSession.End {
        var tracker = EvdevKeyTracker(key: 0, initiallyDown: false)
        let session = EvdevSession(path: path, grab: grab, control: control, layout: layout)
        return try session.run(flag) { (device, info) throws -> Void in
            let key = try info.callButtonKey(configured: key, allowPointerDevice: allowPointerDevice)
            tracker = EvdevKeyTracker(key: key, initiallyDown: try device.heldKeys().contains(Int(key)))
            emit(.present(initiallyDown: tracker.isDown))
        } events: { device, events in
            for event in events {
                // The kernel's timestamp (CLOCK_MONOTONIC, set by EvdevSession) of the SYN_REPORT that
                // completes the packet; after SYN_DROPPED, of the report that ends the drop.
                for output in tracker.feed(event) {
                    switch output {
                    case .level(let down): emit(.level(down: down, at: event.time))
                    case .resynchronise:
                        let down = try device.heldKeys().contains(Int(tracker.key))
                        for case .level(let down) in tracker.resynchronised(down: down) { emit(.level(down: down, at: event.time)) }
                    }
                }
            }
        }
    }
}
