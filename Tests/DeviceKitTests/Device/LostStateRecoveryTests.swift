import Foundation
import Testing

@testable import DeviceKit

/// Issue 12, finding 3: a device whose state directory is lost (its counter reservation with it) must neither
/// reuse nonces nor be locked out. The documented recovery, as a technician runs it: the device shows the fault
/// and sends nothing; `devicesim provision --force` moves it to the next key epoch; the centre accepts the new
/// epoch, retires the old one, and the device's alarms arrive.
@Suite(.serialized) struct LostStateRecoveryTests {
    func sessions(_ harness: EndToEndHarness, device: UInt32) -> Int {
        harness.centreEvents.count { if case .sessionOpened(device, _) = $0 { true } else { false } }
    }

    @Test func aLostStateDirectoryIsAFaultAndReProvisioningAtTheNextEpochRecoversTheDevice() async throws {
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        let config = try await ChildProcess.provision(id: 41, port: ports.tcp, directory: harness.directory)
        #expect(try DeviceConfig.load(path: config).keyEpoch == 0)

        // A first life: a session under epoch 0.
        let first = try ChildProcess.launch(["run", "--config", config])
        try await eventually("a session at epoch 0") { sessions(harness, device: 41) == 1 }
        first.terminate()
        try await ChildProcess.exit(first, within: .seconds(60))

        // The state directory is lost (a new SD card, a wiped /var).
        try FileManager.default.removeItem(atPath: harness.directory + "/state")
        let output = harness.directory + "/lost.log"
        let lost = try ChildProcess.launch(["run", "--config", config], output: output)
        try await eventually("the fault said") {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("re-provision the device with the next key epoch")
        }
        // Without its reservation the device never connects (DeviceMachineTests shows it asks for no
        // connection and sets no link timer), so nothing it could send is waited for here.
        lost.terminate()
        try await ChildProcess.exit(lost, within: .seconds(60))
        #expect(sessions(harness, device: 41) == 1, "nothing was sealed without the reservation")
        #expect(!FileManager.default.fileExists(atPath: harness.directory + "/state/counter"), "none was invented")

        // The recovery: re-provision over the device.toml, with a press to show the device works again.
        _ = try await ChildProcess.provision(id: 41, port: ports.tcp, directory: harness.directory, extra: ["--force"])
        #expect(try DeviceConfig.load(path: config).keyEpoch == 1)
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "presses = []", with: #"presses = ["1s"]"#).write(toFile: config, atomically: true, encoding: .utf8)
        let recoveredLog = harness.directory + "/recovered.log"
        let recovered = try ChildProcess.launch(["run", "--config", config], output: recoveredLog)
        try await eventually("the alarm of the re-provisioned device recorded") { !harness.alarmsRecorded(device: 41).isEmpty }
        recovered.terminate()
        try await ChildProcess.exit(recovered, within: .seconds(60))
        #expect(harness.centreEvents.contains(.keyEpochChanged(device: 41, epoch: 1)))
        #expect(sessions(harness, device: 41) == 2, "\((try? String(contentsOfFile: recoveredLog, encoding: .utf8)) ?? "")\(harness.centreEvents.map { "\($0)" }.joined(separator: "\n"))")
        await harness.stopCentre()
    }
}
