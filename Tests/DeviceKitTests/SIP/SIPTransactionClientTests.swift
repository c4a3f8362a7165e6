import Testing

@testable import DeviceKit

/// Requests and responses as a UA and its peer write them, for the transaction transcripts.
enum SIPTransactionFixtures {
    static let inviteBranch = "z9hG4bK776asdhds"

    static func request(
        _ method: SIPMethod, branch: String = inviteBranch, sentBy: String = "pc33.atlanta.com", cseq: UInt32 = 314159,
        cseqMethod: SIPMethod? = nil, routes: [String] = []
    ) -> SIPRequest {
        var headers = SIPHeaders()
        headers.add("Via", "SIP/2.0/UDP \(sentBy);branch=\(branch)")
        for route in routes { headers.add("Route", route) }
        headers.add("Max-Forwards", "70")
        headers.add("To", "Bob <sip:bob@biloxi.com>")
        headers.add("From", "Alice <sip:alice@atlanta.com>;tag=1928301774")
        headers.add("Call-ID", "a84b4c76e66710@pc33.atlanta.com")
        headers.add("CSeq", "\(cseq) \(cseqMethod ?? method)")
        headers.add("Content-Length", "0")
        return SIPRequest(method: method, uri: SIPURI(user: "bob", host: "biloxi.com"), headers: headers)
    }

    static let invite = request(.invite)

    /// A response to `request` as the peer's UA writes it: the request's Via, From, Call-ID, CSeq, and its To
    /// with a tag (except on 100).
    static func response(_ code: Int, to request: SIPRequest = invite, reason: String? = nil) -> SIPResponse {
        var headers = SIPHeaders()
        for via in request.headers.all("Via") { headers.add("Via", via) }
        headers.add("To", (request.headers["To"] ?? "") + (code == 100 ? "" : ";tag=a6c85cf"))
        for name in ["From", "Call-ID", "CSeq"] { headers.add(name, request.headers[name] ?? "") }
        headers.add("Content-Length", "0")
        return SIPResponse(statusCode: code, reasonPhrase: reason ?? "Status \(code)", headers: headers)
    }
}

/// The client transaction, row by row of RFC 3261 Figures 5 (INVITE, with RFC 6026's Accepted) and 6
/// (non-INVITE), over UDP and TCP.
@Suite struct SIPTransactionClientTests {
    typealias F = SIPTransactionFixtures
    static let invite = F.invite
    static let options = F.request(.options, branch: "z9hG4bKnashds7")

    @Test func anUnansweredInviteIsRetransmittedWithTimerADoublingWithoutCapUntilTimerB() {
        var t = SIPClientTransaction(request: Self.invite, reliable: false)
        #expect(t.state == .calling)
        #expect(t.start() == [.send(.request(Self.invite)), .schedule(.a, after: .milliseconds(500)), .schedule(.b, after: .seconds(32))])
        for seconds in [1, 2, 4, 8, 16, 32] {
            #expect(t.timerFired(.a) == [.send(.request(Self.invite)), .schedule(.a, after: .seconds(seconds))], "not capped at T2")
        }
        #expect(t.timerFired(.b) == [.timedOut, .terminated])
        #expect(t.isTerminated)
        #expect(t.timerFired(.a) == [], "a late timer of an ended transaction")
    }

    @Test func aProvisionalStopsTheRetransmissionsAndANon2xxFinalIsAckedOncePerCopy() {
        var t = SIPClientTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        #expect(t.received(F.response(100)) == [.cancel(.a), .cancel(.b), .deliver(F.response(100))])
        #expect(t.state == .proceeding)
        #expect(t.received(F.response(180)) == [.deliver(F.response(180))], "every provisional goes up")
        #expect(t.timerFired(.a) == [], "a timer A that fired before its cancel ran")
        #expect(t.timerFired(.b) == [], "no Timer B in Proceeding: the TU's Timer C and CANCEL end a ringing call")
        let ack = SIPClientTransaction.ack(for: Self.invite, response: F.response(486))
        #expect(t.received(F.response(486)) == [.send(.request(ack)), .deliver(F.response(486)), .schedule(.d, after: .seconds(32))])
        #expect(t.state == .completed)
        #expect(t.received(F.response(486)) == [.send(.request(ack))], "a copy of the final response: ACK again, nothing up")
        #expect(t.received(F.response(180)) == [])
        #expect(t.timerFired(.d) == [.terminated])
    }

