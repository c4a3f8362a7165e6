import Testing

@testable import DeviceKit

/// Session descriptions as the peers we talk to write them (SIPp's built-in scenarios, baresip, RFC 4568's
/// example), the lines we refuse, and the round trip.
@Suite struct SDPTests {
    /// What `sipp -sd uas` answers with (SIPp 3.x), its keywords filled in as SIPp does, CRLF.
    static let sippUAS = crlf("""
        v=0
        o=user1 53655765 2353687637 IN IP4 127.0.0.1
        s=-
        c=IN IP4 127.0.0.1
        t=0 0
        m=audio 6000 RTP/AVP 0
        a=rtpmap:0 PCMU/8000

        """)

    /// What `sipp -sd uac_pcap` offers: PCMA and telephone events, no PCMU.
    static let sippUACPcap = crlf("""
        v=0
        o=user1 53655765 2353687637 IN IP4 127.0.0.1
        s=-
        c=IN IP4 127.0.0.1
        t=0 0
        m=audio 6000 RTP/AVP 8 101
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-11,16

        """)

    /// A typical baresip offer with SRTP mandatory: two crypto lines, RTCP on its own port.
    static let baresipSAVP = crlf("""
        v=0
        o=- 1727260183 3210474409 IN IP4 192.168.1.20
        s=-
        c=IN IP4 192.168.1.20
        t=0 0
        m=audio 10000 RTP/SAVP 0 8 101
        b=AS:64
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        a=rtcp:10001
        a=sendrecv
        a=label:1
        a=ptime:20
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk
        a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:MDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0

        """)

    /// RFC 4568 §3's example, word for word (its key has a lifetime, an MKI and a session parameter).
    static let rfc4568 = crlf("""
        v=0
        o=sam 2890844526 2890842807 IN IP4 10.47.16.5
        s=SRTP Discussion
        i=A discussion of Secure RTP
        u=http://www.example.com/seminars/srtp.pdf
        e=marge@example.com (Marge Simpson)
        c=IN IP4 168.2.17.12
        t=2873397496 2873404696
        m=audio 49170 RTP/SAVP 0
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP
        m=video 51372 RTP/SAVP 31
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj|2^20|1:32
        m=video 51372 RTP/SAVP 31

        """)

    static func crlf(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n")
    }

    static func parse(_ text: String) throws -> SessionDescription { try SessionDescription(parsing: Array(text.utf8)) }

    static func error(_ text: String) -> SDPError? {
        do {
            _ = try SessionDescription(parsing: text)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsSIPpsUASAnswer() throws {
        let sdp = try Self.parse(Self.sippUAS)
        #expect(sdp.origin == SDPOrigin(username: "user1", sessionID: "53655765", sessionVersion: "2353687637", addressType: .ip4, address: "127.0.0.1"))
        #expect(sdp.sessionName == "-")
        #expect(sdp.connection == SDPConnection(addressType: .ip4, address: "127.0.0.1"))
        #expect(sdp.timing == SDPTiming(start: 0, stop: 0))
        #expect(sdp.media == [
            MediaSection(media: "audio", port: 6000, proto: "RTP/AVP", formats: ["0"], attributes: [SDPAttribute("rtpmap", "0 PCMU/8000")])
        ])
        #expect(sdp.media[0].rtpmap(for: "0") == SDPRTPMap(payloadType: "0", encoding: "PCMU", clockRate: 8000))
        #expect(sdp.media[0].ptime == nil)
        #expect(sdp.direction(of: sdp.media[0]) == .sendrecv, "no direction attribute: sendrecv")
        #expect(sdp.media[0].rtcpPort == nil)
    }

    @Test func readsSIPpsPcapOfferWithTelephoneEvents() throws {
        let sdp = try Self.parse(Self.sippUACPcap)
        let audio = sdp.media[0]
        #expect(audio.formats == ["8", "101"])
        #expect(audio.rtpmaps.map(\.encoding) == ["PCMA", "telephone-event"])
        #expect(audio.values(of: "fmtp") == ["101 0-11,16"], "unknown attributes are kept as written")
    }

    @Test func readsBaresipsSRTPOffer() throws {
        let sdp = try Self.parse(Self.baresipSAVP)
        let audio = sdp.media[0]
        #expect(audio.proto == "RTP/SAVP")
        #expect(audio.ptime == 20)
        #expect(audio.direction == .sendrecv)
        #expect(audio.rtcpPort == 10001)
        #expect(audio.crypto.map(\.tag) == [1, 2])
        #expect(audio.crypto.map(\.suite) == ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
        #expect(!audio.attributes.contains { $0.name == "AS:64" }, "b= is skipped, not taken for an attribute")
    }

