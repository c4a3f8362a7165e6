import NIOCore
import Testing

@testable import DeviceKit

/// Keys, messages and helpers shared by the protocol suites (FrameSizeTests, MessageRoundTripTests,
/// FrameDecoderTests, ProtocolRobustnessTests, FrameOpenerTests, ReplayWindowTests).
///
/// Everything is namespaced under `ProtocolFixtures` so that it cannot collide with helpers other test files add.
enum ProtocolFixtures {
    static let rootKey: [UInt8] = Array(0x00...0x1f)
    static let deviceID: UInt32 = 1
    /// The counter of the session's `sessionStart` (protocol.md §3.4), as in the vectors of §7.
    static let anchor: UInt64 = 65_536
    static let salt: UInt64 = 0x5a17_c0de
    static let t0: WireTime = 1_795_000_000_000

    static func key(_ id: UInt32 = deviceID, root: [UInt8] = rootKey) -> DeviceKey {
        // 32 bytes is always a valid root key length.
        try! DeviceKey(deviceID: id, rootKey: root)
    }

    static let ipv4 = Endpoint(address: [192, 0, 2, 10], port: 40_000)
    static let ipv6 = Endpoint(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 40_002)
    static let keyMaterial: [UInt8] = Array(0xa0..<0xbe)
    static func media(_ endpoint: Endpoint) -> MediaDescription {
        MediaDescription(endpoint: endpoint, audioPayloadType: 0, ssrc: 0x1234_5678, keyMaterial: keyMaterial, videoPayloadType: 96)
    }

