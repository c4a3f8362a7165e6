import Foundation

/// Whether a call's media must, may or must not be SRTP.
public enum SRTPPolicy: Hashable, Sendable {
    /// Only SRTP with a key we can read: plain RTP offers are refused (488).
    case required
    /// SRTP when the peer offers a suite we speak, else plain RTP.
    case optional
    /// Plain RTP only: an RTP/SAVP offer is refused (488), crypto lines in an RTP/AVP offer are ignored.
    case off
}

/// What an offer/answer exchange agreed for the call's audio: where to send it, how, and with which keys.
/// Everything is from this side's point of view.
public struct NegotiatedAudio: Hashable, Sendable {
    /// The peer's media address (its c=, an IP literal; `0.0.0.0` means the peer holds the call).
    public var remoteAddress: String
    public var remoteRTPPort: Int
    /// The peer's a=rtcp port (RFC 3605), else its RTP port + 1.
    public var remoteRTCPPort: Int
    /// The RTP payload type of PCMU in this call: 0 unless the peer mapped PCMU to a dynamic type.
    public var payloadType: UInt8
    /// The packet time the peer asked to receive (a=ptime), 20 ms when it did not say.
    public var ptime: Int
    /// The peer's SRTP key material (16-byte key ‖ 14-byte salt); `nil`: plain RTP.
    public var remoteKey: [UInt8]?
    /// This side's SRTP key material, as sent in the SDP; `nil`: plain RTP.
    public var localKey: [UInt8]?
    /// What this side does: sendrecv, sendonly (the peer only listens), recvonly, inactive.
    public var direction: SDPDirection

    public init(
        remoteAddress: String, remoteRTPPort: Int, remoteRTCPPort: Int, payloadType: UInt8 = 0, ptime: Int = 20,
        remoteKey: [UInt8]?, localKey: [UInt8]?, direction: SDPDirection = .sendrecv
    ) {
        self.remoteAddress = remoteAddress
        self.remoteRTPPort = remoteRTPPort
        self.remoteRTCPPort = remoteRTCPPort
        self.payloadType = payloadType
        self.ptime = ptime
        self.remoteKey = remoteKey
        self.localKey = localKey
        self.direction = direction
    }

    /// True when the media is SRTP in both directions.
    public var isSecure: Bool { remoteKey != nil && localKey != nil }
}

/// SDP offer/answer for the device's one audio stream (RFC 3264), PCMU at 8 kHz in 20 ms packets, over RTP
/// or SRTP keyed with SDES (RFC 4568): the user agent offers with `offer`, answers a peer's offer with
/// `answer(to:…)`, and reads the peer's answer to its own offer with `accept(answer:to:)`.
///
/// Only `AES_CM_128_HMAC_SHA1_80` is spoken (the suite `SRTP` implements), with one inline key and no
/// lifetime or MKI of our own; a peer's crypto lines with other suites, an MKI, several keys or session
/// parameters are passed over for the next one (RFC 4568 §7.1.1). An RTP/AVP offer that carries crypto lines
/// (the "best effort SRTP" of many phones) is answered in kind, with SRTP, unless the policy is `.off`.
///
/// A namespace (a caseless enum) rather than a value: the three steps share no state but the descriptions.
public enum SDPMediaOffer {
    /// The one SRTP crypto suite offered and accepted.
    public static let cryptoSuite = "AES_CM_128_HMAC_SHA1_80"
    /// The packet time this side sends and asks for.
    public static let ptime = 20

