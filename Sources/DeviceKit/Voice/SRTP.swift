import Crypto
import Foundation
import _CryptoExtras

/// SRTP and SRTCP with AES_CM_128_HMAC_SHA1_80 (RFC 3711), the profile every SIP phone and WebRTC stack
/// speaks, so that a capture of our media is the same thing a capture of a real call would be.
///
/// ```
/// SRTP packet:   RTP header ‖ AES-CM(payload) ‖ tag (10 bytes)
///                tag = HMAC-SHA1(k_a, header ‖ encrypted payload ‖ ROC)[0..<10]
/// SRTCP packet:  first 8 bytes ‖ AES-CM(rest) ‖ E=1 ‖ index (31 bits) ‖ tag (10 bytes)
///                tag = HMAC-SHA1(k_a, packet ‖ E‖index)[0..<10]
/// AES-CM IV:     (k_s · 2^16) ⊕ (SSRC · 2^64) ⊕ (index · 2^16), 128 bits, big-endian
/// ```
/// Session keys come from the 30 bytes of key material in the call set-up (a 16-byte master key and a
/// 14-byte master salt) by the AES-CM PRF of §4.3 with a key derivation rate of 0: labels 0, 1, 2 for SRTP
/// (cipher key, auth key, salt), 3, 4, 5 for SRTCP. Each sender has its own master key, so a key never
/// encrypts two streams with the same SSRC and index.
///
/// Pure: no clock, no I/O; the cryptography is swift-crypto's (BoringSSL).
public enum SRTP {
    public static let tagLength = 10
    public static let masterKeyLength = 16
    public static let masterSaltLength = 14
    /// Bytes SRTP adds to an RTP packet.
    public static let rtpOverhead = tagLength
    /// Bytes SRTCP adds to an RTCP packet: E‖index and the tag.
    public static let rtcpOverhead = 4 + tagLength
    /// The replay window, in packets (RFC 3711 §3.3.2 asks for at least 64).
    public static let replayWindow: UInt64 = 128

    /// The key derivation labels of §4.3.1–4.3.2.
    public enum Label: UInt8, Sendable {
        case rtpEncryption = 0, rtpAuthentication = 1, rtpSalt = 2
        case rtcpEncryption = 3, rtcpAuthentication = 4, rtcpSalt = 5
    }

    /// The AES-CM PRF of §4.3.3 with key derivation rate 0: `length` bytes of the keystream under the
    /// master key, starting at IV = (master salt ⊕ label · 2^48) · 2^16.
    public static func derive(masterKey: [UInt8], masterSalt: [UInt8], label: Label, length: Int) throws(SRTPError) -> [UInt8] {
        guard masterKey.count == masterKeyLength else { throw .badKeyMaterial(masterKey.count + masterSalt.count) }
        guard masterSalt.count == masterSaltLength else { throw .badKeyMaterial(masterKey.count + masterSalt.count) }
        var iv = masterSalt + [0, 0]
        iv[7] ^= label.rawValue
        return try keystream(key: masterKey, iv: iv, length: length)
    }

    /// `length` bytes of AES-CM keystream (§4.1.1): AES-128 of IV, IV + 1, IV + 2, … .
    public static func keystream(key: [UInt8], iv: [UInt8], length: Int) throws(SRTPError) -> [UInt8] {
        try apply(key: SymmetricKey(data: key), iv: iv, to: [UInt8](repeating: 0, count: length))
    }

    /// XORs `data` with the AES-CM keystream (encryption and decryption are the same).
    static func apply(key: SymmetricKey, iv: [UInt8], to data: [UInt8]) throws(SRTPError) -> [UInt8] {
        guard !data.isEmpty else { return [] }
        do {
            let nonce = try AES._CTR.Nonce(nonceBytes: iv)
            return Array(try AES._CTR.encrypt(data, using: key, nonce: nonce))
        } catch {
            throw .cipherFailed
        }
    }

