import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The device as a long-running service: `devicesim run` builds one from device.toml and runs it in a
/// `ServiceGroup`, which stops it gracefully on SIGTERM.
///
/// It opens the durable state (outbox, boot count, counter reservation), picks the button and indicator
/// backends the configuration names, tells systemd it is ready and pings its watchdog, and logs what the
/// device does. Items still in the outbox at shutdown stay there for the next start.
public struct DeviceDaemon: Service {
    public let config: DeviceConfig
    public let faultInjection: DeviceRuntimeConfiguration.FaultInjection?
    private let logger: Logger
    private let notifier: SystemdNotifier

    public init(
        config: DeviceConfig, logger: Logger, notifier: SystemdNotifier = SystemdNotifier(),
        faultInjection: DeviceRuntimeConfiguration.FaultInjection? = nil
    ) {
        self.config = config
        self.logger = logger
        self.notifier = notifier
        self.faultInjection = faultInjection
    }

    public func run() async throws {
        let lock: StateDirectoryLock
        do {
            try StateDirectory.create(config.stateDirectory)
            lock = try StateDirectoryLock(stateDirectory: config.stateDirectory)
        } catch let error as StateDirectoryLockError {
            throw DeviceDaemonError(error.description, kind: error.isHeld ? .stateDirectoryHeld : .stateDirectory)
        } catch {
            throw DeviceDaemonError("the state directory: \(error)", kind: .stateDirectory)
        }
        defer { withExtendedLifetime(lock) {} }
        let runtime = try makeRuntime()
        let source = Self.buttonSource(for: config.button, press: config.alarm.pressDetection, logger: logger)
        let watcher = Task { await log(runtime.observations) }
        if let voice = config.voice {
            do {
                let port = try await runtime.startSIP()
                logger.info("SIP line ready", metadata: ["sip.port": "\(port ?? 0)", "sip.center": "\(voice.sip)"])
            } catch {
                // The alarm path does not depend on voice: run on, each call fails visibly and is retried.
                logger.error("cannot open the SIP line on port \(voice.sipPort): \(error); alarms are sent, but no SIP call can be placed or answered")
            }
        }
        runtime.start()
        try? notifier.ready()
        try? notifier.status("device \(config.deviceID): connecting to \(config.primaryCentre)")
        logger.info("call button", metadata: ["source": "\(source.description)"])
        let button = Task { await runButton(source, runtime) }
        let watchdog = Task { try? await SystemdWatchdogService(notifier: notifier, logger: logger).run() }
        let power = Task { await runPower(runtime) }
        let hotplug = Task { await watchHotplug() }
        // Returns on SIGTERM/SIGINT (graceful shutdown) or cancellation.
        try? await gracefulShutdown()
        logger.info("shutting down")
        try? notifier.stopping()
        button.cancel()
        watchdog.cancel()
        power.cancel()
        hotplug.cancel()
        await runtime.stop()
        watcher.cancel()
    }

    /// Builds the runtime from the configuration; every failure says what to fix.
    func makeRuntime() throws -> DeviceRuntime {
        do { try StateDirectory.create(config.stateDirectory) } catch {
            throw DeviceDaemonError("the state directory: \(error)", kind: .stateDirectory)
        }
        let outbox = try SQLiteOutbox(path: config.outboxPath)
        let bootCount = try outbox.incrementBootCount()
        let indicators: any IndicatorOutput
        switch config.indicators {
        case .simulated: indicators = RecordingIndicators()
        case .sysfs(let root, let leds): indicators = try SysfsLEDIndicators(names: leds, root: root)
        }
        var runtimeConfiguration = DeviceRuntimeConfiguration(
            key: try config.deviceKey(), primary: try resolve(config.primaryCentre),
            secondary: try config.secondaryCentre.map(resolve), transport: config.transport,
            bootCount: bootCount,
            press: config.alarm.pressDetection,
            cancelWindow: .milliseconds(Int(config.alarm.cancelWindowMilliseconds)),
            defaultHeartbeatInterval: .seconds(Int(config.heartbeatIntervalSeconds)))
        runtimeConfiguration.faultInjection = faultInjection
        if let dc09 = config.dc09 { runtimeConfiguration.dc09 = (try dc09.frameSession(), .seconds(Int(dc09.supervisionSeconds))) }
        runtimeConfiguration.sip = try config.voice?.line(deviceID: config.deviceID, stateDirectory: config.stateDirectory)
        if let sip = runtimeConfiguration.sip, sip.credentials == nil {
            logger.notice("no \(config.stateDirectory)/\(VoiceSettings.passwordFileName): SIP calls go without credentials; a centre that asks for them (401) refuses them")
        }
        logger.info(
            "device starting",
            metadata: ["device.id": "\(config.deviceID)", "boot": "\(bootCount)", "center": "\(config.primaryCentre)",
                       "outbox.pending": "\((try? outbox.count()) ?? 0)"])
        return try DeviceRuntime(
            configuration: runtimeConfiguration, outbox: outbox, counterStore: config.counterFile,
            indicators: indicators, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger)
    }