    /// This side's offer: one audio stream at `address` (an IP literal) and `port`, PCMU 20 ms, sendrecv;
    /// with `srtp`, its key as `a=crypto:1` (RFC 4568 §6.1) under RTP/SAVP, or under RTP/AVP when
    /// `bestEffort` (SRTP if the peer answers with a crypto line, plain RTP if it does not: what
    /// `SRTPPolicy.optional` offers, since a phone without SRTP refuses an RTP/SAVP offer, or answers it
    /// with RTP/AVP as SIPp does).
    public static func offer(
        address: String, port: Int, sessionID: UInt64, sessionVersion: UInt64 = 1, srtp: SRTPMasterKey?, bestEffort: Bool = false
    ) -> SessionDescription {
        var attributes = [
            SDPAttribute("rtpmap", SDPRTPMap(payloadType: "0", encoding: "PCMU", clockRate: 8000).attributeValue),
            SDPAttribute("ptime", String(ptime)), SDPAttribute(SDPDirection.sendrecv.rawValue),
        ]
        if let srtp { attributes.append(cryptoAttribute(tag: 1, key: srtp)) }
        let section = MediaSection(
            media: "audio", port: port, proto: srtp == nil || bestEffort ? "RTP/AVP" : "RTP/SAVP", formats: ["0"], attributes: attributes)
        return description(address: address, sessionID: sessionID, sessionVersion: sessionVersion, media: [section])
    }

