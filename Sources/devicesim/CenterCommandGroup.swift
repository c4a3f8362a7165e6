import Foundation
import ArgumentParser
import DeviceKit

/// `devicesim center`: runs the centre (`serve`, the default, so `devicesim center --port 7700` is what it
/// always was) or manages what its web console reads from the journal: operators and residents.
struct CenterCommandGroup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "center",
        abstract: "Run the reference dispatch centre, or manage its console's operators and residents' registry.",
        discussion: """
            With no subcommand, or with serve, it runs the centre: `devicesim center --port 7700 …` is \
            `devicesim center serve --port 7700 …`, whose options `devicesim center serve --help` lists. The \
            operators and registry subcommands write the accounts and residents the operators' web console \
            reads, in the journal (docs/console.md).

            \(ExitStatus.help([], [:])) Each subcommand's help lists its own.
            """,
        subcommands: [CenterCommand.self, CenterOperatorsCommand.self, CenterRegistryCommand.self],
        defaultSubcommand: CenterCommand.self)
}

/// `--journal`, for the subcommands that manage the centre's journal offline or beside a running centre.
struct CenterJournalOption: ParsableArguments {
    @Option(help: "The centre's journal (the --journal of devicesim center): an SQLite file or postgres://USER@HOST[:PORT]/DATABASE.")
    var journal = CenterCommand.defaultJournal

    @Option(help: "A file whose first line is the PostgreSQL journal's password (else the environment's PGPASSWORD).")
    var journalPasswordFile: String?

    func validate() throws { _ = try location() }

    func location() throws -> JournalLocation {
        do { return try JournalLocation.parse(journal, passwordFile: journalPasswordFile) } catch { throw ValidationError(error.description) }
    }

    /// The journal, created if it is a new SQLite file (or a PostgreSQL database without the schema yet).
    func open() throws -> CenterJournal { try CenterJournal(try location()) }

    /// The journal, which must exist when it is a file: listing or changing accounts creates no empty journal
    /// by mistake.
    func existing() throws -> CenterJournal {
        let location = try location()
        if case .sqlite(let path) = location, !FileManager.default.fileExists(atPath: path) {
            throw CommandFailure(.noInput, "there is no journal at \(path): give the centre's journal with --journal PATH (the default is \(CenterCommand.defaultJournal) in the current directory)")
        }
        return try CenterJournal(location)
    }
}

extension CenterCommand {
    /// `--journal`'s default, for the centre and for the commands that manage its journal.
    static let defaultJournal = "center.sqlite"
}
