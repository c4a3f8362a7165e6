import Foundation
import Glibc
import Logging
import NIOCore

/// `diag selftest`: everything a technician checks before leaving a home, each as a PASS, WARN or FAIL line
/// that says what was found and what to do.
///
/// Order: configuration, who owns the state (a running daemon), button, LEDs, power, storage, link. A check
/// that cannot run says why instead of being left out. WARN means "works, but look at this"; only FAIL makes
/// `diag selftest` exit with status 1.
public struct SelfTestResult: Hashable, Sendable, Encodable {
    public enum Status: String, Hashable, Sendable, Encodable, Comparable {
        case pass = "PASS", warn = "WARN", fail = "FAIL"

        public static func < (a: Status, b: Status) -> Bool { a.severity < b.severity }

        private var severity: Int {
            switch self {
            case .pass: 0
            case .warn: 1
            case .fail: 2
            }
        }
    }

    public var check: String
    public var status: Status
    public var message: String

    public init(_ check: String, _ status: Status, _ message: String) {
        self.check = check
        self.status = status
        self.message = message
    }

    /// `PASS  button     ...`, aligned for a terminal.
    public var line: String {
        "\(status.rawValue)  \(check.padding(toLength: 9, withPad: " ", startingAt: 0)) \(message)"
    }
}

public struct SelfTest: Sendable {
    /// A replacement for a check, for tests.
    public typealias ExtraCheck = @Sendable (DeviceConfig) async -> [SelfTestResult]

    public let config: DeviceConfig
    public var inputControl: any InputDeviceControl = LinuxInputDeviceControl()
    public var powerCheck: ExtraCheck?
    /// How long each LED state is shown, so the technician can see it.
    public var blinkFor: Duration = .seconds(1)
    public var linkTimeout: Duration = .seconds(5)

    public init(config: DeviceConfig) { self.config = config }

    public func run() async -> [SelfTestResult] {
        var results: [SelfTestResult] = []
        let lock: StateDirectoryLock?
        do {
            try StateDirectory.create(config.stateDirectory)
            lock = try StateDirectoryLock(stateDirectory: config.stateDirectory)
        } catch let error as StateDirectoryLockError {
            lock = nil
            if case .held(_, let pid) = error {
                results.append(.init("daemon", .warn, "the device is running (\(pid.map { "process \($0)" } ?? "another process")): LED and link checks are skipped so they do not disturb it; stop it (systemctl stop devicekit) to run them, and start it again afterwards"))
            } else {
                results.append(.init("daemon", .fail, "\(error)"))
            }
        } catch {
            lock = nil
            results.append(.init("storage", .fail, "the state directory: \(error)"))
        }
        results += await button()
        if lock != nil { results += await leds() }
        results += await powerCheck?(config) ?? power()
        results += storage()
        if lock != nil { results += await link() }
        withExtendedLifetime(lock) {}
        return results
    }

    // MARK: Button

    func button() async -> [SelfTestResult] {
        switch config.button {
        case .simulated:
            return [.init("button", .warn, "the button is simulated ([button] backend = \"simulated\"): no real button is read")]
        case .replay(let settings):
            return replayButton(settings)
        case .serial(let settings):
            return serialButton(settings)
        case .evdev(let settings):
            return evdevButton(settings)
        }
    }

    /// The recording judged as `diag analyze` judges it, with this device's `[alarm]` settings: whether its
    /// device may be the call button, how many presses of the key it holds and what the firmware makes of
    /// them. FAIL at no press, and when no press would raise an alarm (naming a setting that would).
    func replayButton(_ settings: ReplayButtonSettings) -> [SelfTestResult] {
        let text: String
        do { text = try String(contentsOfFile: settings.file, encoding: .utf8) } catch {
            return [.init("button", .fail, "cannot read the recording \(settings.file): \(error.localizedDescription)")]
        }
        let parsed: (recording: EvemuRecording, reading: EvemuRecording.Reading)
        do { parsed = try EvemuRecording.read(text) } catch {
            return [.init("button", .fail, "\(settings.file) is not a valid evemu recording: \(error)")]
        }
        let analysis = ButtonAnalysis(
            recording: parsed.recording, reading: parsed.reading, source: settings.file, key: settings.key,
            allowPointerDevice: settings.allowPointerDevice, configuration: config.alarm.pressDetection)
        return [.init("button", .warn, "the button is a replay of \(settings.file): no real button is read")]
            + analysis.identity + (analysis.pressVerdict.map { [$0] } ?? [])
    }

