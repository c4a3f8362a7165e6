import Testing

@testable import DeviceKit

/// Presence and level of a serial button box, from its messages and its silences (§5 of
/// hardware/serial-box-protocol.md); one event per line.
@Suite struct SerialBoxMonitorTests {
    let t0 = ContinuousClock.now
    func at(_ seconds: Double) -> ContinuousClock.Instant { t0 + .milliseconds(Int(seconds * 1000)) }
    static let silence = ButtonEvent.missing(reason: "no heartbeat from the serial button box for 30 s: check its cable and power")

    @Test func theBatteryBoxExampleOfTheProtocolDocument() {
        // §6: powered up released, then pressed for 1.5 s; the port was opened just before.
        var monitor = SerialBoxMonitor()
        #expect(monitor.portOpened(now: at(-0.1)) == [])
        #expect(monitor.received([.released, .battery(percent: 87), .heartbeat], now: at(0)) == [.present(initiallyDown: false)])
        #expect(monitor.received([.released, .heartbeat], now: at(5)) == [])
        #expect(monitor.received([.pressed], now: at(7.2)) == [.level(down: true)])
        #expect(monitor.received([.released], now: at(8.7)) == [.level(down: false)])
        #expect(monitor.received([.released, .heartbeat], now: at(10)) == [])
        // §6: a box that stops after its H at t=10 s is missing at t=40 s, and present at its next message.
        #expect(monitor.tick(now: at(39.9)) == [])
        #expect(monitor.deadline == at(40))
        #expect(monitor.tick(now: at(40)) == [Self.silence])
        #expect(monitor.tick(now: at(100)) == [])
        #expect(monitor.deadline == nil)
        #expect(monitor.received([.heartbeat], now: at(101)) == [.present(initiallyDown: false)])
    }

    @Test func theFirstValidMessageMakesTheBoxPresentWithItsLevel() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        #expect(monitor.received([.battery(percent: 80)], now: at(1)) == [.present(initiallyDown: false)])
        #expect(monitor.received([.released], now: at(2)) == [])
        #expect(monitor.received([.pressed, .pressed], now: at(3)) == [.level(down: true)])
        #expect(monitor.received([.released, .pressed], now: at(4)) == [.level(down: false), .level(down: true)])
        #expect(monitor.received([.tamper, .released], now: at(5)) == [.tamper, .level(down: false)])

        var held = SerialBoxMonitor()
        _ = held.portOpened(now: at(0))
        #expect(held.received([.pressed, .heartbeat], now: at(1)) == [.present(initiallyDown: true)])
    }

    @Test func onlyHeartbeatsRestartTheTimer() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        #expect(monitor.received([.released], now: at(1)) == [.present(initiallyDown: false)])
        for second in stride(from: 5.0, through: 25, by: 5) {
            #expect(monitor.received([.pressed, .released, .battery(percent: 50), .tamper], now: at(second)).count == 3)
            #expect(monitor.tick(now: at(second)) == [])
        }
        // 30 s after opening, with no H at all: missing, although P and R kept coming.
        #expect(monitor.tick(now: at(30)) == [Self.silence])
    }

    @Test func aMissingBoxCountsAsReleasedAndAPressBringsItBackPressed() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        _ = monitor.received([.pressed, .heartbeat], now: at(1))
        #expect(monitor.tick(now: at(31)) == [Self.silence])
        #expect(monitor.received([.pressed], now: at(50)) == [.present(initiallyDown: true)])
        // The timer starts afresh when the box comes back.
        #expect(monitor.tick(now: at(79.9)) == [])
        #expect(monitor.tick(now: at(80)) == [Self.silence])
        #expect(monitor.received([.released], now: at(90)) == [.present(initiallyDown: false)])
    }

    @Test func aBoxThatNeverSpeaksIsMissingOnce() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        #expect(monitor.deadline == at(30))
        #expect(monitor.tick(now: at(29)) == [])
        #expect(monitor.tick(now: at(30)) == [Self.silence])
        #expect(monitor.tick(now: at(100)) == [])
        #expect(monitor.received([.heartbeat], now: at(101)) == [.present(initiallyDown: false)])
    }

    @Test func aLostPortIsMissingOnceAndTheFirstMessageAfterReopeningIsPresent() {
        var monitor = SerialBoxMonitor()
        _ = monitor.portOpened(now: at(0))
        _ = monitor.received([.pressed], now: at(1))
        #expect(monitor.portUnavailable(reason: "gone") == [.missing(reason: "gone")])
        #expect(monitor.portUnavailable(reason: "not found") == [])
        #expect(monitor.portOpened(now: at(5)) == [])
        #expect(monitor.deadline == nil)
        #expect(monitor.tick(now: at(60)) == [])
        #expect(monitor.received([.heartbeat], now: at(61)) == [.present(initiallyDown: false)])
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
                    == "no heartbeat from the serial button box for 300 ms: check its cable and power")
        #expect(SerialBoxMonitor(heartbeatTimeout: .milliseconds(1500)).silenceReason
                    == "no heartbeat from the serial button box for 1.5 s: check its cable and power")
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
