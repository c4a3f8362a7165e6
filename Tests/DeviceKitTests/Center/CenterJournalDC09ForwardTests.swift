import Testing

@testable import DeviceKit

/// The gateway's queue in the journal (`--forward`): filled when a case event is recorded as new, in the same
/// write, emptied only by `Write.forwarded`, and its ids never reused (a row's DC-09 sequence comes from its id).
@Suite struct CenterJournalDC09ForwardTests {
    static func codes(_ journal: CenterJournal) throws -> [String] {
        try journal.forwardQueue(after: 0, limit: 100).rows.map { "\($0.id) d\($0.device) \($0.code.sia)\($0.code.zone)" }
    }

    @Test(arguments: JournalBackend.allCases) func newCaseEventsAreQueuedWithTheirCodesAndRetransmissionsAreNot(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal(forwardsDC09: true)
            _ = try journal.commit([
                .message(device: 1, message: .testAlarm(7, kind: .fall), at: 1, opensCase: true),
                .message(device: 1, message: .testAlarm(7, kind: .fall), at: 2, opensCase: true),  // sent again
                .message(device: 2, message: .event(DeviceEvent(id: 1, kind: .lowBattery, at: 3, value: 9)), at: 3, opensCase: false),
                .message(device: 2, message: .event(DeviceEvent(id: 2, kind: .pressDuringAlarm, at: 4, value: 1)), at: 4, opensCase: false),
                .message(device: 1, message: .alarmCancel(AlarmCancel(id: 8, alarmID: 7, cancelledAt: 5)), at: 5, opensCase: false),
                .message(device: 1, message: .testAlarm(9, kind: .test), at: 6, opensCase: false),
            ])
            #expect(try Self.codes(journal) == ["1 d1 MA3", "2 d2 YT0", "3 d1 OC3", "4 d1 RP0"],
                    "the fall once; the battery event; not a press during an alarm; the cancel in the fall's zone; the test alarm")
            #expect(try journal.forwardQueueDepth() == 4)
        }
    }

    @Test(arguments: JournalBackend.allCases) func aRowLeavesOnlyWhenForwardedAndItsIdIsNeverReused(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            var journal = try CenterJournal(location, forwardsDC09: true)
            _ = try journal.record(device: 1, message: .testAlarm(1), at: 1)
            _ = try journal.record(device: 1, message: .testAlarm(2), at: 2)
            _ = try journal.commit([.forwarded(rows: [2])])
            #expect(try Self.codes(journal) == ["1 d1 QA1"])
            try journal.close()
            journal = try CenterJournal(location, forwardsDC09: true)  // a restart
            _ = try journal.record(device: 1, message: .testAlarm(3), at: 3)
            #expect(try Self.codes(journal) == ["1 d1 QA1", "3 d1 QA1"], "row 2 was acknowledged: its id (and sequence) stays used")
            #expect(try journal.forwardQueue(after: 1, limit: 100).rows.map(\.id) == [3])
        }
    }

    @Test(arguments: JournalBackend.allCases) func withoutForwardingNothingIsQueued(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            _ = try journal.record(device: 1, message: .testAlarm(1), at: 1)
            #expect(try journal.forwardQueueDepth() == 0)
        }
    }

    @Test(arguments: JournalBackend.allCases) func anAlarmUnderAReusedIdIsQueuedAsTheNewAlarmItIs(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal(forwardsDC09: true)
            _ = try journal.record(device: 1, message: .testAlarm(1, kind: .button), at: 1)
            // The device's ids restarted: id 1 again, other content; a new call for help.
            #expect(try journal.record(device: 1, message: .testAlarm(1, kind: .pendant), at: 2).idReused == 1)
            #expect(try Self.codes(journal) == ["1 d1 QA1", "2 d1 QA2"])
        }
    }
}
