import NIOCore
import Testing

@testable import DeviceKit

/// A receiving session, frame by frame: right device, right direction, authentic, fresh (protocol.md §3, §6).
@Suite struct FrameOpenerTests {
    typealias F = ProtocolFixtures

    enum Outcome: Equatable, CustomStringConvertible {
        case accepted(Message)
        /// Refused by `SealedFrame(datagram:)`, before the opener saw it.
        case unparsable(ProtocolError)
        case refused(ProtocolError)

        var description: String {
            switch self {
            case .accepted(let m): "accepted \(m.kind.name)"
            case .unparsable(let e): "unparsable: \(e)"
            case .refused(let e): "refused: \(e)"
            }
        }
    }

    /// A receiver's session, as the centre (up) or the device (down) holds it.
    struct Session {
        var opener: FrameOpener

        /// The centre's side of the session anchored at `F.anchor`.
        static func centre(deviceID: UInt32 = F.deviceID) -> Session {
            Session(opener: FrameOpener(deviceID: deviceID, direction: .up, key: F.key(deviceID).upKey, floor: F.anchor))
        }

        /// The device's side: down frames under `down(anchor)`, any salt (floor 0) until it has seen one.
        static func device(anchor: UInt64 = F.anchor, floor: UInt64 = 0) -> Session {
            Session(opener: FrameOpener(deviceID: F.deviceID, direction: .down, key: F.key().downKey(anchor: anchor), floor: floor))
        }

        mutating func receive(_ datagram: [UInt8]) -> Outcome {
            let frame: SealedFrame
            do { frame = try F.datagram(datagram) } catch { return .unparsable(error) }
            do { return .accepted(try opener.open(frame)) } catch { return .refused(error) }
        }

        var refused: [ProtocolError.Category: Int] { opener.refused }
    }

    static let alarm = F.minimal[2]
    static let heartbeat = F.minimal[1]
    static let ack = F.minimal[11]
    static func up(_ message: Message = alarm, _ counter: UInt64, deviceID: UInt32 = F.deviceID) throws -> [UInt8] {
        try F.seal(message, direction: .up, counter: counter, deviceID: deviceID)
    }
    static func down(_ message: Message = ack, _ sequence: UInt64, anchor: UInt64 = F.anchor) throws -> [UInt8] {
        try F.seal(message, direction: .down, counter: F.downCounter(sequence), anchor: anchor)
    }

    // MARK: A whole transcript

    @Test func aCentreSessionAcceptsGenuineFramesOnceAndCountsEveryRefusalByWhy() throws {
        let a = F.anchor
        var forged = try Self.up(Self.alarm, a + 3)
        forged[forged.count - 1] ^= 0x80
        let otherKey = try F.seal(Self.alarm, direction: .up, counter: a + 4, key: F.key(root: Array(repeating: 7, count: 32)))
        let transcript: [([UInt8], Outcome)] = [
            (try Self.up(Self.heartbeat, a + 1), .accepted(Self.heartbeat)),
            (try Self.up(Self.alarm, a + 2), .accepted(Self.alarm)),
            (try Self.up(Self.alarm, a + 2), .refused(.replayed(counter: a + 2))),  // a retransmission must use a new counter
            (forged, .refused(.authenticationFailed)),
            (otherKey, .refused(.authenticationFailed)),
            (try Self.up(Self.alarm, a), .refused(.stale(counter: a))),  // the anchor itself
            (try Self.up(Self.alarm, a - 1), .refused(.stale(counter: a - 1))),  // an older session
            (try Self.up(Self.alarm, a + 3), .accepted(Self.alarm)),  // the forgery did not burn counter a + 3
            (try Self.up(Self.alarm, a + 4), .accepted(Self.alarm)),  // nor the frame sealed with another key a + 4
            (try Self.up(Self.alarm, a + 100), .accepted(Self.alarm)),
            (try Self.up(Self.alarm, a + 36), .refused(.stale(counter: a + 36))),  // 64 below the highest
            (try Self.up(Self.alarm, a + 37), .accepted(Self.alarm)),  // 63 below
            (try Self.up(Self.alarm, a + 5, deviceID: 2), .refused(.wrongDevice(expected: 1, received: 2))),
            (try Self.down(Self.ack, 1), .refused(.wrongDirection(.down))),
            (try Self.up(Self.alarm, a + 38), .accepted(Self.alarm)),
        ]
        var session = Session.centre()
        for (i, (frame, expected)) in transcript.enumerated() {
            #expect(session.receive(frame) == expected, "line \(i)")
        }
        #expect(session.refused == [.replayed: 1, .forged: 3, .stale: 3, .malformed: 1])
        #expect(session.opener.window.highest == a + 100)
    }

