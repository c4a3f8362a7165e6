import Foundation

/// What the centre observed or did, for the `--json` stream, the console, and tests.
public enum CenterEvent: Hashable, Sendable {
    /// Bound and serving.
    case listening(CenterPorts)
    case sessionOpened(device: UInt32, anchor: UInt64)
    /// A new alarm, recorded durably. `lateMilliseconds` is the centre's receipt time minus `triggeredAt`;
    /// it is only meaningful when `alarm.flags` has `clockSynchronised`.
    case alarm(device: UInt32, alarm: Alarm, lateMilliseconds: Int64, dispatched: Bool)
    /// A retransmitted or duplicated alarm: acknowledged again, not recorded again.
    case duplicateAlarm(device: UInt32, alarmID: UInt32)
    /// An alarm recorded and dispatched with something an operator must know: its id reused for another
    /// call for help (the device's ids restarted), or fields that could not be read (a later version's
    /// critical extension, a value out of range), each named.
    case alarmFlagged(device: UInt32, alarmID: UInt32, flags: [String])
    /// A reliable message other than an alarm reused an id for other content: refused with `nak(invalid)`.
    case idConflict(device: UInt32, id: UInt32, kind: String)
    /// The device moved to a later key epoch (re-provisioned); the old key is retired.
    case keyEpochChanged(device: UInt32, epoch: UInt16)
    /// The person withdrew an alarm (applied now, or when the alarm arrives if the cancel came first).
    case alarmCancelled(device: UInt32, alarmID: UInt32)
    /// Another reliable message, recorded durably (events, diagnostics reports, call signalling).
    case recorded(device: UInt32, message: Message)
    case caseUpdate(caseID: Int64, device: UInt32, alarmID: UInt32, state: CaseState)
    /// The device acknowledged a case update.
    case caseUpdateDelivered(device: UInt32, updateID: UInt32)
    case online(device: UInt32)
    case offline(device: UInt32)
    /// `count` frames were refused or dropped for `reason` (a category of protocol.md §6, a drop reason, or
    /// "unknownDevice") during the last report interval (a second): refusals are reported as counts, so that
    /// a flood costs one event per reason and second, never one per frame.
    case refused(reason: String, count: Int)
    /// `count` events were not delivered to this observer, which did not keep up (each observer's buffer is
    /// bounded); reported once there is room again.
    case eventsDropped(count: Int)
    /// A TCP connection was closed by the centre.
    case connectionClosed(reason: String)
    /// The centre offered a call to the device (protocol.md §4.8).
    case callOffered(device: UInt32, callID: UInt32, alarmID: UInt32)
    /// The device answered; media flows both ways.
    case callStarted(device: UInt32, callID: UInt32)
    /// No media from the device for `seconds`: the call is ended with `mediaSilent`; the case stays open.
    case mediaSilent(device: UInt32, callID: UInt32, seconds: Double)
    /// The call ended, by the centre or the device, with the centre's media numbers for it.
    case callEnded(device: UInt32, callID: UInt32, reason: CallEndReason, endedBy: CallEndedBy, statistics: MediaStatistics?)
    /// The operator's SIP leg of a bridged call about `device`'s case (protocol.md §8), on `phone`.
    case operatorCall(device: UInt32, phone: String, stage: OperatorCallStage)

    /// One line of JSON with sorted keys, `"event"` naming the case.
    public var json: String { Self.line(jsonObject) }

    /// The JSON line with `"at"`: `wall` (milliseconds since the Unix epoch) in ISO 8601 UTC with milliseconds,
    /// as the `--json` stream writes every event.
    public func json(at wall: WireTime) -> String {
        var object = jsonObject
        object["at"] = Self.iso8601(wall)
        return Self.line(object)
    }

