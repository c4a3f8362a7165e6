import Testing

@testable import DeviceKit

/// When a home with `[voice] sip` calls its centre, tries again, hangs up and answers (issue 16, part 3).
@Suite struct SIPVoiceMachineTests {
    static let configuration = SIPVoiceMachine.Configuration(maximumAttempts: 3, maximumBusyAttempts: 2, retryAfter: .seconds(5), callbackWindow: .seconds(300))

    @Test func anAcknowledgedAlarmIsCalledAboutOnceAndTheCallIsNotPlacedAgainAfterItWasAnswered() {
        var voice = SIPVoiceMachine(configuration: Self.configuration)
        #expect(voice.alarmAcknowledged(7) == [.place(alarmID: 7, attempt: 1)])
        #expect(voice.isBusy)
        #expect(voice.answered() == [])
        #expect(voice.ended(.ended, now: .seconds(60)) == [], "the operator hung up: the centre calls back if it must")
        #expect(!voice.isBusy)
    }

    @Test func aFailedCallIsTriedAgainWithBackoffAtMostThreeTimes() {
        var voice = SIPVoiceMachine(configuration: Self.configuration)
        _ = voice.alarmAcknowledged(7)
        #expect(voice.ended(.failed, now: .seconds(1)) == [
            .retrying(alarmID: 7, attempt: 2, after: .seconds(5)), .scheduleTimer(.retry(generation: 1), after: .seconds(5)),
        ])
        #expect(!voice.isBusy)
        #expect(voice.timerFired(.retry(generation: 1)) == [.place(alarmID: 7, attempt: 2)])
        #expect(voice.ended(.failed, now: .seconds(7)) == [
            .retrying(alarmID: 7, attempt: 3, after: .seconds(10)), .scheduleTimer(.retry(generation: 2), after: .seconds(10)),
        ])
        #expect(voice.timerFired(.retry(generation: 1)) == [], "a late timer of an earlier generation")
        #expect(voice.timerFired(.retry(generation: 2)) == [.place(alarmID: 7, attempt: 3)])
        #expect(voice.ended(.failed, now: .seconds(20)) == [.gaveUp(alarmID: 7, attempts: 3)])
    }

    @Test func aBusyCentreIsTriedTwiceAndADeclineOrAChallengeNotAgain() {
        var busy = SIPVoiceMachine(configuration: Self.configuration)
        _ = busy.alarmAcknowledged(7)
        #expect(busy.ended(.busy(statusCode: 486), now: .seconds(1)).contains(.retrying(alarmID: 7, attempt: 2, after: .seconds(5))))
        _ = busy.timerFired(.retry(generation: 1))
        #expect(busy.ended(.busy(statusCode: 486), now: .seconds(7)) == [.gaveUp(alarmID: 7, attempts: 2)])

        for code in [603, 401] {
            var declined = SIPVoiceMachine(configuration: Self.configuration)
            _ = declined.alarmAcknowledged(7)
            #expect(declined.ended(.final(statusCode: code), now: .seconds(1)) == [.gaveUp(alarmID: 7, attempts: 1)])
        }
        #expect(SIPVoiceMachine.Outcome(.refused(statusCode: 401, reason: "Unauthorized"), answered: false) == .final(statusCode: 401))
        #expect(SIPVoiceMachine.Outcome(.refused(statusCode: 600, reason: "Busy Everywhere"), answered: false) == .busy(statusCode: 600))
        #expect(SIPVoiceMachine.Outcome(.timedOut, answered: false) == .failed)
        #expect(SIPVoiceMachine.Outcome(.byPeer, answered: true) == .ended)
    }

    @Test func closingTheCaseHangsUpAndForgetsTheRetry() {
        var talking = SIPVoiceMachine(configuration: Self.configuration)
        _ = talking.alarmAcknowledged(7)
        _ = talking.answered()
        #expect(talking.alarmEnded(8, hangUp: true, now: .seconds(9)) == [], "another alarm's end")
        #expect(talking.alarmEnded(7, hangUp: true, now: .seconds(10)) == [.hangUp])
        #expect(talking.ended(.ended, now: .seconds(10)) == [])

        var ringing = SIPVoiceMachine(configuration: Self.configuration)
        _ = ringing.alarmAcknowledged(7)
        #expect(ringing.alarmEnded(7, hangUp: true, now: .seconds(2)) == [.hangUp])
        #expect(ringing.ended(.failed, now: .seconds(2)) == [], "cancelled by us: not tried again")

        var waiting = SIPVoiceMachine(configuration: Self.configuration)
        _ = waiting.alarmAcknowledged(7)
        _ = waiting.ended(.failed, now: .seconds(1))
        #expect(waiting.alarmEnded(7, hangUp: true, now: .seconds(2)) == [])
        #expect(waiting.timerFired(.retry(generation: 1)) == [], "the case is closed: no call")
    }

    /// Over DC-09 the alarm is handed over at the end of its cancel window, and no case ever closes: the call
    /// and its retries go on.
    @Test func aHandedOverAlarmKeepsItsCallAndItsRetries() {
        var voice = SIPVoiceMachine(configuration: Self.configuration)
        _ = voice.alarmAcknowledged(7)
        #expect(voice.alarmEnded(7, hangUp: false, now: .seconds(10)) == [])
        #expect(voice.ended(.failed, now: .seconds(11)).contains(.retrying(alarmID: 7, attempt: 2, after: .seconds(5))))
        #expect(voice.timerFired(.retry(generation: 1)) == [.place(alarmID: 7, attempt: 2)])
    }

    @Test func theCentreIsAnsweredDuringAnAlarmAndShortlyAfterOthersAreDeclined() {
        var voice = SIPVoiceMachine(configuration: Self.configuration)
        #expect(voice.incoming(fromCentre: true, now: .seconds(1)) == 603, "no alarm: nobody listens in unasked")
        _ = voice.alarmAcknowledged(7)
        #expect(voice.incoming(fromCentre: true, now: .seconds(2)) == 486, "our own call is being placed")
        _ = voice.ended(.failed, now: .seconds(3))
        #expect(voice.incoming(fromCentre: false, now: .seconds(4)) == 603, "not the centre")
        #expect(voice.incoming(fromCentre: true, now: .seconds(4)) == nil, "the centre calls back: answered")
        #expect(voice.timerFired(.retry(generation: 1)) == [], "and the retry is not needed any more")
        #expect(voice.incoming(fromCentre: true, now: .seconds(5)) == 486, "one call at a time")
        _ = voice.ended(.ended, now: .seconds(60))
        _ = voice.alarmEnded(7, hangUp: true, now: .seconds(100))
        #expect(voice.incoming(fromCentre: true, now: .seconds(399)) == nil, "within five minutes of the case's close")
        _ = voice.ended(.ended, now: .seconds(400))
        #expect(voice.incoming(fromCentre: true, now: .seconds(701)) == 603, "long after")
    }
}
