import ArgumentParser
import DeviceKit
import NIOCore
import Testing

@testable import devicesim

/// `devicesim center`'s options as a new user types them: ports checked before anything binds, durations
/// with units, the other names of an option.
@Suite struct CenterCommandTests {
    static let key = ["--master-file", "master.hex"]

    static func parse(_ arguments: [String]) throws -> CenterCommand {
        try CenterCommand.parse(Self.key + arguments)
    }

    /// The message a command line is refused with (ArgumentParser's words for the usage error).
    static func refusal(_ arguments: [String]) -> String? { devicesimTests.refusal(CenterCommand.self, Self.key + arguments) }

    /// NIO took a port modulo 65536: 70000 listened on 4464, 65537 on port 1 (privileged).
    @Test(arguments: [
        (["--port", "70000"], "--port 70000 is not a port: give 0 to 65535 (0: the system picks a free port)."),
        (["--tcp-port", "65537"], "--tcp-port 65537 is not a port: give 0 to 65535 (0: the system picks a free port)."),
        (["--udp-port", "-1"], "--udp-port -1 is not a port: give 0 to 65535 (0: the system picks a free port)."),
        (["--metrics-port", "70001"], "--metrics-port 70001 is not a port: give 0 to 65535 (0: the system picks a free port)."),
        (["--metrics-port", "65530", "--workers", "8"],
         "With --workers 8, workers serve metrics on ports 65530 to 65537, past 65535: give a lower --metrics-port."),
        (["--dc09-port", "70000", "--dc09-accounts", "a.toml"], "--dc09-port 70000 is not a port: give 0 to 65535 (0: the system picks a free port)."),
        (["--dc09-port", "12345"], "--dc09-port and --dc09-accounts go together: give both, e.g. --dc09-port 12345 --dc09-accounts accounts.toml."),
        (["--dc09-accounts", "a.toml"], "--dc09-port and --dc09-accounts go together: give both, e.g. --dc09-port 12345 --dc09-accounts accounts.toml."),
        (["--dc09-port", "1", "--dc09-accounts", "a.toml", "--dc09-rate", "0"], "--dc09-rate must be above 0, e.g. --dc09-rate 100."),
        (["--dc09-port", "1", "--dc09-accounts", "a.toml", "--port", "7700", "--workers", "2"],
         "--dc09-port is served by a single process: use it without --workers."),
        (["--operator", "sip:desk1@192.0.2.10", "--sip-port", "70000"], "--sip-port 70000 is not a port: give 0 to 65535 (0: the system picks a free port)."),
        (["--operator", "sip:desk1@192.0.2.10", "--host", "0.0.0.0", "--sip-advertise", "centre.example"],
         "--sip-advertise must be an IP address the phones can reach, not centre.example"),
        (["--sip-advertise", "192.0.2.1"],
         "--sip-registrar, --sip-user, --sip-password-file, --sip-identity and --sip-advertise are for --operator: give the operators' phones too."),
    ])
    func aPortOutOfRangeIsRefusedNamingTheOptionAndTheRange(arguments: [String], message: String) {
        #expect(Self.refusal(arguments) == message)
    }

    /// The UDP read interval: a unit or milliseconds, 0 to read at once, at most 100 ms.
    @Test func theUDPReadIntervalIsMillisecondsUpTo100() throws {
        #expect(try Self.parse(["--udp-read-interval", "2"]).udpReadInterval?.duration == .milliseconds(2))
        #expect(try Self.parse(["--udp-read-interval", "0"]).udpReadInterval?.duration == .zero)
        #expect(try Self.parse(["--udp-read-interval", "500us"]).udpReadInterval?.duration == .microseconds(500))
        #expect(Self.refusal(["--udp-read-interval", "1s"]) == "--udp-read-interval 1s is longer than 100ms: every answer over UDP would wait that long; e.g. --udp-read-interval 1ms, or 0 to read at once.")
    }

    /// A centre on every address (the default) put 0.0.0.0 in its Contact and SDP: the phones could not answer it.
    @Test func aCentreOnEveryAddressTellsThePhonesTheAddressThatRoutesToThem() throws {
        #expect(SIPEndpoint.localAddress(towards: try SocketAddress(ipAddress: "127.0.0.1", port: 5060)) == "127.0.0.1")
        #expect(SIPEndpoint.localAddress(towards: try SocketAddress(ipAddress: "::1", port: 5060)) == "::1")
    }

