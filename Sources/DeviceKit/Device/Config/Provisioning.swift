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

        public init(
            deviceID: UInt32, primaryCentre: CentreAddress, secondaryCentre: CentreAddress? = nil,
            configPath: String = "device.toml", registryPath: String? = nil, masterKey: [UInt8]? = nil,
            stateDirectory: String = "/var/lib/devicekit", overwrite: Bool = false
        ) {
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
        if !request.overwrite && FileManager.default.fileExists(atPath: request.configPath) {
            throw ProvisioningError(
                "\(request.configPath) exists; a device gets a new key when re-provisioned, so move the old file away first")
        }
        let key: [UInt8]
        if let master = request.masterKey {
            do { key = try derivedRootKey(deviceID: request.deviceID, master: master) } catch {
                throw ProvisioningError(error.description)
            }
        } else {
            key = randomRootKey()
        }
        var registry: (path: String, text: String)?
        if let path = request.registryPath {
            registry = (path, try registryWithDevice(request.deviceID, key: key, registryPath: path))
        }

        let config = DeviceConfig(
            deviceID: request.deviceID, key: .bytes(key), stateDirectory: request.stateDirectory,
            primaryCentre: request.primaryCentre, secondaryCentre: request.secondaryCentre)
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
            derived: request.masterKey != nil)
    }

    /// A new 32-byte root key from the system's secure random source.
    public static func randomRootKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    /// The root key of device `deviceID` in a fleet with master key `master` (protocol.md §3.2):
    /// HKDF-SHA256(IKM = master, salt = "DeviceKit v1 device", info = id as 4 bytes big-endian), 32 bytes.
    ///
    /// The same derivation as `DeviceKey(deviceID:master:)`, which keeps the root to itself; a provisioned
    /// device needs the bytes, because it must never hold the master key.
    public static func derivedRootKey(deviceID: UInt32, master: [UInt8]) throws(KeyError) -> [UInt8] {
        guard (32...64).contains(master.count) else { throw .wrongMasterLength(master.count) }
        let info = withUnsafeBytes(of: deviceID.bigEndian) { Array($0) }
        let root = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: master), salt: Array("DeviceKit v1 device".utf8), info: info,
            outputByteCount: 32)
        return root.withUnsafeBytes { Array($0) }
    }

    /// The registry's text with `<id> = "<hex key>"` added under `[devices]`; creates it if missing.
    ///
    /// Appends rather than rewrites, so an operator's comments and layout survive; that needs `[devices]`
    /// to be the registry's last table.
    static func registryWithDevice(_ deviceID: UInt32, key: [UInt8], registryPath path: String) throws(ProvisioningError) -> String {
        let line = "\(deviceID) = \"\(Hex.encode(key))\"\n"
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
        if registry.keys[deviceID] != nil {
            throw ProvisioningError(
                "the centre registry \(path) already has device \(deviceID); every device needs its own id: "
                    + "choose another --id, or remove that line from the registry if the old device is retired")
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

/// The centre's registry file: each device's root key by id, in a `[devices]` table of `id = "hex"`.
public struct CentreRegistry: Sendable {
    public var keys: [UInt32: [UInt8]]
    var hasDevicesTable: Bool

    /// Parses the registry; errors name the line's id, never its key.
    public init(toml text: String) throws(DeviceConfigError) {
        let document: TOMLTable
        do { document = try TOMLTable(string: text) } catch {
            throw DeviceConfigError(nil, "not valid TOML: \(error)")
        }
        keys = [:]
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
            guard let hex = table[name]?.string, let bytes = Hex.decode(hex), (16...64).contains(bytes.count) else {
                throw DeviceConfigError("devices.\(name)", "is not a key of 32 to 128 hex digits in double quotes")
            }
            keys[id] = bytes
        }
    }
}

/// Provisioning was refused or failed; says what to do instead. Never contains a key.
public struct ProvisioningError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
