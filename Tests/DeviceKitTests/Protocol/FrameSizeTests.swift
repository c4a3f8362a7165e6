import Foundation
import NIOCore
import Testing

@testable import DeviceKit

/// The size of every message on the wire (protocol.md §4.4), header, type byte and 16-byte tag included.
///
/// The expected sizes are worked out from the field layout of protocol.md §2.1 (13-byte up header, 15-byte down
/// header, 16-byte tag) and §4.2 (the fixed fields of each message), and agree with the frames of the vectors in
/// §7. Where the table of §4.4 says something else, `theSizeTableOfSection4_4AgreesWithTheCode` fails and names
/// the rows.
@Suite struct FrameSizeTests {
    typealias F = ProtocolFixtures

    struct Row: Sendable, CustomTestStringConvertible {
        /// The row's name as protocol.md §4.4 spells it.
        var name: String
        var message: Message
        var direction: Wire.Direction
        var bytes: Int
        var testDescription: String { "\(name): \(bytes) bytes" }
    }

    static let alarm = Message.alarm(Alarm(id: 7, kind: .button, triggeredAt: F.t0, battery: 87, flags: [.clockSynchronised]))
    static let alarmWithBothExtensions = Message.alarm(
        Alarm(id: 7, kind: .button, triggeredAt: F.t0, battery: 87, flags: [], pressCount: 3, holdMilliseconds: 1_200))

    static func minimal(_ kind: Message.Kind) -> Message { F.minimal.first { $0.kind == kind }! }

    /// up = 13 + 16 = 29 bytes of overhead, down = 15 + 16 = 31; then the type byte and the fixed fields of §4.2.
    static let rows: [Row] = [
        Row(name: "heartbeat", message: minimal(.heartbeat), direction: .up, bytes: 29 + 1 + 1 + 1),  // 32
        Row(name: "alarm", message: alarm, direction: .up, bytes: 29 + 1 + 4 + 1 + 6 + 1 + 1),  // 43
        Row(name: "alarm with pressCount and holdMilliseconds", message: alarmWithBothExtensions, direction: .up, bytes: 43 + 4 + 4),  // 51
        Row(name: "alarmCancel", message: minimal(.alarmCancel), direction: .up, bytes: 29 + 1 + 4 + 4 + 6),  // 44
        Row(name: "event", message: minimal(.event), direction: .up, bytes: 29 + 1 + 4 + 1 + 6 + 4),  // 45
        Row(name: "sessionStart", message: minimal(.sessionStart), direction: .up, bytes: 29 + 1 + 3 + 2 + 4),  // 39
        Row(name: "ack (up)", message: minimal(.ack), direction: .up, bytes: 29 + 1 + 4),  // 34
        Row(name: "nak (up)", message: minimal(.nak), direction: .up, bytes: 29 + 1 + 4 + 1 + 6),  // 41
        Row(name: "diagnosticsReport (no fields)", message: minimal(.diagnosticsReport), direction: .up, bytes: 29 + 1 + 4 + 4),  // 38
        Row(name: "callEnd (up)", message: minimal(.callEnd), direction: .up, bytes: 29 + 1 + 4 + 4 + 1),  // 39
        Row(name: "sessionAccept (no settings)", message: minimal(.sessionAccept), direction: .down, bytes: 31 + 1 + 6 + 2),  // 40
        Row(name: "heartbeatAck", message: minimal(.heartbeatAck), direction: .down, bytes: 31 + 1 + 6 + 6),  // 44
        Row(name: "caseUpdate", message: minimal(.caseUpdate), direction: .down, bytes: 31 + 1 + 4 + 4 + 1 + 6),  // 47
        Row(name: "configPush (no settings)", message: minimal(.configPush), direction: .down, bytes: 31 + 1 + 4),  // 36
        Row(name: "diagnosticsRequest", message: minimal(.diagnosticsRequest), direction: .down, bytes: 31 + 1 + 4 + 1),  // 37
        Row(name: "ack (down)", message: minimal(.ack), direction: .down, bytes: 31 + 1 + 4),  // 36
        Row(name: "nak (down)", message: minimal(.nak), direction: .down, bytes: 31 + 1 + 4 + 1 + 6),  // 43
        // media = endpoint (1 + 4 + 2 for IPv4) + audio PT 1 + ssrc 4 + key material 30 + video PT 1 = 43
        Row(name: "callOffer (IPv4, up)", message: minimal(.callOffer), direction: .up, bytes: 29 + 1 + 4 + 4 + 4 + 43),  // 85
        Row(name: "callAnswer (IPv4, down)", message: minimal(.callAnswer), direction: .down, bytes: 31 + 1 + 4 + 4 + 43),  // 83
        Row(name: "callEnd (down)", message: minimal(.callEnd), direction: .down, bytes: 31 + 1 + 4 + 4 + 1),  // 41
    ]

