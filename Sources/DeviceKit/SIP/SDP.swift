import NIOCore

/// A session description (RFC 8866, formerly RFC 4566): what a SIP offer or answer says about its media —
/// who made it (o=), where to send (c=), and one section per stream (m=) with its attributes (a=).
///
/// ```
/// v=0
/// o=- 4711 1 IN IP4 192.0.2.10          origin: username, session id, version, address
/// s=-
/// c=IN IP4 192.0.2.10                   session-level connection (a media section may override it)
/// t=0 0
/// m=audio 40000 RTP/SAVP 0              media, port, proto, formats (payload types)
/// a=rtpmap:0 PCMU/8000
/// a=ptime:20
/// a=sendrecv
/// a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<base64 of 30 bytes>
/// ```
/// Parsing is tolerant of what we do not use (unknown lines such as b=, i=, k=, r=, z=, and unknown
/// attributes are skipped or kept as written) and strict on what we do: v=, o=, s=, c=, t=, m= and the
/// attributes `rtpmap`, `ptime`, `rtcp`, `crypto` and the directions must be well formed, or the whole
/// description is refused with an `SDPError` naming the line. Lines end with CRLF or a bare LF. A description
/// is at most `maximumSize` bytes, so a hostile peer cannot make us hold more.
///
/// Serializing writes v, o, s, c, t, the session attributes, then each section's m, c and attributes, with
/// CRLF; lines that parsing skipped are not written back.
///
/// Pure: no clock, no I/O.
public struct SessionDescription: Hashable, Sendable, CustomStringConvertible {
    /// The largest description parsed, in bytes: a few media sections with their attributes take 1–2 KiB.
    public static let maximumSize = 16_384

    public var origin: SDPOrigin
    /// s=: "-" when there is nothing to say.
    public var sessionName: String
    /// The session-level c=, used by every media section without its own.
    public var connection: SDPConnection?
    /// t=<start> <stop> (NTP seconds; 0 0 for an unbounded session, the only kind SIP uses).
    public var timing: SDPTiming
    /// Session-level a= lines (a direction here applies to every media section without its own).
    public var attributes: [SDPAttribute]
    public var media: [MediaSection]

    public init(
        origin: SDPOrigin, sessionName: String = "-", connection: SDPConnection?, timing: SDPTiming = SDPTiming(),
        attributes: [SDPAttribute] = [], media: [MediaSection]
    ) {
        self.origin = origin
        self.sessionName = sessionName
        self.connection = connection
        self.timing = timing
        self.attributes = attributes
        self.media = media
    }

    /// The session-level direction attribute, if any.
    public var direction: SDPDirection? { attributes.lazy.compactMap { SDPDirection(rawValue: $0.name) }.last }

    /// The text of the description, CRLF after every line.
    public var serialized: String {
        var lines = ["v=0", "o=\(origin)", "s=\(sessionName)"]
        if let connection { lines.append("c=\(connection)") }
        lines.append("t=\(timing.start) \(timing.stop)")
        lines += attributes.map { "a=\($0)" }
        for section in media {
            let port = section.portCount.map { "\(section.port)/\($0)" } ?? "\(section.port)"
            lines.append((["m=\(section.media)", port, section.proto] + section.formats).joined(separator: " "))
            if let connection = section.connection { lines.append("c=\(connection)") }
            lines += section.attributes.map { "a=\($0)" }
        }
        return lines.map { $0 + "\r\n" }.joined()
    }

    public var description: String { serialized }
}

/// o=<username> <sess-id> <sess-version> IN <IP4|IP6> <address>. The ids stay text (digits, possibly more
/// than 64 bits' worth from some peers); the address is not used for media, so it may be a host name.
public struct SDPOrigin: Hashable, Sendable, CustomStringConvertible {
    public var username: String
    public var sessionID: String
    public var sessionVersion: String
    public var addressType: SDPAddressType
    public var address: String

    public init(username: String = "-", sessionID: String, sessionVersion: String, addressType: SDPAddressType, address: String) {
        self.username = username
        self.sessionID = sessionID
        self.sessionVersion = sessionVersion
        self.addressType = addressType
        self.address = address
    }

