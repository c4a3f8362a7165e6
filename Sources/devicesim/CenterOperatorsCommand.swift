import ArgumentParser
import CenterConsole
import DeviceKit
import Foundation

/// `devicesim center operators`: the accounts of the people who log in to the centre's web console.
struct CenterOperatorsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operators",
        abstract: "Add, list and disable the accounts of the operators' web console.",
        discussion: """
            Accounts live in the centre's journal (table operator_account), so a running centre sees a new one \
            at its next login. \(ExitStatus.help([.dataError], [:])) Each subcommand's help lists its own.
            """,
        subcommands: [Add.self, List.self, Disable.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add an operator's account; the password is asked on the terminal, or read as one line from standard input.",
            discussion: """
                On a terminal the password is asked twice without echo; otherwise the first line of standard \
                input is the password (printf '%s\\n' "$PASSWORD" | devicesim center operators add NAME). It is \
                never an option. It must be 8 to 72 bytes of UTF-8 (bcrypt reads 72) and not only spaces; it is \
                stored as a bcrypt hash (cost 12). The journal is created if there is none.

                \(ExitStatus.help(
                    [.dataError, .ioError, .cannotCreate, .noPermission],
                    [.dataError: "the password is refused, the two differ, or the name is taken",
                     .ioError: "standard input cannot be read",
                     .cannotCreate: "the journal cannot be created (its directory is missing)",
                     .noPermission: "the journal may not be written by this user"]))
                """)

        @Argument(help: "The login name: 1 to 64 of the letters A-Z and a-z, the digits, '.', '_' and '-'.")
        var name: String

        @Option(help: "operator works cases; supervisor also manages accounts and the residents' registry.")
        var role: OperatorRole = .operator

        @Option(help: "The language of the operator's console: en (English) or zh (Simplified Chinese).")
        var language: ConsoleLanguage = .en

        @OptionGroup var journal: CenterJournalOption

        func validate() throws {
            do { try OperatorAccount.checkName(name) } catch { throw ValidationError(error.description) }
        }

        func run() throws { print(try run(password: PasswordInput())) }

        /// Reads the password from `password`, stores the account; returns what to print.
        func run(password input: PasswordInput) throws -> String {
            let password = try input.read()
            let hash: String
            do { hash = try OperatorPassword.hash(password) } catch { throw CommandFailure(.dataError, error.description) }
            let journal = try self.journal.open()
            defer { try? journal.close() }
            let now = wallClock()
            do {
                try journal.addOperator(OperatorAccount(name: name, passwordHash: hash, role: role, language: language, createdAt: now))
            } catch let error as OperatorAccountError {
                throw CommandFailure(.dataError, error.description)
            }
            try journal.recordOperatorAction(
                OperatorAction(at: now, operatorName: commandLineUser(), action: "addOperator", note: "\(name) (\(role.rawValue))"))
            return "added \(role.rawValue) \(name) to \(self.journal.journal)"
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the operators' accounts: name, role, language, enabled or disabled, when added.",
            discussion: ExitStatus.help([.noInput], [.noInput: "there is no journal at --journal"]))

        @OptionGroup var journal: CenterJournalOption

        func run() throws { print(try output()) }

        func output() throws -> String {
            let journal = try self.journal.existing()
            defer { try? journal.close() }
            let accounts = try journal.operatorAccounts()
            guard !accounts.isEmpty else {
                return "no operators in \(self.journal.journal): add one with devicesim center operators add NAME --journal \(self.journal.journal)"
            }
            let rows = [["NAME", "ROLE", "LANGUAGE", "STATUS", "ADDED (UTC)"]]
                + accounts.map { [$0.name, $0.role.rawValue, $0.language.rawValue, $0.disabled ? "disabled" : "enabled", iso8601($0.createdAt)] }
            let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
            return rows.map { row in
                row.enumerated().map { column, text in
                    column == 4 ? text : text.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
            }.joined(separator: "\n")
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable an operator's account: it can no longer log in, and a running console ends its sessions.",
            discussion: ExitStatus.help(
                [.dataError, .noInput],
                [.dataError: "there is no operator of that name", .noInput: "there is no journal at --journal"]))

        @Argument(help: "The operator's login name.")
        var name: String

        @OptionGroup var journal: CenterJournalOption

        func run() throws { print(try output()) }

        func output() throws -> String {
            let journal = try self.journal.existing()
            defer { try? journal.close() }
            guard try journal.setOperator(name, disabled: true) else {
                throw CommandFailure(.dataError, "no operator named '\(name.prefix(80))' in \(self.journal.journal): devicesim center operators list shows them")
            }
            try journal.recordOperatorAction(OperatorAction(at: wallClock(), operatorName: commandLineUser(), action: "disableOperator", note: name))
            return "disabled \(name) in \(self.journal.journal)"
        }
    }
}

extension OperatorRole: ExpressibleByArgument {}
extension ConsoleLanguage: ExpressibleByArgument {}

/// Who made a change from the command line, for the journal's operator_action: `cli:` and the login user.
func commandLineUser() -> String {
    guard let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name else { return "cli:uid\(geteuid())" }
    return "cli:" + String(cString: name)
}

/// Now, in milliseconds since the Unix epoch.
func wallClock() -> WireTime { WireTime(max(0, Date().timeIntervalSince1970 * 1000)) }

/// `2026-12-04T20:35:39Z`.
private func iso8601(_ time: WireTime) -> String {
    ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(time) / 1000))
}