    @Test func readsRFC4568sExampleWithItsSkippedLines() throws {
        let sdp = try Self.parse(Self.rfc4568)
        #expect(sdp.sessionName == "SRTP Discussion")
        #expect(sdp.timing == SDPTiming(start: 2_873_397_496, stop: 2_873_404_696))
        #expect(sdp.media.map(\.media) == ["audio", "video", "video"])
        #expect(sdp.media[0].crypto == [
            SDPCrypto(tag: 1, suite: "AES_CM_128_HMAC_SHA1_80", keyParameters: ["inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4"],
                      sessionParameters: ["FEC_ORDER=FEC_SRTP"])
        ])
        #expect(sdp.connection(of: sdp.media[2])?.address == "168.2.17.12", "a section without c= uses the session's")
    }

    @Test func readsMediaLevelConnectionsBareLineFeedsAndIPv6() throws {
        let sdp = try SessionDescription(parsing: """
            v=0
            o=- 1 1 IN IP6 host.example
            s= 
            t=0 0
            a=recvonly
            m=audio 4000/2 RTP/AVP 0
            c=IN IP6 2001:db8::1
            a=ptime:20.0
            """)
        #expect(sdp.connection == nil)
        #expect(sdp.media[0].connection == SDPConnection(addressType: .ip6, address: "2001:db8::1"))
        #expect(sdp.media[0].portCount == 2)
        #expect(sdp.media[0].ptime == 20, "a fractional ptime is read as whole milliseconds")
        #expect(sdp.direction(of: sdp.media[0]) == .recvonly, "a session-level direction holds where a section has none")
        #expect(sdp.origin.address == "host.example", "the origin's address is not used and may be a name")
    }

    @Test func serializesWithCRLFAndReadsBackTheSame() throws {
        let offer = SDPMediaOffer.offer(address: "192.0.2.10", port: 40000, sessionID: 4711, srtp: nil)
        #expect(offer.serialized == Self.crlf("""
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
        for text in [offer.serialized, Self.sippUAS, Self.sippUACPcap, Self.baresipSAVP, Self.rfc4568] {
            let parsed = try Self.parse(text)
            #expect(try Self.parse(parsed.serialized) == parsed)
        }
        #expect(try Self.parse(Self.sippUAS).serialized == Self.sippUAS, "a description with no skipped lines comes back byte for byte")
    }

    @Test func refusesWhatItCannotUseAndSaysWhichLine() {
        let cases: [(String, Int?, String)] = [
            ("", nil, "empty"),
            ("o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n", 1, "v= not first"),
            ("v=1\r\n", 1, "version 1"),
            ("v=0\r\ns=-\r\nt=0 0\r\n", nil, "no o="),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0 0\r\n", nil, "no s="),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 1 RTP/AVP 0\r\n", 4, "m= before t="),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 example.com\r\nt=0 0\r\n", 4, "host name in c="),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 224.2.1.1/127\r\nt=0 0\r\n", 4, "multicast TTL"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP6 1.2.3.4\r\nt=0 0\r\n", 4, "address of the wrong type"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 70000 RTP/AVP 0\r\n", 5, "port out of range"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP\r\n", 5, "no format"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 300\r\n", 5, "payload type > 127"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n", 6, "rtpmap without rate"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=ptime:fast\r\n", 6, "ptime not a number"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=rtcp:0\r\n", 6, "rtcp port 0"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/SAVP 0\r\na=crypto:x AES_CM_128_HMAC_SHA1_80 inline:QQ==\r\n", 6, "crypto tag not a number"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 key:QQ==\r\n", 6, "crypto key not inline"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\nm=audio 7000 RTP/AVP 0\r\na=sendonly:yes\r\n", 6, "direction with a value"),
            ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n", 2, "session id not digits"),
            ("v=0\r\nnonsense\r\n", 2, "not type=value"),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\u{0}\r\nt=0 0\r\n", 3, "NUL"),
        ]
        for (text, line, why) in cases {
            let error = Self.error(text)
            #expect(error?.kind == .malformed, "\(why)")
            #expect(error?.line == line, "\(why): \(error.map(String.init(describing:)) ?? "accepted")")
            #expect(error?.isNotAcceptable == false, "\(why): a malformed body is a 400, not a 488")
        }
    }

    @Test func refusesOversizedAndNonUTF8Bodies() {
        let big = Self.sippUAS + String(repeating: "a=x-padding:0123456789\r\n", count: 1000)
        #expect(throws: SDPError.self) { try Self.parse(big) }
        #expect((try? Self.parse(big)) == nil)
        do {
            _ = try SessionDescription(parsing: Array(big.utf8))
        } catch {
            #expect(error.kind == .tooLarge)
        }
        do {
            _ = try SessionDescription(parsing: Array("v=0\r\ns=".utf8) + [0xC3, 0x28])
            Issue.record("invalid UTF-8 was accepted")
        } catch {
            #expect(error.kind == .malformed)
        }
    }

    @Test func randomBytesAndMutatedDescriptionsNeverCrashTheParser() {
        var rng = ProtocolTestRNG(seed: 0x5D9)
        let seeds = [Self.sippUAS, Self.baresipSAVP, Self.rfc4568].map { Array($0.utf8) }
        for round in 0..<3000 {
            var bytes: [UInt8]
            if round % 3 == 0 {
                bytes = rng.bytes(rng.below(400))
            } else {
                bytes = seeds[rng.below(seeds.count)]
                for _ in 0...rng.below(6) {
                    let at = rng.below(bytes.count)
                    switch rng.below(3) {
                    case 0: bytes[at] = rng.byte()
                    case 1: bytes.remove(at: at)
                    default: bytes.insert([UInt8(ascii: " "), UInt8(ascii: ":"), UInt8(ascii: "/"), 0x0A, 0xFF][rng.below(5)], at: at)
                    }
                }
            }
            if let sdp = try? SessionDescription(parsing: bytes) {
                _ = sdp.media.map { ($0.rtpmaps, $0.ptime, $0.crypto, $0.rtcpPort) }
                #expect((try? SessionDescription(parsing: sdp.serialized)) == sdp, "what is accepted serializes to the same")
            }
        }
    }
}
