import NIOCore
import PropertyBased
import Testing

@testable import DeviceKit

/// Generators of arbitrary valid messages of protocol v1, every case and every field (protocol.md §4).
enum MessageGen {
    /// A 48-bit time or counter, with its edges drawn often.
    static let time48 = zip(Gen.uint8(in: 0...9), Gen.uint64(in: 0...Wire.maximumUpCounter)).map { edge, value -> UInt64 in
        switch edge {
        case 0: 0
        case 1: Wire.maximumUpCounter
        default: value
        }
    }

    /// 0...100 percent or 255 (unknown): the only values a battery may have.
    static let battery = Gen.uint8(in: 0...101).map { $0 == 101 ? 255 : $0 }

    /// Any raw value of a `WireCode`: mostly unknown ones (a newer peer's), often a known one.
    static let code = zip(Gen.bool, Gen.uint8()).map { known, raw in known ? raw % 6 : raw }

    static let u16 = Gen.uint16()
    static let u32 = Gen.uint32()

    /// Characters from ASCII (with controls), the rest of the BMP (no surrogates) and the astral planes, so text
    /// holds 1-, 2-, 3- and 4-byte UTF-8 sequences and combining marks.
    static let character = Gen<Character>.oneOf(
        Gen<Character>.ascii.eraseToAny(),
        Gen<UnicodeScalar>.unicodeScalar(in: "\u{80}"..."\u{7FF}").map { Character($0) }.eraseToAny(),
        Gen<UnicodeScalar>.unicodeScalar(in: "\u{800}"..."\u{D7FF}").map { Character($0) }.eraseToAny(),
        Gen<UnicodeScalar>.unicodeScalar(in: "\u{E000}"..."\u{FFFD}").map { Character($0) }.eraseToAny(),
        Gen<UnicodeScalar>.unicodeScalar(in: "\u{10000}"..."\u{10FFFF}").map { Character($0) }.eraseToAny(),
        Gen<Character?>.element(of: ["é", "e\u{301}", "ß", "€", "日", "🚑", "👩‍⚕️", "\u{0}"] as [Character]).map { $0! }.eraseToAny()
    )

    /// Cuts text to at most `maximum` UTF-8 bytes, a whole character at a time.
    static func trimmed(to maximum: Int) -> @Sendable (String) -> String {
        { s in
            var s = s
            while s.utf8.count > maximum { s.removeLast() }
            return s
        }
    }

    /// UTF-8 text within the limits of `model` (32 bytes) and `note` (200 bytes); the limit is reached now and then.
    static let model = character.string(of: 0...SessionStart.maximumModelLength).map(trimmed(to: SessionStart.maximumModelLength))
    static let note = character.string(of: 0...DiagnosticsReport.maximumNoteLength).map(trimmed(to: DiagnosticsReport.maximumNoteLength))

    static let endpoint = zip(Gen.bool, Gen.uint8().array(of: 16), u16).map { v6, bytes, port in
        Endpoint(address: v6 ? bytes : Array(bytes.prefix(4)), port: port)
    }

    static let media = zip(endpoint, Gen.uint8(), u32, Gen.uint8().array(of: MediaDescription.keyMaterialLength), Gen.uint8())
        .map { MediaDescription(endpoint: $0, audioPayloadType: $1, ssrc: $2, keyMaterial: $3, videoPayloadType: $4) }

    static let settings = zip(u32.optional, u16.optional, u16.optional, u16.optional, u16.optional, endpoint.optional)
        .map {
            Settings(
                cancelWindowMilliseconds: $0, holdMilliseconds: $1, debounceMilliseconds: $2,
                mainsLostMaximumDelaySeconds: $3, heartbeatIntervalSeconds: $4, secondaryCentre: $5)
        }