    @Test func aCentreOnEveryAddressTakesOperatorPhonesWithTheAddressItAdvertises() throws {
        let command = try Self.parse(["--operator", "sip:desk1@192.0.2.10", "--host", "0.0.0.0", "--sip-advertise", "192.0.2.1"])
        #expect(command.sipAdvertise == "192.0.2.1" && command.operators == ["sip:desk1@192.0.2.10"])
        #expect(Self.refusal(["--operator", "desk1@192.0.2.10"])?.contains("--operator \"desk1@192.0.2.10\" is not a SIP URI") == true)
    }

    @Test(arguments: [
        (["--forward", "dc09://arc:1?format=cid&account=1234"],
         "--forward: format=cid cannot tell devices apart under one account (Contact ID has no field for the device): leave out account= so each device reports as its own account (its id in hex), or use format=sia"),
        (["--forward", "arc:12345"], "--forward: a forward target begins with dc09://, e.g. dc09://HOST:PORT?account=HEX&key=HEX"),
        (["--forward", "dc09://a:1", "--forward", "dc09://b:1", "--forward", "dc09://c:1"],
         "--forward is given more than twice: the first is the primary receiver, the second its backup"),
    ])
    func aForwardTargetThatCannotBeUsedIsRefusedSayingWhy(arguments: [String], message: String) {
        #expect(Self.refusal(arguments) == message)
    }

    @Test func aPrimaryAndABackupAreTaken() throws {
        let command = try Self.parse(["--forward", "dc09://a:1?account=1234", "--forward", "dc09://b:2?transport=udp"])
        #expect(command.forward == ["dc09://a:1?account=1234", "dc09://b:2?transport=udp"])
    }

    @Test func portsInRangeAreTaken() throws {
        let command = try Self.parse(["--port", "0", "--tcp-port", "65535", "--metrics-port", "1"])
        #expect(command.port == 0 && command.tcpPort == 65535 && command.metricsPort == 1)
    }

    /// `--auto-engage-after` took milliseconds and `--auto-close-after` seconds: both take units now, and a
    /// plain number keeps its old unit.
    @Test func durationsTakeUnitsAndPlainNumbersKeepTheirOldUnit() throws {
        let plain = try Self.parse(["--auto-engage-after", "100", "--auto-close-after", "1", "--offline-after", "75", "--media-silence", "5"])
        #expect(plain.autoEngageAfter?.duration == .milliseconds(100))
        #expect(plain.autoCloseAfter?.duration == .seconds(1))
        #expect(plain.offlineAfter?.duration == .seconds(75))
        #expect(plain.mediaSilence?.duration == .seconds(5))
        let units = try Self.parse(["--auto-engage-after", "0.1s", "--auto-close-after", "1500ms", "--auth-timeout", "2min", "--heartbeat-interval", "1min"])
        #expect(units.autoEngageAfter?.duration == .milliseconds(100))
        #expect(units.autoCloseAfter?.duration == .milliseconds(1500))
        #expect(units.authTimeout?.duration == .seconds(120))
        #expect(units.heartbeatInterval?.duration == .seconds(60))
    }

    @Test func aDurationWithoutSenseSaysHowToWriteOne() {
        #expect(Self.refusal(["--auto-close-after", "soon"])?.contains("not a duration: write a number and its unit, such as 250ms, 1.5s or 2min (a plain number is seconds)") == true)
        #expect(Self.refusal(["--heartbeat-interval", "1.5s"])?.contains("is not a whole number of seconds") == true)
        #expect(Self.refusal(["--media-silence", "100ms"]) == "--media-silence must be at least 500ms, e.g. --media-silence 5s.")
    }

    /// The load tool's name for the heartbeat interval is accepted here too, once.
    @Test func heartbeatIsAnotherNameForHeartbeatInterval() throws {
        #expect(try Self.parse(["--heartbeat", "10"]).heartbeatAlias?.duration == .seconds(10))
        #expect(Self.refusal(["--heartbeat", "10", "--heartbeat-interval", "10"]) == "--heartbeat is another name for --heartbeat-interval: give it once.")
        #expect(!CenterCommand.helpMessage().contains("--heartbeat <"))
    }

    /// A negative number was taken for an option name: "Missing value for '--rate <rate>'".
    @Test func aNegativeNumberIsARangeErrorNotAMissingValue() {
        #expect(Self.refusal(["--rate", "-5"]) == "--rate, --max-sessions and --heartbeat-interval must be above 0, --burst at least 1.")
        #expect(Self.refusal(["--engage-call-rate", "-1"]) == "--engage-call-rate must be above 0, e.g. --engage-call-rate 50.")
    }

    /// Every command's help says how it ends.
    @Test func theHelpListsTheExitStatus() {
        let help = CenterCommand.helpMessage(columns: 400)
        #expect(help.contains("Exit status: 0 done; 64 the command line cannot be used (the usage is printed); 66 the key file"))
        #expect(help.contains("69 a port is already in use"))
    }
}