    // MARK: Tampering

    /// What flipping bit `bit` of byte `byte` of a genuine frame must lead to.
    static func expectedForFlip(
        of frame: [UInt8], byte: Int, bit: Int, direction: Wire.Direction, floor: UInt64
    ) -> (parses: Bool, error: ProtocolError?) {
        let mask = UInt8(1 << bit)
        let headerSize = FrameHeader.size(direction)
        switch byte {
        case 0 where mask & 0xf0 != 0: return (false, .unsupportedVersion((frame[0] ^ mask) >> 4))
        case 0 where mask == 0x08: return (true, .wrongDirection(direction == .up ? .down : .up))
        case 0: return (true, .authenticationFailed)  // reserved bits: ignored by the parser, authenticated
        case 1, 2: return (false, nil)  // the length no longer matches: refused by the parser
        case 3...6:
            var id = frame
            id[byte] ^= mask
            let received = UInt32(id[3]) << 24 | UInt32(id[4]) << 16 | UInt32(id[5]) << 8 | UInt32(id[6])
            return (true, .wrongDevice(expected: F.deviceID, received: received))
        case 7..<headerSize:
            var counter: UInt64 = 0
            var copy = frame
            copy[byte] ^= mask
            for b in copy[7..<headerSize] { counter = counter << 8 | UInt64(b) }
            return (true, counter <= floor ? .stale(counter: counter) : .authenticationFailed)
        default: return (true, .authenticationFailed)  // body and tag
        }
    }

