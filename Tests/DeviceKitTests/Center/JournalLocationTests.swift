import Foundation
import Testing

@testable import DeviceKit

/// `--journal`: a path is an SQLite file, a postgres:// URL a database; the password never on the command line.
@Suite struct JournalLocationTests {
    @Test func aPathIsAnSQLiteFileAndAURLADatabase() throws {
        #expect(try JournalLocation.parse("center.sqlite", environment: [:]) == .sqlite("center.sqlite"))
        let tcp = try JournalLocation.parse("postgres://centre@db.example:6543/alarms", environment: ["PGPASSWORD": "pw"])
        #expect(
            tcp == .postgres(PostgresJournalConfiguration(endpoint: .tcp(host: "db.example", port: 6543), user: "centre", database: "alarms", password: "pw")))
        #expect(tcp.description == "postgres://centre@db.example:6543/alarms", "no password in what is shown")
        let socket = try JournalLocation.parse("postgresql://centre@/alarms?host=/run/postgresql", environment: [:])
        #expect(
            socket == .postgres(PostgresJournalConfiguration(endpoint: .unixSocket(directory: "/run/postgresql", port: 5432), user: "centre", database: "alarms")))
        guard case .postgres(let tls) = try JournalLocation.parse("postgres://c@h/d?sslmode=require", environment: [:]) else {
            Issue.record("a URL is a PostgreSQL journal")
            return
        }
        #expect(tls.requireTLS && tls.description.hasSuffix("?sslmode=require"))
    }

    @Test func thePasswordComesFromAFileOrTheEnvironmentAndNeverFromTheURL() throws {
        let file = NSTemporaryDirectory() + "journal-password-\(UUID().uuidString)"
        try "s3cret\nignored\n".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        guard case .postgres(let fromFile) = try JournalLocation.parse("postgres://c@h/d", passwordFile: file, environment: ["PGPASSWORD": "env"]) else {
            Issue.record("a URL is a PostgreSQL journal")
            return
        }
        #expect(fromFile.password == "s3cret", "the file's first line, before the environment")
        do {
            _ = try JournalLocation.parse("postgres://c:hunter2@h/d", environment: [:])
            Issue.record("a password in the URL is refused")
        } catch {
            #expect(error.reason == .passwordInURL)
            #expect(!error.description.contains("hunter2"))
        }
        #expect(throws: JournalLocationError(text: "postgres://c@h/d", reason: .unreadablePasswordFile("/nonexistent/pw"))) {
            try JournalLocation.parse("postgres://c@h/d", passwordFile: "/nonexistent/pw", environment: [:])
        }
        #expect(throws: JournalLocationError(text: "c.sqlite", reason: .passwordFileWithoutServer)) {
            try JournalLocation.parse("c.sqlite", passwordFile: file, environment: [:])
        }
    }

    @Test(arguments: [
        ("postgres://h/d", JournalLocationError.Reason.missingUser),
        ("postgres://c@h/", .missingDatabase),
        ("postgres://c@h/d/e", .missingDatabase),
        ("postgres://c@/d", .missingHost),
        ("postgres://c@h:0/d", .badPort),
        ("postgres://c@h/d?sslmode=allow", .unknownParameter("sslmode=allow")),
    ])
    func aURLThatNamesTooLittleIsRefusedSayingWhat(_ text: String, _ reason: JournalLocationError.Reason) {
        #expect(throws: JournalLocationError(text: text, reason: reason)) { try JournalLocation.parse(text, environment: [:]) }
    }

    @Test func aServerThatCannotBeReachedIsSaidInWords() throws {
        let closed = PostgresJournalConfiguration(endpoint: .tcp(host: "127.0.0.1", port: 1), user: "c", database: "d")
        do {
            _ = try CenterJournal(.postgres(closed))
            Issue.record("a journal on a closed port opens")
        } catch let error as PostgresJournalError {
            #expect(error.description.hasPrefix("cannot connect to the PostgreSQL journal postgres://c@127.0.0.1:1/d:"), "\(error)")
        }
    }
}
