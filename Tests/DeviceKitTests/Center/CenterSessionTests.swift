import NIOCore
import Testing

@testable import DeviceKit

/// The centre's per-device machine, as transcripts: one event, the actions it asks for (protocol.md §3.4, §4.7).
@Suite struct CenterSessionTests {
    static let device: UInt32 = 1
    static let key = try! DeviceKey(deviceID: device, rootKey: Array(0x00...0x1f))
    static let t0 = CenterInstant(wall: 1_795_000_000_000, monotonic: .seconds(100))
    static let start = Message.sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 3), capabilities: [.button], bootCount: 17))
    static let alarm = Message.alarm(Alarm(id: 7, kind: .button, triggeredAt: 1_794_999_999_000, battery: 87, flags: [.clockSynchronised]))
    static let salt: UInt32 = 0x5a17_c0de

    static func frame(_ message: Message, counter: UInt64, key: DeviceKey = key) -> SealedFrame {
        var buffer = ByteBuffer()
        try! SealedFrame.seal(message, direction: .up, deviceID: device, counter: counter, key: key.upKey, into: &buffer)
        return try! SealedFrame(datagram: buffer)
    }

    static func down(_ sequence: UInt32, _ message: Message, anchor: UInt64 = 65_536) -> CenterSession.Action {
        .send(CenterSession.DownFrame(anchor: anchor, salt: salt, sequence: sequence, message: message))
    }

    static func accept(at now: CenterInstant = t0) -> Message {
        .sessionAccept(SessionAccept(centreTime: now.wall, heartbeatIntervalSeconds: 30))
    }

    /// A machine with an open session anchored at 65536 (sessionAccept sent as sequence 0).
    /// The wait in seconds of the `scheduleRetransmit` for `id` and `attempt` among `actions`.
    static func retransmitWait(_ actions: [CenterSession.Action], id: UInt32, attempt: Int) -> Double? {
        for case .scheduleRetransmit(id, attempt, let after) in actions { return Double(after.milliseconds) / 1000 }
        return nil
    }

    static func open() -> CenterSession {
        var machine = CenterSession(key: key, parameters: .init(), storedAnchor: nil)
        _ = machine.frameReceived(frame(start, counter: 65_536), now: t0, mayOpenSession: true)
        _ = machine.anchorPersisted(65_536, salt: salt, now: t0)
        return machine
    }

    @Test func sessionStartIsAnsweredOnlyAfterItsAnchorIsStored() {
        var machine = CenterSession(key: Self.key, parameters: .init(), storedAnchor: 1_000)
        // Not yet proof of life: only the journal can tell a fresh anchor from a replay (with processes sharing it).
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 65_536), now: Self.t0, mayOpenSession: true) == [.persistAnchor(65_536, epoch: 0)])
        #expect(!machine.hasSession)
        #expect(machine.anchorPersisted(65_536, salt: Self.salt, now: Self.t0) == [.sessionOpened(anchor: 65_536), Self.down(0, Self.accept())])
        #expect(machine.anchor == 65_536)
    }

    @Test func sessionStartWithANonIncreasingAnchorIsRefusedAsStale() {
        var machine = CenterSession(key: Self.key, parameters: .init(), storedAnchor: 65_536)
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 65_536), now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 65_536))])
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 100), now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 100))])
        #expect(!machine.holdsState)
    }

    @Test func aSessionStartTheJournalFoundNotFreshIsRefusedAndItsFloorRaised() {
        // Another centre process stored anchor 70,000 of this device; this one knew nothing of it.
        var machine = CenterSession(key: Self.key, parameters: .init(), storedAnchor: nil)
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 65_536), now: Self.t0, mayOpenSession: true) == [.persistAnchor(65_536, epoch: 0)])
        #expect(machine.anchorRefused(65_536, stored: 70_000) == [.refuse(.stale(counter: 65_536))])
        #expect(!machine.hasSession && !machine.holdsState)
        #expect(machine.storedAnchor == 70_000)
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 69_999), now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 69_999))])
    }

    @Test func aSessionSupersededInAnotherProcessEndsWhenTheJournalSaysSo() {
        var machine = Self.open()
        // A replay of the newer session's start, which the device sent to another process.
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 80_000), now: Self.t0, mayOpenSession: true) == [.persistAnchor(80_000, epoch: 0)])
        #expect(machine.anchorRefused(80_000, stored: 80_000) == [.refuse(.stale(counter: 80_000))])
        #expect(!machine.hasSession)
    }

    @Test func aFirstSessionMayStartAtCounterZero() {
        var machine = CenterSession(key: Self.key, parameters: .init(), storedAnchor: nil)
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 0), now: Self.t0, mayOpenSession: true) == [.persistAnchor(0, epoch: 0)])
    }

    @Test func anAuthenticFrameWithoutASessionIsStaleAndNoProofOfLife() {
        // After a centre restart, or a recorded heartbeat replayed: above the stored anchor, authentic, and of
        // no current session. The device re-handshakes; a replayer gains nothing (protocol.md §3.4).
        var machine = CenterSession(key: Self.key, parameters: .init(), storedAnchor: 65_536)
        #expect(machine.frameReceived(Self.frame(Self.alarm, counter: 65_540), now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 65_540))])
        #expect(machine.frameReceived(Self.frame(.testHeartbeat, counter: 65_541), now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 65_541))])
        #expect(!machine.holdsState)
    }

    @Test func aForgedFrameIsRefusedAndNothingIsRecorded() throws {
        var machine = Self.open()
        let stranger = try DeviceKey(deviceID: Self.device, rootKey: Array(repeating: 0x42, count: 32))
        #expect(machine.frameReceived(Self.frame(Self.alarm, counter: 65_537, key: stranger), now: Self.t0, mayOpenSession: true) == [.refuse(.authenticationFailed)])
    }

    @Test func anAlarmIsAcknowledgedOnlyAfterItIsRecorded() {
        var machine = Self.open()
        #expect(machine.frameReceived(Self.frame(Self.alarm, counter: 65_537), now: Self.t0, mayOpenSession: true) == [.authenticated, .record(Self.alarm, note: nil)])
        #expect(machine.recorded(7, now: Self.t0) == [Self.down(1, .ack(Ack(id: 7)))])
    }

    @Test func aReplayedFrameIsRefusedAndAStaleOneToo() {
        var machine = Self.open()
        let alarm = Self.frame(Self.alarm, counter: 65_537)
        _ = machine.frameReceived(alarm, now: Self.t0, mayOpenSession: true)
        #expect(machine.frameReceived(alarm, now: Self.t0, mayOpenSession: true) == [.refuse(.replayed(counter: 65_537))])
        #expect(machine.frameReceived(Self.frame(Self.alarm, counter: 65_000), now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 65_000))])
    }

    @Test func aFailedRecordIsAnsweredBusy() {
        var machine = Self.open()
        _ = machine.frameReceived(Self.frame(Self.alarm, counter: 65_537), now: Self.t0, mayOpenSession: true)
        #expect(machine.recordFailed(7, now: Self.t0) == [Self.down(1, .nak(Nak(id: 7, reason: .busy, senderTime: Self.t0.wall)))])
    }

    @Test func heartbeatIsAnsweredWithItsCounterAndTheCentreTime() {
        var machine = Self.open()
        let heartbeat = Message.heartbeat(Heartbeat(status: [.mainsPresent], battery: 90))
        #expect(machine.frameReceived(Self.frame(heartbeat, counter: 65_540), now: Self.t0, mayOpenSession: true) == [
            .authenticated, Self.down(1, .heartbeatAck(HeartbeatAck(echoedCounter: 65_540, centreTime: Self.t0.wall))),
        ])
    }

    @Test func whatTheDeviceSaysOfItselfIsKeptForTheOperators() throws {
        var machine = Self.open()
        #expect(machine.report.firmware == FirmwareVersion(1, 0, 3))
        #expect(machine.report.status == nil && machine.report.battery == nil)
        let heartbeat = Message.heartbeat(Heartbeat(status: [.mainsPresent, .buttonPresent], battery: 64))
        _ = machine.frameReceived(Self.frame(heartbeat, counter: 65_540), now: Self.t0, mayOpenSession: true)
        #expect(machine.report.status == [.mainsPresent, .buttonPresent] && machine.report.battery == 64)
        #expect(machine.report.lastHeard == Self.t0.wall)
        let lost = Message.event(DeviceEvent(id: 9, kind: .mainsLost, at: 1, value: 0))
        _ = machine.frameReceived(Self.frame(lost, counter: 65_541), now: Self.t0, mayOpenSession: true)
        #expect(machine.report.status == [.buttonPresent])
        let alarm = Message.alarm(Alarm(id: 10, kind: .button, triggeredAt: 1, battery: 255, flags: []))
        _ = machine.frameReceived(Self.frame(alarm, counter: 65_542), now: Self.t0, mayOpenSession: true)
        #expect(machine.report.status == [.buttonPresent, .mainsPresent] && machine.report.battery == 64, "an unknown battery keeps the last known")
        let stranger = try DeviceKey(deviceID: Self.device, rootKey: Array(repeating: 0x42, count: 32))
        let empty = Message.heartbeat(Heartbeat(status: [], battery: 1))
        _ = machine.frameReceived(Self.frame(empty, counter: 65_543, key: stranger), now: CenterInstant(wall: 99, monotonic: .zero), mayOpenSession: true)
        #expect(machine.report.lastHeard == Self.t0.wall && machine.report.battery == 64, "a forged frame says nothing")
    }

    @Test func overTheRateLimitReliableMessagesAreNakedAndOthersDropped() {
        var machine = CenterSession(key: Self.key, parameters: .init(rate: 1, burst: 2), storedAnchor: nil)
        _ = machine.frameReceived(Self.frame(Self.start, counter: 1), now: Self.t0, mayOpenSession: true)  // token 1
        _ = machine.anchorPersisted(1, salt: Self.salt, now: Self.t0)
        let heartbeat = Message.heartbeat(Heartbeat(status: [], battery: 90))
        _ = machine.frameReceived(Self.frame(heartbeat, counter: 2), now: Self.t0, mayOpenSession: true)  // token 2
        #expect(machine.frameReceived(Self.frame(heartbeat, counter: 3), now: Self.t0, mayOpenSession: true) == [.authenticated, .drop(.rateLimited)])
        #expect(machine.frameReceived(Self.frame(Self.alarm, counter: 4), now: Self.t0, mayOpenSession: true) == [
            .authenticated, .drop(.rateLimited),
            Self.down(2, .nak(Nak(id: 7, reason: .rateLimited, senderTime: Self.t0.wall)), anchor: 1),
        ])
        var later = Self.t0
        later.monotonic += .seconds(1)
        #expect(machine.frameReceived(Self.frame(Self.alarm, counter: 5), now: later, mayOpenSession: true) == [.authenticated, .record(Self.alarm, note: nil)])
    }

    @Test func aSessionStartOverTheRateLimitIsDroppedAndNoProofOfLife() {
        var machine = CenterSession(key: Self.key, parameters: .init(rate: 1, burst: 1), storedAnchor: nil)
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 1), now: Self.t0, mayOpenSession: true) == [.persistAnchor(1, epoch: 0)])
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 2), now: Self.t0, mayOpenSession: true) == [.drop(.rateLimited)])
    }

    /// Full, the centre answers an authentic session start busy (nothing stored), within the device's rate:
    /// replays of one cannot make it answer faster than that.
    @Test func atTheSessionLimitANewDeviceIsTurnedAwayWithinItsRate() {
        var machine = CenterSession(key: Self.key, parameters: .init(rate: 1, burst: 2), storedAnchor: nil)
        #expect(
            machine.frameReceived(Self.frame(Self.start, counter: 1), now: Self.t0, mayOpenSession: false) == [
                .drop(.tooManySessions), .turnAway(anchor: 1, epoch: 0),
            ])
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 2), now: Self.t0, mayOpenSession: false) == [.drop(.tooManySessions), .turnAway(anchor: 2, epoch: 0)])
        #expect(machine.frameReceived(Self.frame(Self.start, counter: 3), now: Self.t0, mayOpenSession: false) == [.drop(.tooManySessions)])
        #expect(!machine.hasSession)
        // A forged one is refused as ever, never answered.
        let forged = Self.frame(Self.start, counter: 4, key: try! DeviceKey(deviceID: Self.device, rootKey: Array(repeating: 9, count: 32)))
        #expect(machine.frameReceived(forged, now: Self.t0, mayOpenSession: false) == [.refuse(.authenticationFailed)])
    }

    @Test func caseUpdatesAreRetransmittedWithBackoffUntilAcknowledged() {
        var machine = Self.open()
        let update = Message.caseUpdate(CaseUpdate(id: 1, alarmID: 7, state: .received, at: Self.t0.wall))
        let first = machine.deliver(update)
        #expect(first.first == Self.down(1, update))
        #expect(Self.retransmitWait(first, id: 1, attempt: 1).map { (0.8...1.2).contains($0) } == true, "1 s ±20 %")
        let second = machine.retransmitTimerFired(id: 1, attempt: 1)
        #expect(second.first == Self.down(2, update))
        #expect(Self.retransmitWait(second, id: 1, attempt: 2).map { (1.6...2.4).contains($0) } == true, "doubled, ±20 %")
        #expect(machine.retransmitTimerFired(id: 1, attempt: 1) == [], "a late timer of an earlier attempt does nothing")
        #expect(machine.frameReceived(Self.frame(.ack(Ack(id: 1)), counter: 65_537), now: Self.t0, mayOpenSession: true) == [.authenticated, .delivered(id: 1)])
        #expect(machine.retransmitTimerFired(id: 1, attempt: 2) == [])
    }

    @Test func undeliveredUpdatesWaitForTheNextSession() {
        var machine = CenterSession(key: Self.key, parameters: .init(), storedAnchor: 10)
        let update = Message.caseUpdate(CaseUpdate(id: 3, alarmID: 7, state: .closed, at: Self.t0.wall))
        #expect(machine.deliver(update) == [])
        #expect(machine.holdsState)
        _ = machine.frameReceived(Self.frame(Self.start, counter: 65_536), now: Self.t0, mayOpenSession: true)
        let opened = machine.anchorPersisted(65_536, salt: Self.salt, now: Self.t0)
        #expect(Array(opened.prefix(3)) == [.sessionOpened(anchor: 65_536), Self.down(0, Self.accept()), Self.down(1, update)])
        #expect(opened.count == 4 && Self.retransmitWait(opened, id: 3, attempt: 1) != nil)
    }

    @Test func aLaterSessionStartSupersedesOneBeingStored() {
        var machine = CenterSession(key: Self.key, parameters: .init(), storedAnchor: nil)
        _ = machine.frameReceived(Self.frame(Self.start, counter: 100), now: Self.t0, mayOpenSession: true)
        _ = machine.frameReceived(Self.frame(Self.start, counter: 200), now: Self.t0, mayOpenSession: true)
        #expect(machine.anchorPersisted(100, salt: Self.salt, now: Self.t0) == [])
        #expect(machine.anchorPersisted(200, salt: Self.salt, now: Self.t0).first == .sessionOpened(anchor: 200))
    }

    @Test func aSilentDeviceLosesItsSession() {
        var machine = Self.open()
        let heartbeat = Self.frame(.testHeartbeat, counter: 65_537)
        _ = machine.frameReceived(heartbeat, now: Self.t0, mayOpenSession: true)
        machine.supervisionLapsed()
        #expect(!machine.hasSession)
        // Its frames, replayed or not yet seen, no longer count.
        #expect(machine.frameReceived(Self.frame(Self.alarm, counter: 65_538), now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 65_538))])
        #expect(machine.frameReceived(heartbeat, now: Self.t0, mayOpenSession: true) == [.refuse(.stale(counter: 65_537))])
    }
}