    static func flipEveryBit(of frame: [UInt8], direction: Wire.Direction, floor: UInt64, session: () -> Session) {
        var shared = session()
        var expectedCounts: [ProtocolError.Category: Int] = [:]
        var authenticationFailures = 0
        for byte in frame.indices {
            for bit in 0..<8 {
                var tampered = frame
                tampered[byte] ^= UInt8(1 << bit)
                let (parses, error) = expectedForFlip(of: frame, byte: byte, bit: bit, direction: direction, floor: floor)
                var fresh = session()
                let outcome = fresh.receive(tampered)
                let sharedOutcome = shared.receive(tampered)
                #expect(outcome == sharedOutcome, "byte \(byte) bit \(bit)")
                switch outcome {
                case .accepted(let message):
                    Issue.record("byte \(byte) bit \(bit) flipped and the frame was accepted as \(message)")
                case .unparsable(let e):
                    #expect(!parses, "byte \(byte) bit \(bit): \(e)")
                    if let error { #expect(e == error, "byte \(byte) bit \(bit)") }
                case .refused(let e):
                    #expect(parses, "byte \(byte) bit \(bit)")
                    #expect(e == error, "byte \(byte) bit \(bit)")
                    expectedCounts[e.category, default: 0] += 1
                    if e == .authenticationFailed {
                        authenticationFailures += 1
                        #expect(fresh.refused == [.forged: 1], "byte \(byte) bit \(bit)")
                    }
                }
            }
        }
        #expect(shared.refused == expectedCounts)
        // Every bit of the reserved field, the body and the tag, and most of the counter, reaches the tag check.
        let headerSize = FrameHeader.size(direction)
        #expect(authenticationFailures >= 3 + (frame.count - headerSize) * 8)
        // None of it moved the window: the genuine frame is still fresh.
        if case .accepted = shared.receive(frame) {} else { Issue.record("the genuine frame was refused after the forgeries") }
    }

    @Test func anySingleBitFlippedInAnUpFrameIsRefusedAndTamperingWithTheAuthenticatedPartsCountsAsForged() throws {
        let frame = try Self.up(Self.alarm, F.anchor + 2)
        Self.flipEveryBit(of: frame, direction: .up, floor: F.anchor) { Session.centre() }
    }

    @Test func anySingleBitFlippedInADownFrameIsRefusedAndTamperingWithTheAuthenticatedPartsCountsAsForged() throws {
        let frame = try Self.down(F.full[13], 3)  // callOffer, IPv6: 99 bytes
        Self.flipEveryBit(of: frame, direction: .down, floor: 0) { Session.device() }
    }

    @Test func aFlippedTagBitIsRefusedAsAuthenticationFailedAndCountedAsForged() throws {
        let frame = try Self.up(Self.alarm, F.anchor + 1)
        for byte in (frame.count - Wire.tagLength)..<frame.count {
            for bit in 0..<8 {
                var tampered = frame
                tampered[byte] ^= UInt8(1 << bit)
                var session = Session.centre()
                #expect(session.receive(tampered) == .refused(.authenticationFailed))
                #expect(session.refused == [.forged: 1])
            }
        }
    }

    // MARK: Replay and staleness

    @Test func aReplayedFrameIsRefusedAsReplayedEvenAfterLaterFrames() throws {
        var session = Session.centre()
        let first = try Self.up(Self.alarm, F.anchor + 1)
        #expect(session.receive(first) == .accepted(Self.alarm))
        #expect(session.receive(first) == .refused(.replayed(counter: F.anchor + 1)))
        for c in F.anchor + 2...F.anchor + 10 {
            #expect(session.receive(try Self.up(Self.heartbeat, c)) == .accepted(Self.heartbeat))
        }
        #expect(session.receive(first) == .refused(.replayed(counter: F.anchor + 1)))
        #expect(session.refused == [.replayed: 2])
    }

    @Test func aCounterAtOrBelowTheFloorOrMoreThan63BelowTheHighestIsStale() throws {
        var session = Session.centre()
        for c in [0, 1, F.anchor - 1, F.anchor] {
            #expect(session.receive(try Self.up(Self.alarm, c)) == .refused(.stale(counter: c)))
        }
        #expect(session.receive(try Self.up(Self.alarm, F.anchor + 200)) == .accepted(Self.alarm))
        #expect(session.receive(try Self.up(Self.alarm, F.anchor + 136)) == .refused(.stale(counter: F.anchor + 136)))
        #expect(session.receive(try Self.up(Self.alarm, F.anchor + 137)) == .accepted(Self.alarm))
        #expect(session.refused == [.stale: 5])
    }

    @Test func framesReorderedWithinTheWindowAreAllAcceptedOnce() throws {
        var rng = ProtocolTestRNG(seed: 64)
        let counters = Array(F.anchor + 1...F.anchor + 64).shuffled(using: &rng)
        var session = Session.centre()
        for c in counters {
            #expect(session.receive(try Self.up(Self.heartbeat, c)) == .accepted(Self.heartbeat), "counter \(c)")
        }
        for c in counters {
            #expect(session.receive(try Self.up(Self.heartbeat, c)) == .refused(.replayed(counter: c)))
        }
        #expect(session.opener.window.highest == F.anchor + 64)
        #expect(session.refused == [.replayed: 64])
    }

    @Test func theWindowOnlyAdvancesAfterAuthentication() throws {
        var session = Session.centre()
        // A forged frame announcing a far higher counter: a genuine frame with a flipped tag bit, and one sealed
        // with another key.
        var flipped = try Self.up(Self.alarm, F.anchor + 1_000)
        flipped[flipped.count - 5] ^= 0x01
        let otherKey = try F.seal(Self.alarm, direction: .up, counter: F.anchor + 2_000, key: F.key(root: Array(repeating: 9, count: 16)))
        #expect(session.receive(flipped) == .refused(.authenticationFailed))
        #expect(session.receive(otherKey) == .refused(.authenticationFailed))
        #expect(session.opener.window.highest == F.anchor)
        // Later genuine frames, far more than 63 below the forged counters, are fresh.
        #expect(session.receive(try Self.up(Self.alarm, F.anchor + 1)) == .accepted(Self.alarm))
        #expect(session.receive(try Self.up(Self.alarm, F.anchor + 2)) == .accepted(Self.alarm))
        // And the genuine frame with the forged frame's counter is not taken for a replay.
        #expect(session.receive(try Self.up(Self.alarm, F.anchor + 1_000)) == .accepted(Self.alarm))
        #expect(session.refused == [.forged: 2])
    }

    @Test func framesRefusedForDeviceOrDirectionDoNotMoveTheWindowEither() throws {
        var session = Session.device()
        let upOnly = try Self.down(Self.alarm, 500)  // authentic, but an alarm never travels down
        #expect(session.receive(upOnly) == .refused(.wrongDirection(.down)))
        #expect(session.opener.window.highest == 0)
        #expect(session.receive(try Self.down(Self.ack, 1)) == .accepted(Self.ack))
        #expect(session.refused == [.malformed: 1])
    }

    // MARK: Device, direction, key

    @Test func everyRefusalIsCountedAsProtocolMdSection6Says() {
        let table: [(ProtocolError, ProtocolError.Category)] = [
            (.unsupportedVersion(2), .unsupported),
            (.unknownMessageType(0x7f), .unsupported),
            (.unknownCriticalExtension(message: "alarm", tag: 0x80), .unsupported),
            (.frameTooLong(length: 1025, maximum: 1024), .oversized),
            (.messageTooLarge(bodyLength: 2_000, maximum: 995), .oversized),
            (.frameTooShort(length: 29, minimum: 30), .malformed),
            (.datagramLengthMismatch(announced: 43, received: 44), .malformed),
            (.truncatedHeader(received: 5), .malformed),
            (.truncatedBody(message: "alarm", field: "id"), .malformed),
            (.invalidField(message: "heartbeat", field: "battery", reason: "101"), .malformed),
            (.wrongDirection(.up), .malformed),
            (.counterExhausted, .malformed),
            (.authenticationFailed, .forged),
            (.wrongDevice(expected: 1, received: 2), .forged),
            (.replayed(counter: 1), .replayed),
            (.stale(counter: 1), .stale),
        ]
        for (error, category) in table {
            #expect(error.category == category, "\(error)")
        }
        #expect(Set(table.map(\.1)) == Set(ProtocolError.Category.allCases))
    }

    @Test func aFrameForAnotherDeviceIsRefusedAsWrongDevice() throws {
        var session = Session.centre()
        // Genuinely sealed by device 2 with its own key, sent to device 1's session.
        let other = try Self.up(Self.alarm, F.anchor + 1, deviceID: 2)
        #expect(session.receive(other) == .refused(.wrongDevice(expected: 1, received: 2)))
        // Sealed with device 1's key but labelled device 2: refused for the label before any decryption.
        let relabelled = try F.seal(Self.alarm, direction: .up, counter: F.anchor + 1, deviceID: 2, key: F.key(1))
        #expect(session.receive(relabelled) == .refused(.wrongDevice(expected: 1, received: 2)))
        #expect(session.refused == [.forged: 2])
        #expect(session.receive(try Self.up(Self.alarm, F.anchor + 1)) == .accepted(Self.alarm))
    }

    @Test func anUpOnlyMessageSealedInADownFrameIsRefusedAsWrongDirection() throws {
        for message in F.minimal + F.full {
            var device = Session.device()
            var centre = Session.centre()
            let downFrame = try Self.down(message, 1)
            let upFrame = try Self.up(message, F.anchor + 1)
            let kinds = message.kind.directions
            #expect(device.receive(downFrame) == (kinds.contains(.down) ? .accepted(message) : .refused(.wrongDirection(.down))), "\(message.kind.name)")
            #expect(centre.receive(upFrame) == (kinds.contains(.up) ? .accepted(message) : .refused(.wrongDirection(.up))), "\(message.kind.name)")
        }
    }

    @Test func aFrameTravellingTheOtherWayIsRefusedBeforeDecryption() throws {
        var device = Session.device()
        var centre = Session.centre()
        // A device's own up frame reflected back to it, and a centre's down frame reflected back to the centre.
        #expect(device.receive(try Self.up(Self.ack, F.anchor + 1)) == .refused(.wrongDirection(.up)))
        #expect(centre.receive(try Self.down(Self.ack, 1)) == .refused(.wrongDirection(.down)))
        #expect(device.refused == [.malformed: 1])
        #expect(centre.refused == [.malformed: 1])
    }

    @Test func upAndDownKeysDifferSoAFrameSealedWithOneNeverOpensWithTheOther() throws {
        let key = F.key()
        // An up header sealed with the down key, a down header sealed with the up key.
        var upHeaderDownKey = ByteBuffer()
        try SealedFrame.seal(Self.ack, direction: .up, deviceID: 1, counter: F.anchor + 1, key: key.downKey(anchor: F.anchor), into: &upHeaderDownKey)
        var downHeaderUpKey = ByteBuffer()
        try SealedFrame.seal(Self.ack, direction: .down, deviceID: 1, counter: F.downCounter(1), key: key.upKey, into: &downHeaderUpKey)
        var centre = Session.centre()
        var device = Session.device()
        #expect(centre.receive(Array(upHeaderDownKey.readableBytesView)) == .refused(.authenticationFailed))
        #expect(device.receive(Array(downHeaderUpKey.readableBytesView)) == .refused(.authenticationFailed))
    }

    @Test func aDownFrameOpenedWithAnotherSessionsAnchorKeyIsRefused() throws {
        // The device's previous session was anchored at 65536, the new one at 131072 (a later sessionStart).
        let old = try Self.down(Self.ack, 1, anchor: F.anchor)
        let new = try Self.down(Self.ack, 1, anchor: 2 * F.anchor)
        var current = Session.device(anchor: 2 * F.anchor)
        #expect(current.receive(old) == .refused(.authenticationFailed))
        #expect(current.refused == [.forged: 1])
        #expect(current.receive(new) == .accepted(Self.ack))
        var previous = Session.device(anchor: F.anchor)
        #expect(previous.receive(new) == .refused(.authenticationFailed))
        // Neighbouring anchors give unrelated keys too.
        var neighbour = Session.device(anchor: F.anchor + 1)
        #expect(neighbour.receive(old) == .refused(.authenticationFailed))
    }

    @Test func aDeviceWithAnotherRootKeyOrAFleetKeyCannotForgeForThisDevice() throws {
        let master = try FleetMasterKey(bytes: Array(0x40...0x5f))
        let fleetKey = DeviceKey(deviceID: 1, master: master)
        let forged = try F.seal(Self.alarm, direction: .up, counter: F.anchor + 1, key: fleetKey)
        var session = Session.centre()
        #expect(session.receive(forged) == .refused(.authenticationFailed))
        // While the centre holding the same fleet key opens it.
        var fleetSession = Session(opener: FrameOpener(deviceID: 1, direction: .up, key: DeviceKey(deviceID: 1, master: master).upKey, floor: F.anchor))
        #expect(fleetSession.receive(forged) == .accepted(Self.alarm))
        // A fleet key derives different keys per device id: device 2's key does not open device 1's frames.
        let device2 = DeviceKey(deviceID: 2, master: master)
        var wrong = Session(opener: FrameOpener(deviceID: 1, direction: .up, key: device2.upKey, floor: F.anchor))
        #expect(wrong.receive(forged) == .refused(.authenticationFailed))
    }

    @Test func aDeviceRefusesToSealBeyondThe48BitCounter() throws {
        #expect(throws: Never.self) { try Self.up(Self.heartbeat, Wire.maximumUpCounter) }
        #expect(throws: ProtocolError.counterExhausted) { try Self.up(Self.heartbeat, Wire.maximumUpCounter + 1) }
        var buffer = ByteBuffer(bytes: [1, 2, 3])
        #expect(throws: ProtocolError.counterExhausted) {
            try SealedFrame.seal(Self.heartbeat, direction: .up, deviceID: 1, counter: .max, key: F.key().upKey, into: &buffer)
        }
        #expect(Array(buffer.readableBytesView) == [1, 2, 3])
    }

