import Foundation
import GRDB
import Testing

@testable import DeviceKit

/// What the operators' console stores in the journal and reads back: accounts, the audit, residents, cases.
@Suite struct ConsoleJournalTests {
    static func account(_ name: String, role: OperatorRole = .operator) -> OperatorAccount {
        OperatorAccount(name: name, passwordHash: "$2b$04$hash-of-\(name)", role: role, language: .zh, createdAt: 1_000)
    }

    @Test(arguments: JournalBackend.allCases) func anAccountIsStoredOnceAndReadBack(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            try journal.addOperator(Self.account("li.wei", role: .supervisor))
            try journal.addOperator(Self.account("anna"))
            #expect(throws: OperatorAccountError.exists("anna")) { try journal.addOperator(Self.account("anna")) }
            #expect(try journal.operatorAccount(named: "li.wei") == Self.account("li.wei", role: .supervisor))
            #expect(try journal.operatorAccount(named: "nobody") == nil)
            #expect(try journal.operatorAccounts().map(\.name) == ["anna", "li.wei"])
        }
    }

    @Test(arguments: ["", "a b", "anna/../x", "名字", String(repeating: "a", count: 65), "tab\t"])
    func aNameOutsideTheAllowedCharactersIsRefused(name: String) throws {
        let journal = try CenterJournal(path: temporaryJournal())
        #expect(throws: OperatorAccountError.invalidName(name)) { try journal.addOperator(Self.account(name)) }
        #expect(try journal.operatorAccounts().isEmpty)
    }

    @Test func theLongestNameAndEveryAllowedCharacterAreTaken() throws {
        try OperatorAccount.checkName(String(repeating: "z", count: 64))
        try OperatorAccount.checkName("Az09._-")
    }

    @Test(arguments: JournalBackend.allCases) func anAccountIsDisabledAndItsLanguageChanged(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            try journal.addOperator(Self.account("anna"))
            #expect(try journal.setOperator("anna", disabled: true))
            #expect(try journal.setOperator("anna", language: .en))
            #expect(try !journal.setOperator("nobody", disabled: true))
            #expect(try !journal.setOperator("nobody", language: .zh))
            let anna = try #require(try journal.operatorAccount(named: "anna"))
            #expect(anna.disabled && anna.language == .en)
            #expect(try journal.setOperator("anna", disabled: false))
            #expect(try journal.operatorAccount(named: "anna")?.disabled == false)
        }
    }

    @Test(arguments: JournalBackend.allCases) func aRegistryImportReplacesTheDevicesItNamesAndKeepsTheOthers(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            try journal.importResidents([
                Resident(device: 1, name: "Wang Fang", address: "1 Lane", contacts: "son 555", notes: "dog"),
                Resident(device: 2, name: "Anna"),
            ], at: 10)
            try journal.importResidents([Resident(device: 2, name: "Anna Berg", address: "2 Road")], at: 20)
            #expect(try journal.resident(device: 1) == Resident(device: 1, name: "Wang Fang", address: "1 Lane", contacts: "son 555", notes: "dog"))
            #expect(try journal.resident(device: 2) == Resident(device: 2, name: "Anna Berg", address: "2 Road"))
            #expect(try journal.resident(device: 3) == nil)
            #expect(try journal.residents().keys.sorted() == [1, 2])
        }
    }

    /// The audit keeps who did what, when, on which case.
    @Test(arguments: JournalBackend.allCases) func anOperatorsActionsAreKeptWithTheirCase(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let opened = try #require(try journal.record(device: 7, message: .testAlarm(1), at: 100, opensCase: true).openedCase?.0)
            try journal.recordOperatorAction(OperatorAction(at: 110, operatorName: "anna", action: "take", caseID: opened.id, device: 7))
            try journal.recordOperatorAction(OperatorAction(at: 120, operatorName: "anna", action: "dispatch", caseID: opened.id, device: 7, note: "ambulance called"))
            try journal.recordOperatorAction(OperatorAction(at: 130, operatorName: "li", action: "login"))
            let record = try #require(try journal.caseRecord(id: opened.id))
            #expect(record.actions == [
                OperatorAction(at: 110, operatorName: "anna", action: "take", caseID: opened.id, device: 7),
                OperatorAction(at: 120, operatorName: "anna", action: "dispatch", caseID: opened.id, device: 7, note: "ambulance called"),
            ])
        }
    }

    @Test(arguments: JournalBackend.allCases) func aCaseRecordHoldsItsAlarmStatesAndWhetherItWasWithdrawn(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let alarm = Alarm(id: 5, kind: .fall, triggeredAt: 900, battery: 255, flags: [.onBattery], pressCount: 3, holdMilliseconds: 1200)
            let opened = try #require(try journal.record(device: 7, message: .alarm(alarm), at: 1_000, opensCase: true).openedCase?.0)
            var engaged = opened
            engaged.state = .operatorEngaged
            _ = try journal.updateCase(engaged, at: 1_100)
            _ = try journal.record(device: 7, message: .alarmCancel(AlarmCancel(id: 6, alarmID: 5, cancelledAt: 1_150)), at: 1_200)
            let record = try #require(try journal.caseRecord(id: opened.id))
            #expect(record.case == CasePolicy.Case(id: opened.id, device: 7, alarmID: 5, state: .closed, openedAt: 1_000))
            #expect(record.alarm == RecordedAlarmDetail(
                kind: "fall", triggeredAt: 900, battery: nil, onBattery: true, clockVerified: false, receivedAt: 1_000,
                pressCount: 3, holdMilliseconds: 1200))
            #expect(record.updates == [
                CaseStateChange(state: .received, at: 1_000), CaseStateChange(state: .operatorEngaged, at: 1_100),
                CaseStateChange(state: .closed, at: 1_200),
            ])
            #expect(record.cancelled)
            #expect(try journal.caseRecord(id: opened.id + 100) == nil)
        }
    }

    /// Closed by the operator, then a cancel came: not withdrawn. An open case: not withdrawn either.
    @Test(arguments: JournalBackend.allCases) func aCaseClosedByItsOperatorIsNotWithdrawn(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let opened = try #require(try journal.record(device: 7, message: .testAlarm(5, kind: .button), at: 1_000, opensCase: true).openedCase?.0)
            var closed = opened
            closed.state = .closed
            _ = try journal.updateCase(closed, at: 1_100)
            _ = try journal.record(device: 7, message: .alarmCancel(AlarmCancel(id: 6, alarmID: 5, cancelledAt: 1_150)), at: 1_200)
            let record = try #require(try journal.caseRecord(id: opened.id))
            #expect(!record.cancelled)
            #expect(record.alarm?.kind == "button" && record.alarm?.battery == 87 && record.alarm?.clockVerified == true)
            let other = try #require(try journal.record(device: 8, message: .testAlarm(1), at: 1_300, opensCase: true).openedCase?.0)
            #expect(try journal.caseRecord(id: other.id)?.cancelled == false)
        }
    }

    /// A device whose ids restarted: the second alarm under id 1 is its own case, with its own alarm.
    @Test(arguments: JournalBackend.allCases) func theCaseOfAReusedAlarmIDShowsItsOwnAlarm(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            _ = try journal.record(device: 1, message: .alarm(Alarm(id: 1, kind: .button, triggeredAt: 1_000, battery: 80, flags: [])), at: 1, opensCase: true)
            let reused = try journal.record(device: 1, message: .alarm(Alarm(id: 1, kind: .fall, triggeredAt: 9_000, battery: 70, flags: [])), at: 2, opensCase: true)
            let id = try #require(reused.openedCase?.0.id)
            #expect(try journal.caseRecord(id: id)?.alarm?.kind == "fall")
            #expect(try journal.caseRecord(id: id)?.alarm?.battery == 70)
        }
    }

    @Test(arguments: JournalBackend.allCases) func casesAreListedNewestFirstAndPagedByID(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            var ids: [Int64] = []
            for alarm in UInt32(1)...5 {
                ids.append(try #require(try journal.record(device: 10, message: .testAlarm(alarm), at: UInt64(alarm), opensCase: true).openedCase?.0.id))
            }
            let first = try journal.caseRecords(search: nil, before: nil, limit: 2)
            #expect(first.map(\.case.id) == [ids[4], ids[3]])
            let second = try journal.caseRecords(search: nil, before: first.last?.case.id, limit: 2)
            #expect(second.map(\.case.id) == [ids[2], ids[1]])
            #expect(try journal.caseRecords(search: nil, before: ids[1], limit: 2).map(\.case.id) == [ids[0]])
            #expect(try journal.caseRecords(search: nil, before: nil, limit: 0).isEmpty)
        }
    }

    @Test(arguments: JournalBackend.allCases) func casesAreFoundByDeviceByResidentsNameAndByNote(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            try journal.importResidents([Resident(device: 100, name: "Zoë Müller"), Resident(device: 200, name: "王芳")], at: 1)
            let zoe = try #require(try journal.record(device: 100, message: .testAlarm(1), at: 1, opensCase: true).openedCase?.0.id)
            let wang = try #require(try journal.record(device: 200, message: .testAlarm(1), at: 2, opensCase: true).openedCase?.0.id)
            let other = try #require(try journal.record(device: 1000, message: .testAlarm(1), at: 3, opensCase: true).openedCase?.0.id)
            try journal.recordOperatorAction(OperatorAction(at: 4, operatorName: "anna", action: "dispatch", caseID: other, device: 1000, note: "Ambulance called, 50% sure"))
            #expect(try journal.caseRecords(search: "100", before: nil, limit: 10).map(\.case.id) == [zoe], "a number is a device id, exactly")
            #expect(try journal.caseRecords(search: " 1000 ", before: nil, limit: 10).map(\.case.id) == [other])
            #expect(try journal.caseRecords(search: "99999999999", before: nil, limit: 10).isEmpty)
            #expect(try journal.caseRecords(search: "ZOË", before: nil, limit: 10).map(\.case.id) == [zoe], "names case-insensitively, beyond ASCII")
            #expect(try journal.caseRecords(search: "芳", before: nil, limit: 10).map(\.case.id) == [wang])
            #expect(try journal.caseRecords(search: "ambulance", before: nil, limit: 10).map(\.case.id) == [other])
            #expect(try journal.caseRecords(search: "50%", before: nil, limit: 10).map(\.case.id) == [other])
            #expect(try journal.caseRecords(search: "_", before: nil, limit: 10).isEmpty, "no LIKE wildcards")
            #expect(try journal.caseRecords(search: "", before: nil, limit: 10).count == 3)
        }
    }

    @Test(arguments: JournalBackend.allCases) func lastHeardIsEachDevicesLatestSupervisionReport(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            try journal.recordSupervision(device: 1, online: true, at: 10)
            try journal.recordSupervision(device: 2, online: true, at: 11)
            try journal.recordSupervision(device: 1, online: false, at: 20)
            let heard = try journal.lastHeard()
            #expect(heard.count == 2)
            #expect(heard[1]?.online == false && heard[1]?.at == 20)
            #expect(heard[2]?.online == true && heard[2]?.at == 11)
        }
    }

    /// A journal from before the console: its cases stay and the console's tables are added when it is reopened.
    @Test func aJournalFromBeforeTheConsoleIsMigrated() throws {
        let path = temporaryJournal()
        let old = try CenterJournal(path: path)
        let opened = try #require(try old.record(device: 3, message: .testAlarm(9), at: 50, opensCase: true).openedCase?.0)
        try old.close()
        // Make it a v3 file: what the code before v4-console left.
        let database = try DatabaseQueue(path: path)
        try database.write { db in
            try db.execute(sql: """
                DROP TABLE operator_account; DROP TABLE operator_action; DROP TABLE resident;
                DELETE FROM grdb_migrations WHERE identifier = 'v4-console';
                """)
        }
        #expect(try database.read { db in try db.tableExists("resident") } == false)
        try database.close()

        let reopened = try CenterJournal(path: path)
        #expect(try reopened.caseRecord(id: opened.id)?.case.device == 3)
        try reopened.addOperator(Self.account("anna"))
        try reopened.importResidents([Resident(device: 3, name: "Anna")], at: 60)
        #expect(try reopened.caseRecords(search: "anna", before: nil, limit: 5).map(\.case.id) == [opened.id])
    }

    /// An import runs in one transaction: when the journal cannot be written, nothing of it is.
    @Test func anImportThatCannotBeWrittenThrowsAndKeepsNothing() throws {
        let path = temporaryJournal()
        let journal = try CenterJournal(path: path, busyTimeout: .milliseconds(50))
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
        let other = try DatabaseQueue(path: path, configuration: unsafe)
        try other.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        #expect(throws: DatabaseError.self) {
            try journal.importResidents([Resident(device: 1, name: "A"), Resident(device: 2, name: "B")], at: 1)
        }
        #expect(throws: DatabaseError.self) { try journal.addOperator(Self.account("anna")) }
        try other.inDatabase { db in try db.execute(sql: "ROLLBACK") }
        #expect(try journal.residents().isEmpty)
        #expect(try journal.operatorAccounts().isEmpty)
    }

    /// The console's writes queue behind the centre's on the writer lock, like every journal write.
    @Test func theConsolesWritesWaitForTheWriterLock() async throws {
        let path = temporaryJournal()
        let journal = try CenterJournal(path: path)
        let other = try OtherWriter(journal: path)
        let write = other.startWrite { try journal.addOperator(Self.account("anna")) }
        try await other.waitUntilAWriteWaits()
        #expect(try journal.operatorAccounts().isEmpty)
        other.release()
        try await write.value
        #expect(try journal.operatorAccounts().map(\.name) == ["anna"])
    }
}
