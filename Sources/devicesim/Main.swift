import ArgumentParser

/// The command-line tool: the device daemon, the reference centre, the load tester and the diagnostics.
@main
struct DeviceSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devicesim",
        abstract: "Home emergency call device firmware, its dispatch centre, load tests and diagnostics.",
        subcommands: [
            DemoCommand.self, RunCommand.self, CenterCommand.self, DiagCommand.self, ProvisionCommand.self,
            ProtocolCommand.self, LoadCommand.self,
        ]
    )
}
