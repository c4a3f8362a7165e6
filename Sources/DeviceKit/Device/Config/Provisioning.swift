import Crypto
import Foundation
import TOMLKit

/// Gives a new device its identity: a root key, its device.toml, and its line in the centre's registry.
///
/// The logic of `devicesim provision`, kept here so it is tested without the command line.
public enum Provisioning {
    /// What to provision.
    public struct Request: Sendable {
        public var deviceID: UInt32
        public var primaryCentre: CentreAddress
        public var secondaryCentre: CentreAddress?
        /// Where device.toml goes; refused if it exists unless `overwrite`.
        public var configPath: String
        /// The centre's key registry, to which `<id> = "<key>"` is appended; `nil` when the centre derives
        /// keys from a fleet master key.
        public var registryPath: String?
        /// The fleet master key (32 to 64 bytes); the device's root key is derived from it, and only that
        /// derived key is written to device.toml.
        public var masterKey: [UInt8]?
        /// The device's state directory, written into device.toml.
        public var stateDirectory: String
        public var overwrite: Bool
        /// The key epoch (protocol.md §3.2); `nil`: one more than the epoch of the device.toml being
        /// replaced (a re-provisioned device gets a new key of the next epoch), else 0.
        public var keyEpoch: UInt16?
        /// Also write the key's counter reservation (limit 0) into the state directory, creating it: when
        /// provisioning on the device itself. On a workstation the device does it later (`--init-state`).
        public var writeState: Bool
        /// `[voice]` to write (`--sip`), or none.
        public var voice: VoiceSettings?

        public init(
            deviceID: UInt32, primaryCentre: CentreAddress, secondaryCentre: CentreAddress? = nil,
            configPath: String = "device.toml", registryPath: String? = nil, masterKey: [UInt8]? = nil,
            stateDirectory: String = "/var/lib/devicekit", overwrite: Bool = false, keyEpoch: UInt16? = nil,
            writeState: Bool = false, voice: VoiceSettings? = nil
        ) {
            self.voice = voice
            self.keyEpoch = keyEpoch
            self.writeState = writeState
            self.deviceID = deviceID
            self.primaryCentre = primaryCentre
            self.secondaryCentre = secondaryCentre
            self.configPath = configPath
            self.registryPath = registryPath
            self.masterKey = masterKey
            self.stateDirectory = stateDirectory
            self.overwrite = overwrite
        }
    }

    /// What was written.
    public struct Outcome: Sendable {
        public var config: DeviceConfig
        public var configPath: String
        /// The registry the device was added to, if any.
        public var registryPath: String?
        /// Whether the key was derived from the fleet master key (else it is random).
        public var derived: Bool
        /// The counter reservation written with the key, if `writeState`.
        public var counterPath: String?
    }

