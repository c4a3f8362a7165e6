import Crypto
import NIOCore
import Testing

@testable import DeviceKit

/// Issue 12: key epochs at the centre (finding 3), an authentic body this version cannot read (finding 4),
/// an id reused for other content (finding 5), an alarm with one bad field (finding 8). Transcripts.
@Suite struct CenterSessionEpochTests {
    typealias S = CenterSessionTests
    static let master = try! FleetMasterKey(bytes: Array(0x40...0x5f))
    static func key(_ epoch: UInt16) -> DeviceKey { DeviceKey(deviceID: S.device, master: master, epoch: epoch) }

    static func frame(_ message: Message, counter: UInt64, key: DeviceKey) -> SealedFrame {
        var buffer = ByteBuffer()
        try! SealedFrame.seal(message, direction: .up, deviceID: S.device, counter: counter, key: key.upKey, keyEpoch: key.epoch, into: &buffer)
        return try! SealedFrame(datagram: buffer)
    }

    static func start(epoch: UInt16) -> Message {
        .sessionStart(SessionStart(firmware: FirmwareVersion(1, 1, 0), capabilities: [.button], bootCount: 1, keyEpoch: epoch))
    }

    @Test func aReProvisionedDeviceOpensASessionUnderTheNextEpochAndTheOldKeyIsRetired() {
        // The device used epoch 0 up to anchor 900,000, lost its state directory, and came back at epoch 1.
        var machine = CenterSession(key: Self.key(0), parameters: .init(), storedAnchor: 900_000)
        let start = Self.frame(Self.start(epoch: 1), counter: 0, key: Self.key(1))
        // Without the later epoch's key the frame is stale: its bits name another epoch.
        #expect(machine.frameReceived(start, now: S.t0, mayOpenSession: true) == [.refuse(.stale(counter: 0))])
        #expect(machine.frameReceived(start, now: S.t0, mayOpenSession: true, laterEpochKey: Self.key(1)) == [.persistAnchor(0, epoch: 1)])
        let actions = machine.anchorPersisted(0, epoch: 1, salt: S.salt, now: S.t0)
        #expect(actions == [.sessionOpened(anchor: 0), .send(.init(anchor: 0, salt: S.salt, sequence: 0, message: S.accept()))])
        #expect(machine.key.epoch == 1)
        #expect(machine.storedAnchor == 0)
        // The new session's frames open; a frame of the retired epoch is stale, whatever its counter.
        #expect(machine.frameReceived(Self.frame(S.alarm, counter: 1, key: Self.key(1)), now: S.t0, mayOpenSession: true)
            == [.authenticated, .record(S.alarm, note: nil)])
        #expect(machine.frameReceived(Self.frame(S.alarm, counter: 950_000, key: Self.key(0)), now: S.t0, mayOpenSession: true)
            == [.refuse(.stale(counter: 950_000))])
    }

    /// At the session limit a re-provisioned device is turned away as any other, within its rate, under the key
    /// of the epoch it came with (the only one it can open the answer with), and nothing is kept pending.
    @Test func atTheSessionLimitAReProvisionedDeviceIsTurnedAwayUnderItsNewEpoch() {
        var machine = CenterSession(key: Self.key(0), parameters: .init(rate: 1, burst: 2), storedAnchor: 900_000)
        let start = { (counter: UInt64) in Self.frame(Self.start(epoch: 1), counter: counter, key: Self.key(1)) }
        #expect(machine.frameReceived(start(0), now: S.t0, mayOpenSession: false, laterEpochKey: Self.key(1))
            == [.drop(.tooManySessions), .turnAway(anchor: 0, epoch: 1)])
        #expect(machine.frameReceived(start(1), now: S.t0, mayOpenSession: false, laterEpochKey: Self.key(1))
            == [.drop(.tooManySessions), .turnAway(anchor: 1, epoch: 1)])
        #expect(machine.frameReceived(start(2), now: S.t0, mayOpenSession: false, laterEpochKey: Self.key(1)) == [.drop(.tooManySessions)])
        // Once there is room, it opens.
        var later = S.t0
        later.monotonic += .seconds(2)
        #expect(machine.frameReceived(start(3), now: later, mayOpenSession: true, laterEpochKey: Self.key(1)) == [.persistAnchor(3, epoch: 1)])
    }

    @Test func aLaterEpochFrameThatIsNotItsConfirmedSessionStartIsStale() {
        var machine = CenterSession(key: Self.key(0), parameters: .init(), storedAnchor: 65_536)
        // A heartbeat under epoch 1: not a sessionStart.
        let heartbeat = Self.frame(.heartbeat(Heartbeat(status: [], battery: 50)), counter: 5, key: Self.key(1))
        #expect(machine.frameReceived(heartbeat, now: S.t0, mayOpenSession: true, laterEpochKey: Self.key(1)) == [.refuse(.stale(counter: 5))])
        // A sessionStart under epoch 1 that claims epoch 9 in its body.
        let liar = Self.frame(Self.start(epoch: 9), counter: 6, key: Self.key(1))
        #expect(machine.frameReceived(liar, now: S.t0, mayOpenSession: true, laterEpochKey: Self.key(1)) == [.refuse(.stale(counter: 6))])
        // A sessionStart of the current epoch whose body names another epoch is invalid.
        let wrong = Self.frame(Self.start(epoch: 1), counter: 70_000, key: Self.key(0))
        guard case .refuse(.invalidField(_, "keyEpoch", _))? = machine.frameReceived(wrong, now: S.t0, mayOpenSession: true).first else {
            Issue.record("a sessionStart that names another epoch than its key's was not refused as invalid")
            return
        }
        #expect(!machine.holdsState)
    }

    @Test func anotherProcessThatMovedTheDeviceOnEndsThisSession() {
        var machine = S.open()
        #expect(machine.frameReceived(S.frame(S.start, counter: 80_000), now: S.t0, mayOpenSession: true) == [.persistAnchor(80_000, epoch: 0)])
        #expect(machine.anchorRefused(80_000, stored: 3, storedEpoch: 1) == [.refuse(.stale(counter: 80_000))])
        #expect(!machine.hasSession)
    }

    // MARK: Bodies this version cannot read

    /// alarm id 9, button, t0, `battery`, flags 0, then `extensions`, sealed in an up frame at `counter`.
    static func rawAlarm(battery: UInt8 = 87, extensions: [UInt8] = [], counter: UInt64) -> SealedFrame {
        var body = ByteBuffer()
        body.writeInteger(UInt8(0x03))
        body.writeInteger(UInt32(9))
        body.writeInteger(UInt8(1))
        body.writeUInt48(1_794_999_999_000)
        body.writeInteger(battery)
        body.writeInteger(UInt8(0))
        body.writeBytes(extensions)
        return rawFrame(Array(body.readableBytesView), counter: counter)
    }

    static func rawFrame(_ body: [UInt8], counter: UInt64) -> SealedFrame {
        var header = ByteBuffer()
        FrameHeader(direction: .up, length: 13 + body.count + 16, deviceID: S.device, counter: counter).write(to: &header)
        let headerBytes = Array(header.readableBytesView)
        let box = try! ChaChaPoly.seal(body, using: S.key.upKey, nonce: try! ChaChaPoly.Nonce(data: headerBytes[1...]), authenticating: headerBytes)
        return try! SealedFrame(datagram: ByteBuffer(bytes: headerBytes + box.ciphertext + box.tag))
    }

    @Test func aV11AlarmIsRecordedAndDispatchedThenAnsweredUnsupported() throws {
        var machine = S.open()
        let frame = Self.rawAlarm(extensions: [0x85, 0x01, 0x07], counter: 65_537)
        let actions = machine.frameReceived(frame, now: S.t0, mayOpenSession: true)
        #expect(actions.first == .authenticated)
        guard actions.count == 3, case .record(.alarm(let alarm), let note?) = actions[2] else {
            Issue.record("expected the alarm to be recorded, got \(actions)")
            return
        }
        #expect(alarm.id == 9 && alarm.kind == .button && alarm.triggeredAt == 1_794_999_999_000)
        #expect(note.contains("critical extension 0x85"))
        #expect(machine.recorded(9, now: S.t0) == [S.down(1, .nak(Nak(id: 9, reason: .unsupported, senderTime: S.t0.wall)))])
        // Its copy is a replay: the counter was used up.
        #expect(machine.frameReceived(frame, now: S.t0, mayOpenSession: true) == [.refuse(.replayed(counter: 65_537))])
    }

    @Test func anAlarmWithABatteryOutOfRangeIsRecordedWithTheFieldMarkedAndAcknowledged() throws {
        var machine = S.open()
        let actions = machine.frameReceived(Self.rawAlarm(battery: 150, counter: 65_537), now: S.t0, mayOpenSession: true)
        guard actions.count == 3, case .record(.alarm(let alarm), let note?) = actions[2] else {
            Issue.record("expected the alarm to be recorded, got \(actions)")
            return
        }
        #expect(alarm.battery == 255)
        #expect(note.contains("battery 150 is not a percentage"))
        #expect(machine.recorded(9, now: S.t0) == [S.down(1, .ack(Ack(id: 9)))])
    }

    @Test func anotherReliableMessageThatCannotBeReadIsAnsweredInvalid() {
        var machine = S.open()
        // An event whose kind byte is followed by too few bytes.
        let frame = Self.rawFrame([0x05, 0x00, 0x00, 0x00, 0x0B, 0x02], counter: 65_537)
        let actions = machine.frameReceived(frame, now: S.t0, mayOpenSession: true)
        #expect(actions.first == .authenticated)
        #expect(actions.last == S.down(1, .nak(Nak(id: 11, reason: .invalid, senderTime: S.t0.wall))))
    }

    @Test func aReusedIDOfAnotherKindOfMessageIsRefusedInvalid() {
        var machine = S.open()
        #expect(machine.recordConflicted(12, now: S.t0) == [S.down(1, .nak(Nak(id: 12, reason: .invalid, senderTime: S.t0.wall)))])
    }
}
