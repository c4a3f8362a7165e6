import Foundation
import NIOCore
import Testing

@testable import DeviceKit

/// The vectors of protocol.md §7: the document and the code agree byte for byte.
@Suite struct ProtocolVectorTests {
    static let rootKey: [UInt8] = Array(0x00...0x1f)
    static let masterKey: [UInt8] = Array(0x40...0x5f)
    static let anchor: UInt64 = 65_536
    static let salt: UInt64 = 0x5a17_c0de
    static let t0: WireTime = 1_795_000_000_000  // 2026-11-18T09:46:40Z

    static func up(_ name: String, counter: UInt64, master: Bool = false, device: UInt32 = 1) -> ProtocolVector {
        ProtocolVector(
            name: name, rootKey: master ? nil : rootKey, masterKey: master ? masterKey : nil, deviceID: device,
            direction: .up, counter: counter)
    }

    static func down(_ name: String, sequence: UInt64) -> ProtocolVector {
        ProtocolVector(
            name: name, rootKey: rootKey, deviceID: 1, direction: .down, counter: salt << 32 | sequence, anchor: anchor)
    }

    /// What each vector seals. The bytes live in protocol.md only.
    static let definitions: [(ProtocolVector, Message)] = [
        (up("sessionStart", counter: anchor),
         .sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 3), capabilities: [.button, .voice, .mainsSensing, .battery, .indicators], bootCount: 17, model: "rpi4"))),
        (down("sessionAccept", sequence: 0),
         .sessionAccept(SessionAccept(centreTime: t0, heartbeatIntervalSeconds: 30, settings: Settings(cancelWindowMilliseconds: 10_000, holdMilliseconds: 500, secondaryCentre: Endpoint(address: [127, 0, 0, 2], port: 7700))))),
        (up("heartbeat", counter: anchor + 1),
         .heartbeat(Heartbeat(status: [.mainsPresent, .buttonPresent], battery: 87))),
        (down("heartbeatAck", sequence: 1),
         .heartbeatAck(HeartbeatAck(echoedCounter: anchor + 1, centreTime: t0 + 30_012))),
        (up("alarm", counter: anchor + 2),
         .alarm(Alarm(id: 7, kind: .button, triggeredAt: t0 + 61_250, battery: 87, flags: [.clockSynchronised]))),
        (down("ack", sequence: 2),
         .ack(Ack(id: 7))),
        (down("caseUpdate", sequence: 3),
         .caseUpdate(CaseUpdate(id: 1, alarmID: 7, state: .operatorEngaged, at: t0 + 75_000))),
        (up("alarmCancel", counter: anchor + 3),
         .alarmCancel(AlarmCancel(id: 8, alarmID: 7, cancelledAt: t0 + 64_000))),
        (up("event", counter: anchor + 4),
         .event(DeviceEvent(id: 9, kind: .mainsLost, at: t0 + 90_000, value: 0))),
        (down("nak", sequence: 4),
         .nak(Nak(id: 9, reason: .rateLimited, senderTime: t0 + 90_040))),
        (up("alarm from a fleet master key", counter: 1_048_577, master: true, device: 0x0012_3456),
         .alarm(Alarm(id: 4_000_000_001, kind: .test, triggeredAt: t0, battery: 255, flags: [.onBattery, .recoveredAfterRestart], pressCount: 3, holdMilliseconds: 1_200))),
        ({ var v = up("sessionStart at key epoch 9", counter: 0, master: true, device: 0x0012_3456); v.epoch = 9; return v }(),
         .sessionStart(SessionStart(firmware: FirmwareVersion(1, 1, 0), capabilities: [.button, .voice, .mainsSensing, .battery, .indicators], bootCount: 1, model: "rpi4", keyEpoch: 9))),
        (down("callOffer", sequence: 5),
         .callOffer(CallOffer(id: 2, callID: 0xCA11, alarmID: 7, media: MediaDescription(endpoint: Endpoint(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 40_000), audioPayloadType: 0, ssrc: 0x1234_5678, keyMaterial: Array(0xa0..<0xbe), videoPayloadType: 96)))),
    ]

    static func documented() throws -> [ProtocolVector] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../protocol.md")
        return try ProtocolVector.parse(markdown: String(contentsOf: url, encoding: .utf8))
    }

    @Test func protocolMdHasAtLeastEightVectorsAndEachHolds() throws {
        let vectors = try Self.documented()
        #expect(vectors.count >= 8)
        for vector in vectors {
            #expect(vector.check() == [], "vector '\(vector.name)'")
        }
    }

    @Test(arguments: definitions.map { $0.0.name })
    func codeSealsExactlyTheDocumentedBytes(name: String) throws {
        let (definition, message) = try #require(Self.definitions.first { $0.0.name == name })
        let sealed = try definition.sealing(message)
        if ProcessInfo.processInfo.environment["PRINT_VECTORS"] != nil { print(sealed.markdown + "\n") }
        let documented = try #require(try Self.documented().first { $0.name == name }, "protocol.md lacks '\(name)'")
        #expect(Hex.encode(sealed.frame, separator: " ") == Hex.encode(documented.frame, separator: " "))
        #expect(sealed.body == documented.body)
        #expect(sealed.messageJSON == documented.messageJSON)
    }

    @Test func aVectorWithOneFlippedBitFailsItsCheck() throws {
        var vector = try #require(try Self.documented().first)
        vector.frame[vector.frame.count / 2] ^= 0x01
        #expect(vector.check() == ["\(ProtocolError.authenticationFailed)"])
    }
}