    /// The IV of §4.1.1 for one packet.
    static func iv(salt: [UInt8], ssrc: UInt32, index: UInt64) -> [UInt8] {
        var iv = salt + [0, 0]
        for i in 0..<4 { iv[4 + i] ^= UInt8(truncatingIfNeeded: ssrc >> (24 - 8 * UInt32(i))) }
        for i in 0..<6 { iv[8 + i] ^= UInt8(truncatingIfNeeded: index >> (40 - 8 * UInt64(i))) }
        return iv
    }

    static func tag(key: SymmetricKey, _ parts: [UInt8]...) -> [UInt8] {
        var hmac = HMAC<Insecure.SHA1>(key: key)
        for part in parts { hmac.update(data: part) }
        return Array(hmac.finalize().prefix(tagLength))
    }

    /// Compares without an early exit, so the time taken tells nothing about where a forged tag differs.
    static func constantTimeEqual(_ a: ArraySlice<UInt8>, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}

/// The 30 bytes of a `MediaDescription.keyMaterial`: the SRTP master key and master salt of one sender.
public struct SRTPMasterKey: Sendable, Hashable {
    public let key: [UInt8]
    public let salt: [UInt8]

    public init(keyMaterial: [UInt8]) throws(SRTPError) {
        guard keyMaterial.count == SRTP.masterKeyLength + SRTP.masterSaltLength else {
            throw .badKeyMaterial(keyMaterial.count)
        }
        key = Array(keyMaterial[0..<SRTP.masterKeyLength])
        salt = Array(keyMaterial[SRTP.masterKeyLength...])
    }

    /// Fresh random key material for one side of a call.
    public static func randomKeyMaterial() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<(SRTP.masterKeyLength + SRTP.masterSaltLength)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}

/// The three session keys of one direction and one protocol (SRTP or SRTCP).
struct SRTPSessionKeys: Sendable {
    let cipher: SymmetricKey
    let authentication: SymmetricKey
    let salt: [UInt8]

    init(master: SRTPMasterKey, rtcp: Bool) throws(SRTPError) {
        let labels: (SRTP.Label, SRTP.Label, SRTP.Label) =
            rtcp ? (.rtcpEncryption, .rtcpAuthentication, .rtcpSalt) : (.rtpEncryption, .rtpAuthentication, .rtpSalt)
        cipher = SymmetricKey(data: try SRTP.derive(masterKey: master.key, masterSalt: master.salt, label: labels.0, length: 16))
        authentication = SymmetricKey(
            data: try SRTP.derive(masterKey: master.key, masterSalt: master.salt, label: labels.1, length: 20))
        salt = try SRTP.derive(masterKey: master.key, masterSalt: master.salt, label: labels.2, length: 14)
    }
}

/// Protects what one sender sends: RTP of any of its SSRCs (voice and video) and its RTCP.
public struct SRTPSender: Sendable {
    private let rtp: SRTPSessionKeys
    private let rtcp: SRTPSessionKeys
    /// Per SSRC: the rollover counter and the last sequence number sent.
    private var rollover: [UInt32: (roc: UInt32, last: UInt16)] = [:]
    private var rtcpIndex: UInt32 = 0

    public init(master: SRTPMasterKey) throws(SRTPError) {
        rtp = try SRTPSessionKeys(master: master, rtcp: false)
        rtcp = try SRTPSessionKeys(master: master, rtcp: true)
    }

    /// An RTP packet's bytes → the SRTP packet. The sender's own packets come in order, so a smaller
    /// sequence number than the last one means the 16-bit counter wrapped.
    public mutating func protect(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        let headerLength: Int
        do { headerLength = try RTPPacket.headerLength(of: packet) } catch { throw .notRTP(error) }
        let ssrc = packet.bigEndianUInt32(at: 8)
        let sequence = packet.bigEndianUInt16(at: 2)
        var state = rollover[ssrc] ?? (0, sequence)
        if sequence < state.last, state.last - sequence > 0x8000 { state.roc &+= 1 }
        state.last = sequence
        rollover[ssrc] = state
        let index = UInt64(state.roc) << 16 | UInt64(sequence)
        let iv = SRTP.iv(salt: rtp.salt, ssrc: ssrc, index: index)
        let encrypted = Array(packet[..<headerLength]) + (try SRTP.apply(key: rtp.cipher, iv: iv, to: Array(packet[headerLength...])))
        var roc: [UInt8] = []
        roc.appendBigEndian(state.roc)
        return encrypted + SRTP.tag(key: rtp.authentication, encrypted, roc)
    }

