import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// What a new user meets when something is wrong, as child processes: one exit status per kind of failure
/// (sysexits(3); 64 and the usage text only for a command line that cannot be used), and every message in
/// words that say what is wrong and where.
@Suite(.serialized) final class ExitStatusTests {
    let directory: String

    init() throws { directory = try makeTemporaryDirectory("exit-status") }
    deinit { try? FileManager.default.removeItem(atPath: directory) }

    static let master = ["DEVICEKIT_MASTER_KEY": ChildProcess.masterHex]

    func write(_ text: String, to name: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: Exit statuses

    @Test func aMissingConfigurationIsAMissingInputNotAUsageError() async throws {
        let missing = directory + "/nothere.toml"
        let result = try await ChildProcess.run(["run", "--config", missing])
        #expect(result.status == 66, "\(result.output)")
        #expect(result.output == "Error: \(missing) does not exist: create it with devicesim provision, or give --config PATH\n")
    }

    /// "typo.toml: key: missing; … (in typo.toml)": the file's name once.
    @Test func aWrongSettingIsAConfigurationErrorNamingTheFileOnce() async throws {
        let typo = try write("device_id = 1\n", to: "typo.toml")
        let result = try await ChildProcess.run(["run", "--config", typo])
        #expect(result.status == 78, "\(result.output)")
        #expect(result.output.components(separatedBy: "typo.toml").count == 2, "\(result.output)")
        #expect(result.output.contains("key: missing; write key ="), "\(result.output)")
        #expect(!result.output.contains("Usage:"))
    }

    @Test func aStateDirectoryHeldByAnotherProcessIsATemporaryFailure() async throws {
        let config = try await ChildProcess.provision(id: 41, port: 7700, directory: directory)
        let held = try StateDirectoryLock(stateDirectory: directory + "/state")
        let result = try await ChildProcess.run(["run", "--config", config])
        withExtendedLifetime(held) {}
        #expect(result.status == 75, "\(result.output)")
        #expect(result.output.contains("another devicesim (process \(getpid())"), "\(result.output)")
        #expect(!result.output.contains("Usage:"))
    }

    /// The DC-09 accounts file is read like the key file: missing is 66, wrong is 78, naming the account.
    @Test func aDC09AccountsFileThatIsMissingOrWrongSaysSo() async throws {
        let journal = ["--journal", directory + "/c.sqlite", "--dc09-port", "0"]
        let missing = try await ChildProcess.run(["center", "--dc09-accounts", directory + "/none.toml"] + journal, environment: Self.master)
        #expect(missing.status == 66, "\(missing.output)")
        #expect(missing.output.contains("cannot read the DC-09 accounts file \(directory)/none.toml"), "\(missing.output)")
        let short = try write("[accounts.\"1234\"]\ndevice = 17\nkey = \"0011\"\n", to: "accounts.toml")
        let wrong = try await ChildProcess.run(["center", "--dc09-accounts", short] + journal, environment: Self.master)
        #expect(wrong.status == 78, "\(wrong.output)")
        #expect(wrong.output.contains("the DC-09 accounts file \(short): account \"1234\" key: a DC-09 key must be 16, 24 or 32 bytes"), "\(wrong.output)")
        #expect(!wrong.output.contains("0011"), "never the key")
    }

    @Test func missingKeyFilesAndReportsAreMissingInputs() async throws {
        let keys = try await ChildProcess.run(["center", "--keys", directory + "/keys.toml", "--journal", directory + "/c.sqlite"])
        #expect(keys.status == 66, "\(keys.output)")
        #expect(keys.output == "Error: cannot read the key file \(directory)/keys.toml: it does not exist; check the path and its permissions\n")
        let master = try await ChildProcess.run(["center", "--master-file", directory + "/master.hex", "--journal", directory + "/c.sqlite"])
        #expect(master.status == 66, "\(master.output)")
        let merge = try await ChildProcess.run(["load", "merge", directory + "/shard.json"])
        #expect(merge.status == 66, "\(merge.output)")
        #expect(merge.output.hasPrefix("Error: cannot read the report \(directory)/shard.json: it does not exist"), "\(merge.output)")
        // `--json FILE` of old, FILE not there yet: it was the option that wrote the merged report.
        let oldStyle = try await ChildProcess.run(["load", "merge", directory + "/shard.json", "--json", directory + "/fleet.json"])
        #expect(oldStyle.status == 64, "\(oldStyle.output)")
        #expect(oldStyle.output.hasPrefix("Error: --json is a switch now (the report as JSON on standard output): write the report file with --report \(directory)/fleet.json."), "\(oldStyle.output)")
    }

    @Test func aCommandLineThatCannotBeUsedIsTheOnlyUsageError() async throws {
        // In a directory of its own, with a journal there: the code as it was listened (on 4464) and ran on.
        let result = try await ChildProcess.run(
            ["center", "--port", "70000", "--journal", directory + "/c.sqlite"], environment: Self.master, directory: directory, within: .seconds(20))
        #expect(result.status == 64)
        #expect(result.output.hasPrefix("Error: --port 70000 is not a port: give 0 to 65535"), "\(result.output)")
        #expect(result.output.contains("Usage: devicesim center"))
    }

    // MARK: Messages

    @Test func aPortInUseIsNamedWithItsListener() async throws {
        let port = try await freeLoopbackPorts()
        let taken = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: port).get()
        let result = try await ChildProcess.run(
            ["center", "--host", "127.0.0.1", "--port", "\(port)", "--journal", directory + "/c.sqlite"], environment: Self.master)
        try await taken.close()
        #expect(result.status == 69, "\(result.output)")
        #expect(result.output.hasPrefix("Error: port \(port) (TCP) is already in use by another program"), "\(result.output)")
    }

