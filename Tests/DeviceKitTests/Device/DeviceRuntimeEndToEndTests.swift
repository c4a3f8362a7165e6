import Foundation
import NIOPosix
import Testing

@testable import DeviceKit

/// One alarm, end to end over real loopback sockets, through failures.
@Suite(.serialized) struct DeviceRuntimeEndToEndTests {
    @Test(arguments: [DeviceRuntimeConfiguration.Transport.tcp, .udp])
    func anAlarmGoesFromPressToClosedAndIsRecordedOnce(transport: DeviceRuntimeConfiguration.Transport) async throws {
        let harness = try EndToEndHarness()
        try await harness.startCentre()
        let indicators = RecordingIndicators()
        let device = try harness.device(id: 11, transport: transport, indicators: indicators)
        device.start()
        _ = try await harness.waitFor(device, "a session") { if case .sessionEstablished = $0 { true } else { false } }
        try await harness.press(device)
        do {
            _ = try await harness.waitFor(device, "the case closed") { if case .story(.closed) = $0 { true } else { false } }
        } catch {
            Issue.record("no closed case; the centre saw: \(harness.centreEvents.map { "\($0)" }.joined(separator: " | "))")
            throw error
        }
        try await eventually("the indicator back to idle") { indicators.current == .idle }
        try await harness.everythingSentSoFarIsHandled(by: device)
        #expect(harness.alarmsRecorded(device: 11).count == 1)
        #expect(indicators.states.contains(.sending))
        #expect(indicators.states.contains(.delivered))
        #expect(indicators.states.contains(.helpComing))
        await device.stop()
        await harness.stopCentre()
    }

    /// Issue 13's flaky run, made to happen: the device's loop is held up by other work when the button goes
    /// down. The test used to release the button 250 ms after pressing it; the device, getting to both edges
    /// after 400 ms, stamped them together, a 0.4 ms glitch, and no alarm was ever raised: "no closed case".
    /// The button is now released once the device has judged the press.
    @Test func aPressIsAnAlarmWhenTheDevicesLoopIsHeldUpAsTheButtonGoesDown() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)  // its own loop: held up, it delays no other test
        let harness = try EndToEndHarness()
        try await harness.startCentre()
        let device = try harness.device(id: 16, eventLoop: group.next())
        device.start()
        _ = try await harness.waitFor(device, "a session") { if case .sessionEstablished = $0 { true } else { false } }
        device.eventLoop.execute { usleep(400_000) }
        try await harness.press(device)
        _ = try await harness.waitFor(device, "the case closed") { if case .story(.closed) = $0 { true } else { false } }
        try await harness.everythingSentSoFarIsHandled(by: device)
        #expect(harness.alarmsRecorded(device: 16).count == 1)
        await device.stop()
        await harness.stopCentre()
        try await group.shutdownGracefully()
    }

    @Test func anAlarmRaisedWhileTheCentreIsDownIsDeliveredOnceWhenItReturns() async throws {
        let harness = try EndToEndHarness(cases: .init())
        try await harness.startCentre()
        let device = try harness.device(id: 12)
        device.start()
        _ = try await harness.waitFor(device, "a session") { if case .sessionEstablished = $0 { true } else { false } }
        await harness.stopCentre()
        _ = try await harness.waitFor(device, "the session lost") { if case .sessionLost = $0 { true } else { false } }
        device.raiseAlarm()
        _ = try await harness.waitFor(device, "the alarm stored") { if case .story(.stored) = $0 { true } else { false } }
        _ = try await harness.waitFor(device, "an attempt with the alarm waiting") { if case .attemptFailed = $0 { true } else { false } }
        #expect(harness.alarmsRecorded(device: 12).isEmpty)
        try await harness.startCentre()
        _ = try await harness.waitFor(device, "the alarm delivered") { if case .story(.delivered) = $0 { true } else { false } }
        try await harness.everythingSentSoFarIsHandled(by: device)
        #expect(harness.alarmsRecorded(device: 12).count == 1)
        await device.stop()
        await harness.stopCentre()
    }

    @Test func anAlarmInFlightWhenTheCentreRestartsIsDispatchedOnce() async throws {
        // The centre stops the moment the alarm is on the wire: it may have recorded it and acked it in time,
        // recorded it with the ack lost in the stop, or never read it. The device sends again what was not
        // acknowledged (the same alarm id), and the restarted centre records the alarm once whichever it was.
        let harness = try EndToEndHarness(cases: .init())
        try await harness.startCentre()
        let device = try harness.device(id: 13)
        device.start()
        _ = try await harness.waitFor(device, "a session") { if case .sessionEstablished = $0 { true } else { false } }
        device.raiseAlarm()
        _ = try await harness.waitFor(device, "the alarm sent") { if case .reliableSent(.alarm) = $0 { true } else { false } }
        await harness.stopCentre()
        try await harness.startCentre()
        _ = try await harness.waitFor(device, "the alarm delivered") { if case .story(.delivered) = $0 { true } else { false } }
        try await harness.everythingSentSoFarIsHandled(by: device)
        // Once in the journal, whichever centre wrote it. The event tells of it only if its writer lived to: a
        // centre stopped between its commit and the commit's completion acknowledges nothing and says nothing,
        // and the restarted one finds the alarm recorded (a retransmission: acknowledged, no new event).
        #expect(try harness.journalAlarms(device: 13).count == 1)
        #expect(harness.alarmsRecorded(device: 13).count <= 1)
        await device.stop()
        await harness.stopCentre()
    }

    @Test func aDurableOutboxKeepsAnAlarmAcrossADeviceRestart() async throws {
        let harness = try EndToEndHarness(cases: .init())
        try await harness.startCentre()
        let path = harness.directory + "/device.sqlite"
        let counterPath = harness.directory + "/counter"
        try CounterReservationFile(path: counterPath).provision()
        // The first life of the device stores an alarm and stops before any centre could hear it.
        do {
            let outbox = try SQLiteOutbox(path: path)
            _ = try outbox.enqueue { .alarm(Alarm(id: $0, kind: .button, triggeredAt: 1, battery: 80, flags: [])) }
        }
        let device = try harness.device(id: 14, outbox: try SQLiteOutbox(path: path), counter: CounterReservationFile(path: counterPath))
        device.start()
        _ = try await harness.waitFor(device, "the recovered alarm delivered") {
            if case .delivered(.alarm) = $0 { true } else { false }
        }
        try await eventually("the alarm recorded") { !harness.alarmsRecorded(device: 14).isEmpty }
        #expect(harness.alarmsRecorded(device: 14) == [1])
        await device.stop()
        #expect(try SQLiteOutbox(path: path).count() <= 1, "only the restart event may still wait")
        await harness.stopCentre()
    }

    @Test func theCentreReportsASilentDeviceOffline() async throws {
        let harness = try EndToEndHarness()
        try await harness.startCentre()
        let device = try harness.device(id: 15)
        device.start()
        _ = try await harness.waitFor(device, "a session") { if case .sessionEstablished = $0 { true } else { false } }
        await device.stop()
        try await eventually("offline") {
            harness.centreEvents.contains { if case .offline(15) = $0 { true } else { false } }
        }
        await harness.stopCentre()
    }
}
