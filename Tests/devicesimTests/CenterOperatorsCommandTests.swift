import ArgumentParser
import CenterConsole
import DeviceKit
import Foundation
import Testing

@testable import devicesim

/// `devicesim center operators` and `registry import`, through their run functions with a temporary journal.
@Suite struct CenterOperatorsCommandTests {
    /// A journal in a new temporary directory, which the test removes (`defer`) when it ends.
    static func temporaryJournal() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("operators-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory.appendingPathComponent("center.sqlite").path
    }

    /// A pipe holding `text` and then end of file, as `printf … | devicesim center operators add` gives it.
    static func piped(_ text: String) throws -> PasswordInput {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let bytes = Array(text.utf8)
        #expect(write(fds[1], bytes, bytes.count) == bytes.count)
        close(fds[1])
        return PasswordInput(input: fds[0], prompt: -1)
    }

    static func add(_ arguments: [String], password: String) throws -> String {
        let input = try piped(password)
        defer { close(input.input) }
        return try CenterOperatorsCommand.Add.parse(arguments).run(password: input)
    }

    /// The status and message a command failed with.
    static func failure(_ body: () throws -> String) -> (devicesim.ExitStatus, String)? {
        do {
            _ = try body()
            return nil
        } catch let failure as CommandFailure {
            return (failure.status, failure.message)
        } catch {
            return (.software, "\(error)")
        }
    }

    @Test func theSubcommandsAreParsedUnderCenterAndTheCentreIsTheDefault() throws {
        let add = try #require(try CenterCommandGroup.parseAsRoot(["operators", "add", "li.wei", "--role", "supervisor", "--language", "zh", "--journal", "/tmp/j.sqlite"]) as? CenterOperatorsCommand.Add)
        #expect(add.name == "li.wei" && add.role == .supervisor && add.language == .zh && add.journal.journal == "/tmp/j.sqlite")
        let defaults = try #require(try CenterCommandGroup.parseAsRoot(["operators", "add", "anna"]) as? CenterOperatorsCommand.Add)
        #expect(defaults.role == .operator && defaults.language == .en && defaults.journal.journal == "center.sqlite")
        let centre = try #require(try CenterCommandGroup.parseAsRoot(["--port", "7701", "--master-file", "m.hex"]) as? CenterCommand)
        #expect(centre.port == 7701 && centre.journal == CenterOperatorsCommandTests.defaultJournal)
        #expect(try CenterCommandGroup.parseAsRoot(["serve", "--port", "7702", "--master-file", "m.hex"]) is CenterCommand)
        #expect(try CenterCommandGroup.parseAsRoot(["registry", "import", "r.csv", "--journal", "j"]) is CenterRegistryCommand.Import)
    }

    static let defaultJournal = "center.sqlite"

    @Test(arguments: [
        (["a b"], "'a b' is not an operator name: use 1 to 64 of the letters A-Z and a-z, the digits 0-9, '.', '_' and '-'"),
        (["anna", "--role", "admin"], "The value 'admin' is invalid for '--role <role>'. Please provide one of 'operator' and 'supervisor'."),
        (["anna", "--language", "de"], "The value 'de' is invalid for '--language <language>'. Please provide one of 'en' and 'zh'."),
        (["anna", "--password", "x"], "Unknown option '--password'"),
    ])
    func aBadNameRoleOrLanguageIsRefused(arguments: [String], message: String) {
        #expect(refusal(CenterOperatorsCommand.Add.self, arguments) == message)
    }

