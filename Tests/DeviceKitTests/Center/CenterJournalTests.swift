import Foundation
import GRDB
import Synchronization
import Testing

@testable import DeviceKit

/// The journal keeps its promises: durable settings, once-only records, anchors that never go back.
@Suite struct CenterJournalTests {
    @Test func theJournalSyncsEveryCommitInWALMode() throws {
        let journal = try CenterJournal(path: temporaryJournal())
        #expect(try journal.synchronousMode() == 2)  // FULL
    }

    @Test(arguments: JournalBackend.allCases) func aMessageIsRecordedOncePerDeviceAndID(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            #expect(try journal.record(device: 1, message: .testAlarm(7), at: 1, opensCase: true).isNew)
            #expect(try !journal.record(device: 1, message: .testAlarm(7), at: 2, opensCase: true).isNew)
            #expect(try journal.record(device: 2, message: .testAlarm(7), at: 3, opensCase: true).isNew)
            #expect(try journal.alarms().map(\.device) == [1, 2])
            #expect(try journal.openCases().count == 2)
        }
    }

    /// A journal in a missing directory was named as its internal lock file (`…-writer`).
    @Test func aJournalThatCannotBeOpenedSaysWhyInWords() throws {
        let directory = try makeTemporaryDirectory("journal")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(throws: JournalOpenError(path: directory + "/none/c.sqlite", reason: .missingDirectory(directory + "/none"))) {
            try CenterJournal(path: directory + "/none/c.sqlite")
        }
        try "not a journal at all, just some text that is long enough for SQLite to look at".write(
            toFile: directory + "/text.sqlite", atomically: true, encoding: .utf8)
        #expect(throws: JournalOpenError(path: directory + "/text.sqlite", reason: .notADatabase)) {
            try CenterJournal(path: directory + "/text.sqlite")
        }
    }

    /// The operator's list shows how long ago each case opened, also for cases restored from the journal.
    @Test(arguments: JournalBackend.allCases) func aCaseKeepsWhenItOpened(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let opened = try journal.record(device: 1, message: .alarm(Alarm(id: 7, kind: .button, triggeredAt: 1, battery: 50, flags: [])), at: 1_234, opensCase: true).openedCase
            #expect(opened?.0.openedAt == 1_234)
            #expect(try journal.openCases().map(\.openedAt) == [1_234])
        }
    }

    @Test(arguments: JournalBackend.allCases) func aCancelClosesTheOpenCaseOfItsAlarm(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let opened = try journal.record(device: 1, message: .testAlarm(7), at: 1, opensCase: true).openedCase
            let cancel = try journal.record(device: 1, message: .alarmCancel(AlarmCancel(id: 8, alarmID: 7, cancelledAt: 2)), at: 2)
            #expect(cancel.alarmRecorded)
            #expect(cancel.closedCase?.0.id == opened?.0.id)
            #expect(cancel.closedCase?.1.state == .closed)
            #expect(try journal.openCases().isEmpty)
        }
    }

    /// The audit: a device whose ids restarted sent id 1 again as a fall alarm an hour later; it was acked and
    /// never dispatched. Now it is a case of its own, flagged, and its retransmissions are still duplicates.
    @Test(arguments: JournalBackend.allCases) func theSameIDWithOtherContentIsAConflictAndAnAlarmStillOpensItsCase(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let first = Message.alarm(Alarm(id: 1, kind: .button, triggeredAt: 1_000, battery: 80, flags: []))
            let later = Message.alarm(Alarm(id: 1, kind: .fall, triggeredAt: 3_601_000, battery: 70, flags: []))
            #expect(try journal.record(device: 1, message: first, at: 1, opensCase: true).isNew)
            // A retransmission with another battery reading is the same alarm.
            let resent = Message.alarm(Alarm(id: 1, kind: .button, triggeredAt: 1_000, battery: 79, flags: []))
            #expect(try journal.record(device: 1, message: resent, at: 2, opensCase: true) == .init(isNew: false, alarmRecorded: false))
            let reused = try journal.record(device: 1, message: later, at: 3, opensCase: true)
            #expect(reused.isNew)
            #expect(reused.idReused == 1)
            #expect(reused.openedCase?.0.alarmID == 1)
            #expect(try journal.openCases().count == 2)
            let again = try journal.record(device: 1, message: later, at: 4, opensCase: true)
            #expect(!again.isNew && again.idReused == 1 && again.openedCase == nil, "its retransmission")
            // Another kind of message reusing an id is refused, and counted the same way.
            let event = Message.event(DeviceEvent(id: 5, kind: .mainsLost, at: 10, value: 0))
            let otherEvent = Message.event(DeviceEvent(id: 5, kind: .tamper, at: 20, value: 0))
            #expect(try journal.record(device: 1, message: event, at: 5).isNew)
            let conflict = try journal.record(device: 1, message: otherEvent, at: 6)
            #expect(!conflict.isNew && conflict.idReused == 1)
        }
    }

    @Test(arguments: JournalBackend.allCases) func aLaterKeyEpochMovesTheAnchorAndRetiresTheOldOne(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            #expect(try journal.storeAnchor(device: 1, anchor: 900_000) == .init(raised: true, stored: 900_000, epoch: 0))
            // A re-provisioned device: epoch 1, its new key's counter from 0.
            #expect(try journal.storeAnchor(device: 1, anchor: 0, epoch: 1) == .init(raised: true, stored: 0, epoch: 1))
            // The old epoch can never come back, whatever its anchor.
            #expect(try journal.storeAnchor(device: 1, anchor: 2_000_000, epoch: 0) == .init(raised: false, stored: 0, epoch: 1))
            #expect(try journal.storeAnchor(device: 1, anchor: 65_536, epoch: 1) == .init(raised: true, stored: 65_536, epoch: 1))
            #expect(try journal.storedAnchors() == [1: .init(epoch: 1, anchor: 65_536)])
        }
    }

    @Test func aJournalOfTheFirstSchemaIsMigratedWithItsRows() throws {
        let path = temporaryJournal()
        do {
            let queue = try DatabaseQueue(path: path)
            try queue.write { db in
                try db.execute(sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1');
                    CREATE TABLE device (id INTEGER PRIMARY KEY, anchor INTEGER NOT NULL);
                    CREATE TABLE message (
                        device INTEGER NOT NULL, id INTEGER NOT NULL, kind TEXT NOT NULL, ref INTEGER,
                        json TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (device, id)) WITHOUT ROWID;
                    CREATE INDEX message_ref ON message (device, kind, ref);
                    CREATE TABLE dispatch_case (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, device INTEGER NOT NULL, alarm_id INTEGER NOT NULL,
                        state INTEGER NOT NULL, opened_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                        UNIQUE (device, alarm_id));
                    CREATE TABLE case_update (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, case_id INTEGER NOT NULL REFERENCES dispatch_case,
                        state INTEGER NOT NULL, at INTEGER NOT NULL, delivered_at INTEGER);
                    CREATE TABLE supervision (device INTEGER NOT NULL, online INTEGER NOT NULL, at INTEGER NOT NULL);
                    INSERT INTO device VALUES (1, 500);
                    INSERT INTO message VALUES (1, 7, 'alarm', NULL, '{}', 1);
                    INSERT INTO dispatch_case VALUES (1, 1, 7, 1, 1, 1);
                    INSERT INTO case_update VALUES (1, 1, 1, 1, NULL);
                    """)
            }
        }
        let journal = try CenterJournal(path: path)
        #expect(try journal.storedAnchors() == [1: .init(epoch: 0, anchor: 500)])
        #expect(try journal.openCases().map(\.alarmID) == [7])
        #expect(try journal.undeliveredUpdates().count == 1)
        // A row recorded without a digest: its retransmission is a duplicate, not a conflict.
        #expect(try journal.record(device: 1, message: .testAlarm(7), at: 2, opensCase: true) == .init(isNew: false, alarmRecorded: false))
    }

    @Test(arguments: JournalBackend.allCases) func aStoredAnchorNeverGoesBackAndTheWriteSaysWhetherItRose(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            #expect(try journal.storeAnchor(device: 1, anchor: 500) == .init(raised: true, stored: 500))
            #expect(try journal.storeAnchor(device: 1, anchor: 300) == .init(raised: false, stored: 500))
            #expect(try journal.storeAnchor(device: 1, anchor: 500) == .init(raised: false, stored: 500), "the same anchor again")
            #expect(try journal.storeAnchor(device: 1, anchor: 501) == .init(raised: true, stored: 501))
            #expect(try journal.anchors() == [1: 501])
        }
    }

    /// Two connections to one file, as two centre processes hold: the same anchor and the same alarm written
    /// through both rise and are new exactly once, and writes that meet wait for each other instead of failing.
    ///
    /// On PostgreSQL the two are two nodes' connections to one database.
    @Test(arguments: JournalBackend.allCases)
    func twoConnectionsOnOneFileDecideAnchorsAndAlarmsOnceAndWaitForEachOther(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            let journals = [try CenterJournal(location), try CenterJournal(location)]
            let outcomes = Mutex<[CenterJournal.WriteOutcome]>([])
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 2) { side in
                for round in 0..<100 {
                    let writes: [CenterJournal.Write] = [
                        .anchor(device: 1, anchor: UInt64(1_000 + round)),  // both sides: the same anchors
                        .message(device: 1, message: .testAlarm(UInt32(round)), at: 1, opensCase: true),  // the same alarms
                        .message(device: UInt32(10 + side), message: .testAlarm(UInt32(round)), at: 1, opensCase: false),
                    ]
                    do {
                        let result = try journals[side].commit(writes)
                        outcomes.withLock { $0 += result }
                    } catch {
                        failures.withLock { $0.append("\(error)") }
                    }
                }
            }
            #expect(failures.withLock { $0 }.isEmpty)
            let all = outcomes.withLock { $0 }
            #expect(all.count { if case .anchor(let a) = $0 { a.raised } else { false } } == 100)
            #expect(all.count { if case .recorded(let r) = $0 { r.isNew } else { false } } == 300)
            #expect(try journals[0].alarms().count == 300)
            #expect(try journals[1].openCases().count == 100, "one case per alarm of device 1")
        }
    }

    @Test(arguments: JournalBackend.allCases) func anOfflineReportConditionalOnAnAnchorIsWrittenOnlyWhileItIsTheStoredOne(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            try journal.storeAnchor(device: 1, anchor: 500)
            #expect(try journal.commit([.supervision(device: 1, online: false, at: 1, ifAnchor: 400)]) == [.supervision(written: false)])
            #expect(try journal.commit([.supervision(device: 1, online: false, at: 2, ifAnchor: 500)]) == [.supervision(written: true)])
            #expect(try journal.supervision(device: 1) == [false])
        }
    }

    @Test(arguments: JournalBackend.allCases) func caseUpdateIDsAreNeverReusedAndUndeliveredOnesAreKept(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let (opened, first) = try #require(try journal.record(device: 1, message: .testAlarm(7), at: 1, opensCase: true).openedCase)
            var engaged = opened
            engaged.state = .operatorEngaged
            let second = try #require(try journal.updateCase(engaged, at: 2))
            #expect(second.id > first.id)
            #expect(try journal.updateCase(engaged, at: 3) == nil, "states only move forward")
            try journal.caseUpdateDelivered(first.id, at: 4)
            #expect(try journal.undeliveredUpdates().map(\.update.id) == [second.id])
        }
    }

    @Test(arguments: JournalBackend.allCases) func aBatchIsCommittedInOrderAndDedupesWithinItAndAcrossBatches(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            let journal = try CenterJournal(location)
            let first = try journal.commit([
                .anchor(device: 1, anchor: 500),
                .message(device: 1, message: .testAlarm(7), at: 1, opensCase: true),
                .message(device: 1, message: .testAlarm(7), at: 2, opensCase: true),  // a duplicate in the same batch
                .message(device: 2, message: .testAlarm(7), at: 3, opensCase: true),
                .supervision(device: 1, online: true, at: 4),
            ])
            let isNew = first.map { outcome -> Bool? in
                if case .recorded(let recorded) = outcome { recorded.isNew } else { nil }
            }
            #expect(isNew == [nil, true, false, true, nil])
            let second = try journal.commit([.message(device: 1, message: .testAlarm(7), at: 5, opensCase: true)])
            guard case .recorded(let again)? = second.first else {
                Issue.record("a retransmission in a later batch was not reported as recorded")
                return
            }
            #expect(!again.isNew, "a duplicate across batches is not new")
            try journal.close()

            let reopened = try CenterJournal(location)
            #expect(try reopened.alarms().map(\.device) == [1, 2])
            #expect(try reopened.anchors() == [1: 500])
            #expect(try reopened.openCases().count == 2, "one case per alarm, not per copy")
            #expect(try reopened.supervision(device: 1) == [true])
        }
    }

    @Test func aBatchThatCannotBeWrittenThrowsAndKeepsNothing() throws {
        let path = temporaryJournal()
        let journal = try CenterJournal(path: path)
        // Another connection holds the write lock: the journal's writes are refused as busy.
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
        let other = try DatabaseQueue(path: path, configuration: unsafe)
        try other.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        #expect(throws: (any Error).self) {
            try journal.commit([
                .message(device: 1, message: .testAlarm(7), at: 1, opensCase: true),
                .message(device: 1, message: .testAlarm(8), at: 2, opensCase: true),
            ])
        }
        try other.inDatabase { db in try db.execute(sql: "ROLLBACK") }
        #expect(try journal.alarms().isEmpty)
    }

    /// On PostgreSQL another node holding a device (its transaction's lock) past the lock timeout makes the
    /// batch fail whole: nothing of it is kept, and the caller answers it `nak busy`.
    @Test func aPostgresBatchThatCannotHaveItsDeviceInTimeThrowsAndKeepsNothing() async throws {
        try await offThePool {
            let location = try JournalBackend.postgres.newLocation()
            let journal = try CenterJournal(location, busyTimeout: .milliseconds(300))
            let other = try CenterJournal(location)
            let holding = DispatchSemaphore(value: 0)
            let release = DispatchSemaphore(value: 0)
            let holder = Thread {
                _ = try? other.write(locking: [1]) { _ in
                    holding.signal()
                    release.wait()
                }
            }
            holder.start()
            holding.wait()
            #expect(throws: PostgresJournalError.self) {
                try journal.commit([
                    .message(device: 2, message: .testAlarm(6), at: 1, opensCase: true),
                    .message(device: 1, message: .testAlarm(7), at: 1, opensCase: true),
                ])
            }
            release.signal()
            #expect(try journal.alarms().isEmpty)
            // Once the device is free, the same batch goes through on the same journal.
            let outcomes = try journal.commit([.message(device: 1, message: .testAlarm(7), at: 2, opensCase: true)])
            #expect(outcomes.count == 1)
            #expect(try journal.alarms().map(\.alarmID) == [7])
        }
    }
}

/// Key files: what the centre accepts and what it says about what it refuses.
@Suite struct DeviceRegistryTests {
    @Test func aKeyFileListsDevicesUnderDevices() throws {
        let registry = try DeviceRegistry(keyFile: """
            # device id = root key
            [devices]
            1001 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
            """)
        #expect(registry.deviceCount == 1)
        #expect(registry.key(for: 1001)?.deviceID == 1001)
        #expect(registry.key(for: 1002) == nil)
    }

    @Test func aBadKeyFileIsRefusedWithoutQuotingTheKey() {
        #expect(throws: RegistryError.self) { try DeviceRegistry(keyFile: "[devices]\n7 = \"00112233\"") }
        do {
            _ = try DeviceRegistry(keyFile: "[devices]\nabc = \"0011\"")
            Issue.record("accepted a bad device id")
        } catch {
            #expect(error.description.contains("not a device id"))
        }
    }

    /// A key copied one digit short was "is not a key of 32 to 128 hex digits in double quotes", whatever was
    /// wrong: the registry now reads keys with the parser of every other key, and says what.
    @Test func aBadKeyInTheKeyFileIsSaidExactlyWhatIsWrongWithIt() {
        let short = String(repeating: "ab", count: 31) + "c"
        #expect(throws: RegistryError("the key file: devices.7: the key is not hex: odd number of hex digits (63): every byte is two digits, so one is missing or one too many")) {
            try DeviceRegistry(keyFile: "[devices]\n7 = \"\(short)\"")
        }
        #expect(throws: RegistryError("the key file: devices.7: a device key must be 16 to 64 bytes (32 to 128 hex digits), got 4 bytes")) {
            try DeviceRegistry(keyFile: "[devices]\n7 = \"00112233\"")
        }
        #expect(throws: RegistryError("the key file: devices.7: is not a key of 32 to 128 hex digits in double quotes")) {
            try DeviceRegistry(keyFile: "[devices]\n7 = 12")
        }
    }
}