    private func resolve(_ address: CentreAddress) throws -> SocketAddress {
        do { return try address.resolved() } catch { throw DeviceDaemonError(error.description, kind: .unresolvedCentre) }
    }

    /// The source the configuration names.
    public static func buttonSource(
        for backend: ButtonBackend, press: PressDetector.Configuration, logger: Logger
    ) -> any ButtonSource {
        switch backend {
        case .simulated(let presses): ScriptedButtonSource(.presses(presses))
        case .evdev(let settings): EvdevButtonSource(settings: settings)
        case .serial(let settings): SerialButtonSource(settings: settings, logger: logger)
        case .replay(let settings): ReplayButtonSource(settings: settings, press: press, logger: logger)
        }
    }

    /// Feeds mains and battery readings to the runtime; a supply that cannot be read is logged once.
    private func runPower(_ runtime: DeviceRuntime) async {
        guard case .sysfs(let settings) = config.power else { return }
        let logger = logger
        do {
            try await PowerSupplyMonitor(settings: settings, logger: logger).run { change in
                switch change {
                case .mains(let present):
                    logger.notice("mains", metadata: ["present": "\(present)"])
                    runtime.mainsChanged(present: present)
                case .battery(let percent, let status):
                    logger.info("battery", metadata: ["percent": "\(percent)", "status": "\(status.rawValue)"])
                    runtime.batteryMeasured(percent: percent)
                case .unreadable(let reason):
                    logger.error("power sensing: \(reason)")
                }
            }
        } catch {
            logger.error("power sensing stopped: \(error)")
        }
    }

    /// Logs input and serial devices coming and going, so a technician reading the journal sees an unplugged
    /// button next to its "missing" line; warns once where udevd is not running (the sources still reopen).
    private func watchHotplug() async {
        guard config.button.name == "evdev" || config.button.name == "serial" else { return }
        let logger = logger
        do {
            try await UdevMonitor(logger: logger).run { notice in
                switch notice {
                case .device(let event) where event.devnode != nil:
                    logger.info("hotplug", metadata: [
                        "action": "\(event.action)", "device": "\(event.devnode ?? "")", "subsystem": "\(event.subsystem)",
                    ])
                case .device: break
                case .warning(let text): logger.warning("hotplug: \(text)")
                }
            }
        } catch {
            logger.warning("hotplug monitoring stopped: \(error)")
        }
    }

    /// Feeds the source's events to the runtime until the daemon stops. A source that gives up (a
    /// configuration it cannot work with) leaves the button reported missing, so the centre knows.
    private func runButton(_ source: any ButtonSource, _ runtime: DeviceRuntime) async {
        let logger = logger
        do {
            try await source.run { event in
                switch event {
                case .level(let down, let at):
                    logger.debug("button", metadata: ["down": "\(down)"])
                    runtime.buttonEdge(down: down, at: at)
                case .judged(let verdict):
                    runtime.buttonJudged(verdict)
                case .present(let initiallyDown):
                    logger.info("call button present", metadata: ["held": "\(initiallyDown)"])
                    runtime.buttonPresenceChanged(present: true)
                    if initiallyDown { runtime.buttonEdge(down: true) }
                case .missing(let reason):
                    logger.error("call button missing: \(reason)")
                    runtime.buttonPresenceChanged(present: false)
                    runtime.buttonEdge(down: false)
                case .tamper:
                    logger.warning("the call button's box reports it was opened (tamper)")
                    runtime.tamperDetected()
                }
            }
        } catch is CancellationError {
        } catch {
            logger.critical("the call button cannot be used: \(error)")
            try? notifier.status("device \(config.deviceID): CALL BUTTON NOT WORKING: \(error)")
            runtime.buttonPresenceChanged(present: false)
        }
    }

