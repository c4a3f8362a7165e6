#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging

/// A device that came, went or changed.
public struct HotplugEvent: Hashable, Sendable {
    public enum Action: Hashable, Sendable {
        case add, remove, change
        /// `bind`, `unbind`, `move`, `online`, `offline`: passed on as udev names them.
        case other(String)

        init(udevName: String) {
            switch udevName {
            case "add": self = .add
            case "remove": self = .remove
            case "change": self = .change
            default: self = .other(udevName)
            }
        }
    }

    public var action: Action
    /// `input` or `tty`.
    public var subsystem: String
    /// `event3`, `ttyUSB0`; for input devices also `input17` (the parent without a node) from udev.
    public var sysname: String
    /// The node (`/dev/input/event3`), when the device has one.
    public var devnode: String?
    /// udev's properties (`ID_PATH`, `ID_SERIAL`, `ID_INPUT_KEY`, ...); empty when udev has none.
    public var properties: [String: String]

    public init(action: Action, subsystem: String, sysname: String, devnode: String?, properties: [String: String] = [:]) {
        self.action = action
        self.subsystem = subsystem
        self.sysname = sysname
        self.devnode = devnode
        self.properties = properties
    }
}

/// What a `UdevMonitor` reports: device events, and warnings a technician should see.
public enum HotplugNotice: Hashable, Sendable {
    case device(HotplugEvent)
    /// Hotplug works less well than it should; the text says why and what changes.
    case warning(String)
}

/// Watches input devices and serial ports come and go: udev's monitor where udevd runs, polling sysfs where it
/// does not.
///
/// Without udevd (a container, a minimal image), libudev's `udev` monitor opens fine and then never receives
/// anything: libudev itself notices the missing `/run/udev/control` and quietly listens to nothing. So the
/// monitor checks for udevd first; where it is missing it says so (`.warning`) and compares
/// `ButtonInventory.presentDevices()` every `pollInterval` instead (`HotplugDiff`), so an unplugged and
/// replugged button is still noticed, within one interval and without udev's properties or links.
///
/// libudev's socket is polled on a thread of its own (`onDedicatedThread`) in slices of 250 ms, so cancelling
/// the task ends `run` within one slice.
public struct UdevMonitor: Sendable {
    public enum Backend: Hashable, Sendable {
        /// libudev where udevd runs, polling where it does not.
        case automatic
        /// libudev whatever happens (with a warning when udevd is missing): for tests and diagnostics.
        case libudev
        /// Polling only.
        case polling
    }

    public var roots: HardwareRoots
    /// The udev subsystems watched.
    public var subsystems: [String]
    public var pollInterval: Duration
    public var backend: Backend
    /// Called on the poller's thread when a look at sysfs is over, its events emitted, with the number of looks
    /// taken so far (1 for the first). A test changes the tree, then waits for a look that began after the
    /// change (two more looks), where it would otherwise guess how long polling takes.
    var looked: @Sendable (_ looks: Int) -> Void = { _ in }
    private let logger: Logger

    public init(
        roots: HardwareRoots = .system, subsystems: [String] = ["input", "tty"], pollInterval: Duration = .seconds(2),
        backend: Backend = .automatic, logger: Logger
    ) {
        self.roots = roots
        self.subsystems = subsystems
        self.pollInterval = pollInterval
        self.backend = backend
        self.logger = logger
    }

    /// Runs until the task is cancelled, then returns. Throws only when neither libudev nor polling can work.
    public func run(_ emit: @escaping @Sendable (HotplugNotice) -> Void) async throws {
        let udevRunning = roots.udevIsRunning
        switch backend {
        case .polling:
            try await poll(emit)
        case .libudev:
            if !udevRunning {
                emit(.warning(
                    "udevd is not running (\(roots.udevControl) is missing; a container?): the udev monitor opens "
                        + "but will receive nothing"))
            }
            try await listen(emit)
        case .automatic:
            guard udevRunning else {
                let warning = HotplugNotice.warning(
                    "udevd is not running (\(roots.udevControl) is missing; a container?): watching for devices by "
                        + "reading \(roots.sysfs) every \(pollInterval.secondsText) instead, without udev's stable names")
                try await poll(emit) { emit(warning) }
                return
            }
            do {
                try await listen(emit)
            } catch let error as UdevMonitorError {
                emit(.warning("\(error); watching for devices by reading \(roots.sysfs) every \(pollInterval.secondsText) instead"))
                try await poll(emit)
            }
        }
    }

