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
        let runtime = try makeRuntime()
        let watcher = Task { await log(runtime.observations) }
        runtime.start()
        try? notifier.ready()
        try? notifier.status("device \(config.deviceID): connecting to \(config.primaryCentre)")
        let button = Task { await runButtonScript(runtime) }
        let watchdog = Task { try? await SystemdWatchdogService(notifier: notifier, logger: logger).run() }
        // Returns on SIGTERM/SIGINT (graceful shutdown) or cancellation.
        try? await gracefulShutdown()
        logger.info("shutting down")
        try? notifier.stopping()
        button.cancel()
        watchdog.cancel()
        await runtime.stop()
        watcher.cancel()
    }

    /// Builds the runtime from the configuration; every failure says what to fix.
    func makeRuntime() throws -> DeviceRuntime {
        do {
            try FileManager.default.createDirectory(atPath: config.stateDirectory, withIntermediateDirectories: true)
        } catch {
            throw DeviceDaemonError("cannot create the state directory \(config.stateDirectory): \(error.localizedDescription)")
        }
        let outbox = try SQLiteOutbox(path: config.outboxPath)
        let bootCount = try outbox.incrementBootCount()
        let indicators: any IndicatorOutput
        switch config.indicators {
        case .simulated: indicators = RecordingIndicators()
        case .sysfs(let root, let leds): indicators = try SysfsLEDIndicators(names: leds, root: root)
        }
        guard case .simulated = config.button else {
            throw DeviceDaemonError("button backend '\(config.button.name)' is not supported by this build yet; use backend = \"simulated\"")
        }
        var runtimeConfiguration = DeviceRuntimeConfiguration(
            key: try config.deviceKey(), primary: try resolve(config.primaryCentre),
            secondary: try config.secondaryCentre.map(resolve), transport: config.transport,
            bootCount: bootCount,
            press: .init(
                debounce: .milliseconds(Int(config.alarm.debounceMilliseconds)),
                hold: .milliseconds(Int(config.alarm.holdMilliseconds))),
            cancelWindow: .milliseconds(Int(config.alarm.cancelWindowMilliseconds)),
            defaultHeartbeatInterval: .seconds(Int(config.heartbeatIntervalSeconds)))
        runtimeConfiguration.faultInjection = faultInjection
        logger.info(
            "device starting",
            metadata: ["device.id": "\(config.deviceID)", "boot": "\(bootCount)", "centre": "\(config.primaryCentre)",
                       "outbox.pending": "\((try? outbox.count()) ?? 0)"])
        return try DeviceRuntime(
            configuration: runtimeConfiguration, outbox: outbox, counterStore: CounterReservationFile(path: config.counterPath),
            indicators: indicators, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger)
    }

    private func resolve(_ address: CentreAddress) throws -> SocketAddress {
        do {
            return try SocketAddress.makeAddressResolvingHost(address.host, port: Int(address.port))
        } catch {
            throw DeviceDaemonError("cannot resolve the centre address \(address): \(error)")
        }
    }

    private func runButtonScript(_ runtime: DeviceRuntime) async {
        guard case .simulated(let presses) = config.button else { return }
        let clock = ContinuousClock()
        let start = clock.now
        for press in presses.sorted(by: { $0.at < $1.at }) {
            do {
                try await clock.sleep(until: start + press.at)
                runtime.buttonEdge(down: true)
                try await clock.sleep(for: press.duration)
                runtime.buttonEdge(down: false)
            } catch {
                return
            }
        }
    }

    private func log(_ observations: AsyncStream<DeviceObservation>) async {
        for await o in observations {
            switch o.kind {
            case .story(let step): logger.info("alarm", metadata: ["step": "\(step)"])
            case .indicator(let state): logger.info("indicator", metadata: ["state": "\(state.rawValue)"])
            case .sessionEstablished(let path):
                logger.info("session established", metadata: ["path": "\(path.rawValue)"])
                try? notifier.status("device \(config.deviceID): online (\(path.rawValue) centre)")
            case .sessionLost(let reason):
                logger.warning("session lost", metadata: ["reason": "\(reason.rawValue)"])
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
                        "call.id": "\(call)", "reason": "\(reason)", "by": "\(byCentre ? "centre" : "device")",
                        "media": "\(statistics?.summary ?? "none")",
                    ])
            case .connected, .heartbeatRoundTrip: logger.debug("\(o.kind)")
            }
        }
    }
}

public struct DeviceDaemonError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
