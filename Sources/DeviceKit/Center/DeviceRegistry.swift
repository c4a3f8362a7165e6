import TOMLKit

/// Which devices the centre serves and their keys: a file of device ids and root keys, or a fleet master key
/// from which every device's key is derived (protocol.md §3.2).
///
/// The key file is TOML, one line per device under `[devices]`:
/// ```toml
/// [devices]
/// 1001 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/// ```
public struct DeviceRegistry: Sendable {
    private enum Source: Sendable {
        case keys([UInt32: [UInt8]])
        case master(FleetMasterKey)
    }

    private let source: Source

    /// Devices with provisioned root keys of 16 to 64 bytes each.
    public init(keys: [UInt32: [UInt8]]) throws(RegistryError) {
        for (device, key) in keys where !(16...64).contains(key.count) {
            throw RegistryError("device \(device): \(KeyError.wrongLength(key.count))")
        }
        source = .keys(keys)
    }

    /// Every device id, each with the key derived from `master`.
    public init(master: FleetMasterKey) {
        source = .master(master)
    }

    /// Parses a key file (TOML, see the type's documentation).
    public init(keyFile text: String) throws(RegistryError) {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch {
            // TOMLKit's message quotes the offending text, which may be a key: give the position only.
            let position = (error as? TOMLParseError).map { " at \($0.source.begin)" } ?? ""
            throw RegistryError("the key file is not valid TOML\(position)")
        }
        guard let devices = table["devices"]?.table else {
            throw RegistryError("the key file has no [devices] table: write one line `<device id> = \"<key hex>\"` under [devices]")
        }
        var keys: [UInt32: [UInt8]] = [:]
        for name in devices.keys {
            guard let device = UInt32(name) else {
                throw RegistryError("'\(name)' is not a device id: use a decimal number from 0 to 4294967295")
            }
            guard let hex = devices[name]?.string, let key = Hex.decode(hex) else {
                throw RegistryError("device \(device): \(KeyError.notHex)")
            }
            keys[device] = key
        }
        try self.init(keys: keys)
    }

    /// The key of `device`, or `nil` when the centre does not serve it.
    public func key(for device: UInt32) -> DeviceKey? {
        switch source {
        case .keys(let keys):
            guard let root = keys[device] else { return nil }
            return try? DeviceKey(deviceID: device, rootKey: root)
        case .master(let master):
            return DeviceKey(deviceID: device, master: master)
        }
    }

    /// How many devices the key file lists, or `nil` for a fleet master key.
    public var deviceCount: Int? {
        switch source {
        case .keys(let keys): keys.count
        case .master: nil
        }
    }
}

/// Why a key file or key was refused, in words that say what to fix. Never contains key material.
public struct RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
