import Foundation
import NIOCore
import Testing

@testable import DeviceKit

@Suite struct LinkHealthTests {
    let refused = "nothing listens on that port (connection refused)"

    @Test func atBootTheSecondFailedAttemptIsAFaultWithItsCause() {
        var h = LinkHealth()
        h.started(now: .zero)
        #expect(h.attemptFailed(cause: refused, now: .seconds(1)) == [], "one failure may be the network coming up")
        #expect(h.attemptFailed(cause: refused, now: .seconds(3)) == [
            .down(cause: refused), .scheduleTimer(.reminder(generation: 1), after: .seconds(600)),
        ])
        #expect(h.isDown)
        #expect(h.attemptFailed(cause: refused, now: .seconds(7)) == [], "said once")
        #expect(h.sessionEstablished(now: .seconds(94)) == [.restored(after: .seconds(94))])
        #expect(!h.isDown)
        #expect(h.timerFired(.reminder(generation: 1), now: .seconds(603)) == [], "no reminder once restored")
    }

    @Test func whileDownAReminderComesEveryTenMinutes() {
        var h = LinkHealth()
        h.started(now: .zero)
        _ = h.attemptFailed(cause: refused, now: .seconds(1))
        _ = h.attemptFailed(cause: refused, now: .seconds(2))
        #expect(h.timerFired(.reminder(generation: 1), now: .seconds(602)) == [
            .stillDown(for: .seconds(602), cause: refused), .scheduleTimer(.reminder(generation: 1), after: .seconds(600)),
        ])
        _ = h.attemptFailed(cause: "no route to the centre's host", now: .seconds(900))
        #expect(h.timerFired(.reminder(generation: 1), now: .seconds(1202)) == [
            .stillDown(for: .seconds(1202), cause: "no route to the centre's host"),
            .scheduleTimer(.reminder(generation: 1), after: .seconds(600)),
        ])
    }

    @Test func aSessionDeclaredDeadIsAFaultAtOnceAndAClosedOneOnlyWhenReopeningFails() {
        var h = LinkHealth()
        h.started(now: .zero)
        #expect(h.sessionEstablished(now: .seconds(1)) == [])
        // A centre restart closes the connection; the device is back within a second: no fault.
        #expect(h.sessionLost(dead: false, cause: "the connection was closed", now: .seconds(100)) == [])
        #expect(h.attemptFailed(cause: refused, now: .seconds(100.5)) == [])
        #expect(h.sessionEstablished(now: .seconds(101)) == [])
        // A cut line: the link machine declares the session dead.
        #expect(h.sessionLost(dead: true, cause: "it stopped answering", now: .seconds(200)) == [
            .down(cause: "it stopped answering"), .scheduleTimer(.reminder(generation: 1), after: .seconds(600)),
        ])
        #expect(h.sessionEstablished(now: .seconds(294)) == [.restored(after: .seconds(94))])
    }

    @Test func socketErrorsAreSaidInPlainWords() throws {
        #expect(LinkCause.connectFailed(IOError(errnoCode: ECONNREFUSED, reason: "connection reset (error set)")) == refused)
        #expect(LinkCause.connectFailed(ChannelError.connectTimeout(.seconds(5))).hasPrefix("no answer within 5 s"))
        #expect(LinkCause.address(try SocketAddress(ipAddress: "127.0.0.1", port: 7730)) == "127.0.0.1:7730")
        #expect(LinkCause.address(try SocketAddress(ipAddress: "::1", port: 7730)) == "[::1]:7730")
    }
}

/// The person at home and the technician are told when the device cannot reach its centre (the audit saw
/// the `idle` indicator for minutes with nothing listening, and the cause only at debug level, garbled).
@Suite(.serialized) struct DeviceLinkFaultTests {
    @Test func aDeviceThatCannotReachItsCentreShowsTheFaultSaysWhyAndShowsAnAlarmAsWaiting() async throws {
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        await harness.stopCentre()  // nothing listens on the centre's port now
        let indicators = RecordingIndicators()
        let device = try harness.device(id: 21, indicators: indicators)
        device.start()
        let down = try await harness.waitFor(device, "the link declared down") { if case .linkDown = $0 { true } else { false } }
        guard case .linkDown(let centre, let cause) = down.kind else { return }
        #expect(centre == "127.0.0.1:\(ports.tcp)")
        #expect(cause == "nothing listens on that port (connection refused)")
        try await eventually("the fault indicator") { indicators.current == .fault }

        device.raiseAlarm()
        try await eventually("the alarm shown as stored and waiting, not as sending") { indicators.current == .waiting }
        #expect(!indicators.states.contains(.sending))

        try await harness.startCentre()
        let restored = try await harness.waitFor(device, "the link restored") { if case .linkRestored = $0 { true } else { false } }
        guard case .linkRestored(_, let after) = restored.kind else { return }
        #expect(after > .zero)
        _ = try await harness.waitFor(device, "the alarm delivered") { if case .story(.delivered) = $0 { true } else { false } }
        try await eventually("the indicator shows the centre has it") { indicators.current == .delivered }
        await device.stop()
        await harness.stopCentre()
    }

    /// The audit: a missing counter file was taken as a first boot (counter 0 under the same key). Now the
    /// device seals nothing, shows the fault, says how to recover, and keeps an alarm for a new key.
    @Test func aDeviceWithoutItsCounterReservationSealsNothingAndKeepsTheAlarm() async throws {
        let harness = try EndToEndHarness(cases: .init())
        try await harness.startCentre()
        let indicators = RecordingIndicators()
        let outbox = try SQLiteOutbox(path: harness.directory + "/outbox.sqlite")
        let counter = CounterReservationFile(path: harness.directory + "/counter")  // never provisioned, or lost
        let device = try harness.device(id: 22, outbox: outbox, counter: counter, indicators: indicators)
        device.start()
        let down = try await harness.waitFor(device, "the fault") { if case .linkDown = $0 { true } else { false } }
        guard case .linkDown(_, let cause) = down.kind else { return }
        #expect(cause.contains("is missing"))
        #expect(cause.contains("re-provision the device with the next key epoch"))
        device.raiseAlarm()
        try await eventually("the alarm stored and waiting") { indicators.current == .waiting }
        // Without its reservation the device never connects (DeviceMachineTests shows it asks for no
        // connection and sets no link timer), so nothing can reach the centre however long one waits.
        #expect(try harness.centreMetric("center_connections_accepted_total") == 0)
        let heard = harness.centreEvents.filter { if case .listening = $0 { false } else { true } }
        #expect(heard.isEmpty, "nothing reached the centre: \(heard)")
        #expect(!FileManager.default.fileExists(atPath: harness.directory + "/counter"), "no reservation was invented")
        #expect(try outbox.count() >= 1, "the alarm waits in the outbox")
        await device.stop()
        await harness.stopCentre()
    }
}