    private static func line(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return #"{"event":"unencodable"}"#
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// `2026-12-04T20:35:39.123Z`.
    static func iso8601(_ wall: WireTime) -> String {
        var seconds = time_t(wall / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(digits(parts.tm_year + 1900, 4))-\(digits(parts.tm_mon + 1, 2))-\(digits(parts.tm_mday, 2))T"
            + "\(digits(parts.tm_hour, 2)):\(digits(parts.tm_min, 2)):\(digits(parts.tm_sec, 2)).\(digits(Int32(wall % 1000), 3))Z"
    }

    private var jsonObject: [String: Any] {
        var object: [String: Any] = [:]
        switch self {
        case .listening(let ports):
            object = ["event": "listening", "tcp": ports.tcp, "udp": ports.udp]
            if let metrics = ports.metrics { object["metrics"] = metrics }
            if let dc09 = ports.dc09 { object["dc09"] = dc09 }
            if let sip = ports.sip { object["sip"] = sip }
            if let web = ports.web { object["web"] = web }
        case .sessionOpened(let device, let anchor):
            object = ["event": "sessionOpened", "device": device, "anchor": anchor]
        case .alarm(let device, let alarm, let late, let dispatched):
            object = [
                "event": "alarm", "device": device, "alarm": alarm.id, "kind": alarm.kind.description,
                "triggeredAt": alarm.triggeredAt, "battery": alarm.battery == 255 ? NSNull() : alarm.battery, "flags": alarm.flags.rawValue,
                "lateMilliseconds": late, "clockVerified": alarm.flags.contains(.clockSynchronised),
                "dispatched": dispatched,
            ]
            if let presses = alarm.pressCount { object["pressCount"] = presses }
            if let hold = alarm.holdMilliseconds { object["holdMilliseconds"] = hold }
        case .duplicateAlarm(let device, let alarmID):
            object = ["event": "duplicateAlarm", "device": device, "alarm": alarmID]
        case .alarmFlagged(let device, let alarmID, let flags):
            object = ["event": "alarmFlagged", "device": device, "alarm": alarmID, "flags": flags]
        case .idConflict(let device, let id, let kind):
            object = ["event": "idConflict", "device": device, "id": id, "type": kind]
        case .keyEpochChanged(let device, let epoch):
            object = ["event": "keyEpochChanged", "device": device, "epoch": epoch]
        case .alarmCancelled(let device, let alarmID):
            object = ["event": "alarmCancelled", "device": device, "alarm": alarmID]
        case .recorded(let device, let message):
            // The message's fields under "message"; its type once, beside "event".
            object = ["event": "recorded", "device": device, "type": message.kind.name]
            if let data = message.json.data(using: .utf8),
                var fields = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
            {
                fields["type"] = nil
                object["message"] = fields
            }
        case .caseUpdate(let caseID, let device, let alarmID, let state):
            object = ["event": "caseUpdate", "case": caseID, "device": device, "alarm": alarmID, "state": state.description]
        case .caseUpdateDelivered(let device, let updateID):
            object = ["event": "caseUpdateDelivered", "device": device, "update": updateID]
        case .online(let device):
            object = ["event": "online", "device": device]
        case .offline(let device):
            object = ["event": "offline", "device": device]
        case .refused(let reason, let count):
            object = ["event": "refused", "reason": reason, "count": count]
        case .eventsDropped(let count):
            object = ["event": "eventsDropped", "count": count]
        case .connectionClosed(let reason):
            object = ["event": "connectionClosed", "reason": reason]
        case .callOffered(let device, let callID, let alarmID):
            object = ["event": "callOffered", "device": device, "call": callID, "alarm": alarmID]
        case .callStarted(let device, let callID):
            object = ["event": "callStarted", "device": device, "call": callID]
        case .mediaSilent(let device, let callID, let seconds):
            object = ["event": "mediaSilent", "device": device, "call": callID, "seconds": seconds]
        case .callEnded(let device, let callID, let reason, let endedBy, let statistics):
            object = ["event": "callEnded", "device": device, "call": callID, "reason": reason.description, "endedBy": endedBy.rawValue]
            if let media = Self.mediaObject(statistics) { object["media"] = media }
        case .operatorCall(let device, let phone, let stage):
            object = ["event": "operatorCall", "device": device, "phone": phone]
            switch stage {
            case .ringing: object["stage"] = "ringing"
            case .answered(let setup):
                object["stage"] = "answered"
                object["setupMs"] = setup
            case .bridged: object["stage"] = "bridged"
            case .notAnswered(let why):
                object["stage"] = "notAnswered"
                object["reason"] = why
            case .waiting(let why):
                object["stage"] = "waiting"
                object["reason"] = why
            case .ended(let why, let statistics):
                object["stage"] = "ended"
                object["reason"] = why
                if let media = Self.mediaObject(statistics) { object["media"] = media }
            }
        }
        return object
    }
}

extension CenterEvent {
    static func mediaObject(_ statistics: MediaStatistics?) -> [String: Any]? {
        guard let statistics, let data = try? JSONEncoder().encode(statistics) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }
}

/// The ports a centre is bound to; with port 0 in the configuration, the ones the system chose.
public struct CenterPorts: Hashable, Sendable {
    public var tcp: Int
    public var udp: Int
    public var metrics: Int?
    /// The DC-09 port (TCP and UDP), when the centre has one.
    public var dc09: Int?
    /// The SIP port (UDP and TCP) of the operators' phones' leg, when the centre has them.
    public var sip: Int?
    /// The operators' web console (HTTP), when the centre serves it.
    public var web: Int?

    public init(tcp: Int, udp: Int, metrics: Int?, dc09: Int? = nil, sip: Int? = nil, web: Int? = nil) {
        self.web = web
        self.tcp = tcp
        self.udp = udp
        self.metrics = metrics
        self.dc09 = dc09
        self.sip = sip
    }
}

/// Which end of a call ended it; in JSON `"center"` or `"device"`, as every name of the centre a user reads.
public enum CallEndedBy: String, Hashable, Sendable {
    case center
    case device

    /// In a sentence ("ended by the centre").
    public var words: String {
        switch self {
        case .center: "centre"
        case .device: "device"
        }
    }
}
