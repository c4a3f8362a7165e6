import ArgumentParser

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
    @Option(help: "The centre's SQLite journal (the --journal of devicesim center).")
    var journal = CenterCommand.defaultJournal
}

extension CenterCommand {
    /// `--journal`'s default, for the centre and for the commands that manage its journal.
    static let defaultJournal = "center.sqlite"
}
