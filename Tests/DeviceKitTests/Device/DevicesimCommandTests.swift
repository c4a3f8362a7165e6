import Foundation
import Testing

@testable import DeviceKit

/// `devicesim run` and `devicesim diag` as a technician runs them, as child processes.
@Suite(.serialized) struct DevicesimCommandTests {
    func replaceButton(in config: String, with table: String) throws {
        let text = try String(contentsOfFile: config, encoding: .utf8)
        guard let start = text.range(of: "[button]"), let end = text.range(of: "[indicators]") else {
            throw HarnessError("no [button] section in \(config)")
        }
        try (text[..<start.lowerBound] + "[button]\n" + table + "\n\n" + text[end.lowerBound...])
            .write(toFile: config, atomically: true, encoding: .utf8)
    }

    @Test func aPressReplayedFromARecordingRaisesAnAlarmAtTheCentre() async throws {
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        let config = try await ChildProcess.provision(id: 31, port: ports.tcp, directory: harness.directory)
        try EvemuTests.usbBox.write(toFile: harness.directory + "/press.evemu", atomically: true, encoding: .utf8)
        try replaceButton(in: config, with: "backend = \"replay\"\nfile = \"press.evemu\"")
        let device = try ChildProcess.launch(["run", "--config", config])
        try await eventually("the replayed press is recorded as an alarm") { !harness.alarmsRecorded(device: 31).isEmpty }
        device.terminate()
        try await ChildProcess.exit(device, within: .seconds(60))
        #expect(device.terminationStatus == 0)
        #expect(harness.alarmsRecorded(device: 31).count == 1)
        await harness.stopCentre()
    }

    @Test func aSecondDaemonOnTheSameStateIsRefusedAndSaysWhy() async throws {
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        let config = try await ChildProcess.provision(id: 32, port: ports.tcp, directory: harness.directory)
        let first = try ChildProcess.launch(["run", "--config", config])
        try await eventually("the first daemon holds the lock") {
            (try? String(contentsOfFile: harness.directory + "/state/lock", encoding: .utf8))?.hasPrefix("\(first.processIdentifier)") == true
        }
        let second = try await ChildProcess.run(["run", "--config", config], within: .seconds(30))
        #expect(second.status != 0)
        #expect(second.output.contains("another devicesim (process \(first.processIdentifier)"), "\(second.output)")
        let link = try await ChildProcess.run(["diag", "link", "--config", config], within: .seconds(30))
        #expect(link.status == 1)
        #expect(link.output.contains("FAIL  link"), "\(link.output)")
        first.terminate()
        try await ChildProcess.exit(first, within: .seconds(60))
        await harness.stopCentre()
    }