    static let sessionStart = zip(Gen.uint8().array(of: 3), u16, u32, model.optional, u16.optional)
        .map { fw, caps, boot, model, epoch in
            Message.sessionStart(
                SessionStart(
                    firmware: FirmwareVersion(fw[0], fw[1], fw[2]), capabilities: Capabilities(rawValue: caps),
                    bootCount: boot, model: model, keyEpoch: epoch))
        }
    static let heartbeat = zip(Gen.uint8(), battery).map { Message.heartbeat(Heartbeat(status: DeviceStatus(rawValue: $0), battery: $1)) }
    static let alarm = zip(u32, code, time48, battery, Gen.uint8(), u16.optional, u16.optional).map {
        Message.alarm(
            Alarm(
                id: $0, kind: AlarmKind(rawValue: $1), triggeredAt: $2, battery: $3, flags: AlarmFlags(rawValue: $4),
                pressCount: $5, holdMilliseconds: $6))
    }
    static let alarmCancel = zip(u32, u32, time48).map { Message.alarmCancel(AlarmCancel(id: $0, alarmID: $1, cancelledAt: $2)) }
    static let event = zip(u32, code, time48, u32).map {
        Message.event(DeviceEvent(id: $0, kind: DeviceEventKind(rawValue: $1), at: $2, value: $3))
    }
    static let diagnosticsReport = zip(
        zip(u32, u32, battery.optional, Gen.bool.optional),
        zip(Gen.bool.optional, u32.optional, u16.optional, Gen.bool.optional, note.optional)
    ).map { a, b in
        Message.diagnosticsReport(
            DiagnosticsReport(
                id: a.0, requestID: a.1, battery: a.2, mainsPresent: a.3, buttonPresent: b.0, uptimeSeconds: b.1,
                outboxPending: b.2, storageWritable: b.3, note: b.4))
    }
    static let sessionAccept = zip(time48, u16, settings).map {
        Message.sessionAccept(SessionAccept(centreTime: $0, heartbeatIntervalSeconds: $1, settings: $2))
    }
    static let heartbeatAck = zip(time48, time48).map { Message.heartbeatAck(HeartbeatAck(echoedCounter: $0, centreTime: $1)) }
    static let caseUpdate = zip(u32, u32, code, time48).map {
        Message.caseUpdate(CaseUpdate(id: $0, alarmID: $1, state: CaseState(rawValue: $2), at: $3))
    }
    static let configPush = zip(u32, settings).map { Message.configPush(ConfigPush(id: $0, settings: $1)) }
    static let diagnosticsRequest = zip(u32, Gen.uint8()).map {
        Message.diagnosticsRequest(DiagnosticsRequest(id: $0, checks: DiagnosticChecks(rawValue: $1)))
    }
    static let ack = u32.map { Message.ack(Ack(id: $0)) }
    static let nak = zip(u32, code, time48).map { Message.nak(Nak(id: $0, reason: NakReason(rawValue: $1), senderTime: $2)) }
    static let callOffer = zip(u32, u32, u32, media).map {
        Message.callOffer(CallOffer(id: $0, callID: $1, alarmID: $2, media: $3))
    }
    static let callAnswer = zip(u32, u32, media).map { Message.callAnswer(CallAnswer(id: $0, callID: $1, media: $2)) }
    static let callEnd = zip(u32, u32, code).map { Message.callEnd(CallEnd(id: $0, callID: $1, reason: CallEndReason(rawValue: $2))) }

    /// Any valid message, each of the 16 kinds equally likely.
    static let message = Gen<Message>.oneOf(
        sessionStart.eraseToAny(), heartbeat.eraseToAny(), alarm.eraseToAny(), alarmCancel.eraseToAny(),
        event.eraseToAny(), diagnosticsReport.eraseToAny(), sessionAccept.eraseToAny(), heartbeatAck.eraseToAny(),
        caseUpdate.eraseToAny(), configPush.eraseToAny(), diagnosticsRequest.eraseToAny(), ack.eraseToAny(),
        nak.eraseToAny(), callOffer.eraseToAny(), callAnswer.eraseToAny(), callEnd.eraseToAny())

    /// A sealing context: device id, up counter (48 bits), down salt and sequence, root key (16...64 bytes), anchor.
    struct Context: Sendable, CustomStringConvertible {
        var deviceID: UInt32
        var upCounter: UInt64
        var downCounter: UInt64
        var rootKey: [UInt8]
        var anchor: UInt64
        var description: String {
            "device \(deviceID), up counter \(upCounter), down counter 0x\(String(downCounter, radix: 16)), anchor \(anchor), key \(Hex.encode(rootKey))"
        }
    }

