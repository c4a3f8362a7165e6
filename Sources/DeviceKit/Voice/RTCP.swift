/// RTCP packets (RFC 3550 §6): sender and receiver reports, the CNAME, and BYE, sent as one compound packet
/// to the RTP port + 1 (SR or RR first, then SDES, then BYE when leaving).
///
/// ```
/// header (every packet):  V=2 | P | count (5 bits) | packet type u8 | length u16 (32-bit words − 1)
/// SR (200):  SSRC | NTP timestamp u64 | RTP timestamp u32 | packets u32 | octets u32 | report blocks
/// RR (201):  SSRC | report blocks
/// report block (24 bytes):  SSRC | fraction lost u8 | cumulative lost i24 | extended highest seq u32
///                           | jitter u32 | last SR (LSR) u32 | delay since last SR (DLSR, 1/65536 s) u32
/// SDES (202): SSRC | CNAME = 1 | length u8 | text | END = 0 | padding to 32 bits
/// BYE (203):  SSRCs | optional reason: length u8 | text | padding
/// ```
/// Pure. Every integer is big-endian.
public enum RTCPPacket: Hashable, Sendable {
    case senderReport(SenderReport)
    case receiverReport(ssrc: UInt32, reports: [ReportBlock])
    case sourceDescription(ssrc: UInt32, cname: String)
    case bye(ssrcs: [UInt32], reason: String?)
    /// A packet type this stub does not interpret (APP, feedback…), skipped.
    case other(packetType: UInt8)

    public static let senderReportType: UInt8 = 200
    public static let receiverReportType: UInt8 = 201
    public static let sourceDescriptionType: UInt8 = 202
    public static let byeType: UInt8 = 203
    static let cnameItem: UInt8 = 1

    public struct SenderReport: Hashable, Sendable {
        public var ssrc: UInt32
        /// Wall-clock time of sending, NTP format (seconds since 1900 in the upper 32 bits).
        public var ntpTimestamp: UInt64
        public var rtpTimestamp: UInt32
        public var packetCount: UInt32
        public var octetCount: UInt32
        public var reports: [ReportBlock]

        public init(ssrc: UInt32, ntpTimestamp: UInt64, rtpTimestamp: UInt32, packetCount: UInt32, octetCount: UInt32, reports: [ReportBlock]) {
            self.ssrc = ssrc
            self.ntpTimestamp = ntpTimestamp
            self.rtpTimestamp = rtpTimestamp
            self.packetCount = packetCount
            self.octetCount = octetCount
            self.reports = reports
        }
    }

    /// What the sender of the report knows about source `ssrc` (RFC 3550 §6.4.1).
    public struct ReportBlock: Hashable, Sendable {
        public var ssrc: UInt32
        public var fractionLost: UInt8
        /// 24 bits signed on the wire.
        public var cumulativeLost: Int32
        public var extendedHighestSequence: UInt32
        public var jitter: UInt32
        public var lastSenderReport: UInt32
        public var delaySinceLastSenderReport: UInt32

        public init(
            ssrc: UInt32, fractionLost: UInt8, cumulativeLost: Int32, extendedHighestSequence: UInt32, jitter: UInt32,
            lastSenderReport: UInt32, delaySinceLastSenderReport: UInt32
        ) {
            self.ssrc = ssrc
            self.fractionLost = fractionLost
            self.cumulativeLost = max(-0x80_0000, min(0x7F_FFFF, cumulativeLost))
            self.extendedHighestSequence = extendedHighestSequence
            self.jitter = jitter
            self.lastSenderReport = lastSenderReport
            self.delaySinceLastSenderReport = delaySinceLastSenderReport
        }
    }

    /// A compound packet's bytes.
    public static func compound(_ packets: [RTCPPacket]) -> [UInt8] {
        packets.flatMap(\.bytes)
    }

    public var bytes: [UInt8] {
        var body: [UInt8] = []
        let count: Int
        let type: UInt8
        switch self {
        case .senderReport(let sr):
            type = Self.senderReportType
            let reports = sr.reports.prefix(31)
            count = reports.count
            body.appendBigEndian(sr.ssrc)
            body.appendBigEndian(UInt32(truncatingIfNeeded: sr.ntpTimestamp >> 32))
            body.appendBigEndian(UInt32(truncatingIfNeeded: sr.ntpTimestamp))
            body.appendBigEndian(sr.rtpTimestamp)
            body.appendBigEndian(sr.packetCount)
            body.appendBigEndian(sr.octetCount)
            for report in reports { body += report.bytes }
        case .receiverReport(let ssrc, let reports):
            type = Self.receiverReportType
            count = min(reports.count, 31)
            body.appendBigEndian(ssrc)
            for report in reports.prefix(31) { body += report.bytes }
        case .sourceDescription(let ssrc, let cname):
            type = Self.sourceDescriptionType
            count = 1
            let text = Array(cname.utf8.prefix(255))
            body.appendBigEndian(ssrc)
            body += [Self.cnameItem, UInt8(text.count)] + text + [0]
            while body.count % 4 != 0 { body.append(0) }
        case .bye(let ssrcs, let reason):
            type = Self.byeType
            count = min(ssrcs.count, 31)
            for ssrc in ssrcs.prefix(31) { body.appendBigEndian(ssrc) }
            if let reason {
                let text = Array(reason.utf8.prefix(255))
                body += [UInt8(text.count)] + text
                while body.count % 4 != 0 { body.append(0) }
            }
        case .other(let packetType):
            type = packetType
            count = 0
        }
        var out: [UInt8] = [RTPPacket.version << 6 | UInt8(count), type]
        out.appendBigEndian(UInt16(body.count / 4))
        return out + body
    }