    /// `run` as a stream; ending the iteration cancels it.
    public func notices() -> AsyncThrowingStream<HotplugNotice, Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await run { continuation.yield($0) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    // MARK: libudev

    private func listen(_ emit: @escaping @Sendable (HotplugNotice) -> Void) async throws {
        let subsystems = subsystems
        let logger = logger
        try await onDedicatedThread(name: "udev-monitor") { flag in
            let monitor = try LibudevMonitor(subsystems: subsystems)
            defer { monitor.close() }
            logger.debug("udev monitor listening", metadata: ["udev.subsystems": "\(subsystems)"])
            while !flag.isCancelled {
                guard try DeviceFile.waitReadable(monitor.fd, timeoutMilliseconds: 250) else { continue }
                var received = false
                while let event = monitor.receive() {
                    received = true
                    logger.debug("udev event", metadata: ["udev.action": "\(event.action)", "udev.sysname": "\(event.sysname)"])
                    emit(.device(event))
                }
                // Readable but nothing to receive (an error queued on the socket, a message libudev dropped):
                // pause briefly rather than spin on poll.
                if !received { _ = flag.sleep(for: .milliseconds(50)) }
            }
        }
    }

    // MARK: Polling

    /// Compares a look at sysfs with the last one every `pollInterval`; `afterFirstLook` runs once the first
    /// look is taken, so whatever changes after it is reported.
    private func poll(
        _ emit: @escaping @Sendable (HotplugNotice) -> Void, afterFirstLook: @escaping @Sendable () -> Void = {}
    ) async throws {
        let inventory = ButtonInventory(roots: roots)
        let subsystems = Set(subsystems)
        let interval = pollInterval
        let looked = looked
        try await onDedicatedThread(name: "hotplug-poll") { flag in
            func look() -> [PresentDevice] { inventory.presentDevices().filter { subsystems.contains($0.subsystem) } }
            var previous = look()
            var looks = 1
            afterFirstLook()
            looked(looks)
            while flag.sleep(for: interval) {
                let current = look()
                for event in HotplugDiff.events(from: previous, to: current) { emit(.device(event)) }
                previous = current
                looks += 1
                looked(looks)
            }
        }
    }
}

/// The events that turn one look at the devices into the next: removals first, then additions, then changes.
///
/// A device is the same from one look to the next when its subsystem, name, sysfs place and number are; a
/// button replugged between two looks usually gets a new sysfs place (the kernel's `inputN` counts up), so it
/// shows as removed and added even when it gets its old `eventN` back.
public enum HotplugDiff {
    public static func events(from old: [PresentDevice], to new: [PresentDevice]) -> [HotplugEvent] {
        struct Key: Hashable { var subsystem: String, sysname: String }
        let before = Dictionary(old.map { (Key(subsystem: $0.subsystem, sysname: $0.sysname), $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(new.map { (Key(subsystem: $0.subsystem, sysname: $0.sysname), $0) }, uniquingKeysWith: { a, _ in a })
        func event(_ action: HotplugEvent.Action, _ device: PresentDevice) -> HotplugEvent {
            HotplugEvent(action: action, subsystem: device.subsystem, sysname: device.sysname, devnode: device.devnode,
                         properties: device.properties)
        }
        func sameDevice(_ a: PresentDevice, _ b: PresentDevice) -> Bool {
            a.sysfsLink == b.sysfsLink && a.deviceNumber == b.deviceNumber
        }
        var removed: [HotplugEvent] = []
        var added: [HotplugEvent] = []
        var changed: [HotplugEvent] = []
        for device in old {
            let now = after[Key(subsystem: device.subsystem, sysname: device.sysname)]
            if now == nil || !sameDevice(device, now!) { removed.append(event(.remove, device)) }
        }
        for device in new {
            guard let then = before[Key(subsystem: device.subsystem, sysname: device.sysname)], sameDevice(then, device) else {
                added.append(event(.add, device))
                continue
            }
            if then.properties != device.properties { changed.append(event(.change, device)) }
        }
        return removed + added + changed
    }
}

/// Why libudev's monitor could not be set up.
public struct UdevMonitorError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}

extension Duration {
    /// `2 s`, `500 ms`.
    fileprivate var secondsText: String {
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}
