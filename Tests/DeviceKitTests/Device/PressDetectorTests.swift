import Testing

@testable import DeviceKit

@Suite struct PressDetectorTests {
    let config = PressDetector.Configuration(debounce: .milliseconds(30), hold: .milliseconds(100), longPress: .seconds(3), stuckAfter: .seconds(60))

    func ms(_ value: Int) -> Duration { .milliseconds(value) }

    @Test func aCleanPressHeldLongEnoughIsAPress() {
        var d = PressDetector(configuration: config)
        #expect(d.edge(down: true, at: ms(1000)) == [.wakeUp(at: ms(1030))])
        #expect(d.timeReached(ms(1030)) == [.wakeUp(at: ms(1100))])
        #expect(d.timeReached(ms(1100)) == [.pressed(at: ms(1000)), .wakeUp(at: ms(4000))])
        #expect(d.edge(down: false, at: ms(1500)) == [.wakeUp(at: ms(1530))])
        #expect(d.timeReached(ms(1530)) == [.released(heldFor: ms(500))])
        #expect(d.timeReached(ms(4000)) == [], "released before the long press")
    }

    /// The audit's defect: a 103 ms press with hold_ms = 100, whose hold timer fired after the release
    /// (a busy CPU), was judged too short. The verdict now comes from the timestamps.
    @Test func aPressHeldPastTheHoldIsAPressEvenWhenTheHoldTimerFiresAfterTheRelease() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        _ = d.timeReached(ms(30))
        // The hold wake-up at 100 ms is late: the release at 103 ms is read first.
        #expect(d.edge(down: false, at: ms(103)) == [.pressed(at: .zero), .wakeUp(at: ms(133))])
        #expect(d.timeReached(ms(100)) == [], "a late wake-up for an instant already passed changes nothing")
        #expect(d.timeReached(ms(133)) == [.released(heldFor: ms(103))])
    }

    @Test func aPressOfExactlyTheHoldTimeIsAPressWhicheverWayTheTimersFall() {
        for settleFirst in [true, false] {
            var d = PressDetector(configuration: config)
            _ = d.edge(down: true, at: .zero)
            var actions: [PressDetector.Action] = []
            if settleFirst { actions += d.timeReached(ms(30)) }
            actions += d.edge(down: false, at: ms(100))
            actions += d.timeReached(ms(130))
            #expect(actions.filter { if case .wakeUp = $0 { false } else { true } } == [.pressed(at: .zero), .released(heldFor: ms(100))])
        }
    }

    @Test func aTapShorterThanTheHoldTimeIsTooShort() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        _ = d.timeReached(ms(30))
        _ = d.edge(down: false, at: ms(80))
        #expect(d.timeReached(ms(100)) == [], "released, the release still settling")
        #expect(d.timeReached(ms(110)) == [.tooShort(heldFor: ms(80))])
    }

    /// A HID box that reports press and release in one report (0 ms) and an ACPI button (19 µs) used to
    /// vanish without a trace.
    @Test func aPressShorterThanTheDebounceIsReportedAsAGlitch() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: ms(500))
        #expect(d.edge(down: false, at: ms(500)) == [.glitch(lasted: .zero)])
        _ = d.edge(down: true, at: .seconds(2))
        #expect(d.edge(down: false, at: .seconds(2) + .microseconds(19)) == [.glitch(lasted: .microseconds(19))])
        #expect(d.timeReached(.seconds(3)) == [])
        #expect(d.glitches == 2)
        #expect(d.bounces == 0)
    }

    @Test func contactBounceIsCountedAndDoesNotCancelThePress() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        #expect(d.edge(down: false, at: ms(2)) == [.glitch(lasted: ms(2))])
        #expect(d.edge(down: true, at: ms(4)) == [.bounce(down: false, lasted: ms(2)), .wakeUp(at: ms(34))])
        #expect(d.timeReached(ms(30)) == [], "a wake-up asked for before the bounce")
        #expect(d.timeReached(ms(34)) == [.wakeUp(at: ms(104))])
        // Bounce while held does not cancel the hold.
        _ = d.edge(down: false, at: ms(50))
        #expect(d.edge(down: true, at: ms(52)) == [.bounce(down: false, lasted: ms(2))])
        #expect(d.timeReached(ms(104)) == [.pressed(at: ms(4)), .wakeUp(at: ms(3004))])
        #expect(d.bounces == 2)
        #expect(d.glitches == 1)
    }

    @Test func aBounceThatSpansTheEndOfTheHoldStillGivesThePress() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        _ = d.timeReached(ms(30))
        _ = d.edge(down: false, at: ms(95))
        #expect(d.timeReached(ms(100)) == [], "down until 95 ms only, so far")
        #expect(d.edge(down: true, at: ms(105)) == [.bounce(down: false, lasted: ms(10)), .pressed(at: .zero), .wakeUp(at: ms(3000))])
    }

    @Test func aButtonHeldForAMinuteIsReportedStuckOnce() {
        var d = PressDetector(configuration: config)
        _ = d.initialLevel(down: true, at: .zero)
        _ = d.timeReached(ms(30))
        _ = d.timeReached(ms(100))
        #expect(d.timeReached(.seconds(3)) == [.longPressed(at: .zero), .wakeUp(at: .seconds(60))])
        #expect(d.timeReached(.seconds(60)) == [.stuck(since: .zero)])
        #expect(d.timeReached(.seconds(120)) == [])
        _ = d.edge(down: false, at: .seconds(130))
        #expect(d.timeReached(.seconds(131)) == [.released(heldFor: .seconds(130))])
    }

    @Test func anEdgeFedBeforeAnInstantAlreadyReachedIsTakenAtThatInstantAndCounted() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        _ = d.timeReached(ms(100))
        _ = d.edge(down: false, at: ms(90))
        #expect(d.edgesOutOfOrder == 1)
        #expect(d.timeReached(ms(200)) == [.released(heldFor: ms(100))])
    }
}