    @Test func aFinalResponseInCallingGoesStraightToCompleted() {
        var t = SIPClientTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        let ack = SIPClientTransaction.ack(for: Self.invite, response: F.response(603))
        #expect(t.received(F.response(603)) == [
            .cancel(.a), .cancel(.b), .send(.request(ack)), .deliver(F.response(603)), .schedule(.d, after: .seconds(32)),
        ])
    }

    @Test func theAckOfANon2xxFinalIsBuiltAsSection17113Says() {
        var invite = F.request(.invite, routes: ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"])
        invite.headers.set("Via", "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds, SIP/2.0/UDP lower.example.com;branch=z9hG4bKold")
        invite.headers.set("Max-Forwards", "12")
        invite.body = Array("v=0\r\n".utf8)
        var response = F.response(486, to: invite)
        response.headers.set("To", "Bob <sip:bob@biloxi.com>;tag=a6c85cf")
        var t = SIPClientTransaction(request: invite, reliable: false)
        _ = t.start()
        let actions = t.received(response)
        let expected = SIPRequest(
            method: .ack, uri: SIPURI(user: "bob", host: "biloxi.com"),
            headers: SIPHeaders([
                SIPHeaderField("Via", "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds"),
                SIPHeaderField("Route", "<sip:p1.example.com;lr>"), SIPHeaderField("Route", "<sip:p2.example.com;lr>"),
                SIPHeaderField("Max-Forwards", "70"),
                SIPHeaderField("From", "Alice <sip:alice@atlanta.com>;tag=1928301774"),
                SIPHeaderField("To", "Bob <sip:bob@biloxi.com>;tag=a6c85cf"),
                SIPHeaderField("Call-ID", "a84b4c76e66710@pc33.atlanta.com"),
                SIPHeaderField("CSeq", "314159 ACK"), SIPHeaderField("Content-Length", "0"),
            ]))
        #expect(actions == [.cancel(.a), .cancel(.b), .send(.request(expected)), .deliver(response), .schedule(.d, after: .seconds(32))])
    }

    @Test func every2xxGoesUpAndAcceptedEndsWithTimerM() {
        var t = SIPClientTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        _ = t.received(F.response(180))
        #expect(t.received(F.response(200)) == [.deliver(F.response(200)), .schedule(.m, after: .seconds(32))], "no ACK: the TU ACKs a 2xx")
        #expect(t.state == .accepted)
        #expect(t.received(F.response(200)) == [.deliver(F.response(200))], "copies of the 2xx go up for the TU to ACK again")
        #expect(t.received(F.response(486)) == [], "anything but a 2xx is dropped in Accepted")
        #expect(t.timerFired(.m) == [.terminated])
    }

    @Test func aDirect2xxInCallingStopsTimersAAndB() {
        var t = SIPClientTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        #expect(t.received(F.response(200)) == [.cancel(.a), .cancel(.b), .deliver(F.response(200)), .schedule(.m, after: .seconds(32))])
    }

    @Test func overTCPAnInviteIsNotRetransmittedAndCompletedEndsAtOnce() {
        var t = SIPClientTransaction(request: Self.invite, reliable: true)
        #expect(t.start() == [.send(.request(Self.invite)), .schedule(.b, after: .seconds(32))])
        #expect(t.received(F.response(180)) == [.cancel(.b), .deliver(F.response(180))])
        let ack = SIPClientTransaction.ack(for: Self.invite, response: F.response(486))
        #expect(t.received(F.response(486)) == [.send(.request(ack)), .deliver(F.response(486)), .terminated], "Timer D is 0 over TCP")
        var direct = SIPClientTransaction(request: Self.invite, reliable: true)
        _ = direct.start()
        #expect(direct.received(F.response(200)) == [.cancel(.b), .deliver(F.response(200)), .schedule(.m, after: .seconds(32))])
        var unanswered = SIPClientTransaction(request: Self.invite, reliable: true)
        _ = unanswered.start()
        #expect(unanswered.timerFired(.b) == [.timedOut, .terminated])
    }

    @Test func aTransportErrorEndsTheTransactionInAnyLiveState() {
        for responses in [[], [F.response(180)], [F.response(486)], [F.response(200)]] {
            var t = SIPClientTransaction(request: Self.invite, reliable: false)
            _ = t.start()
            for response in responses { _ = t.received(response) }
            #expect(t.transportFailed() == [.transportError, .terminated])
            #expect(t.transportFailed() == [])
        }
    }

    @Test func aNonInviteIsRetransmittedWithTimerEDoublingToT2UntilTimerF() {
        var t = SIPClientTransaction(request: Self.options, reliable: false)
        #expect(t.state == .trying)
        #expect(t.start() == [.send(.request(Self.options)), .schedule(.e, after: .milliseconds(500)), .schedule(.f, after: .seconds(32))])
        for seconds in [1, 2, 4, 4, 4] {
            #expect(t.timerFired(.e) == [.send(.request(Self.options)), .schedule(.e, after: .seconds(seconds))])
        }
        #expect(t.timerFired(.f) == [.timedOut, .terminated])
    }

    @Test func aNonInviteInProceedingRetransmitsEveryT2AndAbsorbsCopiesOfItsFinal() {
        let trying = F.response(100, to: Self.options)
        let ok = F.response(200, to: Self.options)
        var t = SIPClientTransaction(request: Self.options, reliable: false)
        _ = t.start()
        #expect(t.received(trying) == [.deliver(trying)])
        #expect(t.state == .proceeding)
        #expect(t.timerFired(.e) == [.send(.request(Self.options)), .schedule(.e, after: .seconds(4))], "T2 at once in Proceeding")
        #expect(t.received(trying) == [.deliver(trying)])
        #expect(t.received(ok) == [.cancel(.e), .cancel(.f), .deliver(ok), .schedule(.k, after: .seconds(5))])
        #expect(t.state == .completed)
        #expect(t.received(ok) == [], "copies of the final response are absorbed, and a non-INVITE has no ACK")
        #expect(t.timerFired(.k) == [.terminated])

        var timesOut = SIPClientTransaction(request: Self.options, reliable: false)
        _ = timesOut.start()
        _ = timesOut.received(trying)
        #expect(timesOut.timerFired(.f) == [.timedOut, .terminated], "Timer F also in Proceeding")
    }

    @Test func aNonInviteFinalInTryingGoesStraightToCompletedAndOverTCPEndsAtOnce() {
        let notFound = F.response(404, to: Self.options)
        var t = SIPClientTransaction(request: Self.options, reliable: false)
        _ = t.start()
        #expect(t.received(notFound) == [.cancel(.e), .cancel(.f), .deliver(notFound), .schedule(.k, after: .seconds(5))])
        var tcp = SIPClientTransaction(request: Self.options, reliable: true)
        #expect(tcp.start() == [.send(.request(Self.options)), .schedule(.f, after: .seconds(32))])
        #expect(tcp.received(F.response(100, to: Self.options)) == [.deliver(F.response(100, to: Self.options))])
        #expect(tcp.received(notFound) == [.cancel(.f), .deliver(notFound), .terminated], "Timer K is 0 over TCP")
    }

    @Test func timerValuesCanBeShortenedForTests() {
        let fast = SIPTimerValues(t1: .milliseconds(10), t2: .milliseconds(40), t4: .milliseconds(50), d: .milliseconds(320))
        var t = SIPClientTransaction(request: Self.options, reliable: false, timers: fast)
        #expect(t.start() == [.send(.request(Self.options)), .schedule(.e, after: .milliseconds(10)), .schedule(.f, after: .milliseconds(640))])
    }
}
