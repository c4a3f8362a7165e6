import Testing

@testable import DeviceKit

@Suite struct PressDetectorTests {
    let config = PressDetector.Configuration(debounce: .milliseconds(30), hold: .milliseconds(100), longPress: .seconds(3), stuckAfter: .seconds(60))

    @Test func aCleanPressHeldLongEnoughIsAPress() {
        var d = PressDetector(configuration: config)
        #expect(d.edge(down: true, at: .milliseconds(1000)) == [.scheduleTimer(.settle(generation: 1), after: .milliseconds(30))])
        #expect(
            d.timerFired(.settle(generation: 1), now: .milliseconds(1030)) == [
                .scheduleTimer(.hold(generation: 1), after: .milliseconds(70)),
                .scheduleTimer(.longPress(generation: 1), after: .milliseconds(2970)),
                .scheduleTimer(.stuck(generation: 1), after: .milliseconds(59_970)),
            ])
        #expect(d.timerFired(.hold(generation: 1), now: .milliseconds(1100)) == [.pressed(at: .milliseconds(1000))])
        _ = d.edge(down: false, at: .milliseconds(1500))
        #expect(d.timerFired(.settle(generation: 2), now: .milliseconds(1530)) == [.released(heldFor: .milliseconds(500))])
        #expect(d.timerFired(.longPress(generation: 1), now: .seconds(4)) == [], "released before the long press")
    }

    @Test func aTapShorterThanTheHoldTimeIsNotAPress() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        _ = d.timerFired(.settle(generation: 1), now: .milliseconds(30))
        _ = d.edge(down: false, at: .milliseconds(80))
        #expect(d.timerFired(.hold(generation: 1), now: .milliseconds(100)) == [], "released, the release still settling")
        #expect(d.timerFired(.settle(generation: 2), now: .milliseconds(110)) == [.tooShort(heldFor: .milliseconds(80))])
    }

    @Test func contactBounceIsCountedAsChatterAndDoesNotCancelThePress() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        _ = d.edge(down: false, at: .milliseconds(2))
        _ = d.edge(down: true, at: .milliseconds(4))
        #expect(d.timerFired(.settle(generation: 1), now: .milliseconds(30)) == [], "superseded settle timer")
        #expect(d.timerFired(.settle(generation: 3), now: .milliseconds(34)).count == 3)
        #expect(d.chatter == 2)
        // Bounce while held does not cancel the hold.
        _ = d.edge(down: false, at: .milliseconds(50))
        _ = d.edge(down: true, at: .milliseconds(52))
        #expect(d.timerFired(.settle(generation: 5), now: .milliseconds(82)) == [])
        #expect(d.timerFired(.hold(generation: 1), now: .milliseconds(104)) == [.pressed(at: .milliseconds(4))])
    }

    @Test func aBounceThatSpansTheEndOfTheHoldStillGivesThePress() {
        var d = PressDetector(configuration: config)
        _ = d.edge(down: true, at: .zero)
        _ = d.timerFired(.settle(generation: 1), now: .milliseconds(30))
        _ = d.edge(down: false, at: .milliseconds(95))
        #expect(d.timerFired(.hold(generation: 1), now: .milliseconds(100)) == [])
        _ = d.edge(down: true, at: .milliseconds(97))
        #expect(d.timerFired(.settle(generation: 3), now: .milliseconds(127)) == [.pressed(at: .zero)])
    }

    @Test func aButtonHeldForAMinuteIsReportedStuck() {
        var d = PressDetector(configuration: config)
        _ = d.initialLevel(down: true, at: .zero)
        _ = d.timerFired(.settle(generation: 1), now: .milliseconds(30))
        #expect(d.timerFired(.longPress(generation: 1), now: .seconds(3)) == [.longPressed(at: .zero)])
        #expect(d.timerFired(.stuck(generation: 1), now: .seconds(60)) == [.stuck(since: .zero)])
    }
}
