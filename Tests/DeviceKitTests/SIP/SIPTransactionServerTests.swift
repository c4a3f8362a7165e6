import Testing

@testable import DeviceKit

/// The server transaction, row by row of RFC 3261 Figures 7 (INVITE, with RFC 6026's Accepted) and 8
/// (non-INVITE), over UDP and TCP.
@Suite struct SIPTransactionServerTests {
    typealias F = SIPTransactionFixtures
    static let invite = F.invite
    static let ack = F.request(.ack, cseq: 314159)
    static let bye = F.request(.bye, branch: "z9hG4bKbye1", cseq: 314160)

    /// 100 Trying as §8.2.6 builds it: Via, From, To (no tag added), Call-ID, CSeq of the request.
    static let trying = SIPResponse(
        statusCode: 100, reasonPhrase: "Trying",
        headers: SIPHeaders([
            SIPHeaderField("Via", "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds"),
            SIPHeaderField("From", "Alice <sip:alice@atlanta.com>;tag=1928301774"), SIPHeaderField("To", "Bob <sip:bob@biloxi.com>"),
            SIPHeaderField("Call-ID", "a84b4c76e66710@pc33.atlanta.com"), SIPHeaderField("CSeq", "314159 INVITE"),
        ]))  // Content-Length is written when it is serialised

    @Test func anInviteIsAnswered100TryingAtOnceAndPassedUpOnce() {
        var t = SIPServerTransaction(request: Self.invite, reliable: false)
        #expect(t.state == .proceeding)
        #expect(t.start() == [.send(.response(Self.trying)), .deliver(Self.invite)])
        #expect(t.received(request: Self.invite) == [.send(.response(Self.trying))], "a copy gets the 100 again, and is not passed up")
    }

    @Test func aRetransmittedInviteAfter180GetsThe180Again() {
        var t = SIPServerTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        #expect(t.respond(F.response(180)) == [.send(.response(F.response(180)))])
        #expect(t.state == .proceeding)
        #expect(t.received(request: Self.invite) == [.send(.response(F.response(180)))])
    }

    @Test func aNon2xxFinalIsRetransmittedWithTimerGUntilTheAckThenTimerIEnds() {
        let busy = F.response(486)
        var t = SIPServerTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        #expect(t.respond(busy) == [.send(.response(busy)), .schedule(.g, after: .milliseconds(500)), .schedule(.h, after: .seconds(32))])
        #expect(t.state == .completed)
        #expect(t.received(request: Self.invite) == [.send(.response(busy))], "a copy of the INVITE gets the final response again")
        for ms in [1000, 2000, 4000, 4000] {
            #expect(t.timerFired(.g) == [.send(.response(busy)), .schedule(.g, after: .milliseconds(ms))], "doubling to T2")
        }
        #expect(t.received(request: Self.ack) == [.cancel(.g), .cancel(.h), .ackReceived, .schedule(.i, after: .seconds(5))])
        #expect(t.state == .confirmed)
        #expect(t.received(request: Self.ack) == [], "copies of the ACK are absorbed")
        #expect(t.received(request: Self.invite) == [], "so are late copies of the INVITE")
        #expect(t.timerFired(.g) == [], "a Timer G that fired before its cancel ran")
        #expect(t.timerFired(.i) == [.terminated])
    }

    @Test func aFinalResponseNeverAckedTimesOutWithTimerH() {
        var t = SIPServerTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        _ = t.respond(F.response(480))
        #expect(t.timerFired(.h) == [.timedOut, .terminated])
        #expect(t.isTerminated)
    }

    @Test func a2xxMovesToAcceptedWhereCopiesOfTheInviteAreAbsorbedUntilTimerL() {
        let ok = F.response(200)
        var t = SIPServerTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        _ = t.respond(F.response(180))
        #expect(t.respond(ok) == [.send(.response(ok)), .schedule(.l, after: .seconds(32))], "no Timer G: the TU retransmits a 2xx")
        #expect(t.state == .accepted)
        #expect(t.received(request: Self.invite) == [], "the TU's own 2xx retransmissions answer copies")
        #expect(t.respond(ok) == [.send(.response(ok))], "the TU's copies of the 2xx go out through the transaction")
        #expect(t.received(request: Self.ack) == [.deliver(Self.ack)], "an ACK that reused the INVITE's branch goes to the TU")
        #expect(t.timerFired(.l) == [.terminated])
    }

    @Test func overTCPNothingIsRetransmittedAndConfirmedEndsAtOnce() {
        let busy = F.response(486)
        var t = SIPServerTransaction(request: Self.invite, reliable: true)
        #expect(t.start() == [.send(.response(Self.trying)), .deliver(Self.invite)])
        #expect(t.respond(busy) == [.send(.response(busy)), .schedule(.h, after: .seconds(32))], "no Timer G over TCP")
        #expect(t.received(request: Self.ack) == [.cancel(.h), .ackReceived, .terminated], "Timer I is 0 over TCP")
        var accepted = SIPServerTransaction(request: Self.invite, reliable: true)
        _ = accepted.start()
        #expect(accepted.respond(F.response(200)) == [.send(.response(F.response(200))), .schedule(.l, after: .seconds(32))])
    }

    @Test func aNonInviteIsPassedUpAndCopiesAreAbsorbedUntilAResponseThenAnsweredWithIt() {
        let trying = F.response(100, to: Self.bye)
        let ok = F.response(200, to: Self.bye)
        var t = SIPServerTransaction(request: Self.bye, reliable: false)
        #expect(t.state == .trying)
        #expect(t.start() == [.deliver(Self.bye)], "no automatic 100 for a non-INVITE")
        #expect(t.received(request: Self.bye) == [], "Trying absorbs copies")
        #expect(t.respond(trying) == [.send(.response(trying))])
        #expect(t.state == .proceeding)
        #expect(t.received(request: Self.bye) == [.send(.response(trying))])
        #expect(t.respond(ok) == [.send(.response(ok)), .schedule(.j, after: .seconds(32))])
        #expect(t.state == .completed)
        #expect(t.received(request: Self.bye) == [.send(.response(ok))])
        #expect(t.timerFired(.j) == [.terminated])
    }

    @Test func aNonInviteFinalInTryingCompletesAndOverTCPEndsAtOnce() {
        let ok = F.response(200, to: Self.bye)
        var t = SIPServerTransaction(request: Self.bye, reliable: false)
        _ = t.start()
        #expect(t.respond(ok) == [.send(.response(ok)), .schedule(.j, after: .seconds(32))])
        var tcp = SIPServerTransaction(request: Self.bye, reliable: true)
        _ = tcp.start()
        #expect(tcp.respond(F.response(100, to: Self.bye)) == [.send(.response(F.response(100, to: Self.bye)))])
        #expect(tcp.respond(ok) == [.send(.response(ok)), .terminated], "Timer J is 0 over TCP")
    }

    @Test func aTransportErrorEndsTheTransactionAndLaterResponsesSendNothing() {
        var t = SIPServerTransaction(request: Self.invite, reliable: false)
        _ = t.start()
        #expect(t.transportFailed() == [.transportError, .terminated])
        #expect(t.respond(F.response(486)) == [], "the TU answered before it heard: nothing to send with")
        var bye = SIPServerTransaction(request: Self.bye, reliable: false)
        _ = bye.start()
        _ = bye.respond(F.response(200, to: Self.bye))
        #expect(bye.transportFailed() == [.transportError, .terminated])
    }
}
