import ArgumentParser
import Testing

@testable import devicesim

/// A negative number given to an option was taken for an option name: "Missing value for '--alarm-rate
/// <alarm-rate>'". Every number is read as a value, and refused for its range with what to write.
@Suite struct NegativeNumberTests {
    @Test func eachCommandRefusesANegativeNumberForItsRange() {
        let refusals = [
            refusal(DemoCommand.self, ["--homes", "-1"]),
            refusal(DemoCommand.self, ["--bench", "-3"]),
            refusal(DiagWatchCommand.self, ["/dev/input/sos-button", "--seconds", "-1"]),
            refusal(DiagWatchCommand.self, ["/dev/input/sos-button", "--debounce-ms", "-30"]),
            refusal(DiagRecordCommand.self, ["/dev/input/sos-button", "--out", "x.evemu", "--seconds", "-1"]),
            refusal(DiagSerialCommand.self, ["/dev/ttyUSB0", "--seconds", "-1"]),
            refusal(DiagAnalyzeCommand.self, ["/dev/input/sos-button", "--seconds", "-2"]),
            refusal(DiagLinkCommand.self, ["--count", "-1"]),
            refusal(ProtocolCommand.Bench.self, ["--frames", "-1"]),
            refusal(ProvisionCommand.self, ["--id", "-1", "--center", "a:1"]),
            refusal(LoadRunCommand.self, ["--center", "127.0.0.1:7700", "--master-file", "m", "--duration", "-1"]),
        ]
        #expect(refusals == [
            "--homes must be 1 to 50.",
            "--bench must be at least 1 alarm, e.g. --bench 1000.",
            "--seconds must be more than 0 and at most 86400 (a day); leave it out to listen until Ctrl-C.",
            "--debounce-ms and --hold-ms are milliseconds, 0 or more: e.g. --debounce-ms 30 --hold-ms 100.",
            "--seconds must be more than 0 and at most 86400 (a day); leave it out to listen until Ctrl-C.",
            "--seconds must be more than 0 and at most 86400 (a day); leave it out to listen until Ctrl-C.",
            "--seconds must be between 0 and 3600, e.g. --seconds 10",
            "--count must be 1 to 1000 round trips, e.g. --count 5.",
            "--frames must be at least 1, e.g. --frames 1000000.",
            "The value '-1' is invalid for '--id <id>'",
            "The value '-1' is invalid for '--duration <duration>': a duration is 0 or more: write a number and its unit, such as 250ms, 1.5s or 2min (a plain number is seconds)",
        ])
    }

    /// Counts checked where the plan is made are taken as values too, not refused as missing.
    @Test func loadTakesNegativeCountsAsValues() throws {
        let command = try LoadRunCommand.parse(["--center", "127.0.0.1:7700", "--master-file", "m", "--devices", "-5", "--workers", "-1"])
        #expect(command.planOptions.devices == -5 && command.workers == -1)
    }
}