    @Test func aMessageThatCannotBeEncodedLeavesTheBufferAsItWas() throws {
        let invalid: [Message] = [
            .heartbeat(Heartbeat(status: [], battery: 101)),
            .alarm(Alarm(id: 1, kind: .button, triggeredAt: Wire.maximumUpCounter + 1, battery: 1, flags: [])),
            .sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [], bootCount: 1, model: String(repeating: "x", count: 33))),
            .diagnosticsReport(DiagnosticsReport(id: 1, requestID: 1, note: String(repeating: "é", count: 101))),
            .callOffer(CallOffer(id: 1, callID: 1, alarmID: 1, media: MediaDescription(endpoint: Endpoint(address: [1, 2, 3], port: 1), audioPayloadType: 0, ssrc: 0, keyMaterial: F.keyMaterial, videoPayloadType: 0))),
            .callAnswer(CallAnswer(id: 1, callID: 1, media: MediaDescription(endpoint: F.ipv4, audioPayloadType: 0, ssrc: 0, keyMaterial: Array(F.keyMaterial.prefix(29)), videoPayloadType: 0))),
            .configPush(ConfigPush(id: 1, settings: Settings(secondaryCentre: Endpoint(address: [], port: 1)))),
        ]
        for message in invalid {
            var buffer = ByteBuffer(bytes: [9, 9])
            let error = #expect(throws: ProtocolError.self, "\(message.kind.name)") {
                try SealedFrame.seal(message, direction: .up, deviceID: 1, counter: F.anchor + 1, key: F.key().upKey, into: &buffer)
            }
            if case .invalidField? = error {} else { Issue.record("\(message.kind.name) refused as \(String(describing: error))") }
            #expect(Array(buffer.readableBytesView) == [9, 9], "\(message.kind.name)")
        }
    }
}