    func evdevButton(_ settings: EvdevButtonSettings) -> [SelfTestResult] {
        let fd: CInt
        do { fd = try DeviceFile.open(settings.device, O_RDONLY | O_NONBLOCK) } catch {
            return [.init("button", .fail, EvdevSession.explain(error, path: settings.device))]
        }
        defer { DeviceFile.close(fd) }
        let info: EvdevDeviceInfo
        let key: UInt16
        let held: Bool
        do {
            info = try EvdevDeviceInfo.read(path: settings.device, fd: fd, control: inputControl)
            key = try info.callButtonKey(configured: settings.key, allowPointerDevice: settings.allowPointerDevice)
            held = try inputControl.keyState(fd).contains(Int(key))
        } catch let error as DeviceControlError {
            return [.init("button", .fail, EvdevSession.explain(error, path: settings.device))]
        } catch {
            return [.init("button", .fail, "\(error)")]
        }
        let name = InputEventNames.code(type: InputEventNames.evKey, code: key)
        var results = [SelfTestResult("button", .pass, "\(settings.device) (\"\(info.name)\", \(info.busDescription)) is present and readable; the call button is \(name)")]
        if held {
            results.append(.init("button", .warn, "\(name) is held down right now: if nobody is pressing it, the button is stuck or wired the wrong way round (active-low)"))
        }
        if let pointing = info.pointing {
            results.append(.init("button", .warn, "\(settings.device) is \(pointing), chosen as the call button with button.allow_pointer_device = true: every touch or click of \(name) raises an alarm"))
        }
        if let action = InputEventNames.systemKeys[key] {
            results.append(.init("button", .fail, "\(name) is a key the system acts on (\(action)): a press could shut the device down, or an alarm come with nobody pressing. Use another key code (hardware/rpi overlay: KEY_PROG1)"))
        }
        return results
    }

    /// The port opens with the configured settings; in contact mode it must have modem lines. Whether a box
    /// talks is `diag serial`'s job (it listens for its heartbeat).
    func serialButton(_ settings: SerialButtonSettings) -> [SelfTestResult] {
        let speed: Int
        if case .box(let s) = settings.mode { speed = s } else { speed = 9600 }
        let port: SerialPort
        do { port = try SerialPort.open(settings.device, speed: speed) } catch {
            return [.init("button", .fail, "\(error)")]
        }
        defer { port.close() }
        switch settings.mode {
        case .box:
            return [.init("button", .pass, "\(settings.device) opens at \(port.settings); run `devicesim diag serial \(settings.device)` to see the box's heartbeat and presses")]
        case .contact(let line):
            if port.isPseudoTerminal {
                return [.init("button", .fail, "\(settings.device) is a pseudo-terminal, which has no modem lines: wire the contact to a real serial port")]
            }
            do {
                let lines = try LinuxSerialLineControl().modemLines(port.descriptor)
                let closed = lines.contains(line.lines)
                return closed
                    ? [.init("button", .warn, "\(line.rawValue.uppercased()) on \(settings.device) is asserted right now: if nobody is pressing, the contact is stuck closed or wired to the wrong line")]
                    : [.init("button", .pass, "\(settings.device) has modem lines; the contact on \(line.rawValue.uppercased()) is open (not pressed)")]
            } catch {
                return [.init("button", .fail, "\(error)")]
            }
        }
    }

    // MARK: LEDs

    func leds() async -> [SelfTestResult] {
        guard case let .sysfs(root, names) = config.indicators else {
            return [.init("leds", .warn, "no LEDs are configured ([indicators] backend = \"simulated\"): the person sees no sign that help is coming")]
        }
        do {
            let leds = try SysfsLEDIndicators(names: names, root: root)
            for state in [IndicatorState.sending, .helpComing, .fault] {
                try leds.show(state)
                try? await Task.sleep(for: blinkFor)
            }
            try leds.show(.idle)
            let colours = [names.red, names.green, names.amber].compactMap { $0 }.joined(separator: ", ")
            return [.init("leds", .pass, "\(colours) blinked in turn: red, green, then amber (look at them; if one stayed dark, check its wiring)")]
        } catch {
            return [.init("leds", .fail, "\(error)")]
        }
    }

    // MARK: Power

    func power() -> [SelfTestResult] {
        guard case .sysfs(let settings) = config.power else {
            return [.init("power", .warn, "no power sensing is configured ([power] backend = \"none\"): the centre will not hear of a power cut")]
        }
        let snapshot = PowerSupplyMonitor(settings: settings, logger: Logger(label: "selftest")).snapshot()
        var results: [SelfTestResult] = []
        switch snapshot.mains {
        case .success(let mains) where mains.present:
            results.append(.init("power", .pass, "mains present (\(mains.supply))"))
        case .success(let mains):
            results.append(.init("power", .warn, "mains is OFF (\(mains.supply)): the device runs on battery; check the power plug and socket"))
        case .failure(let error):
            results.append(.init("power", .fail, "\(error)"))
        }
        switch snapshot.battery {
        case .success(let battery)?:
            results.append(battery.percent < 20
                ? .init("battery", .warn, "battery at \(battery.percent) % (\(battery.status.rawValue)): leave the device on mains to charge; replace the battery if it does not rise")
                : .init("battery", .pass, "battery at \(battery.percent) % (\(battery.status.rawValue))"))
        case .failure(let error)?:
            results.append(.init("battery", .fail, "\(error)"))
        case nil:
            results.append(.init("battery", .warn, "no battery found: a power cut switches the device off"))
        }
        return results
    }