    /// This side's answer to a peer's offer (RFC 3264 §6) and what it agrees to. The first audio stream that
    /// can be used is taken; every other stream (video, a second audio, …) is refused with port 0, the
    /// answer keeping the offer's number and order of m-lines.
    ///
    /// Throws `noAudio` (no usable audio stream), `noCommonCodec` (no PCMU), `securityMismatch` (the policy
    /// and the offered security cannot agree) or `badKey`, all answered 488; or `malformed` (no address).
    public static func answer(
        to offer: SessionDescription, address: String, port: Int, sessionID: UInt64, sessionVersion: UInt64 = 1,
        localKey: SRTPMasterKey, policy: SRTPPolicy
    ) throws(SDPError) -> (SessionDescription, NegotiatedAudio) {
        var chosen: (index: Int, section: MediaSection, audio: NegotiatedAudio)?
        var firstError: SDPError?
        for (index, section) in offer.media.enumerated() where section.media == "audio" && section.port != 0 {
            do {
                let (answered, audio) = try answerAudio(section, of: offer, port: port, localKey: localKey, policy: policy)
                chosen = (index, answered, audio)
                break
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        guard let chosen else {
            throw firstError ?? SDPError(.noAudio, "the offer has no audio stream with a port (only \(offer.media.map(\.media)))")
        }
        let media = offer.media.enumerated().map { index, section in
            index == chosen.index
                ? chosen.section : MediaSection(media: section.media, port: 0, proto: section.proto, formats: section.formats)
        }
        let answer = description(address: address, sessionID: sessionID, sessionVersion: sessionVersion, media: media)
        return (answer, chosen.audio)
    }

    /// What the peer's answer to this side's `offer` agrees to (RFC 3264 §5, §6). Throws `streamRefused`
    /// when the peer set the audio port to 0, `answerMismatch` when the answer does not fit the offer,
    /// `noCommonCodec`, `securityMismatch` or `badKey` when it chose what was not offered, and `malformed`
    /// when it has no address.
    public static func accept(answer: SessionDescription, to offer: SessionDescription) throws(SDPError) -> NegotiatedAudio {
        guard answer.media.count == offer.media.count else {
            throw SDPError(.answerMismatch, "the answer has \(answer.media.count) m-lines for the offer's \(offer.media.count)")
        }
        guard let index = offer.media.firstIndex(where: { $0.media == "audio" && $0.port != 0 }) else {
            throw SDPError(.answerMismatch, "the offer being answered has no audio stream")
        }
        let offered = offer.media[index]
        let section = answer.media[index]
        guard section.media == "audio" else {
            throw SDPError(.answerMismatch, "the answer's m-line \(index + 1) is \(section.media), not the audio offered")
        }
        guard section.port != 0 else { throw SDPError(.streamRefused, "the peer refused the audio stream (port 0)") }
        guard section.proto == offered.proto else {
            throw SDPError(.answerMismatch, "the answer's audio is \(section.proto), the offer's \(offered.proto)")
        }
        guard let format = pcmuFormat(of: section) else {
            throw SDPError(.noCommonCodec, "the answer's audio has no PCMU among its formats \(section.formats)")
        }
        guard offered.formats.contains(format.text) else {
            throw SDPError(.answerMismatch, "the answer's PCMU payload type \(format.text) was not offered")
        }
        var remoteKey: [UInt8]?
        var localKey: [UInt8]?
        let ourCrypto = offered.crypto.filter { $0.suite == cryptoSuite }
        // A best-effort offer (RTP/AVP with crypto lines) answered without one: plain RTP.
        let plainAnswer = offered.proto.uppercased() == "RTP/AVP" && section.crypto.isEmpty
        if !ourCrypto.isEmpty && !plainAnswer {
            guard let theirs = section.crypto.first(where: { crypto in ourCrypto.contains { $0.tag == crypto.tag } }) else {
                throw SDPError(.securityMismatch, "SRTP was offered and the answer has no crypto line with an offered tag")
            }
            guard theirs.suite == cryptoSuite else {
                throw SDPError(.answerMismatch, "the answer's crypto tag \(theirs.tag) names another suite than offered")
            }
            remoteKey = try inlineKey(of: theirs)
            localKey = try ourCrypto.first { $0.tag == theirs.tag }.map { crypto throws(SDPError) in try inlineKey(of: crypto) }
        }
        let (address, rtcp) = try endpoint(of: section, in: answer)
        let ours = offer.direction(of: offered)
        let answered = answer.direction(of: section).answered
        return NegotiatedAudio(
            remoteAddress: address, remoteRTPPort: section.port, remoteRTCPPort: rtcp, payloadType: format.payloadType,
            ptime: section.ptime ?? ptime, remoteKey: remoteKey, localKey: localKey,
            direction: SDPDirection(sends: ours.sends && answered.sends, receives: ours.receives && answered.receives))
    }

    // MARK: - Steps

    private static func answerAudio(
        _ offered: MediaSection, of offer: SessionDescription, port: Int, localKey: SRTPMasterKey, policy: SRTPPolicy
    ) throws(SDPError) -> (MediaSection, NegotiatedAudio) {
        let secureProto: Bool
        switch offered.proto.uppercased() {
        case "RTP/AVP": secureProto = false
        case "RTP/SAVP": secureProto = true
        default: throw SDPError(.noAudio, "the offered audio is \(offered.proto): only RTP/AVP and RTP/SAVP are spoken")
        }
        guard let format = pcmuFormat(of: offered) else {
            throw SDPError(.noCommonCodec, "the offered audio has no PCMU among its formats \(offered.formats)")
        }
        let (address, rtcp) = try endpoint(of: offered, in: offer)

        var peerCrypto: (tag: UInt32, key: [UInt8])?
        switch (policy, secureProto) {
        case (.off, true):
            throw SDPError(.securityMismatch, "SRTP was offered and this side speaks only plain RTP")
        case (.off, false):
            break
        case (.required, _), (.optional, true):
            peerCrypto = try usableCrypto(in: offered)
        case (.optional, false):
            // Best effort: crypto lines in an RTP/AVP offer are taken when we can read one, else plain.
            peerCrypto = try? usableCrypto(in: offered)
        }

        let direction = offer.direction(of: offered).answered
        var attributes = [
            SDPAttribute("rtpmap", SDPRTPMap(payloadType: format.text, encoding: "PCMU", clockRate: 8000).attributeValue),
            SDPAttribute("ptime", String(ptime)), SDPAttribute(direction.rawValue),
        ]
        if let peerCrypto { attributes.append(cryptoAttribute(tag: peerCrypto.tag, key: localKey)) }
        let section = MediaSection(media: "audio", port: port, proto: offered.proto, formats: [format.text], attributes: attributes)
        let audio = NegotiatedAudio(
            remoteAddress: address, remoteRTPPort: offered.port, remoteRTCPPort: rtcp, payloadType: format.payloadType,
            ptime: offered.ptime ?? ptime, remoteKey: peerCrypto?.key, localKey: peerCrypto.map { _ in localKey.key + localKey.salt },
            direction: direction)
        return (section, audio)
    }

    /// The first crypto line of our suite whose key we can read, with its tag and key material.
    private static func usableCrypto(in section: MediaSection) throws(SDPError) -> (tag: UInt32, key: [UInt8]) {
        var keyError: SDPError?
        for crypto in section.crypto where crypto.suite == cryptoSuite {
            do {
                return (crypto.tag, try inlineKey(of: crypto))
            } catch {
                if keyError == nil { keyError = error }
            }
        }
        if let keyError { throw keyError }
        let suites = section.crypto.map(\.suite)
        throw SDPError(
            .securityMismatch,
            suites.isEmpty
                ? "SRTP is required and the offer has no a=crypto line"
                : "the offer's crypto suites \(suites) do not include \(cryptoSuite), the one spoken here")
    }

    /// The 30 bytes of key material of one crypto line of our suite: one `inline:` key, base64 of key ‖ salt,
    /// optionally with a lifetime; no MKI and no session parameters (RFC 4568 §6.1, §6.3).
    static func inlineKey(of crypto: SDPCrypto) throws(SDPError) -> [UInt8] {
        guard crypto.sessionParameters.isEmpty else {
            throw SDPError(.badKey, "crypto tag \(crypto.tag) has session parameters \(crypto.sessionParameters.count), none of which are supported")
        }
        guard crypto.keyParameters.count == 1, let parameter = crypto.keyParameters.first else {
            throw SDPError(.badKey, "crypto tag \(crypto.tag) has \(crypto.keyParameters.count) keys: one is supported")
        }
        let parts = parameter.dropFirst("inline:".count).split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count <= 2, parts.dropFirst().allSatisfy({ !$0.contains(":") }) else {
            throw SDPError(.badKey, "crypto tag \(crypto.tag) has an MKI, which is not supported")
        }
        let expected = SRTP.masterKeyLength + SRTP.masterSaltLength
        guard let text = parts.first, let data = Data(base64Encoded: String(text)) else {
            throw SDPError(.badKey, "crypto tag \(crypto.tag): the inline key is not base64")
        }
        guard data.count == expected else {
            throw SDPError(.badKey, "crypto tag \(crypto.tag): the inline key is \(data.count) bytes, \(cryptoSuite) needs \(expected)")
        }
        return Array(data)
    }

    private static func cryptoAttribute(tag: UInt32, key: SRTPMasterKey) -> SDPAttribute {
        let inline = "inline:" + Data(key.key + key.salt).base64EncodedString()
        return SDPAttribute("crypto", SDPCrypto(tag: tag, suite: cryptoSuite, keyParameters: [inline]).attributeValue)
    }

    /// The payload type PCMU has in a section: one with an rtpmap to PCMU/8000 (mono), or static 0 without one.
    private static func pcmuFormat(of section: MediaSection) -> (text: String, payloadType: UInt8)? {
        for format in section.formats {
            guard let payloadType = UInt8(format) else { continue }
            if let map = section.rtpmap(for: format) {
                if map.encoding.uppercased() == "PCMU", map.clockRate == 8000, map.channels ?? 1 == 1 { return (format, payloadType) }
            } else if payloadType == 0 {
                return (format, 0)
            }
        }
        return nil
    }

    /// Where a section's RTP and RTCP go: its address and RTCP port.
    private static func endpoint(of section: MediaSection, in description: SessionDescription) throws(SDPError) -> (String, Int) {
        guard let connection = description.connection(of: section) else {
            throw SDPError(.malformed, "the audio stream has no c= line, neither its own nor the session's")
        }
        if let rtcp = section.rtcpPort { return (connection.address, rtcp) }
        guard section.port < 65535 else { throw SDPError(.malformed, "RTP port 65535 leaves no port for RTCP and there is no a=rtcp") }
        return (connection.address, section.port + 1)
    }

    private static func description(address: String, sessionID: UInt64, sessionVersion: UInt64, media: [MediaSection]) -> SessionDescription {
        let connection = SDPConnection(address: address)
        return SessionDescription(
            origin: SDPOrigin(
                sessionID: String(sessionID), sessionVersion: String(sessionVersion), addressType: connection.addressType, address: address),
            connection: connection, media: media)
    }
}

extension SDPDirection {
    init(sends: Bool, receives: Bool) {
        switch (sends, receives) {
        case (true, true): self = .sendrecv
        case (true, false): self = .sendonly
        case (false, true): self = .recvonly
        case (false, false): self = .inactive
        }
    }

    var sends: Bool { self == .sendrecv || self == .sendonly }
    var receives: Bool { self == .sendrecv || self == .recvonly }
}
