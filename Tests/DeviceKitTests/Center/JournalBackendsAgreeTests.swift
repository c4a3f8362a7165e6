import Testing

@testable import DeviceKit

/// On PostgreSQL a batch goes to the server in one round trip (`journal_apply`, PL/pgSQL), a second writing of
/// the rules `CenterJournal` states in SQL. The same seeded batches of writes — anchors rising and falling,
/// alarms sent again, ids reused for other content, cancels before and after their alarms, case updates
/// forward and back, deliveries, supervision on a stale anchor and of a device another node supervises, and
/// with `--forward` the DC-09 queue (events queued, cancels with their alarm's zone, rows acknowledged) —
/// written through it, through the statements on PostgreSQL and on SQLite must give the same outcomes, write by
/// write, and leave the same record.
@Suite struct JournalBackendsAgreeTests {
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func batches(seed: UInt64) -> [[CenterJournal.Write]] {
        var random = Seeded(state: seed)
        var batches: [[CenterJournal.Write]] = []
        var at: WireTime = 1_000
        for _ in 0..<40 {
            var batch: [CenterJournal.Write] = []
            for _ in 0..<Int.random(in: 1...24, using: &random) {
                at += 1
                let device = UInt32.random(in: 1...4, using: &random)
                let id = UInt32.random(in: 1...12, using: &random)
                switch Int.random(in: 0..<10, using: &random) {
                case 0:
                    batch.append(.anchor(device: device, anchor: UInt64.random(in: 0...40, using: &random) * 1_000, epoch: UInt16.random(in: 0...1, using: &random)))
                case 1, 2, 3:
                    let kind: AlarmKind = [.button, .fall, .test][Int.random(in: 0...2, using: &random)]
                    let alarm = Message.alarm(Alarm(id: id, kind: kind, triggeredAt: WireTime(id) * 10 + WireTime(kind == .fall ? 1 : 0), battery: 80, flags: []))
                    batch.append(.message(device: device, message: alarm, at: at, opensCase: kind != .test))
                case 4:
                    let cancel = Message.alarmCancel(AlarmCancel(id: id, alarmID: UInt32.random(in: 1...12, using: &random), cancelledAt: at))
                    batch.append(.message(device: device, message: cancel, at: at, opensCase: false))
                case 5:
                    let kinds: [DeviceEventKind] = [.mainsLost, .tamper, .pressDuringAlarm]
                    let event = Message.event(DeviceEvent(id: id, kind: kinds[Int.random(in: 0...2, using: &random)], at: 5, value: 0))
                    batch.append(.message(device: device, message: event, at: at, opensCase: false, note: Bool.random(using: &random) ? "a note" : nil))
                case 6:
                    batch.append(.message(device: device, message: .heartbeat(Heartbeat(status: [], battery: 50)), at: at, opensCase: false))
                case 7:
                    let state: CaseState = [.operatorEngaged, .helpDispatched, .closed, .received][Int.random(in: 0...3, using: &random)]
                    batch.append(.caseUpdate(CasePolicy.Case(id: Int64.random(in: 1...20, using: &random), device: device, alarmID: id, state: state), at: at))
                case 8:
                    if Bool.random(using: &random) {
                        batch.append(.caseUpdateDelivered(UInt32.random(in: 1...40, using: &random), at: at))
                    } else {
                        batch.append(.forwarded(rows: (0..<Int.random(in: 1...3, using: &random)).map { _ in Int64.random(in: 1...30, using: &random) }))
                    }
                default:
                    let anchor: UInt64? = Bool.random(using: &random) ? UInt64.random(in: 0...40, using: &random) * 1_000 : nil
                    batch.append(.supervision(device: device, online: Bool.random(using: &random), at: at, ifAnchor: anchor))
                }
            }
            batches.append(batch)
        }
        return batches
    }

    struct Record: Equatable {
        var anchors: [UInt32: CenterJournal.StoredAnchor]
        var alarms: [CenterJournal.RecordedAlarm]
        var openCases: [CasePolicy.Case]
        var undelivered: [CenterJournal.PendingUpdate]
        var supervision: [[Bool]]
        var presence: [String]
        var forwardQueue: [CenterJournal.ForwardRow]

        init(_ journal: CenterJournal) throws {
            anchors = try journal.storedAnchors()
            alarms = try journal.alarms()
            openCases = try journal.openCases()
            undelivered = try journal.undeliveredUpdates()
            supervision = try (1...4).map { try journal.supervision(device: $0) }
            forwardQueue = try journal.forwardQueue(after: 0, limit: 100_000).rows
            presence = try (1...4).map { device in try journal.presence(of: device).map { "\($0.node ?? "none") \($0.online)" } ?? "never" }
        }
    }

    /// With `forwards` (`--forward`), new case events are also queued for the DC-09 receivers, and receivers'
    /// acknowledgements take rows off the queue: the queues must be the same, row by row.
    @Test(arguments: [1, 2, 3] as [UInt64], [false, true])
    func theBatchFunctionTheStatementsAndSQLiteAgree(seed: UInt64, forwards: Bool) async throws {
        try await offThePool {
            let locations = [try JournalBackend.postgres.newLocation(), try JournalBackend.postgres.newLocation(), try JournalBackend.sqlite.newLocation()]
            let journals = try zip(locations, [true, false, true]).map { location, inOneRoundTrip in
                try CenterJournal(location, busyTimeout: .seconds(10), forwardsDC09: forwards, node: "a", batchesInOneRoundTrip: inOneRoundTrip)
            }
            // Node b supervises device 4 until a session of it opens at a (its anchor rises there).
            for location in locations {
                let b = try CenterJournal(location, node: "b")
                try b.recordSupervision(device: 4, online: true, at: 999)
                try b.close()
            }
            for (number, batch) in Self.batches(seed: seed).enumerated() {
                let outcomes = try journals.map { try $0.commit(batch) }
                #expect(outcomes[0] == outcomes[2], "batch \(number): journal_apply and SQLite")
                #expect(outcomes[1] == outcomes[2], "batch \(number): the statements on PostgreSQL and SQLite")
            }
            let records = try journals.map(Record.init)
            #expect(records[0] == records[2])
            #expect(records[1] == records[2])
            #expect(!records[2].alarms.isEmpty && !records[2].anchors.isEmpty, "the script wrote something")
            #expect(records[2].forwardQueue.isEmpty != forwards, "queued only while forwarding")
            if forwards { #expect(Set(records[2].forwardQueue.map(\.code.zone)).count > 1, "cancels and alarms of several zones") }
        }
    }
}