    public var description: String { "\(username) \(sessionID) \(sessionVersion) IN \(addressType.rawValue) \(address)" }
}

public enum SDPAddressType: String, Hashable, Sendable {
    case ip4 = "IP4"
    case ip6 = "IP6"

    /// The type of an IP literal: IP6 when it has a colon.
    public init(literal: String) { self = literal.contains(":") ? .ip6 : .ip4 }
}

/// c=IN <IP4|IP6> <address>: where the media goes. Only unicast IP literals are accepted (a host name or a
/// multicast TTL is refused at parsing: there is nothing to resolve it with in a pure codec, and no SIP
/// phone sends one).
public struct SDPConnection: Hashable, Sendable, CustomStringConvertible {
    public var addressType: SDPAddressType
    public var address: String

    public init(addressType: SDPAddressType, address: String) {
        self.addressType = addressType
        self.address = address
    }

    /// A connection for an IP literal, its type taken from its form.
    public init(address: String) { self.init(addressType: SDPAddressType(literal: address), address: address) }

    public var description: String { "IN \(addressType.rawValue) \(address)" }
}

public struct SDPTiming: Hashable, Sendable {
    public var start: UInt64
    public var stop: UInt64
    public init(start: UInt64 = 0, stop: UInt64 = 0) {
        self.start = start
        self.stop = stop
    }
}

/// One a= line: `a=name:value` or a flag `a=name`.
public struct SDPAttribute: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var value: String?

    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }

    public var description: String { value.map { "\(name):\($0)" } ?? name }
}

/// The direction of a media stream (RFC 8866 §6.7), from the point of view of the side that wrote it.
public enum SDPDirection: String, Hashable, Sendable {
    case sendrecv, sendonly, recvonly, inactive

    /// The direction an answer gives to an offered one (RFC 3264 §6.1): sendonly ↔ recvonly.
    public var answered: SDPDirection {
        switch self {
        case .sendrecv: .sendrecv
        case .sendonly: .recvonly
        case .recvonly: .sendonly
        case .inactive: .inactive
        }
    }
}

/// a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>].
public struct SDPRTPMap: Hashable, Sendable {
    public var payloadType: String
    public var encoding: String
    public var clockRate: Int
    public var channels: Int?

    public init(payloadType: String, encoding: String, clockRate: Int, channels: Int? = nil) {
        self.payloadType = payloadType
        self.encoding = encoding
        self.clockRate = clockRate
        self.channels = channels
    }

    init?(_ value: String) {
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, isPayloadType(parts[0]) else { return nil }
        let codec = parts[1].split(separator: "/", omittingEmptySubsequences: false)
        guard (2...3).contains(codec.count), !codec[0].isEmpty, let rate = Int(codec[1]), rate > 0 else { return nil }
        var channels: Int?
        if codec.count == 3 {
            guard let count = Int(codec[2]), count > 0 else { return nil }
            channels = count
        }
        self.init(payloadType: String(parts[0]), encoding: String(codec[0]), clockRate: rate, channels: channels)
    }

    public var attributeValue: String {
        "\(payloadType) \(encoding)/\(clockRate)" + (channels.map { "/\($0)" } ?? "")
    }
}

/// a=crypto:<tag> <crypto-suite> <key-params> [<session-params>] (RFC 4568 §4). The key parameters stay
/// text (`inline:<key||salt>[|lifetime][|MKI:length]`, several separated by `;`); `SDPMediaOffer` reads
/// the ones of the suite it speaks.
public struct SDPCrypto: Hashable, Sendable {
    public var tag: UInt32
    public var suite: String
    public var keyParameters: [String]
    public var sessionParameters: [String]

    public init(tag: UInt32, suite: String, keyParameters: [String], sessionParameters: [String] = []) {
        self.tag = tag
        self.suite = suite
        self.keyParameters = keyParameters
        self.sessionParameters = sessionParameters
    }