    @Test func aPipedPasswordAddsTheAccountWithItsHash() throws {
        let journal = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent) }
        let output = try Self.add(["li.wei", "--role", "supervisor", "--language", "zh", "--journal", journal], password: "correct horse battery\n")
        #expect(output == "added supervisor li.wei to \(journal)")
        let stored = try CenterJournal(path: journal)
        let account = try #require(try stored.operatorAccount(named: "li.wei"))
        #expect(account.role == .supervisor && account.language == .zh && !account.disabled)
        #expect(OperatorPassword.verify("correct horse battery", hash: account.passwordHash))
        #expect(account.passwordHash.hasPrefix("$2b$12$"))
    }

    @Test func aShortPasswordIsRefusedAndNothingIsStored() throws {
        let journal = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent) }
        let failure = Self.failure { try Self.add(["anna", "--journal", journal], password: "short\n") }
        #expect(failure?.0 == .dataError)
        #expect(failure?.1 == "the password is too short (5 bytes): use at least 8 characters")
        #expect(!FileManager.default.fileExists(atPath: journal), "refused before the journal is opened")
        let empty = Self.failure { try Self.add(["anna", "--journal", journal], password: "") }
        #expect(empty?.0 == .dataError && empty?.1.hasPrefix("no password on standard input") == true)
    }

    @Test func aTakenNameIsRefused() throws {
        let journal = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent) }
        _ = try Self.add(["anna", "--journal", journal], password: "first password\n")
        let failure = Self.failure { try Self.add(["anna", "--role", "supervisor", "--journal", journal], password: "second password\n") }
        #expect(failure?.0 == .dataError)
        #expect(failure?.1 == "an operator named 'anna' exists already (perhaps disabled): choose another name")
        let account = try CenterJournal(path: journal).operatorAccount(named: "anna")
        #expect(account?.role == .operator && OperatorPassword.verify("first password", hash: account?.passwordHash ?? ""))
    }

    @Test func accountsAreListedAndDisabled() throws {
        let journal = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent) }
        #expect(Self.failure { try CenterOperatorsCommand.List.parse(["--journal", journal]).output() }?.0 == .noInput)
        _ = try Self.add(["zoe", "--journal", journal], password: "password one\n")
        _ = try Self.add(["anna", "--role", "supervisor", "--language", "zh", "--journal", journal], password: "password two\r\n")
        #expect(try CenterOperatorsCommand.Disable.parse(["zoe", "--journal", journal]).output() == "disabled zoe in \(journal)")
        let lines = try CenterOperatorsCommand.List.parse(["--journal", journal]).output().split(separator: "\n")
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("NAME  ROLE        LANGUAGE  STATUS    ADDED (UTC)"))
        #expect(lines[1].hasPrefix("anna  supervisor  zh        enabled   20"))
        #expect(lines[2].hasPrefix("zoe   operator    en        disabled  20"))
        let missing = Self.failure { try CenterOperatorsCommand.Disable.parse(["nobody", "--journal", journal]).output() }
        #expect(missing?.0 == .dataError && missing?.1.hasPrefix("no operator named 'nobody'") == true)
    }

    @Test func aRegistryImportSaysHowManyRows() throws {
        let journal = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent) }
        let file = (journal as NSString).deletingLastPathComponent + "/residents.csv"
        try "device,name,address\n1001,Wang Fang,\"1 Lane, Flat 2\"\n1002,Anna,\n".write(toFile: file, atomically: true, encoding: .utf8)
        let output = try CenterRegistryCommand.Import.parse([file, "--journal", journal]).output()
        #expect(output == "imported 2 residents from \(file) into \(journal)")
        #expect(try CenterJournal(path: journal).resident(device: 1001)?.address == "1 Lane, Flat 2")
    }

    /// A bad file is refused whole with every bad row, exit status 65, and nothing imported.
    @Test func aBadRegistryListsEveryBadRowAndImportsNothing() throws {
        let journal = try Self.temporaryJournal()
        defer { try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent) }
        let file = (journal as NSString).deletingLastPathComponent + "/residents.csv"
        try "device,name\n1,Anna\nabc,Li\n3,\n1,Again\n".write(toFile: file, atomically: true, encoding: .utf8)
        let failure = Self.failure { try CenterRegistryCommand.Import.parse([file, "--journal", journal]).output() }
        #expect(failure?.0 == .dataError)
        #expect(failure?.1 == """
            \(file) was not imported (3 problems); nothing was changed:
            line 3: device 'abc' is not a number from 1 to 4294967295
            line 4: the name is empty
            line 5: device 1 is also on line 2: give each device once
            """)
        #expect(!FileManager.default.fileExists(atPath: journal))
        let missing = Self.failure { try CenterRegistryCommand.Import.parse([file + ".none", "--journal", journal]).output() }
        #expect(missing?.0 == .noInput)
    }
}
