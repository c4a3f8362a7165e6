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
        try await Task.sleep(for: .milliseconds(300))
        #expect(harness.alarmsRecorded(device: 21).isEmpty, "killed before sending")
        let outbox = try SQLiteOutbox(path: harness.directory + "/state/outbox.sqlite")
        #expect(try outbox.pending(limit: 10).contains { if case .alarm = $0 { true } else { false } })

        // Second life, no more presses: the stored alarm goes out.
        try provisioned.write(toFile: config, atomically: true, encoding: .utf8)
        let second = try ChildProcess.launch(["run", "--config", config])
        try await eventually("the alarm recorded") { !harness.alarmsRecorded(device: 21).isEmpty }
        try await Task.sleep(for: .milliseconds(500))
        second.terminate()  // SIGTERM: graceful shutdown
        try await ChildProcess.exit(second, within: .seconds(60))
        #expect(second.terminationReason == .exit)
        #expect(second.terminationStatus == 0)
        #expect(harness.alarmsRecorded(device: 21).count == 1)
        await harness.stopCentre()
    }
}
