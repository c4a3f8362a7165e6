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

    /// The key as given and where it came from; `nil` when none is given. A file that cannot be read is a
    /// `CommandFailure` (66 missing, 77 not permitted).
    func given(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> GivenKey? {
        if let masterFile { return try .file(masterFile, what: "the fleet master key (--master-file)") }
        if let master { return GivenKey(text: master, source: "--master", onCommandLine: true) }
        if let path = Self.credentialPath(environment) { return try .file(path, what: "the fleet master key (the systemd credential)") }
        if let value = environment[Self.environmentVariable], !value.isEmpty {
            return GivenKey(text: value, source: "$\(Self.environmentVariable)", onCommandLine: false)
        }
        return nil
    }

    /// The key's bytes, read and checked once; `nil` when none is given. Errors name the source, never the key.
    func bytes(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [UInt8]? {
        try given(environment: environment)?.bytes(.fleetMaster)
    }

    /// The key, for deriving each device's; `nil` when none is given.
    func key(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> FleetMasterKey? {
        try bytes(environment: environment).map { bytes in try FleetMasterKey(bytes: bytes) }
    }

    private static func credentialPath(_ environment: [String: String]) -> String? {
        guard let directory = environment["CREDENTIALS_DIRECTORY"] else { return nil }
        let path = directory + "/" + credentialName
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
}

/// A key as a command was given it: its text and where it came from. Every key a command reads (the fleet
/// master key, a device's key) is parsed here, so a bad one is said the same way whatever its source, naming
/// the source and never the key.
struct GivenKey {
    var text: String
    /// For messages: `--master`, `--key`, a file's path, `$DEVICEKIT_MASTER_KEY`.
    var source: String
    /// On the command line itself, where a bad key is a usage error; in a file or the environment, a
    /// configuration error (78).
    var onCommandLine: Bool

    /// The key in the file at `path`; a file that cannot be read is a `CommandFailure` (66 missing, 77 not
    /// permitted) about `what`.
    static func file(_ path: String, what: String) throws(CommandFailure) -> GivenKey {
        GivenKey(text: try readTextFile(path, what: what), source: path, onCommandLine: false)
    }

    /// The key's bytes, checked as a key of `kind`.
    func bytes(_ kind: KeyKind) throws -> [UInt8] {
        do { return try kind.parse(text) } catch {
            let message = "the \(kind) from \(source): \(error)"
            if onCommandLine { throw ValidationError(message) }
            throw CommandFailure(.configuration, message)
        }
    }
}
