import ArgumentParser
import DeviceKit
import Foundation
import Logging
import ServiceLifecycle

/// `devicesim run`: the device daemon, as systemd starts it in a home.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the device: button, durable outbox, link to the centre, indicators.",
        discussion: """
            Reads device.toml (see `devicesim provision`). Stops gracefully on SIGTERM or SIGINT; tells systemd \
            READY=1 and pings WATCHDOG=1 when WATCHDOG_USEC is set. For crash tests only, \
            DEVICESIM_FAULT=crash-after-storing-alarm makes it kill itself after storing an alarm and before \
            sending it.
            """)

    @Option(help: "The device configuration file.")
    var config = "device.toml"

    func run() async throws {
        let deviceConfig: DeviceConfig
        do {
            deviceConfig = try DeviceConfig.load(path: config)
        } catch {
            throw ValidationError("\(config): \(error)")
        }
        var logger = Logger(label: "devicesim.run")
        logger.logLevel = deviceConfig.logLevel
        let fault = ProcessInfo.processInfo.environment["DEVICESIM_FAULT"].flatMap(DeviceRuntimeConfiguration.FaultInjection.init)
        let daemon = DeviceDaemon(config: deviceConfig, logger: logger, faultInjection: fault)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: daemon)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch let error as DeviceDaemonError {
            throw ValidationError(error.description)
        }
    }
}