    /// `run`'s centre in device.toml that does not resolve: a raw `SocketAddressError.UnknownHost` before.
    @Test func aCentreWhoseNameDoesNotResolveIsSaidInWords() async throws {
        let config = try await ChildProcess.provision(id: 42, port: 7700, directory: directory)
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "127.0.0.1:7700", with: "nonsense.invalid:7700")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try await ChildProcess.run(["run", "--config", config])
        #expect(result.status == 68, "\(result.output)")
        #expect(result.output.contains("cannot resolve nonsense.invalid:7700: no such host name (not in DNS or /etc/hosts)"), "\(result.output)")
        #expect(!result.output.contains("SocketAddressError") && !result.output.contains("Usage:"), "\(result.output)")
    }

    @Test func anUnknownHostIsSaidInWords() async throws {
        let result = try await ChildProcess.run(
            ["center", "--host", "nonsense.invalid", "--port", "0", "--journal", directory + "/c.sqlite"], environment: Self.master)
        #expect(result.status == 68, "\(result.output)")
        #expect(result.output.contains("cannot listen on host 'nonsense.invalid' (TCP): no such host name"), "\(result.output)")
        #expect(!result.output.contains("SocketAddressError"))
    }

    /// It was named as its internal lock file, "cannot open the journal's writer lock …-writer".
    @Test func aJournalInAMissingDirectoryNamesTheDirectory() async throws {
        let journal = directory + "/no-such-dir/c.sqlite"
        let result = try await ChildProcess.run(["center", "--port", "0", "--journal", journal], environment: Self.master)
        #expect(result.status == 73, "\(result.output)")
        #expect(result.output == "Error: cannot create the journal \(journal): the directory \(directory)/no-such-dir does not exist; create it (mkdir -p \(directory)/no-such-dir) or give a journal in an existing directory\n")
    }

    /// It was "The operation could not be completed. (NSCocoaErrorDomain error 512.)".
    @Test func aStateDirectoryThatCannotBeCreatedIsSaidInWords() async throws {
        let file = try write("", to: "a-file")
        let result = try await ChildProcess.run(
            ["provision", "--id", "5", "--center", "127.0.0.1:7700", "--state-dir", file + "/state", "--out", directory + "/d.toml"],
            environment: Self.master)
        #expect(result.status == 73, "\(result.output)")
        #expect(result.output.contains("cannot create the directory \(file)/state: \(file) is a file, not a directory"), "\(result.output)")
        #expect(!result.output.contains("NSCocoaErrorDomain") && !result.output.contains("could not be completed"))
    }

    /// It was "the key is not hexadecimal: use only 0-9 and a-f, an even number of digits".
    @Test func anOddLengthKeyIsSaidToHaveAnOddNumberOfDigits() async throws {
        let key = try write(String(repeating: "ab", count: 16) + "c\n", to: "key.hex")
        let result = try await ChildProcess.run(["protocol", "decode", "--key-file", key, "00"])
        #expect(result.status == 78, "\(result.output)")
        #expect(result.output == "Error: the device key from \(key): the key is not hex: odd number of hex digits (33): every byte is two digits, so one is missing or one too many\n")
    }

    /// It was "Missing value for '--alarm-rate <alarm-rate>'".
    @Test func aNegativeAlarmRateIsARangeError() async throws {
        let result = try await ChildProcess.run(
            ["load", "--center", "127.0.0.1:7700", "--devices", "1", "--alarm-rate", "-5"], environment: Self.master)
        #expect(result.status == 64, "\(result.output)")
        #expect(result.output.hasPrefix("Error: --alarm-rate must be 0 or more alarms a second."), "\(result.output)")
    }

    /// The help said one port for both, and the system picked two.
    @Test func portZeroGivesTCPAndUDPTheSamePort() async throws {
        let output = directory + "/center.out"
        let centre = try ChildProcess.launch(
            ["center", "--host", "127.0.0.1", "--port", "0", "--journal", directory + "/c.sqlite"], environment: Self.master, output: output)
        try await eventually("the centre says where it listens") {
            (try? String(contentsOfFile: output, encoding: .utf8))?.contains("\n") == true
        }
        centre.terminate()
        try await ChildProcess.exit(centre, within: .seconds(30))
        let line = try #require((try String(contentsOfFile: output, encoding: .utf8)).split(separator: "\n").first)
        let listening = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(listening["event"] as? String == "listening")
        #expect(listening["tcp"] as? Int == listening["udp"] as? Int, "\(line)")
        #expect((listening["tcp"] as? Int ?? 0) > 0)
        let at = try #require(listening["at"] as? String)
        #expect(at.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(at)")
    }

    /// `diag serial` ended a port it could not open with "Error: …" (exit 1, then 70 "an internal error") where
    /// `diag watch`, `record` and `analyze` said PROBLEM: every diag command that opens a device says it the same.
    @Test func everyDiagCommandSaysADeviceItCannotReadTheSameWay() async throws {
        for arguments in [
            ["diag", "watch", "/dev/null", "--seconds", "5"], ["diag", "record", "/dev/null", "--out", directory + "/x.evemu", "--seconds", "5"],
            ["diag", "analyze", "/dev/null", "--seconds", "5"], ["diag", "serial", "/dev/null", "--seconds", "5"],
        ] {
            let result = try await ChildProcess.run(arguments)
            #expect(result.status == 1, "\(arguments): \(result.output)")
            #expect(result.output.hasPrefix("PROBLEM: /dev/null is not a"), "\(arguments): \(result.output)")
            #expect(result.output.split(separator: "\n").count == 1, "\(arguments): one line, \(result.output)")
            #expect(!result.output.contains("Error:") && !result.output.contains("Usage:"), "\(arguments): \(result.output)")
        }
    }

    /// `diag analyze` of a recording that is not there said Foundation's "The operation could not be completed.
    /// The file doesn't exist."
    @Test func aRecordingThatIsNotThereIsSaidInWords() async throws {
        let result = try await ChildProcess.run(["diag", "analyze", directory + "/press.evemu"])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output == "PROBLEM: cannot read the recording \(directory)/press.evemu: it does not exist; check the path and its permissions\n")
    }

    /// It showed nothing without a key.
    @Test func decodeWithoutAKeyShowsTheClearHeaderAndSaysTheBodyNeedsOne() async throws {
        let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../protocol.md").standardized.path
        let vector = try #require(try ProtocolVector.parse(markdown: String(contentsOfFile: document, encoding: .utf8)).first { $0.direction == .up })
        let result = try await ChildProcess.run(["protocol", "decode", Hex.encode(vector.frame)])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.hasPrefix("frame 1: device → centre, device \(vector.deviceID), counter \(vector.counter)"), "\(result.output)")
        #expect(result.output.contains("\(vector.frame.count) bytes\n  body sealed: give the key to open it"), "\(result.output)")
        let json = try await ChildProcess.run(["protocol", "decode", "--json", Hex.encode(vector.frame)])
        #expect(json.output == #"{"frame":1,"direction":"up","device":\#(vector.deviceID),"counter":\#(vector.counter),"length":\#(vector.frame.count),"sealed":true}"# + "\n")
    }

    /// It worked only from the repository's root.
    @Test func theVectorsAreFoundFromAnyDirectory() async throws {
        let result = try await ChildProcess.run(["protocol", "vectors"], directory: directory)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.hasPrefix("vectors of /"), "\(result.output)")
        #expect(result.output.contains(" passed, 0 failed"), "\(result.output)")
    }

    @Test func versionSaysTheVersionAndTheCommit() async throws {
        let result = try await ChildProcess.run(["--version"])
        #expect(result.status == 0)
        #expect(result.output.hasPrefix("devicesim \(BuildStamp.version) (commit "), "\(result.output)")
        #expect(result.output.hasSuffix(")\n") && result.output.split(separator: "\n").count == 1, "\(result.output)")
    }

    /// The commit comes from the stamp `make` writes beside the binary it built (a hard link of the binary
    /// under test here, so that the stamp's size and time are the binary's).
    @Test func versionSaysTheCommitTheBuildStamped() async throws {
        let binary = directory + "/devicesim"
        if link(ChildProcess.devicesim, binary) != 0 { try FileManager.default.copyItem(atPath: ChildProcess.devicesim, toPath: binary) }
        let identity = try #require(BuildStamp.identity(of: binary))
        try "0123abc-modified\n\(identity)\n".write(toFile: directory + "/" + BuildStamp.fileName, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["--version"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let stamped = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        try await ChildProcess.exit(process, within: .seconds(60))
        #expect(stamped == "devicesim \(BuildStamp.version) (commit 0123abc-modified)\n", "\(stamped)")
    }
}