    @Test func selftestAndLinkPassWithTheCentreUpAndFailWithItDown() async throws {
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        let config = try await ChildProcess.provision(id: 33, port: ports.tcp, directory: harness.directory)
        let up = try await ChildProcess.run(["diag", "selftest", "--config", config])
        #expect(up.status == 0, "\(up.output)")
        #expect(up.output.contains("PASS  link"))
        #expect(up.output.contains("WARN  button    the button is simulated"))
        let json = try await ChildProcess.run(["diag", "selftest", "--config", config, "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: String]]
        #expect(parsed?.contains { $0["check"] == "link" && $0["status"] == "PASS" } == true, "\(json.output)")
        await harness.stopCentre()
        let down = try await ChildProcess.run(["diag", "link", "--config", config])
        #expect(down.status == 1)
        #expect(down.output.contains("connection refused"), "\(down.output)")
    }

    @Test func watchingADeviceThatIsNotThereSaysSo() async throws {
        let result = try await ChildProcess.run(["diag", "watch", "/dev/input/no-such-button", "--seconds", "5"])
        #expect(result.status == 1)
        #expect(result.output.contains("PROBLEM: /dev/input/no-such-button does not exist"), "\(result.output)")
        // A recording already under the name stays as it was, and nothing else is left beside it.
        let directory = ScratchDirectory.make("record")
        let earlier = Data("# an earlier recording\n".utf8)
        #expect(FileManager.default.createFile(atPath: directory + "/x.evemu", contents: earlier))
        let notInput = try await ChildProcess.run(["diag", "record", "/dev/null", "--out", directory + "/x.evemu", "--seconds", "5"])
        #expect(notInput.status == 1)
        #expect(notInput.output.contains("is not an input event device"), "\(notInput.output)")
        #expect(FileManager.default.contents(atPath: directory + "/x.evemu") == earlier)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["x.evemu"])
    }
}

extension DevicesimCommandTests {
    func deviceEvents(_ harness: EndToEndHarness, device: UInt32) -> [DeviceEventKind] {
        harness.centreEvents.compactMap {
            if case .recorded(device, .event(let event)) = $0 { event.kind } else { nil }
        }
    }

    /// `devicesim run` with a power_supply tree and an evdev button that is not there: the centre hears of a
    /// low battery and of the missing button, each once.
    @Test func theDaemonReportsLowBatteryAndAMissingButtonToTheCentre() async throws {
        let harness = try EndToEndHarness(cases: .init())
        let ports = try await harness.startCentre()
        let config = try await ChildProcess.provision(id: 34, port: ports.tcp, directory: harness.directory)
        let power = harness.directory + "/power_supply"
        for (name, files) in [("ACAD", ["type": "Mains", "online": "1"]), ("BAT0", ["type": "Battery", "capacity": "12", "status": "Discharging", "present": "1"])] {
            try FileManager.default.createDirectory(atPath: "\(power)/\(name)", withIntermediateDirectories: true)
            for (file, value) in files { try (value + "\n").write(toFile: "\(power)/\(name)/\(file)", atomically: true, encoding: .utf8) }
        }
        try replaceButton(in: config, with: "backend = \"evdev\"\ndevice = \"\(harness.directory)/no-such-event\"\n\n[power]\nbackend = \"sysfs\"\nsysfs_root = \"\(power)\"\npoll_ms = 100")
        let device = try ChildProcess.launch(["run", "--config", config])
        try await eventually("low battery and button missing reach the centre") {
            let kinds = deviceEvents(harness, device: 34)
            return kinds.contains(.lowBattery) && kinds.contains(.buttonMissing)
        }
        device.terminate()
        try await ChildProcess.exit(device, within: .seconds(30))
        #expect(device.terminationStatus == 0)
        let kinds = deviceEvents(harness, device: 34)
        #expect(kinds.filter { $0 == .lowBattery }.count == 1)
        #expect(kinds.filter { $0 == .buttonMissing }.count == 1)
        await harness.stopCentre()
    }

    /// `diag analyze` as a technician runs it: a recording's presses judged, exit 0 when it raises alarms and
    /// 1 when it would not, with the device's own settings from --config and --json for tools.
    @Test func diagAnalyzeJudgesARecordingAndExitsOneWhenItWouldRaiseNoAlarm() async throws {
        let directory = NSTemporaryDirectory() + "devicesim-analyze-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let good = directory + "/press.evemu", hid = directory + "/hid.evemu"
        // Windows line endings, as a recording mailed from a laptop arrives.
        try Recordings.box(presses: [(0, 103)]).render().replacingOccurrences(of: "\n", with: "\r\n")
            .write(toFile: good, atomically: true, encoding: .utf8)
        try Recordings.box(presses: [(0, 0), (700, 0)]).render().write(toFile: hid, atomically: true, encoding: .utf8)

        let alarm = try await ChildProcess.run(["diag", "analyze", good])
        #expect(alarm.status == 0, "\(alarm.output)")
        #expect(alarm.output.contains("Recording: \(good) (evemu 1.3, Windows line endings), 6 events over 0.103000 s"), "\(alarm.output)")
        #expect(alarm.output.contains("Settings: the defaults (no --config given)"))
        #expect(alarm.output.contains("#1  at 0.000000 s  held 103 ms: held for alarm.hold_ms = 100 ms: an alarm"))

        let glitch = try await ChildProcess.run(["diag", "analyze", hid])
        #expect(glitch.status == 1, "\(glitch.output)")
        #expect(glitch.output.contains("with alarm.debounce_ms = 0 and alarm.hold_ms = 0 the recording raises 2 alarms (judged again)"), "\(glitch.output)")

        let config = directory + "/device.toml"
        try """
            device_id = 7
            key = "\(String(repeating: "42", count: 32))"
            [centre]
            primary = "127.0.0.1:7700"
            [alarm]
            hold_ms = 0
            debounce_ms = 0
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let json = try await ChildProcess.run(["diag", "analyze", hid, "--config", config, "--json"])
        #expect(json.status == 0, "\(json.output)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        #expect(object["alarms"] as? Int == 2)
        #expect((object["settings"] as? [String: Any])?["from"] as? String == config)

        let missing = try await ChildProcess.run(["diag", "analyze", directory + "/none.evemu"])
        #expect(missing.status == 1)
        #expect(missing.output.hasPrefix("PROBLEM: cannot read the recording \(directory)/none.evemu: it does not exist"), "\(missing.output)")
    }

    /// `diag watch` on a file that is not an input device printed the problem, then "no press was seen. Press
    /// the button firmly…", and suggested `button.device`, which `watch` does not take.
    @Test func diagWatchOnAFileThatIsNotAnInputDeviceSaysOnlyWhatIsWrong() async throws {
        let file = NSTemporaryDirectory() + "devicesim-not-input-\(UUID().uuidString)"
        try "not a device".write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let watch = try await ChildProcess.run(["diag", "watch", file, "--seconds", "30"])
        #expect(watch.status == 1)
        #expect(watch.output == "PROBLEM: \(file) is not an input event device: give a /dev/input/event* device or a /dev/input/by-path link (devicesim diag list shows them)\n", "\(watch.output)")
    }
}
