import ArgumentParser
import Testing

@testable import devicesim

/// `devicesim provision`'s options in the one vocabulary: `--center`, with `--centre` still read.
@Suite struct ProvisionCommandTests {
    static let base = ["--id", "5", "--registry", "keys.toml", "--no-state"]

    static func refusal(_ arguments: [String]) -> String? { devicesimTests.refusal(ProvisionCommand.self, Self.base + arguments) }

    /// It was `--centre` while `load` took `--center` and `--spawn-center`.
    @Test func theCentreIsGivenAsCenterAndTheOtherSpellingIsRead() throws {
        #expect(try ProvisionCommand.parse(Self.base + ["--center", "10.0.0.1:7700"]).center == "10.0.0.1:7700")
        #expect(try ProvisionCommand.parse(Self.base + ["--centre", "10.0.0.1:7700"]).centreAlias == "10.0.0.1:7700")
        #expect(Self.refusal(["--center", "a:1", "--centre", "a:1"]) == "--centre is another spelling of --center: give it once.")
        #expect(Self.refusal([]) == "Give --id N and --center host:port (or --init-state --config FILE on the device).")
        let help = ProvisionCommand.helpMessage(columns: 1000)
        #expect(help.contains("--center <center>") && !help.contains("--centre"))
    }

    @Test(arguments: [
        (["--center", "10.0.0.1:70000"], "--center: '70000' in '10.0.0.1:70000' is not a port (1 to 65535); write host:port, e.g. 'center.example:7700'"),
        (["--centre", "10.0.0.1:0"], "--centre: '0' in '10.0.0.1:0' is not a port (1 to 65535); write host:port, e.g. 'center.example:7700'"),
        (["--center", "10.0.0.1:7700", "--secondary", "b:65536"], "--secondary: '65536' in 'b:65536' is not a port (1 to 65535); write host:port, e.g. 'center.example:7700'"),
    ])
    func aPortOutOfRangeIsRefusedNamingTheOptionAndTheRange(arguments: [String], message: String) {
        #expect(Self.refusal(arguments) == message)
    }

    @Test func aSIPAddressThatIsNotOneIsRefusedBeforeAnythingIsWritten() throws {
        let command = try ProvisionCommand.parse(Self.base + ["--center", "10.0.0.1:7700", "--sip", "tel:+4930123"])
        #expect(throws: ValidationError.self) { try command.run() }
    }
}