    /// An RTCP compound packet's bytes → the SRTCP packet (encrypted, E-bit set, next index).
    public mutating func protectRTCP(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        rtcpIndex = (rtcpIndex &+ 1) & 0x7FFF_FFFF
        return try protectRTCP(packet, index: rtcpIndex)
    }

    /// As `protectRTCP(_:)` with a given SRTCP index (for test vectors).
    public func protectRTCP(_ packet: [UInt8], index: UInt32) throws(SRTPError) -> [UInt8] {
        guard packet.count >= 8, packet[0] >> 6 == 2 else { throw .notRTCP }
        let ssrc = packet.bigEndianUInt32(at: 4)
        let iv = SRTP.iv(salt: rtcp.salt, ssrc: ssrc, index: UInt64(index & 0x7FFF_FFFF))
        var out = Array(packet[..<8]) + (try SRTP.apply(key: rtcp.cipher, iv: iv, to: Array(packet[8...])))
        out.appendBigEndian(0x8000_0000 | index)
        return out + SRTP.tag(key: rtcp.authentication, out)
    }
}

/// Checks and decrypts what one peer sends, with rollover estimation (§3.3.1) and a replay list (§3.3.2)
/// per SSRC. A packet that fails changes no state.
public struct SRTPReceiver: Sendable {
    private let rtp: SRTPSessionKeys
    private let rtcp: SRTPSessionKeys
    private var streams: [UInt32: ReplayState] = [:]
    private var rtcpReplay: [UInt32: ReplayState] = [:]

    /// The highest authenticated index and which of the `replayWindow` indices below it were seen.
    struct ReplayState: Sendable {
        var highest: UInt64
        var seen: (UInt64, UInt64) = (1, 0)  // bit k: index highest - k was seen; 128 bits

        func wasSeen(_ index: UInt64) -> Bool {
            guard index <= highest else { return false }
            let k = highest - index
            guard k < SRTP.replayWindow else { return true }  // too old: treated as a replay
            return k < 64 ? seen.0 >> k & 1 == 1 : seen.1 >> (k - 64) & 1 == 1
        }

        mutating func mark(_ index: UInt64) {
            if index > highest {
                let shift = index - highest
                if shift >= 128 {
                    seen = (0, 0)
                } else if shift >= 64 {
                    seen = (0, seen.0 << (shift - 64))
                } else {
                    seen = (seen.0 << shift, seen.1 << shift | (shift == 0 ? 0 : seen.0 >> (64 - shift)))
                }
                highest = index
            }
            let k = highest - index
            if k < 64 { seen.0 |= 1 << k } else if k < 128 { seen.1 |= 1 << (k - 64) }
        }
    }

    public init(master: SRTPMasterKey) throws(SRTPError) {
        rtp = try SRTPSessionKeys(master: master, rtcp: false)
        rtcp = try SRTPSessionKeys(master: master, rtcp: true)
    }

    /// An SRTP packet → the RTP packet's bytes, or a typed error (not RTP, forged, replayed).
    public mutating func unprotect(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        guard packet.count >= RTPPacket.fixedHeaderLength + SRTP.tagLength else { throw .tooShort(packet.count) }
        let body = Array(packet[..<(packet.count - SRTP.tagLength)])
        let headerLength: Int
        do { headerLength = try RTPPacket.headerLength(of: body) } catch { throw .notRTP(error) }
        let ssrc = body.bigEndianUInt32(at: 8)
        let sequence = body.bigEndianUInt16(at: 2)
        let index = Self.estimateIndex(sequence: sequence, highest: streams[ssrc]?.highest)
        if let state = streams[ssrc], state.wasSeen(index) { throw .replayed }
        var roc: [UInt8] = []
        roc.appendBigEndian(UInt32(truncatingIfNeeded: index >> 16))
        let expected = SRTP.tag(key: rtp.authentication, body, roc)
        guard SRTP.constantTimeEqual(packet[(packet.count - SRTP.tagLength)...], expected) else {
            throw .authenticationFailed
        }
        var state = streams[ssrc] ?? ReplayState(highest: index, seen: (0, 0))
        state.mark(index)
        streams[ssrc] = state
        let iv = SRTP.iv(salt: rtp.salt, ssrc: ssrc, index: index)
        return Array(body[..<headerLength]) + (try SRTP.apply(key: rtp.cipher, iv: iv, to: Array(body[headerLength...])))
    }