    init?(_ value: String) {
        let parts = value.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count >= 3, parts[0].count <= 10, parts[0].allSatisfy(\.isASCIIDigit), let tag = UInt32(parts[0])
        else { return nil }
        let keys = parts[2].split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        guard keys.allSatisfy({ $0.hasPrefix("inline:") && $0.count > 7 }) else { return nil }
        self.init(tag: tag, suite: String(parts[1]), keyParameters: keys, sessionParameters: parts.dropFirst(3).map(String.init))
    }

    public var attributeValue: String {
        ([String(tag), suite, keyParameters.joined(separator: ";")] + sessionParameters).joined(separator: " ")
    }
}

/// One m= section: a stream, where it goes and how it is coded.
public struct MediaSection: Hashable, Sendable {
    /// `audio`, `video`, …
    public var media: String
    /// 0: the stream is refused or disabled (RFC 3264 §5.1, §6).
    public var port: Int
    /// The `/<number of ports>` of the m= line, when written.
    public var portCount: Int?
    /// `RTP/AVP`, `RTP/SAVP`, …
    public var proto: String
    /// Payload types for RTP, as written.
    public var formats: [String]
    /// This section's own c=, overriding the session's.
    public var connection: SDPConnection?
    public var attributes: [SDPAttribute]

    public init(
        media: String, port: Int, portCount: Int? = nil, proto: String, formats: [String], connection: SDPConnection? = nil,
        attributes: [SDPAttribute] = []
    ) {
        self.media = media
        self.port = port
        self.portCount = portCount
        self.proto = proto
        self.formats = formats
        self.connection = connection
        self.attributes = attributes
    }

    /// The values of every attribute called `name`, in order.
    public func values(of name: String) -> [String] { attributes.filter { $0.name == name }.compactMap(\.value) }

    /// Every a=rtpmap of the section.
    public var rtpmaps: [SDPRTPMap] { values(of: "rtpmap").compactMap(SDPRTPMap.init) }

    /// The a=rtpmap of one payload type, if written.
    public func rtpmap(for payloadType: String) -> SDPRTPMap? { rtpmaps.first { $0.payloadType == payloadType } }

    /// a=ptime, in milliseconds.
    public var ptime: Int? { values(of: "ptime").first.flatMap(parsePtime) }

    /// The section's own direction attribute, if any (see `SessionDescription.direction(of:)` for the
    /// one in force).
    public var direction: SDPDirection? { attributes.lazy.compactMap { SDPDirection(rawValue: $0.name) }.last }

    /// Every well-formed a=crypto of the section, in the offerer's order of preference.
    public var crypto: [SDPCrypto] { values(of: "crypto").compactMap(SDPCrypto.init) }

    /// The port of a=rtcp (RFC 3605), if written.
    public var rtcpPort: Int? { values(of: "rtcp").first.flatMap(parseRTCP) }
}

extension SessionDescription {
    /// The connection a media section's packets go to: its own c=, else the session's.
    public func connection(of section: MediaSection) -> SDPConnection? { section.connection ?? connection }

    /// The direction in force for a media section: its own, else the session's, else sendrecv.
    public func direction(of section: MediaSection) -> SDPDirection { section.direction ?? direction ?? .sendrecv }
}

