import Crypto
import NIOCore
import Testing

@testable import DeviceKit

/// Authentic frames this version cannot decode (issue 12, findings 4 and 8): the counter is used up, the id
/// of a reliable message is read whatever follows it, and an alarm is read as far as it goes.
@Suite struct UndecodableMessageTests {
    typealias F = ProtocolFixtures

    /// An up frame sealed around `body` as it is, so the body can be one a v1 encoder would never write.
    static func sealUp(body: [UInt8], counter: UInt64) throws -> SealedFrame {
        var header = ByteBuffer()
        FrameHeader(direction: .up, length: 13 + body.count + 16, deviceID: F.deviceID, counter: counter).write(to: &header)
        let headerBytes = Array(header.readableBytesView)
        let box = try ChaChaPoly.seal(
            body, using: F.key().upKey, nonce: try ChaChaPoly.Nonce(data: headerBytes[1...]), authenticating: headerBytes)
        return try F.datagram(headerBytes + box.ciphertext + box.tag)
    }

    /// alarm id 7, button, t0, battery, flags 0, then `extensions`.
    static func alarmBody(battery: UInt8 = 87, extensions: [UInt8] = []) -> [UInt8] {
        var b = ByteBuffer()
        b.writeInteger(UInt8(0x03))
        b.writeInteger(UInt32(7))
        b.writeInteger(UInt8(1))
        b.writeUInt48(F.t0)
        b.writeInteger(battery)
        b.writeInteger(UInt8(0))
        return Array(b.readableBytesView) + extensions
    }

    func centre() -> FrameOpener {
        FrameOpener(deviceID: F.deviceID, direction: .up, key: F.key().upKey, floor: F.anchor)
    }

    @Test func aV11AlarmWithACriticalExtensionIsRefusedOnceWithItsIdAndThenAsReplayed() throws {
        var opener = centre()
        // Critical extension 0x85 (a field of v1.1), 2 bytes.
        let frame = try Self.sealUp(body: Self.alarmBody(extensions: [0x85, 0x02, 0xAB, 0xCD]), counter: F.anchor + 1)
        let refusal = #expect(throws: ProtocolError.self) { try opener.open(frame) }
        guard case .undecodable(let message)? = refusal else {
            Issue.record("expected undecodable, got \(String(describing: refusal))")
            return
        }
        #expect(message.kind == .alarm)
        #expect(message.id == 7)
        #expect(message.nakReason == .unsupported)
        #expect(message.alarm?.alarm.id == 7)
        #expect(message.alarm?.alarm.kind == .button)
        #expect(message.alarm?.alarm.triggeredAt == F.t0)
        #expect(message.alarm?.defects.contains("its extensions are ignored") == true)
        #expect(throws: ProtocolError.replayed(counter: F.anchor + 1)) { try opener.open(frame) }
    }

    @Test func anAlarmWithOneBadFieldIsReadLenientlyAndItsFieldMarked() throws {
        var opener = centre()
        let frame = try Self.sealUp(body: Self.alarmBody(battery: 150), counter: F.anchor + 1)
        let refusal = #expect(throws: ProtocolError.self) { try opener.open(frame) }
        guard case .undecodable(let message)? = refusal, let lenient = message.alarm else {
            Issue.record("expected a lenient alarm, got \(String(describing: refusal))")
            return
        }
        #expect(message.nakReason == .invalid)
        #expect(lenient.alarm.battery == 255, "unknown, not 150")
        #expect(lenient.defects.contains("battery 150 is not a percentage"))
        #expect(lenient.knowsWhen)
    }

    @Test func extensionsOutOfOrderAreIgnoredAndTheAlarmKept() throws {
        var opener = centre()
        let frame = try Self.sealUp(body: Self.alarmBody(extensions: [0x02, 0x02, 0x04, 0xB0, 0x01, 0x02, 0x00, 0x03]), counter: F.anchor + 1)
        let refusal = #expect(throws: ProtocolError.self) { try opener.open(frame) }
        guard case .undecodable(let message)? = refusal, let lenient = message.alarm else { return }
        #expect(lenient.alarm.holdMilliseconds == nil)
        #expect(lenient.alarm.pressCount == nil)
        #expect(lenient.defects.contains("its extensions are ignored"))
    }

    @Test func aTruncatedAlarmStillGivesItsIdAndACallForHelpOfUnknownDetail() throws {
        var opener = centre()
        let frame = try Self.sealUp(body: [0x03, 0x00, 0x00, 0x00, 0x09, 0x01], counter: F.anchor + 1)
        let refusal = #expect(throws: ProtocolError.self) { try opener.open(frame) }
        guard case .undecodable(let message)? = refusal, let lenient = message.alarm else { return }
        #expect(message.id == 9)
        #expect(!lenient.knowsWhen)
        #expect(lenient.defects.contains("the alarm ends before its fixed fields"))
    }

    @Test func aNonReliableMessageHasNoIdAndAnUnknownTypeNoKind() throws {
        var opener = centre()
        let heartbeat = try Self.sealUp(body: [0x02, 0x01, 150], counter: F.anchor + 1)
        guard case .undecodable(let message)? = #expect(throws: ProtocolError.self, performing: { try opener.open(heartbeat) }) else { return }
        #expect(message.kind == .heartbeat)
        #expect(message.id == nil)
        let unknown = try Self.sealUp(body: [0x3F, 0, 0, 0, 1], counter: F.anchor + 2)
        guard case .undecodable(let other)? = #expect(throws: ProtocolError.self, performing: { try opener.open(unknown) }) else { return }
        #expect(other.kind == nil)
        #expect(other.cause == .unknownMessageType(0x3F))
        #expect(opener.refused[.unsupported] == 1)
        #expect(opener.refused[.malformed] == 1)
    }

    @Test func aForgedFrameIsStillJustForgedAndUsesNoCounter() throws {
        var opener = centre()
        var bytes = Array(try Self.sealUp(body: Self.alarmBody(battery: 150), counter: F.anchor + 1).bytes.readableBytesView)
        bytes[bytes.count - 1] ^= 1
        #expect(throws: ProtocolError.authenticationFailed) { try opener.open(try F.datagram(bytes)) }
        let genuine = try F.datagram(try F.seal(F.minimal[1], direction: .up, counter: F.anchor + 1))
        #expect(try opener.open(genuine).kind == .heartbeat)
    }
}
