import Testing

@testable import DeviceKit

/// Presence and level of a serial button box, from its lines and its silences; one event per line.
@Suite struct SerialBoxMonitorTests {
    let t0 = ContinuousClock.now
    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int(seconds * 1000)) }
    static let silence = ButtonEvent.missing(reason: "the serial button box sent nothing for 30 s: check its cable and power")

    @Test func theFirstLevelAfterOpeningMakesTheBoxPresent() {
        var monitor = SerialBoxMonitor()
        #expect(monitor.portOpened(now: at(0)) == [])
        #expect(monitor.received([.heartbeat, .battery(percent: 80)], now: at(1)) == [])
        #expect(monitor.received([.pressed], now: at(2)) == [.present(initiallyDown: true)])
        #expect(monitor.received([.pressed], now: at(3)) == [])
        #expect(monitor.received([.released, .pressed], now: at(4)) == [.level(down: false), .level(down: true)])
        #expect(monitor.received([.tamper, .released], now: at(5)) == [.level(down: false)])
    }

    @Test func heartbeatsKeepTheBoxPresentAndThirtySecondsOfSilenceMakeItMissing() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        #expect(monitor.received([.released], now: at(0.1)) == [.present(initiallyDown: false)])
        for second in stride(from: 10.0, through: 100, by: 10) {
            #expect(monitor.tick(now: at(second)) == [])
            #expect(monitor.received([.heartbeat], now: at(second)) == [])
        }
        #expect(monitor.deadline == at(130))
        #expect(monitor.tick(now: at(129.9)) == [])
        #expect(monitor.tick(now: at(130)) == [Self.silence])
        #expect(monitor.tick(now: at(200)) == [])
        #expect(monitor.deadline == nil)
    }

    @Test func aBoxBackFromSilenceKeepsItsLevelOrSendsANewOne() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        _ = monitor.received([.pressed], now: at(1))
        #expect(monitor.tick(now: at(31)) == [Self.silence])
        #expect(monitor.received([.heartbeat], now: at(40)) == [.present(initiallyDown: true)])
        #expect(monitor.tick(now: at(70)) == [Self.silence])
        #expect(monitor.received([.released], now: at(80)) == [.present(initiallyDown: false)])
    }

    @Test func aBoxThatNeverSpeaksIsMissingOnce() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        #expect(monitor.tick(now: at(30)) == [Self.silence])
        // Heartbeats without a level prove it alive but give no level to report: still missing, once.
        #expect(monitor.received([.heartbeat], now: at(31)) == [])
        #expect(monitor.tick(now: at(100)) == [])
        #expect(monitor.received([.released], now: at(101)) == [.present(initiallyDown: false)])
    }

    @Test func aLostPortIsMissingOnceAndTheFirstLevelAfterReopeningIsPresent() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        _ = monitor.received([.pressed], now: at(1))
        #expect(monitor.portUnavailable(reason: "gone") == [.missing(reason: "gone")])
        #expect(monitor.portUnavailable(reason: "not found") == [])
        #expect(monitor.portOpened(now: at(5)) == [])
        #expect(monitor.received([.heartbeat], now: at(6)) == [])
        #expect(monitor.tick(now: at(60)) == [])
        #expect(monitor.received([.released], now: at(61)) == [.present(initiallyDown: false)])
    }

    @Test func aPortAbsentAtStartIsMissingOnce() {
        var monitor = SerialBoxMonitor()
        #expect(monitor.portUnavailable(reason: "no such port") == [.missing(reason: "no such port")])
        #expect(monitor.portUnavailable(reason: "no such port") == [])
        _ = monitor.portOpened(now: at(3))
        #expect(monitor.received([.pressed], now: at(4)) == [.present(initiallyDown: true)])
    }

    @Test func theSilenceReasonNamesTheTimeout() {
        #expect(SerialBoxMonitor(heartbeatTimeout: .milliseconds(300)).silenceReason
                    == "the serial button box sent nothing for 300 ms: check its cable and power")
        #expect(SerialBoxMonitor(heartbeatTimeout: .milliseconds(1500)).silenceReason
                    == "the serial button box sent nothing for 1.5 s: check its cable and power")
    }
}

/// A switch across a modem line, from snapshots of its level and change counter.
@Suite struct SerialContactMonitorTests {
    @Test func theFirstSnapshotIsPresentAndLevelChangesFollow() {
        var monitor = SerialContactMonitor()
        #expect(monitor.observe(down: false, count: 0) == [.present(initiallyDown: false)])
        #expect(monitor.observe(down: false, count: 0) == [])
        #expect(monitor.observe(down: true, count: 1) == [.level(down: true)])
        #expect(monitor.observe(down: false, count: 2) == [.level(down: false)])
    }

    @Test func aPressBetweenTwoSnapshotsIsCountedByTwo() {
        var monitor = SerialContactMonitor()
        _ = monitor.observe(down: false, count: 10)
        #expect(monitor.observe(down: false, count: 12) == [.level(down: true), .level(down: false)])
        #expect(monitor.observe(down: false, count: 16) == [.level(down: true), .level(down: false),
                                                             .level(down: true), .level(down: false)])
        // Two hidden presses and the start of a third.
        #expect(monitor.observe(down: true, count: 21) == [.level(down: true), .level(down: false),
                                                            .level(down: true), .level(down: false), .level(down: true)])
    }

    @Test func ringIndicatorCountsOnlyTrailingEdges() {
        var monitor = SerialContactMonitor()
        _ = monitor.observe(down: false, count: 0)
        #expect(monitor.observe(down: false, count: 1) == [.level(down: true), .level(down: false)])
        #expect(monitor.observe(down: true, count: 1) == [.level(down: true)])
        #expect(monitor.observe(down: false, count: 2) == [.level(down: false)])
    }

    @Test func withoutCountersOnlyLevelsCount() {
        var monitor = SerialContactMonitor()
        #expect(monitor.observe(down: true, count: nil) == [.present(initiallyDown: true)])
        #expect(monitor.observe(down: true, count: nil) == [])
        #expect(monitor.observe(down: false, count: nil) == [.level(down: false)])
    }

    @Test func aCounterGoingBackwardsOrRunningAwayIsBounded() {
        var monitor = SerialContactMonitor()
        _ = monitor.observe(down: false, count: 100)
        #expect(monitor.observe(down: false, count: 3) == [])
        #expect(monitor.observe(down: false, count: 1_000_000).count == 2 * SerialContactMonitor.maximumHiddenPresses)
        monitor.reset()
        #expect(monitor.observe(down: true, count: 0) == [.present(initiallyDown: true)])
    }
}