/// The device's half of a session (protocol.md §3.4): the audit found it accepted a `sessionAccept` for any of
/// its last four anchors, where the protocol allows only the latest.
@Suite struct DeviceFrameSessionTests {
    typealias F = ProtocolFixtures

    static func sealStart(_ session: inout DeviceFrameSession) throws -> UInt64 {
        var buffer = ByteBuffer()
        while true {
            switch try session.seal(F.minimal[0], into: &buffer) {
            case .reserveCounters(let limit): session.counterReservationStored(limit)
            case .sealed(let counter): return counter
            }
        }
    }

    static func accept(anchor: UInt64, salt: UInt64 = F.salt) throws -> SealedFrame {
        try F.datagram(try F.seal(F.minimal[6], direction: .down, counter: salt << 32, anchor: anchor))
    }

    @Test func onlyTheLatestSessionStartsAcceptOpensTheSession() throws {
        var session = DeviceFrameSession(key: F.key(), storedCounterLimit: 0)
        let first = try Self.sealStart(&session)
        let second = try Self.sealStart(&session)
        #expect(throws: ProtocolError.authenticationFailed) { try session.open(try Self.accept(anchor: first)) }
        #expect(try session.open(try Self.accept(anchor: second)).kind == .sessionAccept)
        #expect(session.refused[.forged] == 1)
    }