    /// Writes device.toml (mode 0600) and, when a registry is given, appends the device to it.
    ///
    /// Everything is checked before anything is written; if the registry cannot be written, the new
    /// device.toml is removed again so a retry starts clean.
    public static func provision(_ request: Request) throws(ProvisioningError) -> Outcome {
        if request.masterKey != nil && request.registryPath != nil {
            throw ProvisioningError(
                "give a registry (the centre keeps each device's key) or a master key (the centre derives them), not both")
        }
        let previous = FileManager.default.fileExists(atPath: request.configPath)
            ? try? DeviceConfig.load(path: request.configPath) : nil
        if !request.overwrite && FileManager.default.fileExists(atPath: request.configPath) {
            throw ProvisioningError(
                "\(request.configPath) exists; a device gets a new key of the next epoch when re-provisioned: give --force to replace it")
        }
        let epoch: UInt16
        if let explicit = request.keyEpoch {
            epoch = explicit
        } else if let previous, previous.deviceID == request.deviceID {
            guard previous.keyEpoch < .max else { throw ProvisioningError("device \(request.deviceID) has used every key epoch: give it a new id") }
            epoch = previous.keyEpoch + 1
        } else {
            epoch = 0
        }
        let key: [UInt8]
        if let master = request.masterKey {
            do { key = try derivedRootKey(deviceID: request.deviceID, master: master, epoch: epoch) } catch {
                throw ProvisioningError(error.description)
            }
        } else {
            key = randomRootKey()
        }
        var registry: (path: String, text: String)?
        if let path = request.registryPath {
            registry = (path, try registryWithDevice(request.deviceID, key: key, epoch: epoch, registryPath: path))
        }

        var config = DeviceConfig(
            deviceID: request.deviceID, key: .bytes(key), keyEpoch: epoch, stateDirectory: request.stateDirectory,
            primaryCentre: request.primaryCentre, secondaryCentre: request.secondaryCentre)
        config.voice = request.voice
        var counterPath: String?
        if request.writeState {
            try initialiseState(config)
            counterPath = config.counterPath
        }
        do {
            try DurableFile(path: request.configPath).write(Array(config.render().utf8))
        } catch {
            throw ProvisioningError("cannot write \(request.configPath): \(error)")
        }
        if let registry {
            do {
                try DurableFile(path: registry.path).write(Array(registry.text.utf8))
            } catch {
                unlink(request.configPath)
                throw ProvisioningError("cannot write \(registry.path): \(error); \(request.configPath) was not kept")
            }
        }
        return Outcome(
            config: config, configPath: request.configPath, registryPath: registry?.path,
            derived: request.masterKey != nil, counterPath: counterPath)
    }

    /// On the device, for a key just installed: creates the state directory and the key epoch's counter
    /// reservation (limit 0). A reservation already there for this epoch is kept (its key has been used);
    /// one of another epoch is replaced, since the key is new.
    ///
    /// Never run it for a key that has sealed frames and lost its reservation: that is what the next
    /// epoch is for.
    public static func initialiseState(_ config: DeviceConfig) throws(ProvisioningError) {
        do { try StateDirectory.create(config.stateDirectory) } catch {
            throw ProvisioningError("the state directory: \(error)")
        }
        do { try config.counterFile.provision() } catch { throw ProvisioningError(error.description) }
    }

    /// A new 32-byte root key from the system's secure random source.
    public static func randomRootKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    /// The root key of device `deviceID`, key epoch `epoch`, in a fleet with master key `master`
    /// (protocol.md §3.2).
    ///
    /// The same derivation as `DeviceKey(deviceID:master:epoch:)`, which keeps the root to itself; a
    /// provisioned device needs the bytes, because it must never hold the master key.
    public static func derivedRootKey(deviceID: UInt32, master: [UInt8], epoch: UInt16 = 0) throws(KeyError) -> [UInt8] {
        try FleetMasterKey(bytes: master).rootKey(for: deviceID, epoch: epoch).withUnsafeBytes { Array($0) }
    }

