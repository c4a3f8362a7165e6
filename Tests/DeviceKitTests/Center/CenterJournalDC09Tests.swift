import Testing

@testable import DeviceKit

/// The journal's rule for DC-09 events: a retransmission (same identity within the window) is recorded once,
/// across a restart too; a later event that reuses a sequence number is a new message.
@Suite struct CenterJournalDC09Tests {
    static let t0: WireTime = 1_796_434_416_000
    static let window: UInt64 = 600_000

    static func event(_ event: DC09ReceivedEvent = .alarm(.button), sequence: String = "0001", data: String = "#1234|Nri1/QA001") -> CenterJournal.DC09Event {
        let frame = DC09Frame(id: .siaDCS, sequence: sequence, receiver: "0", line: "0", account: "1234", data: data)
        return CenterJournal.DC09Event(
            event: event, identity: DC09ReceivedEvent.identity(of: frame), account: "1234", sequence: sequence, occurredAt: t0)
    }

    static func record(_ journal: CenterJournal, _ event: CenterJournal.DC09Event, at: WireTime) throws -> (Message, CenterJournal.RecordOutcome) {
        guard case .dc09Recorded(let message, let outcome)? = try journal.commit([.dc09Event(device: 17, event, at: at, window: window)]).first else {
            throw HarnessError("a DC-09 write reports .dc09Recorded")
        }
        return (message, outcome)
    }

    @Test(arguments: JournalBackend.allCases) func aRetransmissionWithinTheWindowIsRecordedOnceAcrossARestart(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            var journal = try CenterJournal(location)
            let (first, outcome) = try Self.record(journal, Self.event(), at: Self.t0)
            #expect(outcome.isNew && outcome.openedCase != nil)
            #expect(first.reliableID.map { $0 & CenterJournal.dc09MessageIDBit != 0 } == true)
            // The centre stopped between the write and the ACK: the transmitter sends it again, later.
            try journal.close()
            journal = try CenterJournal(location)
            let (again, repeated) = try Self.record(journal, Self.event(), at: Self.t0 + 30_000)
            #expect(!repeated.isNew && repeated.openedCase == nil)
            #expect(again.reliableID == first.reliableID)
            #expect(try journal.alarms().count == 1)
            #expect(try journal.openCases().count == 1)
            try journal.close()
        }
    }

    @Test(arguments: JournalBackend.allCases) func aSequenceReusedAfterTheWindowOrWithOtherDataIsANewMessage(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            _ = try Self.record(journal, Self.event(), at: Self.t0)
            let (_, later) = try Self.record(journal, Self.event(), at: Self.t0 + Self.window + 1)
            #expect(later.isNew, "past the window, sequence 0001 with the same data is a new event (the sequence wrapped)")
            let (_, other) = try Self.record(
                journal, Self.event(.event(.mainsLost), data: "#1234|Nri1/AT000"), at: Self.t0 + Self.window + 2)
            #expect(other.isNew, "the same sequence with other data is another event")
            #expect(try journal.alarms().count == 2)
            #expect(try journal.dc09Messages(device: 17).map(\.sequence) == ["0001", "0001", "0001"])
            try journal.close()
        }
    }

    @Test(arguments: JournalBackend.allCases) func aCancelClosesTheDevicesOpenAlarmAndWithoutOneChangesNothing(_ backend: JournalBackend) async throws {
        try await offThePool {
            let journal = try backend.newJournal()
            let (nothing, early) = try Self.record(journal, Self.event(.cancel, sequence: "0001", data: "#1234|Nri1/OC001"), at: Self.t0)
            #expect(early.isNew && early.closedCase == nil)
            #expect(nothing == .alarmCancel(AlarmCancel(id: nothing.reliableID ?? 0, alarmID: 0, cancelledAt: Self.t0)))
            let (alarm, _) = try Self.record(journal, Self.event(sequence: "0002"), at: Self.t0 + 1)
            let (cancel, closing) = try Self.record(journal, Self.event(.cancel, sequence: "0003", data: "#1234|Nri1/OC001"), at: Self.t0 + 2)
            guard case .alarmCancel(let withdrawn) = cancel else {
                Issue.record("a cancel is recorded as alarmCancel")
                return
            }
            #expect(withdrawn.alarmID == alarm.reliableID)
            #expect(closing.closedCase?.0.alarmID == alarm.reliableID)
            #expect(try journal.openCases().isEmpty)
            try journal.close()
        }
    }
}
