import ArgumentParser
import Testing

@testable import devicesim

/// What every `--help` says to a new user: how the command ends, and no name of the other spelling.
@Suite struct CommandHelpTests {
    /// Every command under `root`, the root first.
    static func commands(under root: any ParsableCommand.Type = DeviceSim.self) -> [any ParsableCommand.Type] {
        [root] + root.configuration.subcommands.flatMap { commands(under: $0) }
    }

    static var leaves: [any ParsableCommand.Type] { commands().filter { $0.configuration.subcommands.isEmpty } }

    static func help(_ command: any ParsableCommand.Type) -> String {
        DeviceSim.helpMessage(for: command, columns: 1000)
    }

    /// Only center, run, provision, diag link and selftest, protocol decode and vectors and load listed theirs.
    @Test func everyCommandListsItsExitStatusWithTheUsageCode() {
        #expect(Self.leaves.count >= 17, "\(Self.leaves.map { $0.configuration.commandName ?? "\($0)" })")
        for command in Self.leaves {
            let help = Self.help(command)
            #expect(help.contains("Exit status: 0 "), "\(command): \(help)")
            #expect(help.contains("; 64 the command line cannot be used (the usage is printed)"), "\(command)")
        }
        for group in Self.commands() where !group.configuration.subcommands.isEmpty {
            #expect(Self.help(group).lowercased().contains("exit status"), "\(group)")
        }
        // The root says what each code means.
        let root = Self.help(DeviceSim.self)
        for code in ExitStatus.allCases where code != .success {
            #expect(root.contains("\(code.rawValue) "), "\(code)")
        }
    }

    /// The help of each command shows one spelling: `--center`, never `--centre` (an alias, still read).
    @Test func noHelpShowsTheOtherSpellingOfAName() {
        for command in Self.commands() {
            let help = Self.help(command)
            #expect(!help.contains("--centre"), "\(command)")
            #expect(!help.contains("centre.sqlite") && !help.contains("centre.log") && !help.contains("[centre]"), "\(command)")
            #expect(!help.contains("--heartbeat <"), "\(command): --heartbeat is the old name of --heartbeat-interval")
        }
    }

    /// `devicesim center` became a group (serve, operators, registry): its help says where the centre's options are.
    @Test func theCentresHelpListsItsSubcommandsAndWhereItsOptionsAre() {
        let help = Self.help(CenterCommandGroup.self)
        for name in ["serve (default)", "operators", "registry", "devicesim center serve --help"] {
            #expect(help.contains(name), "\(name): \(help)")
        }
        #expect(Self.help(CenterCommand.self).contains("--journal <journal>"))
    }

    @Test func theCodesAreThoseOfSysexits() {
        #expect(ExitStatus.allCases.map(\.rawValue) == [0, 1, 64, 65, 66, 68, 69, 70, 73, 74, 75, 77, 78])
        #expect(ExitStatus.help([.noInput], [.noInput: "the file is missing"])
            == "Exit status: 0 done; 64 the command line cannot be used (the usage is printed); 66 the file is missing.")
    }
}
