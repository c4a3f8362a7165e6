import Crypto
import NIOCore

/// An authentic frame (its tag verified, its counter consumed) whose body this version cannot decode: a
/// critical extension it does not know (a v1.1 message), or one bad field. Its sender is proven, so the
/// receiver answers a reliable one with `nak` (protocol.md §4.1) instead of leaving it to retry forever,
/// and an alarm is read as far as it can be, recorded and dispatched (`LenientAlarm`).
public struct UndecodableMessage: Equatable, Sendable {
    /// The message type, when the type byte is one this version knows.
    public var kind: Message.Kind?
    /// The id of a reliable message, readable whatever follows it: it is the first field of every one.
    public var id: UInt32?
    /// Why the body was refused.
    public var cause: ProtocolError
    /// An alarm, read as far as it goes.
    public var alarm: LenientAlarm?

    /// What to do about `body` (already authenticated), refused by the decoder with `cause`.
    public init(body: ByteBuffer, cause: ProtocolError) {
        var reader = body
        let type = reader.readInteger(as: UInt8.self)
        kind = type.flatMap(Message.Kind.init(rawValue:))
        id = kind.flatMap { $0.isReliable ? reader.getInteger(at: reader.readerIndex, as: UInt32.self) : nil }
        self.cause = cause
        alarm = kind == .alarm ? LenientAlarm(body: reader, cause: cause) : nil
    }

    /// The `nak` reason a reliable one is answered with: `unsupported` for a critical extension this version
    /// does not know, `invalid` for anything else.
    public var nakReason: NakReason {
        if case .unknownCriticalExtension = cause { return .unsupported }
        return .invalid
    }
}

/// An alarm whose body did not decode strictly, read leniently: what is safe to use is used, what is not
/// is named in `defects`. A call for help of unknown detail is still a call for help.
public struct LenientAlarm: Equatable, Sendable {
    public var alarm: Alarm
    /// The fields that could not be read or were refused, in words for the operator and the journal.
    public var defects: [String]

    /// `body` after the type byte; `nil` when not even the alarm's id is there.
    init?(body: ByteBuffer, cause: ProtocolError) {
        var r = body
        guard let id = r.readInteger(as: UInt32.self) else { return nil }
        var defects = ["\(cause)"]
        let kind = r.readInteger(as: UInt8.self).map(AlarmKind.init(rawValue:))
        let triggeredAt = r.readUInt48()
        var battery = r.readInteger(as: UInt8.self)
        let flags = r.readInteger(as: UInt8.self).map(AlarmFlags.init(rawValue:))
        if kind == nil || triggeredAt == nil || battery == nil || flags == nil { defects.append("the alarm ends before its fixed fields") }
        if let b = battery, b > 100, b != 255 {
            defects.append("battery \(b) is not a percentage")
            battery = 255
        }
        var alarm = Alarm(
            id: id, kind: kind ?? AlarmKind(rawValue: 0), triggeredAt: triggeredAt ?? 0, battery: battery ?? 255,
            flags: flags ?? [])
        // Extensions only when they all read strictly; a critical one this version does not know leaves
        // the known ones unread too, since it may change their meaning.
        var reader = BodyReader(r, message: .alarm)
        do throws(ProtocolError) {
            var pressCount: UInt16?
            var hold: UInt16?
            try reader.extensions { (tag, v) throws(ProtocolError) in
                switch tag {
                case 0x01: pressCount = try v.u16("pressCount")
                case 0x02: hold = try v.u16("holdMilliseconds")
                default: return false
                }
                return true
            }
            alarm.pressCount = pressCount
            alarm.holdMilliseconds = hold
        } catch {
            defects.append("its extensions are ignored")
        }
        self.alarm = alarm
        self.defects = defects
    }

    /// Whether the alarm's time is known (else the centre takes the time it arrived).
    public var knowsWhen: Bool { alarm.triggeredAt != 0 }
}

extension Message.Kind {
    /// Whether the receiver must acknowledge messages of this kind (they carry an id as their first field).
    public var isReliable: Bool {
        switch self {
        case .alarm, .alarmCancel, .event, .diagnosticsReport, .caseUpdate, .configPush, .diagnosticsRequest,
            .callOffer, .callAnswer, .callEnd:
            true
        case .sessionStart, .heartbeat, .sessionAccept, .heartbeatAck, .ack, .nak: false
        }
    }
}

extension Message {
    /// A digest of what makes this reliable message the one it is, so that a receiver tells a retransmission
    /// (same id, same identity) from a reused id (same id, other content: a device whose ids restarted)
    /// (protocol.md §4.7). The fields a retransmission may legitimately change (battery, flags, extensions)
    /// are left out: an alarm is its kind and the instant it was raised.
    public var identityDigest: [UInt8] {
        var b = ByteBuffer()
        b.writeInteger(kind.rawValue)
        switch self {
        case .alarm(let m):
            b.writeInteger(m.kind.rawValue)
            b.writeUInt48(m.triggeredAt)
        case .alarmCancel(let m):
            b.writeInteger(m.alarmID)
        case .event(let m):
            b.writeInteger(m.kind.rawValue)
            b.writeUInt48(m.at)
            b.writeInteger(m.value)
        case .diagnosticsReport(let m):
            b.writeInteger(m.requestID)
        case .caseUpdate(let m):
            b.writeInteger(m.alarmID)
            b.writeInteger(m.state.rawValue)
        case .callOffer(let m):
            b.writeInteger(m.callID)
            b.writeInteger(m.alarmID)
        case .callAnswer(let m):
            b.writeInteger(m.callID)
        case .callEnd(let m):
            b.writeInteger(m.callID)
            b.writeInteger(m.reason.rawValue)
        case .configPush, .diagnosticsRequest, .sessionStart, .heartbeat, .sessionAccept, .heartbeatAck, .ack, .nak:
            // Whole body: none of these is retransmitted with other content.
            try? encodeBody(into: &b)
        }
        return Array(SHA256.hash(data: Array(b.readableBytesView)))
    }
}
