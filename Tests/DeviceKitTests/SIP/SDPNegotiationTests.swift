import Foundation
import Testing

@testable import DeviceKit

/// Offer/answer (RFC 3264) with SDES keys (RFC 4568) against the descriptions real peers send.
@Suite struct SDPNegotiationTests {
    /// Key material 0, 1, …, 29: base64 `AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd`.
    static let keyBytes = (0..<30).map { UInt8($0) }
    static let keyBase64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
    static let local: SRTPMasterKey = {
        do { return try SRTPMasterKey(keyMaterial: keyBytes) } catch { preconditionFailure("30 bytes") }
    }()
    /// The first key of `SDPTests.baresipSAVP` ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcd").
    static let baresipKey = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcd".utf8)

    static func answer(_ text: String, policy: SRTPPolicy = .optional) throws -> (SessionDescription, NegotiatedAudio) {
        try SDPMediaOffer.answer(
            to: SessionDescription(parsing: text), address: "192.0.2.10", port: 40000, sessionID: 4711, localKey: local, policy: policy)
    }

    static func answerError(_ text: String, policy: SRTPPolicy = .optional) -> SDPError? {
        do throws(SDPError) {
            _ = try SDPMediaOffer.answer(
                to: SessionDescription(parsing: text), address: "192.0.2.10", port: 40000, sessionID: 4711, localKey: local, policy: policy)
            return nil
        } catch {
            return error
        }
    }

    static func offer(_ media: String, session: String = "") -> String {
        SDPTests.crlf("v=0\no=- 1 1 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\n\(session)\(media)\n")
    }