/// Why a session description was refused, or why an offer or answer cannot be agreed to. The kind tells a
/// user agent what to answer (a malformed body: 400; no common codec, no acceptable security: 488); the text
/// says what was wrong and, for a peer's description, which line. Never carries key material.
public struct SDPError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Code: Hashable, Sendable {
            case malformed, tooLarge, noAudio, noCommonCodec, securityMismatch, badKey, streamRefused, answerMismatch
        }
        private let code: Code

        /// A line is missing or not as RFC 8866 writes it.
        public static let malformed = Kind(code: .malformed)
        /// More than `SessionDescription.maximumSize` bytes.
        public static let tooLarge = Kind(code: .tooLarge)
        /// No audio stream that could be used (RTP/AVP or RTP/SAVP, port not 0).
        public static let noAudio = Kind(code: .noAudio)
        /// The audio stream does not offer PCMU (payload type 0 or an rtpmap to PCMU/8000): 488.
        public static let noCommonCodec = Kind(code: .noCommonCodec)
        /// SRTP was required and plain RTP offered, SRTP offered with no suite we speak, or SRTP offered while
        /// it is off: 488.
        public static let securityMismatch = Kind(code: .securityMismatch)
        /// An inline key is not base64 of 30 bytes, or uses what we do not support (MKI, several keys).
        public static let badKey = Kind(code: .badKey)
        /// The answer refused our audio stream (port 0).
        public static let streamRefused = Kind(code: .streamRefused)
        /// The answer does not fit the offer (other m-lines, a codec or crypto tag that was not offered).
        public static let answerMismatch = Kind(code: .answerMismatch)

        public var description: String { "\(code)" }
    }

    public var kind: Kind
    /// The 1-based line of a peer's description the error is about, when there is one.
    public var line: Int?
    public var message: String

    public init(_ kind: Kind, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.line = line
        self.message = message
    }

    /// True when the user agent should answer 488 Not Acceptable Here (RFC 3261 §21.4.26) rather than 400.
    public var isNotAcceptable: Bool {
        kind == .noAudio || kind == .noCommonCodec || kind == .securityMismatch || kind == .badKey
    }

    public var description: String { line.map { "SDP line \($0): \(message)" } ?? "SDP: \(message)" }
}

extension SessionDescription {
    /// Parses a description received as bytes (a SIP body): UTF-8 text, at most `maximumSize` bytes.
    public init(parsing bytes: [UInt8]) throws(SDPError) {
        guard bytes.count <= Self.maximumSize else {
            throw SDPError(.tooLarge, "the description has \(bytes.count) bytes, more than the \(Self.maximumSize) accepted")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw SDPError(.malformed, "the description is not UTF-8 text")
        }
        try self.init(parsing: text)
    }

    /// Parses a description (RFC 8866 §5): v= first, then o=, s=, session lines, t=, then the media
    /// sections, each starting with m=.
    public init(parsing text: String) throws(SDPError) {
        guard text.utf8.count <= Self.maximumSize else {
            throw SDPError(.tooLarge, "the description has \(text.utf8.count) bytes, more than the \(Self.maximumSize) accepted")
        }
        var origin: SDPOrigin?
        var sessionName: String?
        var connection: SDPConnection?
        var timing: SDPTiming?
        var attributes: [SDPAttribute] = []
        var media: [MediaSection] = []
        var sawVersion = false

        // "\r\n" is one Character (a grapheme cluster) in Swift, so both line ends are separators here.
        let lines = text.split(omittingEmptySubsequences: false) { $0 == "\r\n" || $0 == "\n" }
        for (index, line) in lines.enumerated() {
            let number = index + 1
            if line.isEmpty {
                // A trailing line break, or blank lines some peers put at the end: nothing to read.
                continue
            }
            guard line.count >= 2, line[line.index(after: line.startIndex)] == "=", let type = line.first, type.isASCII,
                type.isLetter
            else {
                throw SDPError(.malformed, line: number, "\"\(printable(line))\" is not <letter>=<value>")
            }
            let value = String(line.dropFirst(2))
            guard !value.utf8.contains(where: { $0 == 0 || $0 == UInt8(ascii: "\r") }) else {
                throw SDPError(.malformed, line: number, "the line holds a NUL or a stray carriage return")
            }
            if !sawVersion {
                guard type == "v", value == "0" else {
                    throw SDPError(.malformed, line: number, "a description starts with v=0 (RFC 8866 §5.1)")
                }
                sawVersion = true
                continue
            }
            switch type {
            case "v":
                throw SDPError(.malformed, line: number, "a second v= line: one description per body")
            case "o":
                guard origin == nil, media.isEmpty else { throw SDPError(.malformed, line: number, "o= belongs once, before t= and m=") }
                origin = try parseOrigin(value, line: number)
            case "s":
                guard sessionName == nil, media.isEmpty else { throw SDPError(.malformed, line: number, "s= belongs once, before m=") }
                sessionName = value
            case "c":
                let parsed = try parseConnection(value, line: number)
                if media.isEmpty {
                    guard connection == nil else { throw SDPError(.malformed, line: number, "a second session-level c=") }
                    connection = parsed
                } else {
                    guard media[media.count - 1].connection == nil else {
                        throw SDPError(.malformed, line: number, "a second c= in one media section")
                    }
                    media[media.count - 1].connection = parsed
                }
            case "t":
                guard media.isEmpty else { throw SDPError(.malformed, line: number, "t= belongs before m=") }
                // Several t= lines are legal (RFC 8866 §5.9); SIP uses one, so the first is kept.
                let parsed = try parseTiming(value, line: number)
                if timing == nil { timing = parsed }
            case "m":
                guard origin != nil, sessionName != nil, timing != nil else {
                    throw SDPError(.malformed, line: number, "m= before the o=, s= and t= lines every description has")
                }
                media.append(try parseMedia(value, line: number))
            case "a":
                let attribute = try parseAttribute(value, line: number)
                if media.isEmpty { attributes.append(attribute) } else { media[media.count - 1].attributes.append(attribute) }
            default:
                // i=, u=, e=, p=, b=, z=, k=, r= and types from later RFCs: not used here.
                continue
            }
        }
        guard sawVersion else { throw SDPError(.malformed, "the description is empty: it starts with v=0") }
        guard let origin else { throw SDPError(.malformed, "the description has no o= line") }
        guard let sessionName else { throw SDPError(.malformed, "the description has no s= line") }
        guard let timing else { throw SDPError(.malformed, "the description has no t= line") }
        self.init(origin: origin, sessionName: sessionName, connection: connection, timing: timing, attributes: attributes, media: media)
    }
}

