/// The device's DC-09 framing (docs/dc09.md, "A device reporting over DC-09"): what `DeviceFrameSession` is to
/// our protocol, this is to DC-09. It turns the reliable messages `DeliveryMachine` sends into DC-09 frames
/// and the receiver's answers back into what happened to which message; `LinkMachine` (without a handshake)
/// and `DeliveryMachine` keep doing the rest, so an alarm is stored first, sent oldest first and sent again
/// until acknowledged, as over our protocol.
///
/// - A message's sequence number is `id mod 9999 + 1`: the same on every retransmission (DC-09 asks it), and
///   an answer's sequence leads back to the message. Two messages in flight whose ids are 9,999 apart would
///   share one; the outbox never holds that many.
/// - Timestamps are the caller's wall clock, corrected by the offset a `NAK` taught (`clockOffset`).
/// - `NULL` supervision frames carry sequence 0000 and are answered by an `ACK` of 0000 (dc09-spt and
///   pysiaalarm do so).
///
/// Pure: the wall clock comes in as a value; the pad of encrypted frames from the caller's generator.
public struct DC09FrameSession: Sendable {
    public struct Configuration: Sendable {
        public var account: String
        public var receiver: String?
        public var line: String
        public var payload: DC09Frame.ID
        public var key: DC09Key?

        public init(account: String, receiver: String? = "0", line: String = "0", payload: DC09Frame.ID = .siaDCS, key: DC09Key? = nil) {
            self.account = account
            self.receiver = receiver
            self.line = line
            self.payload = payload
            self.key = key
        }
    }

    /// What an answer from the receiver means.
    public enum Answer: Hashable, Sendable {
        /// The receiver holds message `id`.
        case acknowledged(id: UInt32)
        /// Our `NULL` supervision was answered: the link is alive.
        case supervisionAnswered
        /// The receiver refused the frame (`NAK`): its clock, when it said it, is `receiverTime`; send again.
        case refused(id: UInt32?, receiverTime: DC09Timestamp?)
        /// The receiver does not take message `id` as it is (`DUH`): sending it again unchanged will not help.
        case notUnderstood(id: UInt32?)
        /// An answer to nothing we have in flight (a late answer to a message already acknowledged).
        case unmatched(DC09Frame.ID, sequence: String)
        /// Bytes that are not a DC-09 answer.
        case unreadable(DC09Error)
    }

    public let configuration: Configuration
    /// Receiver time minus ours, in seconds, as the last `NAK` with a time said.
    public private(set) var clockOffset: Int64 = 0
    /// Sequence numbers of the frames in flight, and their messages' ids.
    private var inFlight: [String: UInt32] = [:]

    public init(configuration: Configuration) { self.configuration = configuration }

    /// The frame for a reliable message, or nil for one DC-09 does not carry (`code` nil).
    /// - Parameters:
    ///   - code: the message's event code (`DC09EventCodes`), which the caller knows (a cancel's alarm kind).
    ///   - wall: our wall clock, in milliseconds since 1970.
    public mutating func frame(
        messageID: UInt32, code: DC09EventCode?, wall: UInt64, random: inout some RandomNumberGenerator
    ) throws(DC09Error) -> [UInt8]? {
        guard let code else { return nil }
        let sequence = Self.sequence(of: messageID)
        inFlight[sequence] = messageID
        return try DC09Frame(
            id: configuration.payload, sequence: sequence, receiver: configuration.receiver, line: configuration.line,
            account: configuration.account, data: code.data(configuration.payload, account: configuration.account),
            timestamp: corrected(wall)
        ).encoded(key: configuration.key, random: &random)
    }

    /// A `NULL` supervision frame.
    public func supervision(wall: UInt64, random: inout some RandomNumberGenerator) throws(DC09Error) -> [UInt8] {
        try DC09Frame(
            id: .null, sequence: "0000", receiver: configuration.receiver, line: configuration.line,
            account: configuration.account, timestamp: corrected(wall)
        ).encoded(key: configuration.key, random: &random)
    }

    /// Reads one answer (a frame from `DC09FrameSplitter`, or a datagram).
    public mutating func answer(_ bytes: some Collection<UInt8>, wall: UInt64) -> Answer {
        let frame: DC09Frame
        do {
            frame = try DC09Frame.decode(bytes) { _ in configuration.key }
        } catch {
            return .unreadable(error)
        }
        switch frame.id {
        case .ack:
            if frame.sequence == "0000" { return .supervisionAnswered }
            guard let id = inFlight.removeValue(forKey: frame.sequence) else { return .unmatched(.ack, sequence: frame.sequence) }
            return .acknowledged(id: id)
        case .nak:
            if let time = frame.timestamp { clockOffset = time.secondsSince1970 - DC09Timestamp(milliseconds: wall).secondsSince1970 }
            // A NAK carries sequence 0000: it refuses the frame just sent, which the caller knows; a
            // receiver that names the sequence says which.
            return .refused(id: inFlight[frame.sequence], receiverTime: frame.timestamp)
        case .duh:
            return .notUnderstood(id: inFlight[frame.sequence])
        default:
            return .unreadable(.unknownID(frame.id.rawValue))
        }
    }

    /// The link was lost: answers to frames sent on it will not come.
    public mutating func reset() { inFlight = [:] }

    public static func sequence(of messageID: UInt32) -> String {
        DC09Frame.sequence(Int(messageID % 9999) + 1)
    }

    private func corrected(_ wall: UInt64) -> DC09Timestamp {
        DC09Timestamp(secondsSince1970: DC09Timestamp(milliseconds: wall).secondsSince1970 + clockOffset)
    }
}
