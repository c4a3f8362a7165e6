/// Why a frame or message from the wire was refused.
///
/// Every case names what was wrong in words a person reading a log can act on. None carries key
/// material or payload bytes. `category` groups the cases the way the centre counts them.
public enum ProtocolError: Error, Equatable, Sendable {
    /// The first byte announces a major version this code does not speak.
    case unsupportedVersion(UInt8)
    /// The length field is below the smallest possible frame for its direction.
    case frameTooShort(length: Int, minimum: Int)
    /// The length field is above `Wire.maximumFrameLength`.
    case frameTooLong(length: Int, maximum: Int)
    /// A datagram's size differs from the length its header announces.
    case datagramLengthMismatch(announced: Int, received: Int)
    /// A UDP datagram ended before a whole header.
    case truncatedHeader(received: Int)
    /// The tag did not verify: the frame was forged, altered, or sealed with another key.
    case authenticationFailed
    /// The frame's counter was already accepted in this session.
    case replayed(counter: UInt64)
    /// The frame's counter is older than the session or the replay window accepts.
    case stale(counter: UInt64)
    /// The frame belongs to another device than the one this key or session is for.
    case wrongDevice(expected: UInt32, received: UInt32)
    /// The frame travels the other way than this receiver accepts.
    case wrongDirection(Wire.Direction)
    /// The message type byte is not one this version knows.
    case unknownMessageType(UInt8)
    /// The message body ended before field `field` was complete.
    case truncatedBody(message: String, field: String)
    /// A field holds a value the protocol does not allow.
    case invalidField(message: String, field: String, reason: String)
    /// An extension marked critical is not understood, so the message must not be acted on.
    case unknownCriticalExtension(message: String, tag: UInt8)
    /// A counter ran out: the sender must start a new session (down) or be re-keyed (up).
    case counterExhausted
    /// A message is too large for one frame.
    case messageTooLarge(bodyLength: Int, maximum: Int)
    /// An authentic frame whose body this version cannot decode; its counter is used up, and it says
    /// what can still be done (the id to `nak`, an alarm read leniently).
    indirect case undecodable(UndecodableMessage)

    /// How the centre and the device count refusals.
    public enum Category: String, Sendable, CaseIterable {
        case malformed, unsupported, oversized, forged, replayed, stale
    }

    public var category: Category {
        switch self {
        case .unsupportedVersion, .unknownMessageType, .unknownCriticalExtension: return .unsupported
        case .frameTooLong, .messageTooLarge: return .oversized
        case .frameTooShort, .datagramLengthMismatch, .truncatedHeader, .truncatedBody, .invalidField,
            .wrongDirection, .counterExhausted:
            return .malformed
        case .authenticationFailed, .wrongDevice: return .forged
        case .replayed: return .replayed
        case .stale: return .stale
        case .undecodable(let message): return message.cause.category
        }
    }
}

extension ProtocolError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unsupportedVersion(let v):
            return "frame announces protocol version \(v); this program speaks version \(Wire.version) only"
        case .frameTooShort(let length, let minimum):
            return "frame length \(length) is shorter than the smallest valid frame (\(minimum) bytes)"
        case .frameTooLong(let length, let maximum):
            return "frame length \(length) exceeds the maximum of \(maximum) bytes"
        case .datagramLengthMismatch(let announced, let received):
            return "datagram holds \(received) bytes but its header announces \(announced)"
        case .truncatedHeader(let received):
            return "only \(received) bytes: too short for a frame header"
        case .authenticationFailed:
            return "authentication failed: the frame was forged, altered in transit, or sealed with another key"
        case .replayed(let counter):
            return "frame counter \(counter) was already accepted: a replayed or duplicated frame"
        case .stale(let counter):
            return "frame counter \(counter) is older than this session accepts: a stale frame"
        case .wrongDevice(let expected, let received):
            return "frame is from device \(received), expected device \(expected)"
        case .wrongDirection(let d):
            return "frame travels \(d == .up ? "device to centre" : "centre to device"), the wrong way for this receiver"
        case .unknownMessageType(let t):
            return "unknown message type 0x\(String(t, radix: 16))"
        case .truncatedBody(let message, let field):
            return "\(message) message ends before its field '\(field)'"
        case .invalidField(let message, let field, let reason):
            return "\(message) message has an invalid '\(field)': \(reason)"
        case .unknownCriticalExtension(let message, let tag):
            return "\(message) message carries critical extension 0x\(String(tag, radix: 16)) that this version does not understand"
        case .counterExhausted:
            return "frame counter exhausted: start a new session or re-key the device"
        case .messageTooLarge(let bodyLength, let maximum):
            return "message body of \(bodyLength) bytes does not fit in a frame (at most \(maximum))"
        case .undecodable(let message):
            return "an authentic frame the receiver cannot read: \(message.cause)"
        }
    }
}
