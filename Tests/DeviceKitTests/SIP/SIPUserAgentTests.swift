import NIOCore
import Testing

@testable import DeviceKit

/// The user agent core as transcripts: what it sends and reports for each message, timer and call of the
/// application (RFC 3261 §8, §10, §12–§15, with the transaction layer of §17 underneath).
@Suite struct SIPUserAgentTests {
    static let peer = SIPTarget(.udp, try! SocketAddress(ipAddress: "192.0.2.20", port: 5060))
    static let registrarTarget = SIPTarget(.udp, try! SocketAddress(ipAddress: "192.0.2.30", port: 5060))

    static func agent(credentials: SIPDigestCredentials? = nil, registrar: Bool = false) -> SIPUserAgent {
        SIPUserAgent(
            configuration: SIPUserAgent.Configuration(
                identity: SIPURI(user: "centre", host: "192.0.2.1"), contactHost: "192.0.2.1", contactPort: 5062,
                credentials: credentials, registrar: registrar ? SIPURI(host: "192.0.2.30") : nil,
                registrarTarget: registrar ? registrarTarget : nil, registerExpires: 600))
    }

    static func sent(_ actions: [SIPUserAgent.Action]) -> [SIPMessage] {
        actions.compactMap { if case .send(let message, _) = $0 { message } else { nil } }
    }

    static func requests(_ actions: [SIPUserAgent.Action], _ method: SIPMethod) -> [SIPRequest] {
        sent(actions).compactMap { if case .request(let r) = $0, r.method == method { r } else { nil } }
    }

    static func responses(_ actions: [SIPUserAgent.Action]) -> [SIPResponse] {
        sent(actions).compactMap { if case .response(let r) = $0 { r } else { nil } }
    }

    static func events(_ actions: [SIPUserAgent.Action]) -> [SIPUserAgent.Event] {
        actions.compactMap { if case .event(let e) = $0 { e } else { nil } }
    }

    static func message(_ text: String) throws -> SIPMessage {
        // A literal ends at its last header line's end: the empty line that ends the header section is added.
        let whole = text.contains("\n\n") ? text : text + "\n"
        return try SIPMessage(parsing: Array(whole.replacingOccurrences(of: "\n", with: "\r\n").utf8))
    }

    /// A response to `request` as the peer writes it: `toTag` added to To, a Contact, an optional body.
    static func reply(_ request: SIPRequest, _ code: Int, toTag: String? = "peer1", headers: [(String, String)] = [], body: String = "") -> SIPMessage {
        var response = SIPResponse(replyingTo: request, statusCode: code, toTag: toTag)
        for (name, value) in headers { response.headers.add(name, value) }
        response.body = Array(body.utf8)
        return .response(response)
    }

    static let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

    static func invite(branch: String = "z9hG4bKcaller1", callID: String = "call-1", body: String = sdp) -> String {
        """
        INVITE sip:centre@192.0.2.1:5062 SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.20:5060;branch=\(branch);rport
        Max-Forwards: 70
        From: "Desk" <sip:desk1@192.0.2.20>;tag=caller-tag
        To: <sip:centre@192.0.2.1>
        Call-ID: \(callID)
        CSeq: 7 INVITE
        Contact: <sip:desk1@192.0.2.20:5060>
        Content-Type: application/sdp
        Content-Length: \(body.utf8.count)

        """ + "\n" + body.replacingOccurrences(of: "\r\n", with: "\n")
    }

    // MARK: Calls we place