    private func log(_ observations: AsyncStream<DeviceObservation>) async {
        var startupPagesReleased = false
        for await o in observations {
            switch o.kind {
            case .story(let step): logger.info("alarm", metadata: ["step": "\(step)"])
            case .button(let verdict):
                guard let text = config.alarm.pressDetection.explain(verdict) else { break }
                switch verdict {
                case .glitch, .tooShort: logger.notice("call button: \(text)")
                case .bounce: logger.debug("call button: \(text)")
                default: logger.info("call button: \(text)")
                }
            case .indicator(let state): logger.info("indicator: \(state.meaning)", metadata: ["state": "\(state.rawValue)"])
            case .linkDown(let centre, let cause):
                logger.warning("cannot reach the centre at \(centre): \(cause)")
                try? notifier.status("device \(config.deviceID): CANNOT REACH THE CENTRE at \(centre): \(cause)")
            case .linkRestored(let centre, let after):
                logger.warning("link to the centre at \(centre) restored after \(after.readable)")
            case .linkStillDown(let centre, let duration, let cause, let waiting):
                logger.warning("still cannot reach the centre at \(centre), for \(duration.readable): \(cause); \(waiting) message\(waiting == 1 ? "" : "s") waiting to be sent")
            case .sessionEstablished(let path):
                logger.info("session established", metadata: ["path": "\(path.rawValue)"])
                try? notifier.status("device \(config.deviceID): online (\(path.rawValue) centre)")
                if !startupPagesReleased {
                    // Start-up is over once the device is online: its code need not stay mapped (StartupPages).
                    startupPagesReleased = true
                    let bytes = StartupPages.release()
                    logger.debug("start-up's pages unmapped", metadata: ["bytes": "\(bytes)"])
                }
            case .sessionLost(let reason):
                logger.notice("session lost", metadata: ["reason": "\(reason.rawValue)"])
                try? notifier.status("device \(config.deviceID): offline, reconnecting")
            case .delivered(let message):
                logger.info("delivered", metadata: ["message": "\(message.kind.name)", "id": "\(message.reliableID ?? 0)"])
            case .refused(let error): logger.notice("refused a frame", metadata: ["reason": "\(error)"])
            case .recovered(let count): logger.notice("resending items stored before the restart", metadata: ["count": "\(count)"])
            case .fault(let text): logger.error("\(text)")
            case .callStarted(let call, let alarm):
                logger.info("call answered", metadata: ["call.id": "\(call)", "alarm.id": "\(alarm)"])
            case .callEnded(let call, let reason, let byCentre, let statistics):
                logger.info(
                    "call ended",
                    metadata: [
                        "call.id": "\(call)", "reason": "\(reason)", "by": "\(byCentre ? CallEndedBy.center.rawValue : CallEndedBy.device.rawValue)",
                        "media": "\(statistics?.summary ?? "none")",
                    ])
            case .attemptFailed(let cause): logger.debug("attempt to open a session failed", metadata: ["cause": "\(cause)"])
            case .callOffered(let callID, let alarmID, let declined):
                logger.info(declined ? "call declined: it belongs to no alarm, or a SIP call is up" : "call offered", metadata: ["call.id": "\(callID)", "alarm.id": "\(alarmID)"])
            case .dc09Refused(let message, let time):
                logger.notice("the DC-09 receiver refused a frame (NAK)", metadata: [
                    "id": "\(message.map(String.init) ?? "none")", "receiver.time": "\(time.map { "\($0)" } ?? "none")",
                ])
            case .dc09NotUnderstood(let message):
                logger.error("the DC-09 receiver does not take message \(message.map(String.init) ?? "(unknown)") (DUH): it stays in the outbox and is tried again at the longest backoff; check the receiver's account and code settings")
            case .dc09Unreadable(let why): logger.notice("an answer from the DC-09 receiver is not DC-09: \(why)")
            case .notReported(let message):
                logger.info("not reported over DC-09 (the protocol does not carry it)", metadata: ["message": "\(message.kind.name)", "id": "\(message.reliableID ?? 0)"])
            case .sipCallPlaced(let alarmID, let attempt):
                logger.info("SIP call placed", metadata: ["alarm.id": "\(alarmID)", "attempt": "\(attempt)"])
            case .sipCallAnswered(let incoming, let setupTime):
                logger.info(
                    incoming ? "SIP call from the centre answered" : "SIP call answered",
                    metadata: setupTime.map { ["setup.ms": "\($0.milliseconds)"] } ?? [:])
            case .sipCallEnded(let report):
                if case .refused(let code, _) = report.end, code == 401 || code == 407, config.voice != nil {
                    logger.error("SIP call refused \(code): the centre wants credentials; write the password to \(config.stateDirectory)/\(VoiceSettings.passwordFileName) (mode 0600) and set [voice] sip_user if it is not the device id")
                }
                logger.info(
                    "SIP call ended",
                    metadata: [
                        "end": "\(report.end)", "setup.ms": "\(report.setupTime.map { "\($0.milliseconds)" } ?? "none")",
                        "media": "\(report.statistics?.summary ?? "none")", "srtp": "\(report.srtp)",
                    ])
            case .sipCallRetrying(let alarmID, let attempt, let after):
                logger.notice("SIP call failed; trying again", metadata: ["alarm.id": "\(alarmID)", "attempt": "\(attempt)", "after": "\(after.readable)"])
            case .sipCallGaveUp(let alarmID, let attempts):
                logger.error("no SIP call could be set up for the alarm", metadata: ["alarm.id": "\(alarmID)", "attempts": "\(attempts)"])
            case .sipCallRefused(let from, let code):
                logger.notice("incoming SIP call refused", metadata: ["from": "\(from)", "status": "\(code)"])
            case .connected, .heartbeatRoundTrip, .nakReceived, .heartbeatSent, .reliableSent, .caseUpdateReceived:
                logger.debug("\(o.kind)")
            }
        }
    }
}

public struct DeviceDaemonError: Error, CustomStringConvertible {
    /// What failed, so that `devicesim run` exits with a status that says so.
    public enum Kind: Sendable {
        /// The state directory cannot be created or its lock file opened.
        case stateDirectory
        /// Another process (the running device, a technician's diag) holds the state directory's lock.
        case stateDirectoryHeld
        /// The centre's host name does not resolve.
        case unresolvedCentre
        case other
    }

    public var description: String
    public var kind: Kind
    public init(_ description: String, kind: Kind = .other) {
        self.description = description
        self.kind = kind
    }
}