    static func sealedSize(_ message: Message, _ direction: Wire.Direction) throws -> Int {
        let counter = direction == .up ? F.anchor + 1 : F.downCounter(1)
        return try F.seal(message, direction: direction, counter: counter).count
    }

    @Test(arguments: rows)
    func eachMessageHasItsExactSizeOnTheWire(row: Row) throws {
        let frame = try F.seal(row.message, direction: row.direction, counter: row.direction == .up ? F.anchor + 1 : F.downCounter(1))
        #expect(frame.count == row.bytes)
        // The length field announces the same size.
        #expect(Int(frame[1]) << 8 | Int(frame[2]) == row.bytes)
    }

    @Test func everyKindInEveryDirectionItMayTakeIsHeaderPlusTypeBytePlusFixedFieldsPlusTag() throws {
        // Bytes of the fixed fields after the type byte (protocol.md §4.2), IPv4 media for calls.
        let fixed: [Message.Kind: Int] = [
            .sessionStart: 9, .heartbeat: 2, .alarm: 13, .alarmCancel: 14, .event: 15, .diagnosticsReport: 8,
            .sessionAccept: 8, .heartbeatAck: 12, .caseUpdate: 15, .configPush: 4, .diagnosticsRequest: 5,
            .ack: 4, .nak: 11, .callOffer: 12 + 43, .callAnswer: 8 + 43, .callEnd: 9,
        ]
        #expect(fixed.count == Message.Kind.allCases.count)
        for message in F.minimal {
            for direction in [Wire.Direction.up, .down] where message.kind.directions.contains(direction) {
                let expected = FrameHeader.size(direction) + 1 + fixed[message.kind]! + Wire.tagLength
                #expect(try Self.sealedSize(message, direction) == expected, "\(message.kind.name) \(direction)")
            }
        }
    }

    @Test func theSmallestFramesAre30BytesUpAnd32Down() {
        #expect(FrameHeader.size(.up) == 13)
        #expect(FrameHeader.size(.down) == 15)
        #expect(FrameHeader.minimumFrameLength(.up) == 30)
        #expect(FrameHeader.minimumFrameLength(.down) == 32)
        #expect(Wire.maximumFrameLength == 1024)
    }

    @Test func aHeartbeatIsNeverLongerThan32Bytes() throws {
        for battery: UInt8 in Array(0...100) + [255] {
            for status in [DeviceStatus(rawValue: 0), DeviceStatus(rawValue: 0x3f), DeviceStatus(rawValue: 0xff)] {
                let size = try Self.sealedSize(.heartbeat(Heartbeat(status: status, battery: battery)), .up)
                #expect(size <= 32)
                #expect(size == 32)
            }
        }
    }

    @Test func everyAlarmFitsIn64BytesAndTheWholeEmergencyRecordIn51() throws {
        var largest = 0
        for pressCount: UInt16? in [nil, 0, .max] {
            for hold: UInt16? in [nil, 0, .max] {
                for kind in AlarmKind.allKnown + [AlarmKind(rawValue: 0), AlarmKind(rawValue: 255)] {
                    let alarm = Alarm(
                        id: .max, kind: kind, triggeredAt: Wire.maximumUpCounter, battery: 255,
                        flags: AlarmFlags(rawValue: 0xff), pressCount: pressCount, holdMilliseconds: hold)
                    let size = try Self.sealedSize(.alarm(alarm), .up)
                    #expect(size <= 64)
                    largest = max(largest, size)
                }
            }
        }
        #expect(largest == 51)
    }

    @Test func eachSettingAddsSixBytesForU32FourForU16AndNineOrTwentyOneForTheSecondaryCentre() throws {
        let base = try Self.sealedSize(.configPush(ConfigPush(id: 1, settings: Settings())), .down)
        #expect(base == 36)
        let cases: [(Settings, Int)] = [
            (Settings(cancelWindowMilliseconds: 1), 6),
            (Settings(holdMilliseconds: 1), 4),
            (Settings(debounceMilliseconds: 1), 4),
            (Settings(mainsLostMaximumDelaySeconds: 1), 4),
            (Settings(heartbeatIntervalSeconds: 1), 4),
            (Settings(secondaryCentre: F.ipv4), 9),
            (Settings(secondaryCentre: F.ipv6), 21),
            (F.allSettings, 6 + 4 + 4 + 4 + 4 + 21),
        ]
        for (settings, added) in cases {
            #expect(try Self.sealedSize(.configPush(ConfigPush(id: 1, settings: settings)), .down) == base + added, "\(settings)")
            let accept = SessionAccept(centreTime: F.t0, heartbeatIntervalSeconds: 30, settings: settings)
            #expect(try Self.sealedSize(.sessionAccept(accept), .down) == 40 + added, "\(settings)")
        }
    }