    @Test func anAnsweredCallIsAcknowledgedAndEndsWithABye() throws {
        var ua = Self.agent()
        let (call, placed) = ua.call(to: SIPURI(user: "desk1", host: "192.0.2.20"), target: Self.peer, offer: Array(Self.sdp.utf8))
        let invite = try #require(Self.requests(placed, .invite).first)
        let via = try #require(try invite.headers.vias().first)
        #expect(via.branch?.hasPrefix("z9hG4bK") == true && via.transport == "UDP" && via.port == 5062)
        #expect(try invite.headers.cseq() == SIPCSeq(sequence: 1, method: .invite))
        #expect(try invite.headers.from().tag != nil && (try invite.headers.to().tag) == nil)
        #expect(invite.headers.contentType == "application/sdp" && invite.body == Array(Self.sdp.utf8))
        #expect(placed.contains { if case .schedule(.transaction(_, .b), _) = $0 { true } else { false } })

        let ringing = ua.received(Self.reply(invite, 180), from: Self.peer)
        #expect(Self.events(ringing) == [.progress(call, statusCode: 180)])

        let ok = ua.received(
            Self.reply(invite, 200, headers: [("Contact", "<sip:desk1@192.0.2.20:5070>"), ("Content-Type", "application/sdp")], body: Self.sdp),
            from: Self.peer)
        let ack = try #require(Self.requests(ok, .ack).first)
        #expect(ack.uri == SIPURI(user: "desk1", host: "192.0.2.20", port: 5070))  // the remote target (Contact)
        #expect(try ack.headers.cseq() == SIPCSeq(sequence: 1, method: .ack))
        #expect(try ack.headers.to().tag == "peer1")
        #expect(try ack.headers.vias().first?.branch != via.branch)  // a 2xx's ACK is a transaction of its own
        #expect(Self.events(ok) == [.answered(call, answer: Array(Self.sdp.utf8))])

        // The 200 again (our ACK was lost): the same ACK again, no second "answered".
        let again = ua.received(
            Self.reply(invite, 200, headers: [("Contact", "<sip:desk1@192.0.2.20:5070>")], body: Self.sdp), from: Self.peer)
        #expect(Self.requests(again, .ack) == [ack])
        #expect(Self.events(again).isEmpty)

        let hangUp = ua.hangUp(call)
        let bye = try #require(Self.requests(hangUp, .bye).first)
        #expect(try bye.headers.cseq() == SIPCSeq(sequence: 2, method: .bye))
        #expect(try bye.headers.from().tag == (try invite.headers.from().tag) && (try bye.headers.to().tag) == "peer1")
        #expect(try bye.headers.callID() == (try invite.headers.callID()))
        #expect(Self.events(hangUp) == [.ended(call, .hungUp)])
        #expect(ua.callCount == 0)
    }

    @Test func aChallengeIsAnsweredOnceWithDigestCredentials() throws {
        var ua = Self.agent(credentials: SIPDigestCredentials(username: "centre", password: "pw"))
        let (call, placed) = ua.call(to: SIPURI(user: "desk1", host: "192.0.2.20"), target: Self.peer, offer: Array(Self.sdp.utf8))
        let invite = try #require(Self.requests(placed, .invite).first)
        let challenge = "Digest realm=\"pbx\", nonce=\"abc\", qop=\"auth\", algorithm=MD5"
        let challenged = ua.received(Self.reply(invite, 401, headers: [("WWW-Authenticate", challenge)]), from: Self.peer)
        // The transaction ACKs the 401 (same branch); the core sends the INVITE again with credentials.
        let ackFor401 = try #require(Self.requests(challenged, .ack).first)
        #expect(try ackFor401.headers.vias().first?.branch == (try invite.headers.vias().first?.branch))
        let second = try #require(Self.requests(challenged, .invite).first)
        #expect(try second.headers.cseq().sequence == 2)
        #expect(try second.headers.callID() == (try invite.headers.callID()))
        #expect(try second.headers.from().tag == (try invite.headers.from().tag))
        #expect(try second.headers.vias().first?.branch != (try invite.headers.vias().first?.branch))
        let authorization = try #require(second.headers["Authorization"])
        let parsed = try SIPDigestAuthorization(parsing: authorization)
        #expect(parsed.username == "centre" && parsed.realm == "pbx" && parsed.nonce == "abc")
        #expect(parsed.verify(password: "pw", method: .invite))
        #expect(Self.events(challenged).isEmpty)

        let refusedAgain = ua.received(Self.reply(second, 401, headers: [("WWW-Authenticate", challenge)]), from: Self.peer)
        #expect(Self.requests(refusedAgain, .invite).isEmpty)
        #expect(Self.events(refusedAgain) == [.ended(call, .refused(statusCode: 401, reason: "Unauthorized"))])
    }

