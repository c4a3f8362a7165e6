/// An RTP data packet (RFC 3550 §5.1): the fixed header, the contributing sources and the payload.
///
/// ```
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |V=2|P|X|  CC   |M|     PT      |       sequence number         |   big-endian
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                           timestamp                           |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |           synchronization source (SSRC) identifier            |
/// +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
/// |            contributing source (CSRC) identifiers, CC × 32    |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | if X: profile u16, length u16 (32-bit words), extension words |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// | payload ...                 | if P: padding, last octet = count |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
/// Pure: parsing reads only the bytes it is given and throws `RTPError` for anything it cannot accept.
public struct RTPPacket: Hashable, Sendable {
    public var marker: Bool
    public var payloadType: UInt8
    public var sequenceNumber: UInt16
    public var timestamp: UInt32
    public var ssrc: UInt32
    public var csrcs: [UInt32]
    public var payload: [UInt8]

    /// Version 2, the only one there is.
    public static let version: UInt8 = 2
    public static let fixedHeaderLength = 12
    /// The largest datagram accepted: more than one Ethernet frame is not media we sent.
    public static let maximumLength = 1500

    static let versionShift: UInt8 = 6
    static let paddingBit: UInt8 = 0x20
    static let extensionBit: UInt8 = 0x10
    static let csrcCountMask: UInt8 = 0x0F
    static let markerBit: UInt8 = 0x80
    static let payloadTypeMask: UInt8 = 0x7F

    public init(
        marker: Bool = false, payloadType: UInt8, sequenceNumber: UInt16, timestamp: UInt32, ssrc: UInt32,
        csrcs: [UInt32] = [], payload: [UInt8]
    ) {
        self.marker = marker
        self.payloadType = payloadType & Self.payloadTypeMask
        self.sequenceNumber = sequenceNumber
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.csrcs = Array(csrcs.prefix(15))
        self.payload = payload
    }

    /// The packet's bytes (no padding, no header extension).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Self.fixedHeaderLength + 4 * csrcs.count + payload.count)
        out.append(Self.version << Self.versionShift | UInt8(csrcs.count))
        out.append((marker ? Self.markerBit : 0) | payloadType)
        out.appendBigEndian(sequenceNumber)
        out.appendBigEndian(timestamp)
        out.appendBigEndian(ssrc)
        for csrc in csrcs { out.appendBigEndian(csrc) }
        out += payload
        return out
    }

    /// Parses one datagram. A header extension is skipped; padding is removed.
    public init(bytes: some Collection<UInt8>) throws(RTPError) {
        let b = Array(bytes)
        let headerLength = try Self.headerLength(of: b)
        var end = b.count
        if b[0] & Self.paddingBit != 0 {
            let padding = Int(b[b.count - 1])
            guard padding >= 1, headerLength + padding <= b.count else { throw .badPadding(padding) }
            end -= padding
        }
        let count = Int(b[0] & Self.csrcCountMask)
        self.init(
            marker: b[1] & Self.markerBit != 0, payloadType: b[1] & Self.payloadTypeMask,
            sequenceNumber: b.bigEndianUInt16(at: 2), timestamp: b.bigEndianUInt32(at: 4), ssrc: b.bigEndianUInt32(at: 8),
            csrcs: (0..<count).map { b.bigEndianUInt32(at: 12 + 4 * $0) }, payload: Array(b[headerLength..<end]))
    }

    /// The length of the header (fixed part, CSRCs and extension) of the packet in `b`, after checking that
    /// the datagram is long enough to hold it. SRTP encrypts what follows.
    public static func headerLength(of b: [UInt8]) throws(RTPError) -> Int {
        guard b.count <= maximumLength else { throw .tooLong(b.count) }
        guard b.count >= fixedHeaderLength else { throw .tooShort(b.count) }
        let version = b[0] >> versionShift
        guard version == Self.version else { throw .wrongVersion(version) }
        var length = fixedHeaderLength + 4 * Int(b[0] & csrcCountMask)
        guard b.count >= length else { throw .truncatedCSRCs }
        if b[0] & extensionBit != 0 {
            guard b.count >= length + 4 else { throw .truncatedExtension }
            length += 4 + 4 * Int(b.bigEndianUInt16(at: length + 2))
            guard b.count >= length else { throw .truncatedExtension }
        }
        // Payload types 72–76 are RTCP's packet types 200–204 with the marker bit set (RFC 5761 §4).
        let type = b[1] & payloadTypeMask
        guard !(72...76).contains(type) else { throw .rtcpOnRTPPort }
        return length
    }
}

/// Why bytes that arrived on an RTP port are not an RTP packet. Counted as malformed, then dropped.
public enum RTPError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooShort(Int)
    case tooLong(Int)
    case wrongVersion(UInt8)
    case truncatedCSRCs
    case truncatedExtension
    case badPadding(Int)
    case rtcpOnRTPPort

    public var description: String {
        switch self {
        case .tooShort(let n): "RTP packet of \(n) bytes, shorter than the 12-byte header"
        case .tooLong(let n): "RTP packet of \(n) bytes, longer than \(RTPPacket.maximumLength)"
        case .wrongVersion(let v): "RTP version \(v), expected 2"
        case .truncatedCSRCs: "RTP header announces more CSRCs than the packet holds"
        case .truncatedExtension: "RTP header extension runs past the packet"
        case .badPadding(let n): "RTP padding count \(n) does not fit the packet"
        case .rtcpOnRTPPort: "an RTCP packet on the RTP port"
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    mutating func appendBigEndian(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    /// The caller has checked that `offset + 2 <= count`.
    func bigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(self[offset]) << 8 | UInt16(self[offset + 1])
    }

    /// The caller has checked that `offset + 4 <= count`.
    func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
}