    /// One message of every kind, with no extension: the smallest body of each kind.
    static let minimal: [Message] = [
        .sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 3), capabilities: [.button, .voice], bootCount: 17)),
        .heartbeat(Heartbeat(status: [.mainsPresent, .buttonPresent], battery: 87)),
        .alarm(Alarm(id: 7, kind: .button, triggeredAt: t0, battery: 87, flags: [.clockSynchronised])),
        .alarmCancel(AlarmCancel(id: 8, alarmID: 7, cancelledAt: t0 + 3_000)),
        .event(DeviceEvent(id: 9, kind: .mainsLost, at: t0 + 4_000, value: 0)),
        .diagnosticsReport(DiagnosticsReport(id: 10, requestID: 3)),
        .sessionAccept(SessionAccept(centreTime: t0, heartbeatIntervalSeconds: 30)),
        .heartbeatAck(HeartbeatAck(echoedCounter: anchor + 1, centreTime: t0 + 30_012)),
        .caseUpdate(CaseUpdate(id: 1, alarmID: 7, state: .operatorEngaged, at: t0 + 75_000)),
        .configPush(ConfigPush(id: 2, settings: Settings())),
        .diagnosticsRequest(DiagnosticsRequest(id: 3, checks: [.power, .link])),
        .ack(Ack(id: 7)),
        .nak(Nak(id: 9, reason: .rateLimited, senderTime: t0 + 90_040)),
        .callOffer(CallOffer(id: 4, callID: 0xCA11, alarmID: 7, media: media(ipv4))),
        .callAnswer(CallAnswer(id: 5, callID: 0xCA11, media: media(ipv4))),
        .callEnd(CallEnd(id: 6, callID: 0xCA11, reason: .hangUp)),
    ]

    static let allSettings = Settings(
        cancelWindowMilliseconds: 10_000, holdMilliseconds: 500, debounceMilliseconds: 30,
        mainsLostMaximumDelaySeconds: 120, heartbeatIntervalSeconds: 60, secondaryCentre: ipv6)

    /// One message of every kind with every extension it has (and IPv6 where there is an endpoint).
    static let full: [Message] = [
        .sessionStart(SessionStart(firmware: FirmwareVersion(2, 1, 0), capabilities: Capabilities(rawValue: 0xffff), bootCount: .max, model: "rpi4 · Modèle B")),
        .heartbeat(Heartbeat(status: DeviceStatus(rawValue: 0x3f), battery: 255)),
        .alarm(Alarm(id: 4_000_000_001, kind: .test, triggeredAt: Wire.maximumUpCounter, battery: 255, flags: [.onBattery, .recoveredAfterRestart], pressCount: 3, holdMilliseconds: 1_200)),
        .alarmCancel(AlarmCancel(id: .max, alarmID: .max, cancelledAt: Wire.maximumUpCounter)),
        .event(DeviceEvent(id: .max, kind: .pressDuringAlarm, at: Wire.maximumUpCounter, value: .max)),
        .diagnosticsReport(DiagnosticsReport(id: 11, requestID: 3, battery: 100, mainsPresent: true, buttonPresent: false, uptimeSeconds: 86_400, outboxPending: 2, storageWritable: true, note: "Speicher ok — 電池 ✓ 🚑")),
        .sessionAccept(SessionAccept(centreTime: t0, heartbeatIntervalSeconds: 30, settings: allSettings)),
        .heartbeatAck(HeartbeatAck(echoedCounter: Wire.maximumUpCounter, centreTime: Wire.maximumUpCounter)),
        .caseUpdate(CaseUpdate(id: .max, alarmID: .max, state: .closed, at: Wire.maximumUpCounter)),
        .configPush(ConfigPush(id: 2, settings: allSettings)),
        .diagnosticsRequest(DiagnosticsRequest(id: .max, checks: DiagnosticChecks(rawValue: 0xff))),
        .ack(Ack(id: .max)),
        .nak(Nak(id: .max, reason: NakReason(rawValue: 0xee), senderTime: Wire.maximumUpCounter)),
        .callOffer(CallOffer(id: .max, callID: .max, alarmID: .max, media: media(ipv6))),
        .callAnswer(CallAnswer(id: .max, callID: .max, media: media(ipv6))),
        .callEnd(CallEnd(id: .max, callID: .max, reason: CallEndReason(rawValue: 0xee))),
    ]

    /// The direction a message of `kind` normally travels (`up` for messages allowed both ways).
    static func direction(of kind: Message.Kind) -> Wire.Direction {
        kind.directions.contains(.up) ? .up : .down
    }

    static func body(_ message: Message) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try message.encodeBody(into: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// Seals `message` as the device (up, with the up key) or the centre (down, with `down(anchor)`).
    static func seal(
        _ message: Message, direction: Wire.Direction, counter: UInt64, deviceID: UInt32 = deviceID,
        key: DeviceKey? = nil, anchor: UInt64 = anchor
    ) throws -> [UInt8] {
        let key = key ?? Self.key(deviceID)
        var buffer = ByteBuffer()
        try SealedFrame.seal(
            message, direction: direction, deviceID: deviceID, counter: counter,
            key: direction == .up ? key.upKey : key.downKey(anchor: anchor), into: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// A down counter: the session's salt in the high 32 bits, the sequence in the low 32.
    static func downCounter(_ sequence: UInt64, salt: UInt64 = salt) -> UInt64 { salt << 32 | sequence }

    static func datagram(_ bytes: [UInt8]) throws(ProtocolError) -> SealedFrame {
        try SealedFrame(datagram: ByteBuffer(bytes: bytes))
    }

    /// Runs `body` and records any error it throws as an issue.
    ///
    /// Every `propertyCheck` body goes through this: PropertyBased 2.0.1 runs the body under `try?` (its
    /// `countIssues`, Swift >= 6.2), so an error thrown from a property is swallowed and the property passes.
    static func recordingErrors(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
        } catch is ExpectationFailedError {
            // `#require` already recorded it.
        } catch {
            Issue.record(error, sourceLocation: sourceLocation)
        }
    }
}

/// SplitMix64: a tiny, fast, seedable generator, so that random tests are reproducible from their seed.
struct ProtocolTestRNG: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<n` (`n` > 0). The modulo bias is irrelevant for fuzzing and this is much faster in a
    /// debug build than the generic `Int.random(in:using:)`.
    mutating func below(_ n: Int) -> Int { Int(truncatingIfNeeded: next() % UInt64(n)) }

    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            var word = next()
            var j = 0
            while j < 8 && i < count {
                out[i] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                i += 1
                j += 1
            }
        }
        return out
    }

    mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
}