    @Test func aHangUpBeforeAnyProvisionalWaitsForOneToCancel() throws {
        var ua = Self.agent()
        let (call, placed) = ua.call(to: SIPURI(user: "desk1", host: "192.0.2.20"), target: Self.peer, offer: Array(Self.sdp.utf8))
        let invite = try #require(Self.requests(placed, .invite).first)
        #expect(Self.sent(ua.hangUp(call)).isEmpty)  // §9.1: no CANCEL before a provisional response
        let ringing = ua.received(Self.reply(invite, 180), from: Self.peer)
        let cancel = try #require(Self.requests(ringing, .cancel).first)
        #expect(try cancel.headers.vias().first?.branch == (try invite.headers.vias().first?.branch))
        #expect(try cancel.headers.cseq() == SIPCSeq(sequence: 1, method: .cancel))
        #expect(try cancel.uri == invite.uri && (try cancel.headers.to().tag) == nil)
        #expect(Self.events(ringing).isEmpty)
        let terminated = ua.received(Self.reply(invite, 487), from: Self.peer)
        #expect(Self.events(terminated) == [.ended(call, .hungUp)])
    }

    @Test func aBusyCalleeIsReportedAndItsFinalResponseAcknowledged() throws {
        var ua = Self.agent()
        let (call, placed) = ua.call(to: SIPURI(user: "desk1", host: "192.0.2.20"), target: Self.peer, offer: Array(Self.sdp.utf8))
        let invite = try #require(Self.requests(placed, .invite).first)
        let busy = ua.received(Self.reply(invite, 486), from: Self.peer)
        #expect(Self.requests(busy, .ack).count == 1)
        #expect(Self.events(busy) == [.ended(call, .refused(statusCode: 486, reason: "Busy Here"))])
    }

    @Test func anUnansweredInviteTimesOut() throws {
        var ua = Self.agent()
        let (call, placed) = ua.call(to: SIPURI(user: "desk1", host: "192.0.2.20"), target: Self.peer, offer: Array(Self.sdp.utf8))
        let timerB = try #require(placed.compactMap { if case .schedule(let t, _) = $0, case .transaction(_, .b) = t { t } else { nil } }.first)
        #expect(Self.events(ua.timerFired(timerB)) == [.ended(call, .timedOut)])
    }

    // MARK: Calls we take

    @Test func anIncomingCallIsAnsweredAndConfirmedByItsAck() throws {
        var ua = Self.agent()
        let offered = ua.received(try Self.message(Self.invite()), from: Self.peer)
        #expect(Self.responses(offered).map(\.statusCode) == [100])
        guard case .incomingCall(let call, let from, let offer)? = Self.events(offered).first else {
            Issue.record("no incoming call: \(offered)")
            return
        }
        #expect(from.uri.user == "desk1" && offer == Array(Self.sdp.utf8))

        let ringing = Self.responses(ua.ring(call))
        #expect(ringing.map(\.statusCode) == [180])
        let localTag = try #require(try ringing[0].headers.to().tag)

        let answered = ua.answer(call, with: Array(Self.sdp.utf8))
        let ok = try #require(Self.responses(answered).first)
        #expect(try ok.statusCode == 200 && (try ok.headers.to().tag) == localTag)
        #expect(try ok.headers.vias().first?.received == nil)  // it came from the address its Via names
        #expect(try ok.headers.vias().first?.rport == .some(5060))  // RFC 3581: the port it came from
        #expect(ok.headers.contentType == "application/sdp" && !ok.body.isEmpty)
        #expect(answered.contains(.schedule(.successRetransmission(call), after: .milliseconds(500))))

        let ack = """
            ACK sip:centre@192.0.2.1:5062 SIP/2.0
            Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKack1
            From: "Desk" <sip:desk1@192.0.2.20>;tag=caller-tag
            To: <sip:centre@192.0.2.1>;tag=\(localTag)
            Call-ID: call-1
            CSeq: 7 ACK
            Content-Length: 0

            """
        let confirmed = ua.received(try Self.message(ack), from: Self.peer)
        #expect(confirmed.contains(.cancel(.successRetransmission(call))))
        #expect(Self.events(confirmed) == [.confirmed(call)])

        let bye = """
            BYE sip:centre@192.0.2.1:5062 SIP/2.0
            Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKbye1
            From: "Desk" <sip:desk1@192.0.2.20>;tag=caller-tag
            To: <sip:centre@192.0.2.1>;tag=\(localTag)
            Call-ID: call-1
            CSeq: 8 BYE
            Content-Length: 0

            """
        let ended = ua.received(try Self.message(bye), from: Self.peer)
        #expect(Self.responses(ended).map(\.statusCode) == [200])
        #expect(Self.events(ended) == [.ended(call, .byPeer)])
        // The same BYE again (our 200 was lost): the transaction answers it; no second end.
        let again = ua.received(try Self.message(bye), from: Self.peer)
        #expect(Self.responses(again).map(\.statusCode) == [200])
        #expect(Self.events(again).isEmpty)
    }