    @Test func textAndOptionalExtensionsAddTagLengthAndValue() throws {
        let start = SessionStart(firmware: FirmwareVersion(1, 0, 3), capabilities: [], bootCount: 1)
        var withModel = start
        withModel.model = "Modèle ✓"  // 11 UTF-8 bytes
        #expect(try Self.sealedSize(.sessionStart(withModel), .up) == 39 + 2 + "Modèle ✓".utf8.count)
        #expect("Modèle ✓".utf8.count == 11)

        let report = DiagnosticsReport(id: 1, requestID: 2)
        let fields: [(DiagnosticsReport, Int)] = [
            (DiagnosticsReport(id: 1, requestID: 2, battery: 50), 3),
            (DiagnosticsReport(id: 1, requestID: 2, mainsPresent: true), 3),
            (DiagnosticsReport(id: 1, requestID: 2, buttonPresent: false), 3),
            (DiagnosticsReport(id: 1, requestID: 2, uptimeSeconds: 5), 6),
            (DiagnosticsReport(id: 1, requestID: 2, outboxPending: 5), 4),
            (DiagnosticsReport(id: 1, requestID: 2, storageWritable: true), 3),
            (DiagnosticsReport(id: 1, requestID: 2, note: String(repeating: "é", count: 100)), 202),
        ]
        #expect(try Self.sealedSize(.diagnosticsReport(report), .up) == 38)
        for (r, added) in fields {
            #expect(try Self.sealedSize(.diagnosticsReport(r), .up) == 38 + added, "\(r)")
        }
    }

    @Test func anIPv6EndpointAddsTwelveBytesToACall() throws {
        let v4 = try Self.sealedSize(.callOffer(CallOffer(id: 1, callID: 2, alarmID: 3, media: F.media(F.ipv4))), .down)
        let v6 = try Self.sealedSize(.callOffer(CallOffer(id: 1, callID: 2, alarmID: 3, media: F.media(F.ipv6))), .down)
        #expect(v4 == 87)
        #expect(v6 == 99)  // the callOffer vector of protocol.md §7.12 is 0x63 = 99 bytes
    }

    // MARK: The document

    /// Maps the row names of the table of protocol.md §4.4 to what they measure.
    static let rowsByName: [String: Row] = Dictionary(uniqueKeysWithValues: rows.map { ($0.name, $0) })

    /// The `name → bytes` pairs of the table of protocol.md §4.4 (two pairs per Markdown row).
    static func documentedTable() throws -> [(name: String, bytes: Int)] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../protocol.md")
        let text = try String(contentsOf: url, encoding: .utf8)
        guard let start = text.range(of: "### 4.4") else { return [] }
        let section = text[start.upperBound...]
        let end = section.range(of: "\n### ")?.lowerBound ?? section.endIndex
        var pairs: [(String, Int)] = []
        for line in section[..<end].split(separator: "\n") where line.hasPrefix("|") {
            let cells = line.split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "*", with: "") }
            var i = 1
            while i + 1 < cells.count {
                if let bytes = Int(cells[i + 1]), !cells[i].isEmpty { pairs.append((cells[i], bytes)) }
                i += 3
            }
        }
        return pairs
    }

    @Test func theSizeTableOfSection4_4ListsEveryRowThisSuiteMeasures() throws {
        let documented = try Self.documentedTable()
        #expect(documented.count == Self.rows.count)
        #expect(Set(documented.map(\.name)) == Set(Self.rows.map(\.name)))
    }

    /// Fails while protocol.md §4.4 disagrees with the code: the code follows the field layout of §4.2 and the
    /// frames of the vectors of §7 (alarmCancel 0x2c = 44, event 0x2d = 45, caseUpdate 0x2f = 47), so it is the
    /// table that is wrong.
    @Test func theSizeTableOfSection4_4AgreesWithTheCode() throws {
        let documented = try Self.documentedTable()
        try #require(!documented.isEmpty, "no size table found in protocol.md §4.4")
        for (name, bytes) in documented {
            let row = try #require(Self.rowsByName[name], "protocol.md §4.4 has a row '\(name)' this suite does not know")
            let actual = try Self.sealedSize(row.message, row.direction)
            #expect(actual == bytes, "protocol.md §4.4 says '\(name)' is \(bytes) bytes; the code seals \(actual)")
        }
    }
}