    static let context = zip(u32, time48, Gen.uint64(), Gen.uint8().array(of: 16...64), time48).map {
        Context(deviceID: $0, upCounter: $1, downCounter: $2, rootKey: $3, anchor: $4)
    }
}

/// Property-based round trips: whatever valid message is encoded or sealed comes back equal (protocol.md §2, §4).
@Suite struct MessageRoundTripTests {
    static let count = 1_000

    @Test func encodingThenDecodingABodyGivesAnEqualMessageAndTheSameBytes() async {
        await propertyCheck(count: Self.count, input: MessageGen.message) { message in
            ProtocolFixtures.recordingErrors {
                var body = ByteBuffer()
                try message.encodeBody(into: &body)
                let decoded = try Message(body: body)
                #expect(decoded == message)
                // Equality of `String` is canonical equivalence; the bytes must also come back exactly.
                var again = ByteBuffer()
                try decoded.encodeBody(into: &again)
                #expect(Array(again.readableBytesView) == Array(body.readableBytesView))
            }
        }
    }

    @Test func sealingThenParsingThenOpeningGivesAnEqualMessageInEveryDirectionItMayTravel() async {
        await propertyCheck(count: Self.count, input: MessageGen.message, MessageGen.context) { message, context in
            ProtocolFixtures.recordingErrors {
                let key = try DeviceKey(deviceID: context.deviceID, rootKey: context.rootKey)
                for direction in [Wire.Direction.up, .down] where message.kind.directions.contains(direction) {
                    let counter = direction == .up ? context.upCounter : context.downCounter
                    let sealingKey = direction == .up ? key.upKey : key.downKey(anchor: context.anchor)
                    var buffer = ByteBuffer()
                    try SealedFrame.seal(
                        message, direction: direction, deviceID: context.deviceID, counter: counter, key: sealingKey,
                        into: &buffer)
                    let frame = try SealedFrame(datagram: buffer)
                    #expect(frame.header == FrameHeader(direction: direction, length: buffer.readableBytes, deviceID: context.deviceID, counter: counter))
                    #expect(try frame.open(with: sealingKey) == message, "\(direction)")

                    // The receiving side, with its own copy of the key, and a window whose floor is just below.
                    let receiver = try DeviceKey(deviceID: context.deviceID, rootKey: context.rootKey)
                    var opener = FrameOpener(
                        deviceID: context.deviceID, direction: direction,
                        key: direction == .up ? receiver.upKey : receiver.downKey(anchor: context.anchor),
                        floor: counter == 0 ? 0 : counter - 1)
                    if counter > 0 {
                        #expect(try opener.open(frame) == message, "\(direction)")
                    }
                }
            }
        }
    }

    @Test func aFrameIsExactlyHeaderPlusBodyPlusSixteenBytesOfTag() async {
        await propertyCheck(count: Self.count, input: MessageGen.message, MessageGen.context) { message, context in
            ProtocolFixtures.recordingErrors {
                let key = try DeviceKey(deviceID: context.deviceID, rootKey: context.rootKey)
                var body = ByteBuffer()
                try message.encodeBody(into: &body)
                for direction in [Wire.Direction.up, .down] {
                    var frame = ByteBuffer()
                    try SealedFrame.seal(
                        message, direction: direction, deviceID: context.deviceID,
                        counter: direction == .up ? context.upCounter : context.downCounter,
                        key: direction == .up ? key.upKey : key.downKey(anchor: context.anchor), into: &frame)
                    let expected = FrameHeader.size(direction) + body.readableBytes + Wire.tagLength
                    #expect(frame.readableBytes == expected, "\(direction)")
                    #expect(Int(frame.getInteger(at: 1, as: UInt16.self) ?? 0) == expected, "\(direction): length field")
                    #expect(frame.readableBytes <= Wire.maximumFrameLength)
                }
            }
        }
    }

