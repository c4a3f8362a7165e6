import Testing

@testable import DeviceKit

/// One call's life as transcripts, for the caller (the centre) and the callee (a device).
@Suite struct CallMachineTests {
    static func media(_ port: UInt16) -> MediaDescription {
        MediaDescription(endpoint: Endpoint(address: [127, 0, 0, 1], port: port), audioPayloadType: 0, ssrc: UInt32(port),
                         keyMaterial: Array(repeating: 7, count: 30), videoPayloadType: 0)
    }

    @Test func theCallerOffersAfterBindingAndStartsTheMediaOnTheAnswer() {
        var c = CallMachine(role: .caller)
        #expect(c.place(callID: 1, alarmID: 7) == [.bindMedia(callID: 1)])
        #expect(c.mediaBound(callID: 1, local: Self.media(4000)) == [
            .sendOffer(callID: 1, alarmID: 7, local: Self.media(4000)), .scheduleAnswerTimeout(callID: 1, after: .seconds(45)),
        ])
        #expect(c.answerReceived(callID: 1, remote: Self.media(5000)) == [
            .started(callID: 1, alarmID: 7), .startMedia(callID: 1, local: Self.media(4000), remote: Self.media(5000)),
        ])
        #expect(c.answerReceived(callID: 1, remote: Self.media(5000)) == [], "a second answer changes nothing")
        #expect(c.answerTimeoutFired(callID: 1) == [], "answered: the timeout is late")
        #expect(c.endReceived(callID: 1, reason: .hangUp) == [
            .stopMedia(callID: 1, reason: .hangUp), .ended(callID: 1, reason: .hangUp, byPeer: true),
        ])
    }

    @Test func aNewCallReplacesTheOneInProgressAndLateEventsOfTheOldAreIgnored() {
        var c = CallMachine(role: .caller)
        _ = c.place(callID: 1, alarmID: 7)
        _ = c.mediaBound(callID: 1, local: Self.media(4000))
        #expect(c.place(callID: 2, alarmID: 7) == [
            .stopMedia(callID: 1, reason: .hangUp), .sendEnd(callID: 1, reason: .hangUp),
            .ended(callID: 1, reason: .hangUp, byPeer: false), .bindMedia(callID: 2),
        ])
        #expect(c.answerReceived(callID: 1, remote: Self.media(5000)) == [], "the replaced call's late answer")
        #expect(c.endReceived(callID: 1, reason: .hangUp) == [])
        #expect(c.mediaBound(callID: 1, local: Self.media(4002)) == [.stopMedia(callID: 1, reason: .hangUp)], "ports bound too late are let go")
        #expect(c.callID == 2)
    }

    @Test func anUnansweredOfferEndsAsFailedAndTellsThePeer() {
        var c = CallMachine(role: .caller, answerTimeout: .seconds(3))
        _ = c.place(callID: 1, alarmID: 0)
        _ = c.mediaBound(callID: 1, local: Self.media(4000))
        #expect(c.answerTimeoutFired(callID: 1) == [
            .stopMedia(callID: 1, reason: .failed), .sendEnd(callID: 1, reason: .failed),
            .ended(callID: 1, reason: .failed, byPeer: false),
        ])
        #expect(c.callID == nil)
    }

    @Test func theCalleeAnswersByItselfAndDeclinesACallOutsideAnAlarm() {
        var d = CallMachine(role: .callee)
        let offer = CallOffer(id: 9, callID: 5, alarmID: 3, media: Self.media(4000))
        #expect(d.offerReceived(CallOffer(id: 8, callID: 4, alarmID: 0, media: Self.media(4000)), mayAnswer: false)
            == [.sendEnd(callID: 4, reason: .declined), .declined(callID: 4)])
        #expect(d.offerReceived(offer, mayAnswer: true) == [.bindMedia(callID: 5)])
        #expect(d.offerReceived(offer, mayAnswer: true) == [], "the same offer again")
        #expect(d.mediaBound(callID: 5, local: Self.media(6000)) == [
            .sendAnswer(callID: 5, local: Self.media(6000)), .started(callID: 5, alarmID: 3),
            .startMedia(callID: 5, local: Self.media(6000), remote: Self.media(4000)),
        ])
        #expect(d.isActive)
        #expect(d.mediaSilent(callID: 5) == [
            .stopMedia(callID: 5, reason: .mediaSilent), .sendEnd(callID: 5, reason: .mediaSilent),
            .ended(callID: 5, reason: .mediaSilent, byPeer: false),
        ])
    }

    @Test func aCalleesCallReplacedByThePeerIsNotToldBack() {
        var d = CallMachine(role: .callee)
        _ = d.offerReceived(CallOffer(id: 1, callID: 5, alarmID: 3, media: Self.media(4000)), mayAnswer: true)
        _ = d.mediaBound(callID: 5, local: Self.media(6000))
        #expect(d.offerReceived(CallOffer(id: 2, callID: 6, alarmID: 3, media: Self.media(4002)), mayAnswer: true) == [
            .stopMedia(callID: 5, reason: .hangUp), .ended(callID: 5, reason: .hangUp, byPeer: true), .bindMedia(callID: 6),
        ])
    }

    @Test func mediaThatCannotBeSetUpEndsTheCallAsFailed() {
        var d = CallMachine(role: .callee)
        _ = d.offerReceived(CallOffer(id: 1, callID: 5, alarmID: 3, media: Self.media(4000)), mayAnswer: true)
        #expect(d.mediaFailed(callID: 5) == [
            .stopMedia(callID: 5, reason: .failed), .sendEnd(callID: 5, reason: .failed), .ended(callID: 5, reason: .failed, byPeer: false),
        ])
        #expect(d.hangUp() == [], "nothing left to hang up")
    }

    /// The centre's ports could not be bound, or a new call replaced one still binding: the device never saw
    /// an offer, so it is sent no callEnd.
    @Test func theCallerDoesNotTellThePeerOfACallItNeverOffered() {
        var c = CallMachine(role: .caller)
        _ = c.place(callID: 1, alarmID: 7)
        #expect(c.stage == .binding && c.alarmID == 7)
        #expect(c.mediaFailed(callID: 1) == [.stopMedia(callID: 1, reason: .failed), .ended(callID: 1, reason: .failed, byPeer: false)])
        _ = c.place(callID: 2, alarmID: 7)
        #expect(c.place(callID: 3, alarmID: 8) == [
            .stopMedia(callID: 2, reason: .hangUp), .ended(callID: 2, reason: .hangUp, byPeer: false), .bindMedia(callID: 3),
        ])
        _ = c.mediaBound(callID: 3, local: Self.media(4000))
        #expect(c.stage == .offered)
        #expect(c.hangUp() == [
            .stopMedia(callID: 3, reason: .hangUp), .sendEnd(callID: 3, reason: .hangUp), .ended(callID: 3, reason: .hangUp, byPeer: false),
        ], "offered: the peer is told")
    }
}
