import ArgumentParser
import DeviceKit
import Foundation

/// Where a command takes the fleet master key from: where a secret belongs, never the command line.
///
/// In order: `--master-file FILE`; `$CREDENTIALS_DIRECTORY/devicekit-master-key` (systemd's
/// `LoadCredential=devicekit-master-key:/etc/devicekit/master.hex`); the environment variable
/// `DEVICEKIT_MASTER_KEY`. `--master HEX` still works, with a warning: every user of the machine sees a
/// command line in `ps`.
struct MasterKeyOptions: ParsableArguments {
    static let environmentVariable = "DEVICEKIT_MASTER_KEY"
    static let credentialName = "devicekit-master-key"

    @Option(help: "A file holding the fleet master key in hex (64 to 128 digits); also taken from systemd credentials (\(credentialName)) or $\(environmentVariable).")
    var masterFile: String?

    @Option(help: ArgumentHelp("The fleet master key in hex. Avoid it: every user sees it in the process list; use --master-file.", visibility: .hidden))
    var master: String?

    func validate() throws {
        if master != nil, masterFile != nil {
            throw ValidationError("Give the fleet master key once: --master-file FILE (or the environment), not also --master.")
        }
        if master != nil {
            FileHandle.standardError.write(Data(
                "devicesim: warning: --master puts the fleet master key in the process list, where every user of this machine can read it; use --master-file FILE, $\(Self.environmentVariable) or systemd credentials (LoadCredential=\(Self.credentialName):FILE)\n".utf8))
        }
    }

    /// Whether a master key is given in any of the ways.
    func isGiven(environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        masterFile != nil || master != nil || Self.credentialPath(environment) != nil
            || environment[Self.environmentVariable]?.isEmpty == false
    }

    /// The key's hex and where it came from; `nil` when none is given. A file that cannot be read is a
    /// `CommandFailure` (66 missing, 77 not permitted).
    func hex(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> (hex: String, source: String)? {
        if let masterFile { return (try Self.read(masterFile, what: "--master-file"), masterFile) }
        if let master { return (master, "--master") }
        if let path = Self.credentialPath(environment) { return (try Self.read(path, what: "the systemd credential"), path) }
        if let value = environment[Self.environmentVariable], !value.isEmpty { return (value, "$\(Self.environmentVariable)") }
        return nil
    }

    /// The key, checked; `nil` when none is given. Errors name the source, never the key.
    func key(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FleetMasterKey? {
        guard let bytes = try bytes(environment: environment) else { return nil }
        return try Self.refusing(source: try hex(environment: environment)?.source ?? "") { () throws(KeyError) in try FleetMasterKey(bytes: bytes) }
    }

    /// The key's bytes, for provisioning (which derives a device's root key from them).
    func bytes(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [UInt8]? {
        guard let (hex, source) = try hex(environment: environment) else { return nil }
        return try Self.refusing(source: source) { () throws(KeyError) in
            let bytes: [UInt8]
            do throws(HexError) { bytes = try Hex.parse(hex.trimmingCharacters(in: .whitespacesAndNewlines)) } catch { throw .notHex(error) }
            guard (32...64).contains(bytes.count) else { throw .wrongMasterLength(bytes.count) }
            return bytes
        }
    }

    /// `body`'s result, or its key error said with the key's source: on the command line a usage error, in a
    /// file or the environment a configuration error (78).
    private static func refusing<T>(source: String, _ body: () throws(KeyError) -> T) throws -> T {
        do { return try body() } catch {
            let message = "the fleet master key from \(source): \(error)"
            if source == "--master" { throw ValidationError(message) }
            throw CommandFailure(.configuration, message)
        }
    }

    private static func credentialPath(_ environment: [String: String]) -> String? {
        guard let directory = environment["CREDENTIALS_DIRECTORY"] else { return nil }
        let path = directory + "/" + credentialName
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    private static func read(_ path: String, what: String) throws(CommandFailure) -> String {
        try readTextFile(path, what: "the fleet master key (\(what))")
    }
}
