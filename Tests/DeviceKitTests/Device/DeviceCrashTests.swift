import Foundation
import Testing

@testable import DeviceKit

/// The device daemon as a child process, killed with SIGKILL between storing an alarm and sending it.
@Suite(.serialized) struct DeviceCrashTests {
    /// The `devicesim` built beside the tests (`swift build --build-tests` builds it).
    static var devicesim: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardized
        let candidates = [Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("devicesim").path]
            + [".build/debug/devicesim", ".build/release/devicesim"].map { root.appendingPathComponent($0).path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    func launch(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.devicesim)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Waits for `process` to end; kills it and fails after `timeout`, so a test never hangs.
    func exit(_ process: Process, within timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                kill(process.processIdentifier, SIGKILL)
                throw HarnessError("devicesim \(process.arguments?.first ?? "") did not exit within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func anAlarmStoredBeforeAKillIsSentAfterRestartAndDispatchedOnce() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.devicesim), "build devicesim first: swift build --build-tests")
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        let config = harness.directory + "/device.toml"
        let provision = try launch([
            "provision", "--id", "21", "--centre", "127.0.0.1:\(ports.tcp)", "--master", String(repeating: "42", count: 32),
            "--state-dir", harness.directory + "/state", "--out", config,
        ])
        try await exit(provision, within: .seconds(30))
        #expect(provision.terminationStatus == 0)
        let provisioned = try String(contentsOfFile: config, encoding: .utf8)
        try provisioned.replacingOccurrences(of: "presses = []", with: #"presses = ["1500ms"]"#)
            .write(toFile: config, atomically: true, encoding: .utf8)

        // First life: the press is stored, then the process kills itself before sending it.
        let first = try launch(["run", "--config", config], environment: ["DEVICESIM_FAULT": "crash-after-storing-alarm"])
        try await exit(first, within: .seconds(30))
        #expect(first.terminationReason == .uncaughtSignal)
        #expect(first.terminationStatus == SIGKILL)
        try await Task.sleep(for: .milliseconds(300))
        #expect(harness.alarmsRecorded(device: 21).isEmpty, "killed before sending")
        let outbox = try SQLiteOutbox(path: harness.directory + "/state/outbox.sqlite")
        #expect(try outbox.pending(limit: 10).contains { if case .alarm = $0 { true } else { false } })

        // Second life, no more presses: the stored alarm goes out.
        try provisioned.write(toFile: config, atomically: true, encoding: .utf8)
        let second = try launch(["run", "--config", config])
        try await eventually("the alarm recorded") { !harness.alarmsRecorded(device: 21).isEmpty }
        try await Task.sleep(for: .milliseconds(500))
        second.terminate()  // SIGTERM: graceful shutdown
        try await exit(second, within: .seconds(10))
        #expect(second.terminationReason == .exit)
        #expect(second.terminationStatus == 0)
        #expect(harness.alarmsRecorded(device: 21).count == 1)
        await harness.stopCentre()
    }
}