    /// The registry's text with `<id> = "<hex key>"` (epoch 0) or `<id> = { key = "<hex>", epoch = N }`
    /// under `[devices]`; creates it if missing. A device already there is replaced only by a later epoch.
    ///
    /// Appends (or replaces the one line) rather than rewrites, so an operator's comments and layout
    /// survive; appending needs `[devices]` to be the registry's last table.
    static func registryWithDevice(
        _ deviceID: UInt32, key: [UInt8], epoch: UInt16 = 0, registryPath path: String
    ) throws(ProvisioningError) -> String {
        let value = epoch == 0 ? "\"\(Hex.encode(key))\"" : "{ key = \"\(Hex.encode(key))\", epoch = \(epoch) }"
        let line = "\(deviceID) = \(value)\n"
        let existing: [UInt8]?
        do { existing = try DurableFile(path: path).read() } catch {
            throw ProvisioningError("cannot read the centre registry \(path): \(error)")
        }
        guard let existing else {
            return "# DeviceKit centre registry: each device's root key, by device id. Keep it private (mode 0600).\n"
                + "[devices]\n" + line
        }
        var text = String(decoding: existing, as: UTF8.self)
        let registry: CentreRegistry
        do { registry = try CentreRegistry(toml: text) } catch {
            throw ProvisioningError("the centre registry \(path): \(error)")
        }
        if let old = registry.entries[deviceID] {
            guard epoch > old.epoch else {
                throw ProvisioningError(
                    "the centre registry \(path) already has device \(deviceID) at key epoch \(old.epoch); every device needs its own id: "
                        + "choose another --id, re-provision it with a later epoch (--epoch \(old.epoch + 1)), "
                        + "or remove that line from the registry if the old device is retired")
            }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let replaced = lines.indices.filter { i in
                let words = lines[i].split(separator: "=", maxSplits: 1)
                return words.count == 2 && words[0].trimmingCharacters(in: .whitespaces) == "\(deviceID)"
            }
            guard replaced.count == 1 else {
                throw ProvisioningError("the centre registry \(path) has device \(deviceID) in a form this tool cannot replace: edit its line by hand")
            }
            lines[replaced[0]] = String(line.dropLast())
            return lines.joined(separator: "\n")
        }
        let lastHeader = text.split(separator: "\n").last { $0.trimmingCharacters(in: .whitespaces).hasPrefix("[") }
        if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
        if lastHeader?.trimmingCharacters(in: .whitespaces) == "[devices]" { return text + line }
        guard !registry.hasDevicesTable else {
            throw ProvisioningError(
                "the centre registry \(path) has its devices where a line cannot be appended: "
                    + "make [devices] a section of its own, the last in the file")
        }
        return text + "\n[devices]\n" + line
    }
}

/// The centre's registry file: each device's root key by id, in a `[devices]` table of `id = "hex"` (key
/// epoch 0) or `id = { key = "hex", epoch = N }`.
public struct CentreRegistry: Sendable {
    public struct Entry: Hashable, Sendable {
        public var key: [UInt8]
        public var epoch: UInt16
    }

    public var entries: [UInt32: Entry]
    /// The keys by id, whatever their epoch.
    public var keys: [UInt32: [UInt8]] { entries.mapValues(\.key) }
    var hasDevicesTable: Bool

    /// Parses the registry; errors name the line's id, never its key.
    public init(toml text: String) throws(DeviceConfigError) {
        let document: TOMLTable
        do { document = try TOMLTable(string: text) } catch {
            throw DeviceConfigError(nil, "not valid TOML: \(error)")
        }
        entries = [:]
        guard let devices = document["devices"] else {
            hasDevicesTable = false
            return
        }
        guard let table = devices.table else {
            throw DeviceConfigError("devices", "is not a table; write a [devices] section of id = \"hex key\" lines")
        }
        hasDevicesTable = true
        for name in table.keys {
            guard let id = UInt32(name) else {
                throw DeviceConfigError("devices.\(name)", "is not a device id (0 to \(UInt32.max))")
            }
            let hex: String?
            var epoch: UInt16 = 0
            if let inline = table[name]?.table {
                hex = inline["key"]?.string
                guard let value = inline["epoch"]?.int, let e = UInt16(exactly: value),
                      Set(inline.keys).isSubset(of: ["key", "epoch"]) else {
                    throw DeviceConfigError("devices.\(name)", "write { key = \"<hex>\", epoch = <0 to 65535> } and nothing else")
                }
                epoch = e
            } else {
                hex = table[name]?.string
            }
            guard let hex else {
                throw DeviceConfigError("devices.\(name)", "is not a key of 32 to 128 hex digits in double quotes")
            }
            do { entries[id] = Entry(key: try KeyKind.device.parse(hex), epoch: epoch) } catch {
                throw DeviceConfigError("devices.\(name)", error.description)
            }
        }
    }
}

/// Provisioning was refused or failed; says what to do instead. Never contains a key.
public struct ProvisioningError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
