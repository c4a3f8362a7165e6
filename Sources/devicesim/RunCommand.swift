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

            \(ExitStatus.help(
                [.noInput, .noHost, .software, .cannotCreate, .temporaryFailure, .noPermission, .configuration],
                [.success: "stopped by SIGTERM or SIGINT",
                 .noInput: "device.toml is missing",
                 .noHost: "the centre's host name does not resolve",
                 .cannotCreate: "the state directory cannot be created or locked",
                 .temporaryFailure: "another devicesim (the running device, a diag) holds the state directory",
                 .configuration: "device.toml or its key file is invalid"]))
            """)

    @OptionGroup var config: DeviceConfigOption

    func run() async throws {
        let deviceConfig = try config.load()
        var logger = Logger(label: "devicesim.run")
        logger.logLevel = deviceConfig.logLevel
        let fault = ProcessInfo.processInfo.environment["DEVICESIM_FAULT"].flatMap(DeviceRuntimeConfiguration.FaultInjection.init)
        let daemon = DeviceDaemon(config: deviceConfig, logger: logger, faultInjection: fault)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: daemon)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