    @Test func anUnacknowledged200IsSentAgainThenTheCallIsEndedWithABye() throws {
        var ua = Self.agent()
        let offered = ua.received(try Self.message(Self.invite()), from: Self.peer)
        guard case .incomingCall(let call, _, _)? = Self.events(offered).first else { Issue.record("no call"); return }
        _ = ua.answer(call, with: Array(Self.sdp.utf8))
        var intervals: [Duration] = []
        var last: [SIPUserAgent.Action] = []
        for _ in 0 ..< 20 {
            last = ua.timerFired(.successRetransmission(call))
            if let next = last.compactMap({ if case .schedule(.successRetransmission, let after) = $0 { after } else { nil } }).first {
                #expect(Self.responses(last).map(\.statusCode) == [200])
                intervals.append(next)
            } else {
                break
            }
        }
        // T1 doubling to T2 (§13.3.1.4), until 64·T1 = 32 s have passed.
        #expect(intervals.prefix(4) == [.seconds(1), .seconds(2), .seconds(4), .seconds(4)])
        #expect(Self.requests(last, .bye).count == 1)
        #expect(Self.events(last) == [.ended(call, .noAcknowledgement)])
    }

    @Test func aCancelBeforeTheAnswerIsAnswered200AndTheInvite487() throws {
        var ua = Self.agent()
        let offered = ua.received(try Self.message(Self.invite()), from: Self.peer)
        guard case .incomingCall(let call, _, _)? = Self.events(offered).first else { Issue.record("no call"); return }
        let cancel = """
            CANCEL sip:centre@192.0.2.1:5062 SIP/2.0
            Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKcaller1;rport
            Max-Forwards: 70
            From: "Desk" <sip:desk1@192.0.2.20>;tag=caller-tag
            To: <sip:centre@192.0.2.1>
            Call-ID: call-1
            CSeq: 7 CANCEL
            Content-Length: 0

            """
        let cancelled = ua.received(try Self.message(cancel), from: Self.peer)
        let answers = Self.responses(cancelled)
        #expect(answers.map(\.statusCode) == [200, 487])
        #expect(try answers[0].headers.cseq().method == .cancel && (try answers[1].headers.cseq().method) == .invite)
        #expect(Self.events(cancelled) == [.ended(call, .cancelledByCaller)])
    }

