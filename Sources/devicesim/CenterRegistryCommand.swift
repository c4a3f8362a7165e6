import ArgumentParser
import DeviceKit
import Foundation

/// `devicesim center registry`: the residents' registry the operators' console shows with each case.
struct CenterRegistryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Import the registry of residents (who lives at each device's home) from CSV.",
        discussion: ExitStatus.help([.dataError], [:]) + " Each subcommand's help lists its own.",
        subcommands: [Import.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import residents from a CSV file with the columns device, name, address, contacts, notes.",
            discussion: """
                RFC 4180 CSV in UTF-8 with a header row naming the columns in any order: device (1 to \
                4294967295) and name are required, address, contacts and notes optional, no others. The rows of \
                the devices the file names are replaced, the others kept. A file with any bad row is refused \
                whole, and every bad row is listed with its line number; nothing is imported. The journal is \
                created if there is none.

                \(ExitStatus.help(
                    [.dataError, .noInput, .ioError, .cannotCreate, .noPermission],
                    [.dataError: "the file has bad rows (each is listed)",
                     .noInput: "the CSV file is missing or unreadable",
                     .cannotCreate: "the journal cannot be created (its directory is missing)"]))
                """)

        @Argument(help: "The CSV file.")
        var file: String

        @OptionGroup var journal: CenterJournalOption

        func run() throws { print(try output()) }

        func output() throws -> String {
            let bytes = try readFile(file, what: "the registry")
            let residents: [Resident]
            do {
                residents = try ResidentCSV.parse(bytes)
            } catch {
                let count = error.rows.count
                throw CommandFailure(
                    .dataError,
                    "\(file) was not imported (\(count) \(count == 1 ? "problem" : "problems")); nothing was changed:\n\(error.description)")
            }
            let journal = try self.journal.open()
            defer { try? journal.close() }
            let now = wallClock()
            try journal.importResidents(residents, at: now)
            try journal.recordOperatorAction(
                OperatorAction(at: now, operatorName: commandLineUser(), action: "importRegistry", note: "\(residents.count) rows from \(file)"))
            return "imported \(residents.count) \(residents.count == 1 ? "resident" : "residents") from \(file) into \(self.journal.journal)"
        }
    }
}
