import Testing

@testable import DeviceKit

@Suite struct LinkMachineTests {
    static let start = SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 3)
    static let accept = SessionAccept(centreTime: 1_000, heartbeatIntervalSeconds: 10)

    func machine(secondary: Bool = true, seed: UInt64 = 1) -> LinkMachine {
        LinkMachine(configuration: .init(hasSecondary: secondary, sessionStart: Self.start), seed: seed)
    }

    func reconnectDelay(_ actions: [LinkMachine.Action]) -> Duration? {
        for case .scheduleTimer(.reconnect, let after) in actions { return after }
        return nil
    }

    @Test func aSessionOpensWithSessionStartAndHeartbeatsAtTheCentresInterval() {
        var m = machine()
        #expect(m.start() == [.connect(.primary)])
        #expect(
            m.connected() == [
                .send(.sessionStart(Self.start)), .scheduleTimer(.handshakeTimeout(generation: 1), after: .seconds(5)),
                .scheduleTimer(.handshakeRetry(generation: 1, attempt: 1), after: .seconds(1)),
            ])
        #expect(
            m.messageReceived(.sessionAccept(Self.accept), now: .seconds(1)) == [
                .sessionEstablished(.primary, Self.accept),
                .scheduleTimer(.heartbeat(generation: 2), after: .seconds(10)),
                .scheduleTimer(.deadLink(generation: 2), after: .seconds(25)),
            ])
        #expect(m.status == .up(.primary))
        #expect(m.timerFired(.heartbeat(generation: 2), now: .seconds(11)) == [.sendHeartbeat, .scheduleTimer(.heartbeat(generation: 2), after: .seconds(10))])
    }

    /// Silent for two and a half heartbeat intervals, the link is probed with a heartbeat a second, five
    /// times; unanswered, it is given up.
    @Test func aSilentCentreIsProbedAfterTwoAndAHalfHeartbeatIntervalsThenGivenUp() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(Self.accept), now: .seconds(0))
        _ = m.messageReceived(.heartbeatAck(HeartbeatAck(echoedCounter: 1, centreTime: 2)), now: .seconds(10))
        // At 25 s the last frame is 15 s old: not silent enough yet, check again when it would be 25 s old.
        #expect(m.timerFired(.deadLink(generation: 2), now: .seconds(25)) == [.scheduleTimer(.deadLink(generation: 2), after: .seconds(10))])
        for second in 35..<40 {
            #expect(
                m.timerFired(.deadLink(generation: 2), now: .seconds(second)) == [
                    .sendHeartbeat, .scheduleTimer(.deadLink(generation: 2), after: .seconds(1)),
                ], "probe at \(second) s")
            #expect(m.status == .up(.primary))
        }
        let actions = m.timerFired(.deadLink(generation: 2), now: .seconds(40))
        #expect(actions.prefix(2) == [.disconnect, .sessionLost(reason: .silent)])
        #expect(reconnectDelay(actions) != nil)
        #expect(m.status == .down)
    }

    /// Any answer to a probe keeps the session, and the silence is counted afresh from it.
    @Test func anAnsweredProbeKeepsTheSession() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(Self.accept), now: .seconds(0))
        #expect(m.timerFired(.deadLink(generation: 2), now: .seconds(25)).first == .sendHeartbeat)
        #expect(m.timerFired(.deadLink(generation: 2), now: .seconds(26)).first == .sendHeartbeat)
        _ = m.messageReceived(.heartbeatAck(HeartbeatAck(echoedCounter: 9, centreTime: 2)), now: .milliseconds(26_100))
        #expect(m.timerFired(.deadLink(generation: 2), now: .seconds(27)) == [.scheduleTimer(.deadLink(generation: 2), after: .milliseconds(24_100))])
        #expect(m.status == .up(.primary))
    }

    /// One lost heartbeat (or its answer) is not an outage: the next one is answered two intervals and a
    /// round trip after the last frame heard, inside the two and a half intervals.
    @Test func oneLostHeartbeatDoesNotEndTheSession() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(Self.accept), now: .seconds(0))
        _ = m.messageReceived(.heartbeatAck(HeartbeatAck(echoedCounter: 1, centreTime: 2)), now: .milliseconds(10_050))
        #expect(m.timerFired(.deadLink(generation: 2), now: .seconds(25)) == [.scheduleTimer(.deadLink(generation: 2), after: .milliseconds(10_050))])
        // The heartbeat at 20 s is lost; the one at 30 s is answered after a 50 ms round trip.
        _ = m.messageReceived(.heartbeatAck(HeartbeatAck(echoedCounter: 3, centreTime: 4)), now: .milliseconds(30_050))
        #expect(m.timerFired(.deadLink(generation: 2), now: .milliseconds(35_050)) == [.scheduleTimer(.deadLink(generation: 2), after: .seconds(20))])
        #expect(m.status == .up(.primary))
    }

    /// A centre that lost the session (a restart, over UDP) answers nothing: with an alarm waiting, the device
    /// opens a new session after 10 s of silence and five unanswered probes, not after two and a half
    /// heartbeat intervals.
    @Test func anAlarmTheCentreDoesNotAnswerEndsTheSessionAfterTenSecondsOfSilenceAndFiveProbes() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(SessionAccept(centreTime: 1, heartbeatIntervalSeconds: 30)), now: .zero)
        _ = m.messageReceived(.heartbeatAck(HeartbeatAck(echoedCounter: 1, centreTime: 2)), now: .seconds(25))
        #expect(m.busyChanged(true, now: .seconds(28)) == [.scheduleTimer(.unanswered(generation: 2, epoch: 1), after: .seconds(10))])
        #expect(m.busyChanged(true, now: .seconds(29)) == [])  // still the same wait
        // Ten seconds without an answer: probed, a heartbeat a second, and given up after five unanswered.
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 1), now: .seconds(38)) == [.sendHeartbeat, .scheduleTimer(.unanswered(generation: 2, epoch: 1), after: .seconds(1))])
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 1), now: .milliseconds(42_500)) == [.sendHeartbeat, .scheduleTimer(.unanswered(generation: 2, epoch: 1), after: .milliseconds(500))])
        let actions = m.timerFired(.unanswered(generation: 2, epoch: 1), now: .seconds(43))
        #expect(actions.prefix(2) == [.disconnect, .sessionLost(reason: .unanswered)])
        #expect(reconnectDelay(actions) != nil)
        #expect(m.status == .down)
        // That path is known dead while an alarm waits: the next attempt goes to the secondary at once
        // (issue 18: a UDP device's failover no longer waits a handshake timeout more on the dead centre).
        #expect(m.timerFired(.reconnect(generation: 3), now: .seconds(44)) == [.connect(.secondary)])
    }

    /// Without a secondary the device tries its only centre again, as before.
    @Test func anUnansweredAlarmWithoutASecondaryTriesThePrimaryAgain() {
        var m = machine(secondary: false)
        _ = m.start()
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(SessionAccept(centreTime: 1, heartbeatIntervalSeconds: 30)), now: .zero)
        _ = m.busyChanged(true, now: .seconds(1))
        var actions: [LinkMachine.Action] = []
        for second in [11, 12, 13, 14, 15, 16] { actions = m.timerFired(.unanswered(generation: 2, epoch: 1), now: .seconds(second)) }
        #expect(actions.prefix(2) == [.disconnect, .sessionLost(reason: .unanswered)])
        #expect(m.timerFired(.reconnect(generation: 3), now: .seconds(17)) == [.connect(.primary)])
    }

    /// Any authentic frame from the centre (an ack, a heartbeat ack, a nak) shows it is there: the wait is
    /// measured from it; and once nothing waits, the check ends.
    @Test func aCentreThatAnswersKeepsTheSessionWhileMessagesWait() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(SessionAccept(centreTime: 1, heartbeatIntervalSeconds: 30)), now: .zero)
        _ = m.busyChanged(true, now: .seconds(1))
        _ = m.messageReceived(.ack(Ack(id: 7)), now: .seconds(7))
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 1), now: .seconds(11)) == [.scheduleTimer(.unanswered(generation: 2, epoch: 1), after: .seconds(6))])
        _ = m.busyChanged(false, now: .seconds(12))
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 1), now: .seconds(17)) == [])
        #expect(m.status == .up(.primary))
        // A new wait is a new epoch: the old timer no longer counts.
        #expect(m.busyChanged(true, now: .seconds(40)) == [.scheduleTimer(.unanswered(generation: 2, epoch: 2), after: .seconds(10))])
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 1), now: .seconds(50)) == [])
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 2), now: .seconds(50)).first == .sendHeartbeat)
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 2), now: .seconds(55)).contains(.sessionLost(reason: .unanswered)))
    }

    /// Messages that waited while the link was down are sent when the session opens: the check starts then.
    @Test func messagesWaitingWhenASessionOpensAreWatchedFromThatMoment() {
        var m = machine()
        _ = m.start()
        #expect(m.busyChanged(true, now: .seconds(1)) == [])  // no session: nothing to watch yet
        _ = m.connected()
        let established = m.messageReceived(.sessionAccept(Self.accept), now: .seconds(3))
        #expect(established.contains(.scheduleTimer(.unanswered(generation: 2, epoch: 1), after: .seconds(10))))
        #expect(m.timerFired(.unanswered(generation: 2, epoch: 1), now: .seconds(12)) == [.scheduleTimer(.unanswered(generation: 2, epoch: 1), after: .seconds(1))])
    }

    /// A `sessionStart` without an answer is sent again after 1 s, then 2 s, until the handshake times out;
    /// the first accept to arrive opens the session, and a late retry timer does nothing.
    @Test func anUnansweredSessionStartIsSentAgainWithinTheHandshake() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        #expect(
            m.timerFired(.handshakeRetry(generation: 1, attempt: 1), now: .seconds(1)) == [
                .send(.sessionStart(Self.start)), .scheduleTimer(.handshakeRetry(generation: 1, attempt: 2), after: .seconds(2)),
            ])
        #expect(
            m.timerFired(.handshakeRetry(generation: 1, attempt: 2), now: .seconds(3)) == [
                .send(.sessionStart(Self.start)), .scheduleTimer(.handshakeRetry(generation: 1, attempt: 3), after: .seconds(4)),
            ])
        #expect(m.messageReceived(.sessionAccept(Self.accept), now: .milliseconds(3_050)).first == .sessionEstablished(.primary, Self.accept))
        #expect(m.timerFired(.handshakeRetry(generation: 1, attempt: 3), now: .seconds(7)) == [])
        #expect(m.timerFired(.handshakeTimeout(generation: 1), now: .seconds(5)) == [])
        #expect(m.status == .up(.primary))
    }

    /// A full centre answers the session start busy: the attempt fails at once and the next goes to the other
    /// centre, without a second failure here; a nak of another reason changes nothing.
    @Test func aCentreAnsweringBusyIsLeftForTheOtherAtOnce() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        #expect(m.messageReceived(.nak(Nak(id: 0, reason: .invalid, senderTime: 0)), now: .seconds(1)) == [])
        let actions = m.messageReceived(.nak(Nak(id: 0, reason: .busy, senderTime: 0)), now: .seconds(1))
        #expect(actions.prefix(2) == [.disconnect, .attemptFailed(.primary, .turnedAway)])
        guard case .scheduleTimer(let timer, _)? = actions.last else { Issue.record("no reconnect"); return }
        #expect(m.timerFired(timer, now: .seconds(3)) == [.connect(.secondary)])
    }

    @Test func reconnectDelaysGrowAndAreSpreadByJitter() {
        var delays: [Duration] = []
        var m = machine(secondary: false)
        _ = m.start()
        for _ in 0..<8 {
            let actions = m.connectFailed()
            let delay = reconnectDelay(actions)!
            delays.append(delay)
            guard case .scheduleTimer(let timer, _) = actions.last! else { Issue.record("no timer"); return }
            #expect(m.timerFired(timer, now: .zero) == [.connect(.primary)])
        }
        // Each delay lies within its full-jitter window: 1 s, 2 s, 4 s … capped at 60 s.
        for (attempt, d) in delays.enumerated() {
            #expect(d <= Backoff().window(attempt: attempt))
        }
        #expect(Backoff().window(attempt: 7) == .seconds(60))
    }

    /// While an alarm waits, a failed attempt is followed by a draw from the first second, not the doubled window;
    /// once the centre answered `nak busy` (full) the window grows again, alarm or not.
    @Test func whileAnAlarmWaitsReconnectingKeepsTheFirstSecondUnlessTheCentreIsFull() {
        var m = machine(secondary: false, seed: 5)
        _ = m.start()
        #expect(m.urgentChanged(true) == [], "connecting: nothing to cut short")
        var delays: [Duration] = []
        for _ in 0..<12 {
            let actions = m.connectFailed()
            delays.append(reconnectDelay(actions)!)
            guard case .scheduleTimer(let timer, _) = actions.last! else { Issue.record("no timer"); return }
            #expect(m.timerFired(timer, now: .zero) == [.connect(.primary)])
        }
        #expect(delays.allSatisfy { $0 <= .seconds(1) }, "\(delays)")
        // Twelve draws from windows of 1 s … 60 s would not all fall in the first second; their sum is far above.
        #expect(delays.reduce(.zero, +) < .seconds(12))
        _ = m.connected()
        let busy = m.messageReceived(.nak(Nak(id: 0, reason: .busy, senderTime: 0)), now: .seconds(1))
        #expect(busy.contains(.attemptFailed(.primary, .turnedAway)))
        // The thirteenth failure in a row: its window is the cap, 60 s; a draw under 1 s has odds of 1 in 60.
        #expect(reconnectDelay(busy)! > .seconds(1), "\(busy)")
        #expect(m.urgentChanged(false) == [] && m.urgentChanged(true) == [], "a full centre is not hurried")
    }

    /// An alarm raised while the link waits out a long backoff (the centre unreachable for a while) cuts the wait
    /// to a new draw from the first second; the earlier timer is then stale.
    @Test func anAlarmRaisedDuringALongBackoffCutsItToTheFirstSecond() {
        var m = machine(secondary: false, seed: 9)
        _ = m.start()
        var timer: LinkMachine.Timer?
        var longest = Duration.zero
        for attempt in 0..<6 {
            let actions = m.connectFailed()
            guard case .scheduleTimer(let t, let after) = actions.last! else { Issue.record("no timer"); return }
            timer = t
            longest = after
            if attempt < 5 { _ = m.timerFired(t, now: .zero) }
        }
        #expect(longest > .seconds(1), "the sixth failure draws from 32 s: \(longest)")
        let cut = m.urgentChanged(true)
        guard case .scheduleTimer(let next, let after)? = cut.first, cut.count == 1 else { Issue.record("\(cut)"); return }
        #expect(after <= .seconds(1))
        #expect(m.timerFired(timer!, now: .zero) == [], "the long wait's timer is stale")
        #expect(m.timerFired(next, now: .zero) == [.connect(.primary)])
        #expect(m.urgentChanged(true) == [], "still the same alarm")

        // After one failure the wait is already from the first second: nothing to cut.
        var once = machine(secondary: false)
        _ = once.start()
        _ = once.connectFailed()
        #expect(once.urgentChanged(true) == [])
    }

    @Test func tenThousandDevicesThatLostTheirCentreDoNotReturnInTheSameSecond() {
        // Every device fails five times, then reconnects: count reconnections per second of the last attempt.
        var perSecond: [Int64: Int] = [:]
        for seed in 0..<10_000 as Range<UInt64> {
            var m = machine(secondary: false, seed: seed &* 0x9E37_79B9 &+ 1)
            _ = m.start()
            var delay = Duration.zero
            for _ in 0..<5 {
                let actions = m.connectFailed()
                guard case .scheduleTimer(let timer, let after) = actions.last else { Issue.record("no retry"); return }
                delay = after
                _ = m.timerFired(timer, now: .zero)
            }
            perSecond[delay.components.seconds, default: 0] += 1
        }
        // The fifth retry's window is 16 s: no second may hold more than a quarter of the devices.
        #expect(perSecond.values.max()! < 2_500)
        #expect(perSecond.count >= 14)
    }

    @Test func twoFailuresOnThePrimarySwitchToTheSecondaryAndItReturnsLater() {
        var m = machine()
        _ = m.start()
        #expect(m.timerFired(.reconnect(generation: 1), now: .zero) == [])  // nothing scheduled yet
        _ = m.connectFailed()
        #expect(m.timerFired(.reconnect(generation: 1), now: .zero) == [.connect(.primary)])
        _ = m.connectFailed()
        #expect(m.timerFired(.reconnect(generation: 2), now: .zero) == [.connect(.secondary)])
        _ = m.connected()
        let established = m.messageReceived(.sessionAccept(Self.accept), now: .zero)
        #expect(established.contains(.scheduleTimer(.returnToPrimary(generation: 4), after: .seconds(300))))
        // While an alarm is in flight the device stays where it is.
        _ = m.busyChanged(true, now: .zero)
        #expect(m.timerFired(.returnToPrimary(generation: 4), now: .seconds(300)) == [.scheduleTimer(.returnToPrimary(generation: 4), after: .seconds(300))])
        _ = m.busyChanged(false, now: .seconds(300))
        #expect(m.timerFired(.returnToPrimary(generation: 4), now: .seconds(600)) == [.disconnect, .sessionLost(reason: .returningToPrimary), .connect(.primary)])
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(Self.accept), now: .seconds(601))
        #expect(m.status == .up(.primary))
    }

    @Test func aLateTimerFromAnEarlierSessionIsIgnored() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        _ = m.messageReceived(.sessionAccept(Self.accept), now: .zero)
        _ = m.disconnected()
        #expect(m.timerFired(.heartbeat(generation: 2), now: .seconds(10)) == [])
        #expect(m.timerFired(.handshakeTimeout(generation: 1), now: .seconds(10)) == [])
    }

    @Test func aCentreThatNeverAnswersTheHandshakeIsLeft() {
        var m = machine()
        _ = m.start()
        _ = m.connected()
        let actions = m.timerFired(.handshakeTimeout(generation: 1), now: .seconds(5))
        #expect(actions.first == .disconnect)
        #expect(reconnectDelay(actions) != nil)
    }
}
