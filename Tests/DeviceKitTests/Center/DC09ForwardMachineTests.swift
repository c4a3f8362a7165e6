import Testing

@testable import DeviceKit

/// The gateway's sender as transcripts: one event a line, its actions written as a person reads them
/// (`send row 1 seq 0002 #00000001|Nri1/QA001`), answers made by the receiver's own rules (`DC09Receiving`).
@Suite struct DC09ForwardMachineTests {
    /// 2026-12-05 03:20:00 UTC, in ms.
    static let wall: UInt64 = 1_796_440_800_000
    static let primary = DC09ForwardTarget(host: "primary", port: 1)
    static let backup = DC09ForwardTarget(host: "backup", port: 2)
    static let parameters = DC09ForwardMachine.Parameters(
        window: 8, answerTimeout: .seconds(10), failuresBeforeFailover: 2, failbackAfter: .seconds(300),
        backoff: Backoff(base: .seconds(1), cap: .seconds(60)), bufferLimit: 100)

    static func row(_ id: Int64, device: UInt32, _ code: DC09EventCode) -> CenterJournal.ForwardRow {
        CenterJournal.ForwardRow(id: id, device: device, code: code)
    }

    /// The actions as lines; frames decoded (clear), timestamps as seconds after `wall`.
    static func lines(_ actions: [DC09ForwardMachine.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .loadRows(let after, let limit): return "load after \(after) limit \(limit)"
            case .connect(let receiver, let link): return "connect \(receiver) link \(link)"
            case .close(let link): return "close link \(link)"
            case .send(let bytes, let row, let link):
                guard let frame = try? DC09Frame.decode(bytes, key: { _ in nil }) else { return "send row \(row) unreadable" }
                let offset = (frame.timestamp?.secondsSince1970 ?? 0) - DC09Timestamp(milliseconds: wall).secondsSince1970
                return "send row \(row) seq \(frame.sequence) \(frame.data) t+\(offset) link \(link)"
            case .remove(let row): return "remove \(row)"
            case .scheduleTimer(let timer, let after):
                switch timer {
                case .answerTimeout(let row, _): return "answer timer row \(row) \(after)"
                case .reconnect: return "reconnect timer"
                case .failback: return "failback timer \(after)"
                case .retryNotUnderstood(let row, _): return "DUH retry timer row \(row) \(after)"
                }
            case .report(let report): return "report \(report)"
            }
        }
    }

    static func answer(_ id: DC09Frame.ID, _ sequence: String, account: String? = "00000001", time: DC09Timestamp? = nil) -> [UInt8] {
        var random = SplitMix64(seed: 1)
        return try! DC09Frame(id: id, sequence: sequence, receiver: "0", line: "0", account: account, timestamp: time)
            .encoded(random: &random)
    }

    /// The timer of the latest `scheduleTimer` matching, to fire it.
    static func timer(_ actions: [DC09ForwardMachine.Action], _ match: (DC09ForwardMachine.Timer) -> Bool) -> DC09ForwardMachine.Timer? {
        for case .scheduleTimer(let timer, _) in actions.reversed() where match(timer) { return timer }
        return nil
    }

    static func isAnswerTimer(_ row: Int64) -> (DC09ForwardMachine.Timer) -> Bool {
        { if case .answerTimeout(row, _) = $0 { true } else { false } }
    }

    /// Started, connected, with rows 1 and 2 of device 1 and row 3 of device 2 loaded.
    static func running(receivers: [DC09ForwardTarget] = [primary]) -> (DC09ForwardMachine, [DC09ForwardMachine.Action]) {
        var machine = DC09ForwardMachine(receivers: receivers, parameters: parameters, seed: 7)
        #expect(lines(machine.start()) == ["load after 0 limit 100", "connect 0 link 1"], "what a previous run left queued first")
        #expect(lines(machine.rowsQueued()) == [], "one load at a time")
        #expect(lines(machine.connected(link: 1, wall: wall)) == [])
        let loaded = machine.rowsLoaded(
            [row(1, device: 1, DC09EventCodes.alarm(.button)), row(2, device: 1, DC09EventCodes.cancel(.button)),
             row(3, device: 2, DC09EventCodes.event(.mainsLost)!)],
            limit: 100, wall: wall)
        return (machine, loaded)
    }

    @Test func eachDevicesOldestRowGoesFirstAndTheNextOnlyAfterItsACK() {
        var (machine, loaded) = Self.running()
        #expect(Self.lines(loaded) == [
            "send row 1 seq 0002 #00000001|Nri1/QA001 t+0 link 1", "answer timer row 1 10.0 seconds",
            "send row 3 seq 0004 #00000002|Nri1/AT000 t+0 link 1", "answer timer row 3 10.0 seconds",
            "load after 3 limit 97",
        ], "device 2's row goes beside device 1's first; device 1's cancel waits for its alarm's ACK; rows queued during the load are read next")
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0004", account: "00000002"), link: 1, wall: Self.wall)) == [
            "remove 3", "report acknowledged(receiver: 0, row: 3)",
        ], "device 2 is not held up by device 1")
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 1, wall: Self.wall + 1_000)) == [
            "remove 1", "report acknowledged(receiver: 0, row: 1)",
            "send row 2 seq 0003 #00000001|Nri1/OC001 t+1 link 1", "answer timer row 2 10.0 seconds",
        ])
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 1, wall: Self.wall)) == [
            "report unmatched(receiver: 0, DeviceKit.DC09Frame.ID.ack, sequence: \"0002\")",
        ], "a second ACK of a removed row removes nothing")
        #expect(machine.buffered == 1)
    }

    @Test func aSharedAccountNamesTheDeviceAsItsSIAUser() {
        var target = Self.primary
        target.account = "1234"
        var machine = DC09ForwardMachine(receivers: [target], parameters: Self.parameters, seed: 7)
        _ = machine.start()
        _ = machine.rowsQueued()
        _ = machine.connected(link: 1, wall: Self.wall)
        #expect(Self.lines(machine.rowsLoaded([Self.row(5, device: 77, DC09EventCodes.alarm(.fall))], limit: 100, wall: Self.wall)) == [
            "send row 5 seq 0006 #1234|Nid77/ri1/MA003 t+0 link 1", "answer timer row 5 10.0 seconds", "load after 5 limit 99",
        ])
    }

    @Test func aNAKsTimeCorrectsTheClockAndTheFrameGoesAgainAtOnceWithItsSequence() {
        var (machine, _) = Self.running()
        let receiverTime = DC09Timestamp(secondsSince1970: DC09Timestamp(milliseconds: Self.wall).secondsSince1970 + 120)
        // A NAK names no sequence (0000): it answers the oldest frame without an answer, row 1.
        #expect(Self.lines(machine.answer(Self.answer(.nak, "0000", account: nil, time: receiverTime), link: 1, wall: Self.wall)) == [
            "report refused(receiver: 0, row: Optional(1), clockOffset: 120)",
            "send row 1 seq 0002 #00000001|Nri1/QA001 t+120 link 1", "answer timer row 1 10.0 seconds",
        ])
        #expect(machine.clockOffsets == [120])
        // Then it answers row 3, which went before the correction, and row 3 goes again corrected too.
        #expect(Self.lines(machine.answer(Self.answer(.nak, "0000", account: nil, time: receiverTime), link: 1, wall: Self.wall)) == [
            "report refused(receiver: 0, row: Optional(3), clockOffset: 120)",
            "send row 3 seq 0004 #00000002|Nri1/AT000 t+120 link 1", "answer timer row 3 10.0 seconds",
        ])
    }

    @Test func aDUHIsReportedWithTheFrameAndTheRowKeptAndRetriedAtTheLongestBackoff() {
        var (machine, _) = Self.running()
        let duh = machine.answer(Self.answer(.duh, "0002"), link: 1, wall: Self.wall)
        #expect(Self.lines(duh) == [
            "report notUnderstood(receiver: 0, row: Optional(1), data: \"#00000001|Nri1/QA001\")",
            "DUH retry timer row 1 60.0 seconds",
        ])
        #expect(machine.buffered == 3, "kept: never dropped")
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0004", account: "00000002"), link: 1, wall: Self.wall)) == [
            "remove 3", "report acknowledged(receiver: 0, row: 3)",
        ], "no row of device 1 goes past its alarm, but device 2 goes on")
        let retry = Self.timer(duh) { if case .retryNotUnderstood = $0 { true } else { false } }!
        #expect(Self.lines(machine.timerFired(retry, wall: Self.wall + 60_000)) == [
            "send row 1 seq 0002 #00000001|Nri1/QA001 t+60 link 1", "answer timer row 1 10.0 seconds",
        ])
        #expect(Self.lines(machine.timerFired(retry, wall: Self.wall + 60_000)) == [], "a timer fires once")
    }

    @Test func noAnswerInTimeSendsTheFrameAgainWithTheSameSequence() {
        var (machine, loaded) = Self.running()
        let first = Self.timer(loaded, Self.isAnswerTimer(1))!
        let again = machine.timerFired(first, wall: Self.wall + 10_000)
        #expect(Self.lines(again) == [
            "report retransmitted(receiver: 0, row: 1)",
            "send row 1 seq 0002 #00000001|Nri1/QA001 t+10 link 1", "answer timer row 1 10.0 seconds",
        ])
        #expect(Self.lines(machine.timerFired(first, wall: Self.wall + 10_000)) == [], "the old timer is stale")
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 1, wall: Self.wall)).first == "remove 1")
    }

    @Test func aReceiverThatRefusesIsReportedDownOnceRetriedWithBackoffAndReportedUpAtItsFirstAnswer() {
        var machine = DC09ForwardMachine(
            receivers: [Self.primary], parameters: Self.parameters, seed: 7)
        _ = machine.start()
        let refused = machine.linkFailed(link: 1, reason: "connection refused")
        #expect(Self.lines(refused) == ["report receiverDown(receiver: 0, reason: \"connection refused\")", "reconnect timer"])
        let reconnect = Self.timer(refused) { if case .reconnect = $0 { true } else { false } }!
        #expect(Self.lines(machine.timerFired(reconnect, wall: Self.wall)) == ["connect 0 link 3"])
        let again = machine.linkFailed(link: 3, reason: "connection refused")
        #expect(Self.lines(again) == ["reconnect timer"], "down is reported once per outage")
        // The backoff grows with jitter: each delay within its window, at least the floor.
        for case .scheduleTimer(_, let after) in refused + again {
            #expect(after >= Self.parameters.backoff.floor && after <= Self.parameters.backoff.window(attempt: 1))
        }
        _ = machine.timerFired(Self.timer(again) { if case .reconnect = $0 { true } else { false } }!, wall: Self.wall)
        _ = machine.connected(link: 5, wall: Self.wall)
        let sent = machine.rowsLoaded([Self.row(1, device: 1, DC09EventCodes.alarm(.button))], limit: 100, wall: Self.wall)
        #expect(Self.lines(sent).first == "send row 1 seq 0002 #00000001|Nri1/QA001 t+0 link 5")
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 5, wall: Self.wall)) == [
            "report receiverUp(receiver: 0)", "remove 1", "report acknowledged(receiver: 0, row: 1)",
        ])
    }

    @Test func afterFailuresInARowTheBackupTakesOverAndThePrimaryIsTriedAgainLater() {
        var (machine, loaded) = Self.running(receivers: [Self.primary, Self.backup])
        // The primary answers nothing: the first timeout retransmits, the second (failuresBeforeFailover 2)
        // gives it up for the backup.
        _ = machine.timerFired(Self.timer(loaded, Self.isAnswerTimer(1))!, wall: Self.wall + 10_000)
        let over = machine.timerFired(Self.timer(loaded, Self.isAnswerTimer(3))!, wall: Self.wall + 10_000)
        #expect(Self.lines(over) == [
            "close link 1",
            "report receiverDown(receiver: 0, reason: \"no answer within 10.0 seconds\")",
            "report failover(from: 0, to: 1)", "failback timer 300.0 seconds", "connect 1 link 6",
        ])
        // On the backup, the same rows go again with the same sequences.
        #expect(Self.lines(machine.connected(link: 6, wall: Self.wall + 11_000)) == [
            "send row 1 seq 0002 #00000001|Nri1/QA001 t+11 link 6", "answer timer row 1 10.0 seconds",
            "send row 3 seq 0004 #00000002|Nri1/AT000 t+11 link 6", "answer timer row 3 10.0 seconds",
        ])
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 6, wall: Self.wall)) == [
            "remove 1", "report acknowledged(receiver: 1, row: 1)",
            "send row 2 seq 0003 #00000001|Nri1/OC001 t+0 link 6", "answer timer row 2 10.0 seconds",
        ])
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 1, wall: Self.wall)) == [], "the old link is gone")
        // Later the primary is tried again; what had no answer on the backup goes there.
        let failback = Self.timer(over) { if case .failback = $0 { true } else { false } }!
        #expect(Self.lines(machine.timerFired(failback, wall: Self.wall + 300_000)) == [
            "close link 6", "report failover(from: 1, to: 0)", "connect 0 link 10",
        ])
        #expect(machine.active == 0)
        #expect(Self.lines(machine.connected(link: 10, wall: Self.wall + 300_000)) == [
            "send row 2 seq 0003 #00000001|Nri1/OC001 t+300 link 10", "answer timer row 2 10.0 seconds",
            "send row 3 seq 0004 #00000002|Nri1/AT000 t+300 link 10", "answer timer row 3 10.0 seconds",
        ])
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0003"), link: 10, wall: Self.wall)) == [
            "report receiverUp(receiver: 0)", "remove 2", "report acknowledged(receiver: 0, row: 2)",
        ])
    }

    @Test func aRowWhoseSequenceIsInFlightWaitsAndTheWindowBoundsFramesInFlight() {
        var target = Self.primary
        target.window = 2  // the target's window=, over the sender's default of 1
        var machine = DC09ForwardMachine(
            receivers: [target], parameters: .init(answerTimeout: .seconds(10), backoff: Backoff(), bufferLimit: 100), seed: 7)
        _ = machine.start()
        _ = machine.rowsQueued()
        _ = machine.connected(link: 1, wall: Self.wall)
        let code = DC09EventCodes.alarm(.button)
        // Rows 1 and 10000 share sequence 0002: 10000 waits for 1; 10002 waits for the window of 2.
        let sent = machine.rowsLoaded(
            [Self.row(1, device: 1, code), Self.row(10_000, device: 2, code), Self.row(10_001, device: 3, code), Self.row(10_002, device: 4, code)],
            limit: 100, wall: Self.wall)
        #expect(Self.lines(sent).filter { $0.hasPrefix("send") } == [
            "send row 1 seq 0002 #00000001|Nri1/QA001 t+0 link 1", "send row 10001 seq 0003 #00000003|Nri1/QA001 t+0 link 1",
        ])
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 1, wall: Self.wall)).filter { $0.hasPrefix("send") } == [
            "send row 10000 seq 0002 #00000002|Nri1/QA001 t+0 link 1",
        ])
    }

    @Test func aFullBufferLoadsMoreOnlyAsItDrains() {
        var machine = DC09ForwardMachine(
            receivers: [Self.primary], parameters: .init(window: 1, answerTimeout: .seconds(10), bufferLimit: 2), seed: 7)
        #expect(Self.lines(machine.start()) == ["load after 0 limit 2", "connect 0 link 1"])
        _ = machine.connected(link: 1, wall: Self.wall)
        let code = DC09EventCodes.alarm(.button)
        let loaded = machine.rowsLoaded([Self.row(1, device: 1, code), Self.row(2, device: 2, code)], limit: 2, wall: Self.wall)
        #expect(!Self.lines(loaded).contains { $0.hasPrefix("load") }, "full: no load")
        #expect(Self.lines(machine.rowsQueued()) == [], "still full")
        #expect(Self.lines(machine.answer(Self.answer(.ack, "0002"), link: 1, wall: Self.wall)).contains("load after 2 limit 1"))
    }
}