    @Test func requestsOutsideAnyDialogAndUnknownMethodsAreRefused() throws {
        var ua = Self.agent()
        let bye = """
            BYE sip:centre@192.0.2.1 SIP/2.0
            Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKstray
            From: <sip:desk1@192.0.2.20>;tag=a
            To: <sip:centre@192.0.2.1>;tag=nosuchdialog
            Call-ID: nope
            CSeq: 1 BYE
            Content-Length: 0

            """
        #expect(try Self.responses(ua.received(try Self.message(bye), from: Self.peer)).map(\.statusCode) == [481])
        let subscribe = bye.replacingOccurrences(of: "BYE", with: "SUBSCRIBE").replacingOccurrences(of: "stray", with: "sub")
        let refused = try #require(Self.responses(ua.received(try Self.message(subscribe), from: Self.peer)).first)
        #expect(refused.statusCode == 405 && refused.headers["Allow"]?.contains("INVITE") == true)
        let options = bye.replacingOccurrences(of: "BYE", with: "OPTIONS").replacingOccurrences(of: "stray", with: "opt")
            .replacingOccurrences(of: ";tag=nosuchdialog", with: "")
        #expect(try Self.responses(ua.received(try Self.message(options), from: Self.peer)).map(\.statusCode) == [200])
        let offerless = Self.invite(branch: "z9hG4bKvideo", callID: "call-2", body: "v=0\r\n").replacingOccurrences(of: "application/sdp", with: "text/plain")
        #expect(try Self.responses(ua.received(try Self.message(offerless), from: Self.peer)).map(\.statusCode).contains(415))
    }

    @Test func malformedRequestsAreAnswered400WhenTheyCanBeAddressed() throws {
        var ua = Self.agent()
        let bytes = Array(Self.invite().replacingOccurrences(of: "Max-Forwards: 70", with: "Max-Forwards: lots").replacingOccurrences(of: "\n", with: "\r\n").utf8)
        let error = try #require(throws: SIPParseError.self) { try SIPMessage(parsing: bytes) }
        let actions = ua.malformed(bytes, error: error, from: Self.peer)
        #expect(Self.responses(actions).map(\.statusCode) == [400])
        #expect(ua.malformed(Array("hello".utf8), error: error, from: Self.peer).allSatisfy { if case .send = $0 { false } else { true } })
    }

    @Test func callsBeyondTheLimitAreAnsweredBusy() throws {
        var ua = SIPUserAgent(
            configuration: SIPUserAgent.Configuration(
                identity: SIPURI(user: "centre", host: "192.0.2.1"), contactHost: "192.0.2.1", contactPort: 5062, maximumCalls: 1))
        _ = ua.received(try Self.message(Self.invite()), from: Self.peer)
        let second = ua.received(try Self.message(Self.invite(branch: "z9hG4bKsecond", callID: "call-2")), from: Self.peer)
        #expect(Self.responses(second).map(\.statusCode).contains(486))
        #expect(Self.events(second).isEmpty)
    }

    // MARK: Registration

    @Test func registrationAnswersItsChallengeAndRefreshesAtHalfItsLife() throws {
        var ua = Self.agent(credentials: SIPDigestCredentials(username: "centre", password: "pw"), registrar: true)
        let first = try #require(Self.requests(ua.register(), .register).first)
        #expect(first.uri == SIPURI(host: "192.0.2.30"))
        #expect(first.headers["Expires"] == "600")
        let challenge = "Digest realm=\"pbx\", nonce=\"n1\", algorithm=SHA-256, qop=\"auth\""
        let retried = try #require(Self.requests(ua.received(Self.reply(first, 401, headers: [("WWW-Authenticate", challenge)]), from: Self.registrarTarget), .register).first)
        #expect(try retried.headers.cseq().sequence == 2 && (try retried.headers.callID()) == (try first.headers.callID()))
        #expect(try SIPDigestAuthorization(parsing: try #require(retried.headers["Authorization"])).verify(password: "pw", method: .register))
        let accepted = ua.received(Self.reply(retried, 200, headers: [("Contact", "<sip:centre@192.0.2.1:5062>;expires=120")]), from: Self.registrarTarget)
        #expect(Self.events(accepted) == [.registered(expires: 120)])
        #expect(accepted.contains(.schedule(.registerRefresh, after: .seconds(60))))
        let refresh = try #require(Self.requests(ua.timerFired(.registerRefresh), .register).first)
        #expect(try refresh.headers.cseq().sequence == 3)
    }
}
