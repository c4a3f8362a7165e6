import ArgumentParser
import DeviceKit
import Foundation

/// The command-line tool: the device daemon, the reference centre, the load tester and the diagnostics.
@main
struct DeviceSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devicesim",
        abstract: "Home emergency call device firmware, its dispatch centre, load tests and diagnostics.",
        discussion: """
            Each command's --help lists its exit status. 0 is success and 1 a check that found a problem; \
            failures use the codes of sysexits(3): 64 only for a command line that cannot be used (the usage \
            is printed), 65 bad data, 66 a missing input file, 68 an unknown host, 69 a port in use or a \
            service unreachable, 70 an internal error, 73 a file that cannot be created, 74 an I/O error, \
            75 a lock another process holds, 77 permission denied, 78 an invalid configuration or key file.
            """,
        version: versionLine,
        subcommands: [
            DemoCommand.self, RunCommand.self, CenterCommandGroup.self, DiagCommand.self, ProvisionCommand.self,
            ProtocolCommand.self, LoadCommand.self, SIPCommand.self,
        ]
    )

    /// `devicesim --version`: the version, and the commit the binary was built from when the build stamped it.
    static var versionLine: String {
        let commit = BuildStamp.commit
        return "devicesim \(BuildStamp.version) (commit \(commit == "unknown" ? "unknown: build with make to record it" : commit))"
    }

    /// ArgumentParser's main, except that a `CommandFailure` (or an error of DeviceKit that stands for one)
    /// ends the process with its own exit status and no usage text: 64 is for usage errors only.
    static func main() async {
        do {
            var command = try await asyncParseAsRoot(nil)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            guard let failure = CommandFailure(error) else { exit(withError: error) }
            FileHandle.standardError.write(Data("Error: \(failure.message)\n".utf8))
            Foundation.exit(failure.status.rawValue)
        }
    }
}
