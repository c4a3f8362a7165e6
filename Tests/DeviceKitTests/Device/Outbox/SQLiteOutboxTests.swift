import Foundation
import Testing

@testable import DeviceKit

/// A fresh directory under the system's temporary directory, removed by the caller's `defer`.
func makeTemporaryDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "devicekit-\(label)-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite struct SQLiteOutboxTests {
    let directory: String
    var path: String { directory + "/outbox.sqlite" }

    init() throws { directory = try makeTemporaryDirectory("outbox") }

    static func alarm(_ id: UInt32, at time: WireTime = 1_795_000_000_000) -> Message {
        .alarm(Alarm(id: id, kind: .button, triggeredAt: time, battery: 90, flags: [.clockSynchronised], pressCount: 1))
    }

    static func event(_ id: UInt32, at time: WireTime = 1_795_000_000_000) -> Message {
        .event(DeviceEvent(id: id, kind: .lowBattery, at: time, value: 15))
    }

    static func cancel(_ id: UInt32, alarm: UInt32) -> Message {
        .alarmCancel(AlarmCancel(id: id, alarmID: alarm, cancelledAt: 1_795_000_001_000))
    }

    @Test func alarmsAndCancelsComeBeforeEventsOldestFirstAmongAThousandItems() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try SQLiteOutbox(path: path)
        var alarms: [Message] = []
        var events: [Message] = []
        for i in 0..<1_200 {
            // Interleave so that storage order and priority order differ.
            switch i % 4 {
            case 0: alarms.append(try outbox.enqueue { Self.alarm($0, at: 1_795_000_000_000 + WireTime(i)) })
            case 1 where !alarms.isEmpty:
                let target = alarms.last!.reliableID!
                alarms.append(try outbox.enqueue { Self.cancel($0, alarm: target) })
            default: events.append(try outbox.enqueue { Self.event($0, at: 1_795_000_000_000 + WireTime(i)) })
            }
        }
        #expect(try outbox.count() == 1_200)
        let pending = try outbox.pending(limit: 2_000)
        #expect(pending == alarms + events)
        #expect(try outbox.pending(limit: 10) == Array(alarms.prefix(10)))
        #expect(try outbox.pending(limit: 0).isEmpty)
    }

    @Test func anAlarmStoredAfterEventsIsStillSentFirst() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try SQLiteOutbox(path: path)
        let event = try outbox.enqueue { Self.event($0) }
        let alarm = try outbox.enqueue { Self.alarm($0) }
        #expect(try outbox.pending(limit: 5) == [alarm, event])
    }

    @Test func removingAnAcknowledgedMessageLeavesTheOthers() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try SQLiteOutbox(path: path)
        let first = try outbox.enqueue { Self.alarm($0) }
        let second = try outbox.enqueue { Self.alarm($0) }
        let third = try outbox.enqueue { Self.event($0) }
        try outbox.remove(id: second.reliableID!)
        #expect(try outbox.pending(limit: 10) == [first, third])
        try outbox.remove(id: 999_999)  // unknown: not an error
        try outbox.remove(id: second.reliableID!)  // twice (a duplicated ack): not an error
        #expect(try outbox.count() == 2)
    }

    @Test func everythingStoredIsFoundAfterReopeningTheFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var stored: [Message] = []
        do {
            let outbox = try SQLiteOutbox(path: path)
            for i in 0..<50 {
                stored.append(try outbox.enqueue { i.isMultiple(of: 5) ? Self.alarm($0) : Self.event($0) })
            }
            try outbox.remove(id: stored[1].reliableID!)
            stored.remove(at: 1)
        }
        let reopened = try SQLiteOutbox(path: path)
        #expect(try reopened.count() == 49)
        let sorted = stored.filter { $0.outboxPriority == 0 } + stored.filter { $0.outboxPriority == 1 }
        #expect(try reopened.pending(limit: 100) == sorted)
    }

    @Test func idsStartAtOneAndKeepIncreasingAcrossReopens() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var ids: [UInt32] = []
        for _ in 0..<3 {
            let outbox = try SQLiteOutbox(path: path)
            for _ in 0..<5 { ids.append(try outbox.enqueue { Self.alarm($0) }.reliableID!) }
            // Acknowledging everything must not let an id come back.
            for id in ids { try outbox.remove(id: id) }
        }
        #expect(ids == Array(1...15))
        #expect(try SQLiteOutbox(path: path).nextMessageID() == 16)
    }

    @Test func theBootCountIncrementsAcrossReopens() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try SQLiteOutbox(path: path).incrementBootCount() == 1)
        #expect(try SQLiteOutbox(path: path).incrementBootCount() == 2)
        let outbox = try SQLiteOutbox(path: path)
        #expect(try outbox.incrementBootCount() == 3)
        #expect(try outbox.incrementBootCount() == 4)
    }

    @Test func theDatabaseIsInWriteAheadLogModeWithFullSync() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try SQLiteOutbox(path: path)
        _ = try outbox.enqueue { Self.alarm($0) }
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        #expect(try outbox.pragma("journal_mode") == "wal")
        #expect(try outbox.pragma("synchronous") == "2")  // FULL
    }

    @Test func aMessageWhoseIDIsNotTheDrawnOneIsRefusedAndNothingIsStored() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try SQLiteOutbox(path: path)
        #expect(throws: OutboxError.self) { try outbox.enqueue { Self.alarm($0 + 7) } }
        #expect(throws: OutboxError.self) { try outbox.enqueue { _ in .ack(Ack(id: 1)) } }
        let error = #expect(throws: OutboxError.self) {
            try outbox.enqueue { Self.alarm($0, at: WireTime(1) << 50) }  // does not fit 48 bits
        }
        #expect(error?.description.contains("cannot be encoded") == true)
        #expect(try outbox.count() == 0)
        #expect(try outbox.enqueue { Self.alarm($0) }.reliableID == 1, "a refused enqueue hands out no id")
    }

    @Test func aFileThatIsNotADatabaseGivesAnOutboxErrorNamingThePath() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(repeating: 0x5a, count: 4096).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: OutboxError.self) { try SQLiteOutbox(path: path) }
        #expect(error?.description.hasPrefix("outbox \(path): cannot open") == true)
        #expect(error?.description.contains("SQLite error 26") == true, "SQLITE_NOTADB: \(String(describing: error))")
    }

    @Test func aPathThatCannotBeCreatedGivesAnOutboxError() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = directory + "/no-such-directory/outbox.sqlite"
        let error = #expect(throws: OutboxError.self) { try SQLiteOutbox(path: missing) }
        #expect(error?.description.contains(missing) == true)
        // A directory where the file should be: fails even for root.
        let error2 = #expect(throws: OutboxError.self) { try SQLiteOutbox(path: directory) }
        #expect(error2?.description.contains(directory) == true)
    }

    @Test func errorsNeverCarryTheMessageContent() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let outbox = try SQLiteOutbox(path: path)
        let error = #expect(throws: OutboxError.self) {
            try outbox.enqueue { .diagnosticsReport(DiagnosticsReport(id: $0, requestID: 1, note: String(repeating: "Mrs Jones ", count: 40))) }
        }
        #expect(error?.description.contains("Jones") == false)
    }

    /// A process killed with -9 never closes its connection: the next process opens the file beside the
    /// dead one's connection and must find every committed message and the id counter where it was.
    @Test func committedMessagesSurviveAConnectionThatIsNeverClosed() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let crashed = try SQLiteOutbox(path: path)
        _ = try crashed.incrementBootCount()
        var stored: [Message] = []
        for _ in 0..<20 { stored.append(try crashed.enqueue { Self.alarm($0) }) }

        try withExtendedLifetime(crashed) {
            let restarted = try SQLiteOutbox(path: path)
            #expect(try restarted.pending(limit: 100) == stored)
            #expect(try restarted.incrementBootCount() == 2)
            #expect(try restarted.enqueue { Self.alarm($0) }.reliableID == 21)
        }
    }

    /// What a power cut leaves: the database and its write-ahead log as they are on storage while the
    /// writer is still open (never checkpointed, never closed). Opening that copy alone must recover
    /// every committed message from the log.
    @Test func committedMessagesAreRecoveredFromTheWriteAheadLogAlone() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let running = try SQLiteOutbox(path: path)
        var stored: [Message] = []
        for i in 0..<30 { stored.append(try running.enqueue { i.isMultiple(of: 3) ? Self.alarm($0) : Self.event($0) }) }
        try running.remove(id: stored[0].reliableID!)
        stored.removeFirst()

        let image = try makeTemporaryDirectory("outbox-image")
        defer { try? FileManager.default.removeItem(atPath: image) }
        try withExtendedLifetime(running) {
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
            for suffix in ["", "-wal"] {
                try FileManager.default.copyItem(atPath: path + suffix, toPath: image + "/outbox.sqlite" + suffix)
            }
        }
        let recovered = try SQLiteOutbox(path: image + "/outbox.sqlite")
        let sorted = stored.filter { $0.outboxPriority == 0 } + stored.filter { $0.outboxPriority == 1 }
        #expect(try recovered.pending(limit: 100) == sorted)
        #expect(try recovered.nextMessageID() == 31)
    }

    @Test func twoOpenOutboxesOnOneFileNeverHandOutTheSameID() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let a = try SQLiteOutbox(path: path)
        let b = try SQLiteOutbox(path: path)
        let ids = try await withThrowingTaskGroup(of: [UInt32].self) { group in
            for outbox in [a, b] {
                group.addTask {
                    try (0..<100).map { _ in try outbox.enqueue { Self.event($0) }.reliableID! }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(ids.sorted() == Array(1...200))
    }
}