    @Test func sealingAppendsToWhatTheBufferAlreadyHolds() async {
        await propertyCheck(count: 200, input: MessageGen.message, MessageGen.message, Gen.uint8().array(of: 0...40)) { a, b, prefix in
            ProtocolFixtures.recordingErrors {
                let key = ProtocolFixtures.key()
                var stream = ByteBuffer(bytes: prefix)
                try SealedFrame.seal(a, direction: .up, deviceID: 1, counter: 5, key: key.upKey, into: &stream)
                try SealedFrame.seal(b, direction: .down, deviceID: 1, counter: 6, key: key.downKey(anchor: 4), into: &stream)
                #expect(stream.readBytes(length: prefix.count) == prefix)
                var decoder = FrameDecoder()
                let first = try #require(try decoder.decode(buffer: &stream))
                let second = try #require(try decoder.decode(buffer: &stream))
                #expect(stream.readableBytes == 0)
                #expect(try first.open(with: key.upKey) == a)
                #expect(try second.open(with: key.downKey(anchor: 4)) == b)
            }
        }
    }

    @Test func anUnknownNonCriticalExtensionAfterTheKnownFieldsDecodesToTheSameMessage() async {
        // A v1.1 sender appends tag 0x7f (above every v1 tag, so tags still ascend) with any value.
        await propertyCheck(count: Self.count, input: MessageGen.message, Gen.uint8().array(of: 0...255)) { message, value in
            ProtocolFixtures.recordingErrors {
                var body = ByteBuffer()
                try message.encodeBody(into: &body)
                body.writeInteger(UInt8(0x7f))
                body.writeInteger(UInt8(value.count))
                body.writeBytes(value)
                #expect(try Message(body: body) == message)
            }
        }
    }

    @Test func anUnknownCriticalExtensionIsRefusedForEveryMessage() async {
        await propertyCheck(count: Self.count, input: MessageGen.message, Gen.uint8(in: 0x80...0xff), Gen.uint8().array(of: 0...8)) { message, tag, value in
            ProtocolFixtures.recordingErrors {
                var body = ByteBuffer()
                try message.encodeBody(into: &body)
                body.writeInteger(tag)
                body.writeInteger(UInt8(value.count))
                body.writeBytes(value)
                #expect(throws: ProtocolError.unknownCriticalExtension(message: message.kind.name, tag: tag)) {
                    try Message(body: body)
                }
            }
        }
    }

    @Test func theGeneratorCoversEveryKindAndTheInterestingValues() {
        var rng = Xoshiro(seed: (1, 2, 3, 4))
        var kinds = Set<Message.Kind>()
        var sawIPv4 = false, sawIPv6 = false, sawUnknownCode = false, sawNonASCII = false
        var sawExtensionPresent = false, sawExtensionAbsent = false, sawBatteryUnknown = false
        for _ in 0..<2_000 {
            let message = MessageGen.message.run(using: &rng)
            kinds.insert(message.kind)
            switch message {
            case .alarm(let m):
                if m.pressCount != nil || m.holdMilliseconds != nil { sawExtensionPresent = true } else { sawExtensionAbsent = true }
                if !m.kind.isKnown { sawUnknownCode = true }
                if m.battery == 255 { sawBatteryUnknown = true }
            case .callOffer(let m):
                if m.media.endpoint.address.count == 4 { sawIPv4 = true } else { sawIPv6 = true }
            case .diagnosticsReport(let m):
                if let note = m.note, note.utf8.contains(where: { $0 >= 0x80 }) { sawNonASCII = true }
            default: break
            }
        }
        #expect(kinds == Set(Message.Kind.allCases))
        #expect(sawIPv4 && sawIPv6 && sawUnknownCode && sawNonASCII && sawExtensionPresent && sawExtensionAbsent && sawBatteryUnknown)
    }

    @Test func everyGeneratedMessageIsValid() async {
        // The generator is only useful if it stays within what may be sent: `validate` accepts all of it.
        await propertyCheck(count: Self.count, input: MessageGen.message) { message in
            ProtocolFixtures.recordingErrors {
                try message.validate()
            }
        }
    }
}