    /// A centre at its session limit answers the session start `nak busy` under its down key: returned, no
    /// session opens, and nothing else of that session is taken afterwards.
    @Test func aBusyNakInPlaceOfTheAcceptOpensNoSession() throws {
        var session = DeviceFrameSession(key: F.key(), storedCounterLimit: 0)
        let anchor = try Self.sealStart(&session)
        let busy = Message.nak(Nak(id: 0, reason: .busy, senderTime: F.t0))
        let refusal = try F.datagram(try F.seal(busy, direction: .down, counter: F.salt << 32, anchor: anchor))
        #expect(try session.open(refusal) == busy)
        #expect(throws: ProtocolError.stale(counter: F.salt << 32)) { try session.open(try Self.accept(anchor: anchor)) }
        // Another answer in that place is not taken either.
        let other = try Self.sealStart(&session)
        let ack = try F.datagram(try F.seal(.ack(Ack(id: 0)), direction: .down, counter: F.salt << 32, anchor: other))
        #expect(throws: ProtocolError.stale(counter: F.salt << 32)) { try session.open(ack) }
    }

    @Test func frameHeadersCarryTheKeyEpochModuloEightUpOnly() throws {
        let key = DeviceKey(deviceID: 9, master: try FleetMasterKey(bytes: Array(0x40...0x5f)), epoch: 10)
        var session = DeviceFrameSession(key: key, storedCounterLimit: 65_536 * 2)
        session.counterReservationStored(65_536 * 3)
        var buffer = ByteBuffer()
        _ = try session.seal(F.minimal[1], into: &buffer)
        let frame = try SealedFrame(datagram: buffer)
        #expect(buffer.getInteger(at: 0, as: UInt8.self) == 0x12, "version 1, up, epoch 10 mod 8 = 2")
        #expect(frame.header.keyEpochBits == 2)
        #expect(try frame.open(with: key.upKey).kind == .heartbeat)
        // The epoch's key differs from epoch 2's: the bits select a key, they are not the key.
        let epoch2 = DeviceKey(deviceID: 9, master: try FleetMasterKey(bytes: Array(0x40...0x5f)), epoch: 2)
        #expect(throws: ProtocolError.authenticationFailed) { try frame.open(with: epoch2.upKey) }
        // Down frames keep the bits reserved.
        let down = try F.datagram(try F.seal(F.minimal[11], direction: .down, counter: F.downCounter(1)))
        #expect(down.header.keyEpochBits == 0)
    }
}