    @Test func anSRTPOfferCarriesOneAES80KeyInline() {
        let offer = SDPMediaOffer.offer(address: "2001:db8::5", port: 41000, sessionID: 99, srtp: Self.local)
        #expect(offer.serialized == SDPTests.crlf("""
            v=0
            o=- 99 1 IN IP6 2001:db8::5
            s=-
            c=IN IP6 2001:db8::5
            t=0 0
            m=audio 41000 RTP/SAVP 0
            a=rtpmap:0 PCMU/8000
            a=ptime:20
            a=sendrecv
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:\(Self.keyBase64)

            """))
    }

    @Test func answersSIPpsPlainOfferWithPCMU() throws {
        let (answer, audio) = try Self.answer(SDPTests.sippUAS, policy: .optional)
        #expect(answer.serialized == SDPTests.crlf("""
            v=0
            o=- 4711 1 IN IP4 192.0.2.10
            s=-
            c=IN IP4 192.0.2.10
            t=0 0
            m=audio 40000 RTP/AVP 0
            a=rtpmap:0 PCMU/8000
            a=ptime:20
            a=sendrecv

            """))
        #expect(audio == NegotiatedAudio(
            remoteAddress: "127.0.0.1", remoteRTPPort: 6000, remoteRTCPPort: 6001, payloadType: 0, ptime: 20, remoteKey: nil,
            localKey: nil, direction: .sendrecv))
        #expect(try Self.answer(SDPTests.sippUAS, policy: .off).1 == audio)
    }

    @Test func anOfferWithoutPCMUHasNoCommonCodec() {
        let error = Self.answerError(SDPTests.sippUACPcap)
        #expect(error?.kind == .noCommonCodec)
        #expect(error?.isNotAcceptable == true, "the user agent answers 488")
        #expect(Self.answerError(Self.offer("m=audio 5000 RTP/AVP 0\na=rtpmap:0 PCMA/8000"))?.kind == .noCommonCodec,
                "payload type 0 mapped to another codec is not PCMU")
    }

    @Test func answersBaresipsSRTPOfferWithOurKeyUnderTheSameTag() throws {
        let (answer, audio) = try Self.answer(SDPTests.baresipSAVP, policy: .required)
        let section = answer.media[0]
        #expect(section.proto == "RTP/SAVP")
        #expect(section.formats == ["0"])
        #expect(section.crypto == [SDPCrypto(tag: 1, suite: "AES_CM_128_HMAC_SHA1_80", keyParameters: ["inline:\(Self.keyBase64)"])])
        #expect(audio == NegotiatedAudio(
            remoteAddress: "192.168.1.20", remoteRTPPort: 10000, remoteRTCPPort: 10001, payloadType: 0, ptime: 20,
            remoteKey: Self.baresipKey, localKey: Self.keyBytes, direction: .sendrecv))
        #expect(audio.isSecure)
    }

    @Test func skipsCryptoSuitesItDoesNotSpeak() throws {
        let offer = Self.offer("""
            m=audio 5000 RTP/SAVP 0
            a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk
            a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk
            a=crypto:7 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk|2^31
            """)
        let (answer, audio) = try Self.answer(offer, policy: .required)
        #expect(answer.media[0].crypto.map(\.tag) == [7])
        #expect(audio.remoteKey == Self.baresipKey, "a lifetime is accepted")

        let only32 = Self.offer("m=audio 5000 RTP/SAVP 0\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk")
        #expect(Self.answerError(only32)?.kind == .securityMismatch)
        #expect(Self.answerError(Self.offer("m=audio 5000 RTP/SAVP 0"))?.kind == .securityMismatch, "SAVP without crypto lines")
    }

    @Test func refusesKeysThatAreNotBase64Of30BytesOrUseAnMKI() throws {
        let cases = [
            ("not base64", "inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVph!!!!"),
            ("20 bytes", "inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"),
            ("an MKI", "inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk|2^20|1:4"),
            ("two keys", "inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk;inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"),
        ]
        for (why, key) in cases {
            let error = Self.answerError(Self.offer("m=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 \(key)"))
            #expect(error?.kind == .badKey, "\(why)")
            #expect(error?.isNotAcceptable == true)
            #expect(error.map { !String(describing: $0).contains("QUJD") } == true, "the text never carries key material")
        }
        let error = Self.answerError(SDPTests.rfc4568, policy: .required)
        #expect(error?.kind == .badKey, "RFC 4568's example key has an MKI and a session parameter")

        let secondGood = Self.offer("""
            m=audio 5000 RTP/SAVP 0
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldY
            a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk
            """)
        #expect(try Self.answer(secondGood).0.media[0].crypto.map(\.tag) == [2], "a bad key is passed over for a good one")
    }

    @Test func thePolicyDecidesBetweenPlainAndSecure() throws {
        #expect(Self.answerError(SDPTests.sippUAS, policy: .required)?.kind == .securityMismatch, "plain refused when SRTP is required")
        #expect(Self.answerError(SDPTests.baresipSAVP, policy: .off)?.kind == .securityMismatch, "SAVP cannot be answered plain")

        let bestEffort = Self.offer("m=audio 5000 RTP/AVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk")
        let (secure, secureAudio) = try Self.answer(bestEffort, policy: .optional)
        #expect(secure.media[0].proto == "RTP/AVP")
        #expect(secure.media[0].crypto.map(\.tag) == [1], "best-effort SRTP is answered in kind")
        #expect(secureAudio.isSecure)
        #expect(try Self.answer(bestEffort, policy: .required).1.isSecure)
        let (plain, plainAudio) = try Self.answer(bestEffort, policy: .off)
        #expect(plain.media[0].crypto.isEmpty)
        #expect(!plainAudio.isSecure && plainAudio.remoteKey == nil && plainAudio.localKey == nil)
        let badBestEffort = Self.offer("m=audio 5000 RTP/AVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD")
        #expect(try Self.answer(badBestEffort, policy: .optional).1.isSecure == false, "an unreadable best-effort key falls back to plain")
    }

    @Test func keepsTheOffersMLinesAndRefusesAllButOneAudioStream() throws {
        let offer = Self.offer("""
            m=video 6000 RTP/AVP 96
            a=rtpmap:96 H264/90000
            m=audio 0 RTP/AVP 0
            m=audio 5000 RTP/AVP 8
            m=audio 5002 RTP/AVP 8 0
            c=IN IP4 203.0.113.9
            m=audio 5004 RTP/AVP 0
            """)
        let (answer, audio) = try Self.answer(offer)
        #expect(answer.media.map(\.media) == ["video", "audio", "audio", "audio", "audio"])
        #expect(answer.media.map(\.port) == [0, 0, 0, 40000, 0])
        #expect(answer.media[0] == MediaSection(media: "video", port: 0, proto: "RTP/AVP", formats: ["96"]))
        #expect(answer.media[3].formats == ["0"])
        #expect(audio.remoteAddress == "203.0.113.9", "a media-level c= overrides the session's")
        #expect(audio.remoteRTPPort == 5002)
        #expect(Self.answerError(Self.offer("m=video 6000 RTP/AVP 96"))?.kind == .noAudio)
        #expect(Self.answerError(Self.offer("m=audio 6000 UDP/TLS/RTP/SAVPF 0"))?.kind == .noAudio)
    }

    @Test func answersTheDirectionPerRFC3264() throws {
        let expected: [(SDPDirection, SDPDirection)] = [(.sendrecv, .sendrecv), (.sendonly, .recvonly), (.recvonly, .sendonly), (.inactive, .inactive)]
        for (offered, answered) in expected {
            let (answer, audio) = try Self.answer(Self.offer("m=audio 5000 RTP/AVP 0\na=\(offered.rawValue)"))
            #expect(answer.media[0].direction == answered)
            #expect(audio.direction == answered)
            let (sessionLevel, _) = try Self.answer(Self.offer("m=audio 5000 RTP/AVP 0", session: "a=\(offered.rawValue)\n"))
            #expect(sessionLevel.media[0].direction == answered, "a session-level direction is answered too")
        }
    }

    @Test func takesPCMUUnderADynamicPayloadTypeAndThePeersPtimeAndRTCPPort() throws {
        let (answer, audio) = try Self.answer(Self.offer("m=audio 5000 RTP/AVP 96 101\na=rtpmap:96 pcmu/8000\na=ptime:30\na=rtcp:7000"))
        #expect(answer.media[0].formats == ["96"])
        #expect(answer.media[0].rtpmap(for: "96")?.encoding == "PCMU")
        #expect(audio.payloadType == 96)
        #expect(audio.ptime == 30)
        #expect(audio.remoteRTCPPort == 7000)
        #expect(Self.answerError(SDPTests.crlf("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\n"))?.kind == .malformed,
                "no c= anywhere")
    }

    @Test func theOffererReadsTheAnswerOfItsOwnOffer() throws {
        let peerKey = try SRTPMasterKey(keyMaterial: Self.baresipKey)
        let offer = SDPMediaOffer.offer(address: "192.0.2.10", port: 40000, sessionID: 1, srtp: Self.local)
        let (answer, answerer) = try SDPMediaOffer.answer(
            to: offer, address: "198.51.100.7", port: 50000, sessionID: 2, localKey: peerKey, policy: .required)
        let offerer = try SDPMediaOffer.accept(answer: answer, to: offer)
        #expect(offerer == NegotiatedAudio(
            remoteAddress: "198.51.100.7", remoteRTPPort: 50000, remoteRTCPPort: 50001, payloadType: 0, ptime: 20,
            remoteKey: Self.baresipKey, localKey: Self.keyBytes, direction: .sendrecv))
        #expect(answerer.remoteKey == offerer.localKey && answerer.localKey == offerer.remoteKey)

        let plainOffer = SDPMediaOffer.offer(address: "192.0.2.10", port: 40000, sessionID: 1, srtp: nil)
        let sipp = try SDPMediaOffer.accept(answer: SessionDescription(parsing: SDPTests.sippUAS), to: plainOffer)
        #expect(sipp == NegotiatedAudio(remoteAddress: "127.0.0.1", remoteRTPPort: 6000, remoteRTCPPort: 6001, remoteKey: nil, localKey: nil))
    }

    @Test func theOffererRefusesAnswersThatDoNotFit() throws {
        let secureOffer = SDPMediaOffer.offer(address: "192.0.2.10", port: 40000, sessionID: 1, srtp: Self.local)
        let plainOffer = SDPMediaOffer.offer(address: "192.0.2.10", port: 40000, sessionID: 1, srtp: nil)
        func accept(_ media: String, to offer: SessionDescription) -> SDPError? {
            do throws(SDPError) {
                _ = try SDPMediaOffer.accept(answer: SessionDescription(parsing: Self.offer(media)), to: offer)
                return nil
            } catch {
                return error
            }
        }
        let key = "inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk"
        #expect(accept("m=audio 0 RTP/AVP 0", to: plainOffer)?.kind == .streamRefused)
        #expect(accept("m=audio 5000 RTP/AVP 0\nm=video 0 RTP/AVP 96", to: plainOffer)?.kind == .answerMismatch)
        #expect(accept("m=video 5000 RTP/AVP 96", to: plainOffer)?.kind == .answerMismatch)
        #expect(accept("m=audio 5000 RTP/AVP 8", to: plainOffer)?.kind == .noCommonCodec)
        #expect(accept("m=audio 5000 RTP/AVP 96\na=rtpmap:96 PCMU/8000", to: plainOffer)?.kind == .answerMismatch, "a type not offered")
        #expect(accept("m=audio 5000 RTP/AVP 0", to: secureOffer)?.kind == .answerMismatch, "plain answer to SAVP")
        #expect(accept("m=audio 5000 RTP/SAVP 0", to: secureOffer)?.kind == .securityMismatch, "no crypto line")
        #expect(accept("m=audio 5000 RTP/SAVP 0\na=crypto:2 AES_CM_128_HMAC_SHA1_80 \(key)", to: secureOffer)?.kind == .securityMismatch,
                "a tag that was not offered")
        #expect(accept("m=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_32 \(key)", to: secureOffer)?.kind == .answerMismatch)
        #expect(accept("m=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJD", to: secureOffer)?.kind == .badKey)
        let recvOnly = try SDPMediaOffer.accept(answer: SessionDescription(parsing: Self.offer("m=audio 5000 RTP/AVP 0\na=sendonly")), to: plainOffer)
        #expect(recvOnly.direction == .recvonly, "the peer only sends: this side only receives")
    }
}