    /// The packet index of `sequence` given the highest index authenticated so far (RFC 3711 §3.3.1,
    /// Appendix A): the guess of the rollover counter closest to the highest sequence number seen.
    static func estimateIndex(sequence: UInt16, highest: UInt64?) -> UInt64 {
        guard let highest else { return UInt64(sequence) }
        let roc = highest >> 16
        let last = UInt16(truncatingIfNeeded: highest)
        var v = roc
        if last < 0x8000 {
            if Int(sequence) - Int(last) > 0x8000, roc > 0 { v = roc - 1 }
        } else {
            if Int(last) - 0x8000 > Int(sequence) { v = roc + 1 }
        }
        return v << 16 | UInt64(sequence)
    }

    /// An SRTCP packet → the RTCP compound packet's bytes.
    public mutating func unprotectRTCP(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        guard packet.count >= 8 + SRTP.rtcpOverhead else { throw .tooShort(packet.count) }
        guard packet[0] >> 6 == 2 else { throw .notRTCP }
        let tagStart = packet.count - SRTP.tagLength
        let authenticated = Array(packet[..<tagStart])
        let expected = SRTP.tag(key: rtcp.authentication, authenticated)
        guard SRTP.constantTimeEqual(packet[tagStart...], expected) else { throw .authenticationFailed }
        let word = authenticated.bigEndianUInt32(at: authenticated.count - 4)
        // protocol.md §4.8: SRTCP is always encrypted. RFC 3711 lets E=0 carry RTCP in the clear; a packet
        // that does is refused, whoever holds the key, and changes no state.
        guard word & 0x8000_0000 != 0 else { throw .notEncrypted }
        let index = UInt64(word & 0x7FFF_FFFF)
        let ssrc = packet.bigEndianUInt32(at: 4)
        if let state = rtcpReplay[ssrc], state.wasSeen(index) { throw .replayed }
        var state = rtcpReplay[ssrc] ?? ReplayState(highest: index, seen: (0, 0))
        state.mark(index)
        rtcpReplay[ssrc] = state
        let payload = Array(authenticated[8..<(authenticated.count - 4)])
        let iv = SRTP.iv(salt: rtcp.salt, ssrc: ssrc, index: index)
        return Array(packet[..<8]) + (try SRTP.apply(key: rtcp.cipher, iv: iv, to: payload))
    }
}

/// Why a media packet was refused. Each is counted, and the packet dropped.
public enum SRTPError: Error, Hashable, Sendable, CustomStringConvertible {
    case badKeyMaterial(Int)
    case tooShort(Int)
    case notRTP(RTPError)
    case notRTCP
    case authenticationFailed
    case replayed
    case cipherFailed
    /// An SRTCP packet with E=0: RTCP sent in the clear, which this profile never does.
    case notEncrypted

    public var description: String {
        switch self {
        case .badKeyMaterial(let n): "SRTP key material of \(n) bytes; AES_CM_128_HMAC_SHA1_80 needs 30 (16 key + 14 salt)"
        case .tooShort(let n): "SRTP packet of \(n) bytes is too short to hold a header and a tag"
        case .notRTP(let why): "not an SRTP packet: \(why)"
        case .notRTCP: "not an SRTCP packet"
        case .authenticationFailed: "SRTP authentication tag does not match: forged or damaged"
        case .replayed: "SRTP packet index already seen (replay)"
        case .cipherFailed: "AES-CM failed"
        case .notEncrypted: "SRTCP packet not encrypted (E=0): this profile always encrypts RTCP"
        }
    }
}
