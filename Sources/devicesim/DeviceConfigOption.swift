import ArgumentParser
import DeviceKit
import Foundation

/// `--config` of the commands that act as the device (`run`, `diag link`, `diag selftest`): one default for
/// all, the installed file when there is one (hardware/install.sh puts it in /etc/devicekit), else the
/// device.toml of the current directory (`devicesim provision` writes it there); which one is said.
struct DeviceConfigOption: ParsableArguments {
    static let installedPath = "/etc/devicekit/device.toml"
    static let localPath = "device.toml"

    @Option(help: "The device configuration file (default: /etc/devicekit/device.toml when it exists, else ./device.toml).")
    var config: String?

    /// The file to read, and a note saying why when it was not given.
    func path(exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> (path: String, note: String?) {
        if let config { return (config, nil) }
        if exists(Self.installedPath) { return (Self.installedPath, "reading \(Self.installedPath) (no --config given)") }
        return (Self.localPath, "reading ./\(Self.localPath) (no --config given, and \(Self.installedPath) does not exist)")
    }

    /// The configuration, after saying on standard error which file it came from when none was given.
    func load() throws -> DeviceConfig {
        let (path, note) = path()
        if let note { FileHandle.standardError.write(Data("devicesim: \(note)\n".utf8)) }
        return try loadDeviceConfig(path)
    }
}

/// Reads device.toml; a missing file is a missing input (66), an unreadable one a permission problem (77),
/// a wrong setting a configuration error (78) naming the file once and the setting.
func loadDeviceConfig(_ path: String) throws -> DeviceConfig {
    guard FileManager.default.fileExists(atPath: path) else {
        throw CommandFailure(.noInput, "\(path) does not exist: create it with devicesim provision, or give --config PATH")
    }
    guard access(path, R_OK) == 0 else { throw CommandFailure.cannotRead(path, what: "the device configuration", errno: errno) }
    return try DeviceConfig.load(path: path)
}
