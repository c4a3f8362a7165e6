import ArgumentParser
import Testing

@testable import devicesim

/// `devicesim load run`'s options in the one vocabulary: `--json` a switch, the report file `--report`,
/// `--heartbeat-interval` as the centre names it, durations with units, negative numbers as range errors.
@Suite struct LoadRunCommandTests {
    static let base = ["--center", "127.0.0.1:7700", "--master-file", "master.hex", "--devices", "10"]

    static func refusal(_ arguments: [String]) -> String? { devicesimTests.refusal(LoadRunCommand.self, Self.base + arguments) }

    @Test func jsonIsASwitchAndTheReportFileIsReport() throws {
        let command = try LoadRunCommand.parse(Self.base + ["--json", "--report", "run.json"])
        #expect(command.output.json && command.output.report == "run.json")
        #expect(Self.refusal(["--json", "run.json"]) == "--json is a switch now (the report as JSON on standard output): write the report file with --report run.json.")
    }

    @Test func theHeartbeatIntervalHasTheCentresNameAndTheOldOneStillWorks() throws {
        #expect(try LoadRunCommand.parse(Self.base + ["--heartbeat-interval", "5s"]).planOptions.heartbeatSeconds() == 5)
        #expect(try LoadRunCommand.parse(Self.base + ["--heartbeat", "5"]).planOptions.heartbeatSeconds() == 5)
        #expect(!LoadRunCommand.helpMessage().contains("--heartbeat <"))
    }

    @Test func durationsTakeUnitsAndPlainNumbersAreSeconds() throws {
        let options = try LoadRunCommand.parse(Self.base + ["--duration", "2min", "--drain", "15", "--call-duration", "1500ms"]).planOptions
        #expect(options.duration?.duration == .seconds(120))
        #expect(options.drain?.duration == .seconds(15))
        #expect(options.callDuration?.duration == .milliseconds(1500))
    }

    /// `--alarm-rate -5` was "Missing value for '--alarm-rate <alarm-rate>'".
    @Test func aNegativeRateIsTakenAsAValueAndRefusedForItsRange() throws {
        let options = try LoadRunCommand.parse(Self.base + ["--alarm-rate", "-5"]).planOptions
        #expect(options.alarmRate == -5)
        #expect(Self.refusal(["--center", "127.0.0.1:70000"]) == "--center's port 70000 is not a port: give 1 to 65535.")
    }
}
