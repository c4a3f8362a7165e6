import DeviceKit
import NIOCore
import Testing

@testable import devicesim

/// The options a load coordinator passes on to its workers: every one of them, as given.
@Suite struct LoadPlanOptionsTests {
    /// Two command lines that between them set every option of the group away from its default (a scenario
    /// replaces the duration and the rates, so they cannot go together).
    static let commandLines: [[String]] = [
        [
            "--center", "[::1]:7701", "--secondary", "[::1]:7702", "--devices", "12345", "--transport", "udp", "--ramp", "250.5", "--heartbeat-interval", "7",
            "--alarm-rate", "3.25", "--event-rate", "0.5", "--drop-links", "1.5", "--udp-loss", "0.05", "--cancel-share", "0.3",
            "--call-share", "0.2", "--call-duration", "12.5", "--duration", "45", "--drain", "20.25", "--first-id", "1001",
            "--devices-per-socket", "64", "--record-calls", "calls", "--stamp-voice", "--loops", "3",
        ],
        ["--devices", "3", "--scenario", "power-cut.toml", "--heartbeat", "9s"],
        ["--devices", "5", "--protocol", "dc09", "--dc09-format", "cid", "--dc09-key-file", "aes.hex", "--dc09-receiver", "7", "--dc09-line", "3A"],
        [
            "--devices", "4", "--sip-call", "sip:arc@127.0.0.1:5070", "--sip-transport", "tcp", "--sip-user-prefix", "home-",
            "--sip-password-file", "sip.pass",
        ],
    ]

    /// Each option's value, by property name (`_devices`, …), as the parser left it.
    static func values(_ options: LoadPlanOptions) -> [String: String] {
        Dictionary(uniqueKeysWithValues: Mirror(reflecting: options).children.map { ($0.label ?? "?", String(describing: $0.value)) })
    }

    @Test(arguments: commandLines)
    func theRenderedArgumentsParseBackToTheSameOptions(commandLine: [String]) throws {
        let given = try LoadPlanOptions.parse(commandLine)
        let passedOn = try LoadPlanOptions.parse(given.arguments)
        #expect(Self.values(passedOn) == Self.values(given), "rendered as \(given.arguments)")
    }

    /// So that an option added to the group without being added to `commandLines` fails the test above
    /// instead of passing it at its default.
    @Test func theCommandLinesSetEveryOptionAwayFromItsDefault() throws {
        let defaults = Self.values(try LoadPlanOptions.parse(["--devices", "1"]))
        let given = try Self.commandLines.map { Self.values(try LoadPlanOptions.parse($0)) }
        #expect(defaults["_devices"] == "1" && defaults["_transport"] == "tcp", "the options as Mirror sees them: \(defaults)")
        for (option, value) in defaults.sorted(by: { $0.key < $1.key }) {
            #expect(given.contains { $0[option] != value }, "\(option) stays at its default \(value) in every command line")
        }
    }

    /// `--sip-call` (issue 16, part 4): its companions need it, and it must be a SIP URI.
    @Test(arguments: [
        (["--sip-transport", "tcp"], "need --sip-call"),
        (["--sip-password-file", "p"], "need --sip-call"),
        (["--sip-call", "tel:+4930123"], "is not a SIP URI"),
        (["--sip-call", "sip:arc@127.0.0.1", "--sip-transport", "sctp"], "must be udp or tcp"),
        (["--loops", "0"], "--loops must be at least 1"),
    ])
    func theSIPOptionsAreChecked(arguments: [String], words: String) {
        #expect {
            try LoadPlanOptions.parse(["--devices", "2"] + arguments)
        } throws: { error in
            LoadPlanOptions.message(for: error).contains(words)
        }
    }

    /// Under faults an alarm raised in the steady phase's last second may need more than 10 s: the default
    /// drain is 30 s then, and `--drain` still decides when given.
    @Test func faultsLengthenTheDefaultDrain() throws {
        let master = try FleetMasterKey(bytes: Array(repeating: 7, count: 32))
        let centre = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        func drain(_ arguments: [String]) throws -> Duration {
            try LoadPlanOptions.parse(["--devices", "2"] + arguments).plan(centre: centre, master: master, shard: .whole).drain
        }
        #expect(try drain([]) == .seconds(10))
        #expect(try drain(["--udp-loss", "0.2"]) == .seconds(30))
        #expect(try drain(["--drop-links", "5"]) == .seconds(30))
        #expect(try drain(["--udp-loss", "0.2", "--drain", "5s"]) == .seconds(5))
    }

    @Test func optionsLeftOutAreLeftOutOfTheRendering() throws {
        let options = try LoadPlanOptions.parse(["--devices", "5"])
        #expect(!options.arguments.contains("--center") && !options.arguments.contains("--scenario"))
        #expect(try LoadPlanOptions.parse(options.arguments).duration == nil)
    }
}
