import Foundation
import Testing

@testable import DeviceKit

/// Keys come from files, the environment or systemd credentials; a key on the command line, where every
/// user reads it in `ps`, still works but warns (the audit found the README's examples doing it).
@Suite struct KeySourceTests {
    /// protocol.md §7.11: an alarm sealed with a key derived from this master key.
    static let master = "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    static let frame = "10003300123456000000100001984064be1b37134e2e7a171da065236f4dd84c29527b69f14b405debb2963f3649cb2b7dc319"

    func directory() throws -> String {
        let path = NSTemporaryDirectory() + "devicesim-keys-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func theMasterKeyIsReadFromAFileTheEnvironmentOrSystemdCredentials() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.master.write(toFile: dir + "/master.hex", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/credentials", withIntermediateDirectories: true)
        try (Self.master + "\n").write(toFile: dir + "/credentials/devicekit-master-key", atomically: true, encoding: .utf8)
        let ways: [([String], [String: String])] = [
            (["--master-file", dir + "/master.hex"], [:]),
            ([], ["DEVICEKIT_MASTER_KEY": Self.master]),
            ([], ["CREDENTIALS_DIRECTORY": dir + "/credentials"]),
        ]
        for (arguments, environment) in ways {
            let result = try await ChildProcess.run(["protocol", "decode"] + arguments + [Self.frame], environment: environment)
            #expect(result.status == 0, "\(arguments) \(environment): \(result.output)")
            #expect(result.output.contains("alarm"), "\(result.output)")
            #expect(!result.output.contains("warning"), "\(result.output)")
        }
    }

    @Test func aKeyOnTheCommandLineStillWorksButWarns() async throws {
        let result = try await ChildProcess.run(["protocol", "decode", "--master", Self.master, Self.frame])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("warning: --master puts the fleet master key in the process list"))
        #expect(!result.output.contains(Self.master), "the warning never repeats the key")
    }

    /// `--key-file` with a master key in the environment decoded with the master key and said nothing: the
    /// key the user named was ignored. Two keys are refused, as by `center` and `provision`.
    @Test func aKeyFileWithAMasterKeyInTheEnvironmentIsRefusedNotIgnored() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try String(repeating: "17", count: 32).write(toFile: dir + "/device.key", atomically: true, encoding: .utf8)
        let result = try await ChildProcess.run(
            ["protocol", "decode", "--key-file", dir + "/device.key", Self.frame], environment: ["DEVICEKIT_MASTER_KEY": Self.master])
        #expect(result.status == 64, "\(result.output)")
        #expect(result.output.contains("Error: Give one key: --key-file FILE (a device's key) or the fleet master key"), "\(result.output)")
        #expect(!result.output.contains(Self.master))
    }

    /// Each source of the master key is read by one reader: a bad key names where it came from, never the key.
    @Test func aBadMasterKeyNamesItsSourceWhereverItCameFrom() async throws {
        let dir = try directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let short = String(Self.master.dropLast())
        try short.write(toFile: dir + "/master.hex", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir + "/credentials", withIntermediateDirectories: true)
        try "00112233\n".write(toFile: dir + "/credentials/devicekit-master-key", atomically: true, encoding: .utf8)
        let odd = "odd number of hex digits (63): every byte is two digits, so one is missing or one too many"
        let ways: [([String], [String: String], Int32, String)] = [
            (["--master-file", dir + "/master.hex"], [:], 78, "Error: the fleet master key from \(dir)/master.hex: the key is not hex: \(odd)"),
            ([], ["DEVICEKIT_MASTER_KEY": short], 78, "Error: the fleet master key from $DEVICEKIT_MASTER_KEY: the key is not hex: \(odd)"),
            ([], ["CREDENTIALS_DIRECTORY": dir + "/credentials"], 78,
             "Error: the fleet master key from \(dir)/credentials/devicekit-master-key: a fleet master key must be 32 to 64 bytes (64 to 128 hex digits), got 4 bytes"),
            (["--master", short], [:], 64, "Error: the fleet master key from --master: the key is not hex: \(odd)"),
        ]
        for (arguments, environment, status, message) in ways {
            let result = try await ChildProcess.run(["protocol", "decode"] + arguments + [Self.frame], environment: environment)
            #expect(result.status == status, "\(arguments) \(environment): \(result.output)")
            #expect(result.output.contains(message), "\(arguments) \(environment): \(result.output)")
            #expect(!result.output.contains(short))
        }
    }

    @Test func aCentreWithoutAnyKeySaysWhereKeysComeFrom() async throws {
        let result = try await ChildProcess.run(["center", "--port", "0"], environment: ["DEVICEKIT_MASTER_KEY": "", "CREDENTIALS_DIRECTORY": "/nonexistent"])
        #expect(result.status != 0)
        #expect(result.output.contains("--master-file FILE"), "\(result.output)")
    }
}
