import Foundation
import Testing

@testable import DeviceKit

/// The `--json` stream's lines: each event with its time, a battery that is not known as null, a recorded
/// message's type said once.
@Suite struct CenterEventJSONTests {
    static func object(_ line: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test func eachEventCarriesItsTimeInISO8601UTCWithMilliseconds() throws {
        let event = CenterEvent.online(device: 5)
        #expect(event.json(at: 1_700_000_000_123) == #"{"at":"2023-11-14T22:13:20.123Z","device":5,"event":"online"}"#)
        #expect(CenterEvent.iso8601(5) == "1970-01-01T00:00:00.005Z")
        // Every other key as it was.
        var withoutTime = try Self.object(event.json(at: 1_700_000_000_123))
        withoutTime["at"] = nil
        #expect(NSDictionary(dictionary: withoutTime) == NSDictionary(dictionary: try Self.object(event.json)))
        #expect(TimedCenterEvent(at: 0, event: event).json == #"{"at":"1970-01-01T00:00:00.000Z","device":5,"event":"online"}"#)
    }

    /// 255, the wire's "unknown", appeared as a battery of 255 %.
    @Test func anUnknownBatteryIsNull() throws {
        let unknown = Alarm(id: 1, kind: .button, triggeredAt: 0, battery: 255, flags: [])
        let event = try Self.object(CenterEvent.alarm(device: 2, alarm: unknown, lateMilliseconds: 0, dispatched: true).json)
        #expect(event["battery"] is NSNull)
        #expect(Message.alarm(unknown).json.contains(#""battery":null"#))
        #expect(Message.heartbeat(Heartbeat(status: [], battery: 255)).json == #"{"battery":null,"status":0,"type":"heartbeat"}"#)
        #expect(Message.heartbeat(Heartbeat(status: [], battery: 87)).json == #"{"battery":87,"status":0,"type":"heartbeat"}"#)
        let known = try Self.object(CenterEvent.alarm(device: 2, alarm: Alarm(id: 1, kind: .button, triggeredAt: 0, battery: 40, flags: []), lateMilliseconds: 0, dispatched: true).json)
        #expect(known["battery"] as? Int == 40)
    }

    /// `type` was at two levels: beside "event" and inside "message".
    @Test func aRecordedMessageSaysItsTypeOnce() throws {
        let event = try Self.object(CenterEvent.recorded(device: 3, message: .event(DeviceEvent(id: 9, kind: .mainsLost, at: 0, value: 0))).json)
        #expect(event["type"] as? String == "event")
        let message = try #require(event["message"] as? [String: Any])
        #expect(message["type"] == nil && message["id"] as? Int == 9)
    }

    /// The centre's fields are spelled as every name of the centre a user reads.
    @Test func theCentresTimeIsCenterTime() {
        #expect(Message.heartbeatAck(HeartbeatAck(echoedCounter: 1, centreTime: 2)).json == #"{"centerTime":2,"echoedCounter":1,"type":"heartbeatAck"}"#)
    }

    /// A call the centre ended was `"endedBy":"centre"`, the other spelling, beside `center_*` and `--center`.
    @Test func aCallTheCentreEndedIsEndedByCenter() throws {
        let ended = CenterEvent.callEnded(device: 4, callID: 2, reason: .hangUp, endedBy: .center, statistics: nil)
        #expect(ended.json == #"{"call":2,"device":4,"endedBy":"center","event":"callEnded","reason":"hangUp"}"#)
        #expect(CenterEvent.callEnded(device: 4, callID: 2, reason: .declined, endedBy: .device, statistics: nil).json.contains(#""endedBy":"device""#))
        #expect(ended.consoleLine(wall: 0)?.hasSuffix("call 2 with device 4 ended by the centre (hangUp)") == true)
    }
}