// MARK: - Line parsers

private func printable(_ text: Substring) -> String {
    let shown = text.prefix(40).map { $0.isASCII && !$0.isNewline && $0 != "\0" ? String($0) : "?" }.joined()
    return text.count > 40 ? shown + "…" : shown
}

private func fields(_ value: String) -> [Substring] { value.split(separator: " ", omittingEmptySubsequences: true) }

private func parseOrigin(_ value: String, line: Int) throws(SDPError) -> SDPOrigin {
    let parts = fields(value)
    guard parts.count == 6, parts[3] == "IN", let type = SDPAddressType(rawValue: String(parts[4])) else {
        throw SDPError(.malformed, line: line, "o= is <username> <session id> <version> IN IP4|IP6 <address>")
    }
    guard parts[1].allSatisfy(\.isASCIIDigit), parts[2].allSatisfy(\.isASCIIDigit) else {
        throw SDPError(.malformed, line: line, "the session id and version of o= are digits")
    }
    return SDPOrigin(
        username: String(parts[0]), sessionID: String(parts[1]), sessionVersion: String(parts[2]), addressType: type,
        address: String(parts[5]))
}

private func parseConnection(_ value: String, line: Int) throws(SDPError) -> SDPConnection {
    let parts = fields(value)
    guard parts.count == 3, parts[0] == "IN", let type = SDPAddressType(rawValue: String(parts[1])) else {
        throw SDPError(.malformed, line: line, "c= is IN IP4|IP6 <address>")
    }
    let address = String(parts[2])
    guard let socket = try? SocketAddress(ipAddress: address, port: 0) else {
        throw SDPError(.malformed, line: line, "the c= address is not an IP literal (host names and multicast TTLs are not supported)")
    }
    let matches: Bool
    switch socket {
    case .v4: matches = type == .ip4
    case .v6: matches = type == .ip6
    case .unixDomainSocket: matches = false
    }
    guard matches else { throw SDPError(.malformed, line: line, "the c= address is not of its stated type \(type.rawValue)") }
    return SDPConnection(addressType: type, address: address)
}

private func parseTiming(_ value: String, line: Int) throws(SDPError) -> SDPTiming {
    let parts = fields(value)
    guard parts.count == 2, let start = UInt64(parts[0]), let stop = UInt64(parts[1]) else {
        throw SDPError(.malformed, line: line, "t= is <start> <stop>, two decimal numbers (0 0 for SIP)")
    }
    return SDPTiming(start: start, stop: stop)
}

