import Foundation
import Testing

@testable import DeviceKit

/// The device daemon as a child process, killed with SIGKILL between storing an alarm and sending it.
@Suite(.serialized) struct DeviceCrashTests {
    @Test func anAlarmStoredBeforeAKillIsSentAfterRestartAndDispatchedOnce() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: ChildProcess.devicesim), "build devicesim first: swift build --build-tests")
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        let config = harness.directory + "/device.toml"
        let provision = try ChildProcess.launch([
            "provision", "--id", "21", "--centre", "127.0.0.1:\(ports.tcp)", "--master", String(repeating: "42", count: 32),
            "--state-dir", harness.directory + "/state", "--out", config,
        ])
        try await ChildProcess.exit(provision, within: .seconds(30))
        #expect(provision.terminationStatus == 0)
        let provisioned = try String(contentsOfFile: config, encoding: .utf8)
        try provisioned.replacingOccurrences(of: "presses = []", with: #"presses = ["1500ms"]"#)
            .write(toFile: config, atomically: true, encoding: .utf8)

        // First life: the press is stored, then the process kills itself before sending it.
        let first = try ChildProcess.launch(["run", "--config", config], environment: ["DEVICESIM_FAULT": "crash-after-storing-alarm"])
        try await ChildProcess.exit(first, within: .seconds(30))
        #expect(first.terminationReason == .uncaughtSignal)
        #expect(first.terminationStatus == SIGKILL)
        let outbox = try SQLiteOutbox(path: harness.directory + "/state/outbox.sqlite")
        #expect(try outbox.pending(limit: 10).contains { if case .alarm = $0 { true } else { false } })
        let beforeSecondLife = harness.centreEvents.count

        // Second life, no more presses: the stored alarm goes out.
        try provisioned.write(toFile: config, atomically: true, encoding: .utf8)
        let log = harness.directory + "/second.log"
        let second = try ChildProcess.launch(["run", "--config", config], output: log)
        try await eventually("the alarm recorded") { !harness.alarmsRecorded(device: 21).isEmpty }
        // Killed before sending: the centre recorded the alarm in the second life's session. Had the first
        // life sent it, its record would come before that session opened (the journal writes in order).
        let events = harness.centreEvents
        let alarm = try #require(events.firstIndex { if case .alarm(21, _, _, _) = $0 { true } else { false } })
        let secondSession = events[beforeSecondLife...].firstIndex { if case .sessionOpened(21, _) = $0 { true } else { false } }
        #expect(secondSession.map { $0 < alarm } == true, "killed before sending: \(events)")
        // The device has the ack, so it sends the alarm no more; then it stops.
        try await eventually("the second life's delivery of the alarm") {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").contains {
                $0.contains("delivered") && $0.contains("message=alarm")
            }
        }
        second.terminate()  // SIGTERM: graceful shutdown
        try await ChildProcess.exit(second, within: .seconds(60))
        #expect(second.terminationReason == .exit)
        #expect(second.terminationStatus == 0)
        await harness.stopCentre()  // the journal writes it queued are done once it has stopped
        #expect(harness.alarmsRecorded(device: 21).count == 1)
    }
}