    /// Parses a compound packet. Throws for anything that does not add up; nothing in it is trusted further.
    public static func parseCompound(_ bytes: [UInt8]) throws(RTCPError) -> [RTCPPacket] {
        guard bytes.count <= RTPPacket.maximumLength else { throw .tooLong(bytes.count) }
        guard bytes.count >= 4 else { throw .tooShort(bytes.count) }
        var packets: [RTCPPacket] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= 4 else { throw .truncated }
            guard bytes[offset] >> 6 == RTPPacket.version else { throw .wrongVersion(bytes[offset] >> 6) }
            let count = Int(bytes[offset] & 0x1F)
            let type = bytes[offset + 1]
            let length = 4 * (Int(bytes.bigEndianUInt16(at: offset + 2)) + 1)
            guard offset + length <= bytes.count else { throw .truncated }
            var body = Array(bytes[(offset + 4)..<(offset + length)])
            if bytes[offset] & RTPPacket.paddingBit != 0 {
                guard let padding = body.last, padding > 0, Int(padding) <= body.count else { throw .badPadding }
                body.removeLast(Int(padding))
            }
            packets.append(try parse(type: type, count: count, body: body))
            offset += length
        }
        if let first = packets.first {
            switch first {
            case .senderReport, .receiverReport: break
            default: throw .notAReportFirst
            }
        }
        return packets
    }

    private static func parse(type: UInt8, count: Int, body: [UInt8]) throws(RTCPError) -> RTCPPacket {
        switch type {
        case senderReportType:
            guard body.count >= 24 + 24 * count else { throw .truncated }
            let ntp = UInt64(body.bigEndianUInt32(at: 4)) << 32 | UInt64(body.bigEndianUInt32(at: 8))
            return .senderReport(
                SenderReport(
                    ssrc: body.bigEndianUInt32(at: 0), ntpTimestamp: ntp, rtpTimestamp: body.bigEndianUInt32(at: 12),
                    packetCount: body.bigEndianUInt32(at: 16), octetCount: body.bigEndianUInt32(at: 20),
                    reports: (0..<count).map { ReportBlock(body, at: 24 + 24 * $0) }))
        case receiverReportType:
            guard body.count >= 4 + 24 * count else { throw .truncated }
            return .receiverReport(ssrc: body.bigEndianUInt32(at: 0), reports: (0..<count).map { ReportBlock(body, at: 4 + 24 * $0) })
        case sourceDescriptionType:
            // The first chunk's CNAME, if any; other items are skipped.
            guard count >= 1, body.count >= 4 else { return .other(packetType: type) }
            let ssrc = body.bigEndianUInt32(at: 0)
            var i = 4
            while i + 2 <= body.count, body[i] != 0 {
                let length = Int(body[i + 1])
                guard i + 2 + length <= body.count else { throw .truncated }
                if body[i] == cnameItem {
                    return .sourceDescription(ssrc: ssrc, cname: String(decoding: body[(i + 2)..<(i + 2 + length)], as: UTF8.self))
                }
                i += 2 + length
            }
            return .other(packetType: type)
        case byeType:
            guard body.count >= 4 * count else { throw .truncated }
            let ssrcs = (0..<count).map { body.bigEndianUInt32(at: 4 * $0) }
            var reason: String?
            if body.count > 4 * count {
                let length = Int(body[4 * count])
                guard 4 * count + 1 + length <= body.count else { throw .truncated }
                reason = String(decoding: body[(4 * count + 1)..<(4 * count + 1 + length)], as: UTF8.self)
            }
            return .bye(ssrcs: ssrcs, reason: reason)
        default:
            return .other(packetType: type)
        }
    }
}

extension RTCPPacket.ReportBlock {
    var bytes: [UInt8] {
        var out: [UInt8] = []
        out.appendBigEndian(ssrc)
        out.appendBigEndian(UInt32(fractionLost) << 24 | UInt32(bitPattern: cumulativeLost) & 0x00FF_FFFF)
        out.appendBigEndian(extendedHighestSequence)
        out.appendBigEndian(jitter)
        out.appendBigEndian(lastSenderReport)
        out.appendBigEndian(delaySinceLastSenderReport)
        return out
    }

    /// The caller has checked that 24 bytes are there.
    init(_ b: [UInt8], at offset: Int) {
        let word = b.bigEndianUInt32(at: offset + 4)
        let lost24 = word & 0x00FF_FFFF
        let lost = lost24 & 0x80_0000 != 0 ? Int32(bitPattern: lost24 | 0xFF00_0000) : Int32(lost24)
        self.init(
            ssrc: b.bigEndianUInt32(at: offset), fractionLost: UInt8(word >> 24), cumulativeLost: lost,
            extendedHighestSequence: b.bigEndianUInt32(at: offset + 8), jitter: b.bigEndianUInt32(at: offset + 12),
            lastSenderReport: b.bigEndianUInt32(at: offset + 16), delaySinceLastSenderReport: b.bigEndianUInt32(at: offset + 20))
    }
}

public enum RTCPError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooShort(Int)
    case tooLong(Int)
    case wrongVersion(UInt8)
    case truncated
    case badPadding
    case notAReportFirst

    public var description: String {
        switch self {
        case .tooShort(let n): "RTCP packet of \(n) bytes, shorter than a header"
        case .tooLong(let n): "RTCP packet of \(n) bytes, longer than \(RTPPacket.maximumLength)"
        case .wrongVersion(let v): "RTCP version \(v), expected 2"
        case .truncated: "RTCP length field runs past the datagram"
        case .badPadding: "RTCP padding does not fit"
        case .notAReportFirst: "an RTCP compound packet must begin with SR or RR"
        }
    }
}