private func parseMedia(_ value: String, line: Int) throws(SDPError) -> MediaSection {
    let parts = fields(value)
    guard parts.count >= 4 else {
        throw SDPError(.malformed, line: line, "m= is <media> <port> <proto> <format> …, with at least one format")
    }
    let portParts = parts[1].split(separator: "/", omittingEmptySubsequences: false)
    guard (1...2).contains(portParts.count), portParts[0].allSatisfy(\.isASCIIDigit), let port = Int(portParts[0]),
        (0...65535).contains(port)
    else {
        throw SDPError(.malformed, line: line, "the port of m= is a number from 0 to 65535")
    }
    var portCount: Int?
    if portParts.count == 2 {
        guard portParts[1].allSatisfy(\.isASCIIDigit), let count = Int(portParts[1]), (1...65535).contains(count) else {
            throw SDPError(.malformed, line: line, "the number of ports of m= (<port>/<number>) is a positive number")
        }
        portCount = count
    }
    let proto = String(parts[2])
    let formats = parts.dropFirst(3).map(String.init)
    if proto.hasPrefix("RTP/") || proto.hasPrefix("UDP/TLS/RTP/") {
        guard formats.allSatisfy({ isPayloadType(Substring($0)) }) else {
            throw SDPError(.malformed, line: line, "the formats of an RTP m= line are payload types from 0 to 127")
        }
    }
    return MediaSection(media: String(parts[0]), port: port, portCount: portCount, proto: proto, formats: formats)
}

private func parseAttribute(_ value: String, line: Int) throws(SDPError) -> SDPAttribute {
    let attribute: SDPAttribute
    if let colon = value.firstIndex(of: ":") {
        attribute = SDPAttribute(String(value[..<colon]), String(value[value.index(after: colon)...]))
    } else {
        attribute = SDPAttribute(value)
    }
    guard !attribute.name.isEmpty, !attribute.name.contains(" ") else {
        throw SDPError(.malformed, line: line, "a= is a=<name> or a=<name>:<value>")
    }
    let value = attribute.value ?? ""
    switch attribute.name {
    case "rtpmap":
        guard SDPRTPMap(value) != nil else {
            throw SDPError(.malformed, line: line, "a=rtpmap is <payload type> <encoding>/<clock rate>[/<channels>]")
        }
    case "ptime":
        guard parsePtime(value) != nil else { throw SDPError(.malformed, line: line, "a=ptime is a number of milliseconds (1–1000)") }
    case "rtcp":
        guard parseRTCP(value) != nil else {
            throw SDPError(.malformed, line: line, "a=rtcp is <port> [IN IP4|IP6 <address>], the port from 1 to 65535")
        }
    case "crypto":
        guard SDPCrypto(value) != nil else {
            throw SDPError(.malformed, line: line, "a=crypto is <tag> <suite> inline:<key>[;inline:<key>…] [<session parameters>]")
        }
    case "sendrecv", "sendonly", "recvonly", "inactive":
        guard attribute.value == nil else { throw SDPError(.malformed, line: line, "a=\(attribute.name) takes no value") }
    default:
        break
    }
    return attribute
}

/// A decimal ptime; some peers write a fraction (`20.0`), which is read as its whole milliseconds.
private func parsePtime(_ value: String) -> Int? {
    let whole = value.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
    guard let first = whole.first, !first.isEmpty, first.count <= 4, first.allSatisfy(\.isASCIIDigit),
        whole.count == 1 || whole[1].allSatisfy(\.isASCIIDigit), let ms = Int(first), (1...1000).contains(ms)
    else { return nil }
    return ms
}

private func parseRTCP(_ value: String) -> Int? {
    let parts = fields(value)
    guard parts.count == 1 || parts.count == 4, parts[0].count <= 5, parts[0].allSatisfy(\.isASCIIDigit),
        let port = Int(parts[0]), (1...65535).contains(port)
    else { return nil }
    return port
}

private func isPayloadType(_ text: Substring) -> Bool {
    guard !text.isEmpty, text.count <= 3, text.allSatisfy(\.isASCIIDigit), let value = Int(text) else { return false }
    return value <= 127
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