    // MARK: Storage

    func storage() -> [SelfTestResult] {
        let probe = config.stateDirectory + "/.selftest"
        let bytes = Array("selftest \(getpid())\n".utf8)
        do {
            try DurableFile(path: probe).write(bytes)
            guard try DurableFile(path: probe).read() == bytes else {
                return [.init("storage", .fail, "\(config.stateDirectory): what was written did not read back the same: the storage card is failing; replace it")]
            }
            unlink(probe)
        } catch {
            return [.init("storage", .fail, "cannot write to \(config.stateDirectory) (\(error)): alarms could not be stored; check permissions and the storage card")]
        }
        var results: [SelfTestResult] = []
        var stats = statvfs()
        if statvfs(config.stateDirectory, &stats) == 0 {
            let free = Int64(stats.f_bavail) * Int64(stats.f_frsize)
            let mb = free / 1_048_576
            results.append(free < 16 * 1_048_576
                ? .init("storage", .fail, "only \(mb) MB free on \(config.stateDirectory): free some space, alarms need room to be stored")
                : .init("storage", .pass, "\(config.stateDirectory) is writable and durable (fsync), \(mb) MB free"))
        }
        results.append(counter())
        do {
            let outbox = try SQLiteOutbox(path: config.outboxPath)
            let pending = try outbox.count()
            results.append(pending == 0
                ? .init("outbox", .pass, "no messages waiting to be sent")
                : .init("outbox", .warn, "\(pending) message\(pending == 1 ? "" : "s") waiting to be sent to the centre (they go as soon as the link is up)"))
        } catch {
            results.append(.init("outbox", .fail, "the outbox cannot be opened: \(error)"))
        }
        return results
    }

    /// The key's counter reservation: without it the device must not seal a frame (protocol.md §3.3).
    func counter() -> SelfTestResult {
        do {
            let limit = try config.counterFile.load()
            return .init("counter", .pass, "the frame counter reservation of key epoch \(config.keyEpoch) is intact (\(limit / UpCounter.block) blocks used)")
        } catch {
            return .init("counter", .fail, "\(error)")
        }
    }

    // MARK: Link

    func link() async -> [SelfTestResult] {
        let address: SocketAddress
        do { address = try config.primaryCentre.resolved() } catch {
            return [.init("link", .fail, "\(error)")]
        }
        let key: DeviceKey
        do { key = try config.deviceKey() } catch { return [.init("link", .fail, "\(error)")] }
        let boot = (try? SQLiteOutbox(path: config.outboxPath).currentBootCount()) ?? 0
        var probe = LinkProbe(
            key: key, address: address, label: config.primaryCentre.description, transport: config.transport,
            counterStore: config.counterFile, bootCount: boot, timeout: linkTimeout)
        if let dc09 = config.dc09 {
            do { probe.dc09 = (try dc09.frameSession(), dc09.supervisionSeconds) } catch { return [.init("link", .fail, error.description)] }
        }
        do {
            let report = try await probe.run(heartbeats: 3)
            return Self.describe(report)
        } catch {
            return [.init("link", .fail, error.description)]
        }
    }

    public static func describe(_ report: LinkProbe.Report) -> [SelfTestResult] {
        let rtts = report.roundTripMilliseconds.sorted()
        let median = rtts.isEmpty ? 0 : rtts[rtts.count / 2]
        var results: [SelfTestResult] = []
        if let account = report.dc09Account {
            results.append(.init(
                "link", .pass,
                "the DC-09 receiver at \(report.address) (\(report.transport)) acknowledged account \(account)'s NULL supervision; round trip \(String(format: "%.1f", median)) ms (median of \(rtts.count))"))
        } else {
            results.append(.init(
                "link", .pass,
                "the centre at \(report.address) (\(report.transport)) accepted this device; session set up in \(String(format: "%.1f", report.sessionMilliseconds)) ms, round trip \(String(format: "%.1f", median)) ms (median of \(rtts.count))"))
        }
        if median > 2000 {
            results.append(.init("link", .warn, "the round trip is slow (\(Int(median)) ms): alarms still arrive, but check the network (mobile signal, Wi-Fi)"))
        }
        if report.dc09Account != nil {
            results.append(.init("clock", .pass, "the device's clock is within the receiver's window (it answers NAK to a clock outside it)"))
            return results
        }
        let skew = report.clockSkewMilliseconds
        let seconds = Double(abs(skew)) / 1000
        results.append(abs(skew) > 60_000
            ? .init("clock", .warn, "the device's clock is \(String(format: "%.0f", seconds)) s \(skew > 0 ? "ahead of" : "behind") the centre's: alarms are still timed correctly (the centre corrects them), but check NTP (timedatectl)")
            : .init("clock", .pass, "the device's clock is within \(String(format: "%.1f", seconds)) s of the centre's"))
        return results
    }
}
