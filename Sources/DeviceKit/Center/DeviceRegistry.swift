/// Which devices the centre serves and their keys: a file of device ids and root keys, or a fleet master key
/// from which every device's key is derived (protocol.md §3.2).
///
/// The key file is TOML, one line per device under `[devices]`, with its key epoch when above 0:
/// ```toml
/// [devices]
/// 1001 = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
/// 1002 = { key = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100", epoch = 1 }
/// ```
public struct DeviceRegistry: Sendable {
    private enum Source: Sendable {
        case keys([UInt32: CentreRegistry.Entry])
        case master(FleetMasterKey)
    }

    private let source: Source

    /// Devices with provisioned root keys of 16 to 64 bytes each, all of key epoch 0.
    public init(keys: [UInt32: [UInt8]]) throws(RegistryError) {
        try self.init(entries: keys.mapValues { CentreRegistry.Entry(key: $0, epoch: 0) })
    }

    /// Devices with provisioned root keys and their key epochs.
    public init(entries: [UInt32: CentreRegistry.Entry]) throws(RegistryError) {
        for (device, entry) in entries {
            do { try KeyKind.device.check(length: entry.key.count) } catch { throw RegistryError("device \(device): \(error)") }
        }
        source = .keys(entries)
    }

    /// Every device id, each with the key derived from `master` for any key epoch.
    public init(master: FleetMasterKey) {
        source = .master(master)
    }

    /// Parses a key file (TOML, see the type's documentation and `CentreRegistry`).
    public init(keyFile text: String) throws(RegistryError) {
        do { try self.init(entries: try CentreRegistry(toml: text).entries) } catch let error as DeviceConfigError {
            throw RegistryError("the key file: \(error)")
        } catch {
            throw RegistryError("the key file: \(error)")
        }
    }

    /// The key of `device` at key epoch `epoch`, or `nil` when the centre does not serve it (a key file
    /// holds one epoch per device: the one provisioned last).
    public func key(for device: UInt32, epoch: UInt16 = 0) -> DeviceKey? {
        switch source {
        case .keys(let entries):
            guard let entry = entries[device], entry.epoch == epoch else { return nil }
            return try? DeviceKey(deviceID: device, rootKey: entry.key, epoch: epoch)
        case .master(let master):
            return DeviceKey(deviceID: device, master: master, epoch: epoch)
        }
    }

    /// The epoch a key file gives `device`; `nil` for a fleet master key (any epoch) or an unknown device.
    public func registeredEpoch(of device: UInt32) -> UInt16? {
        switch source {
        case .keys(let entries): entries[device]?.epoch
        case .master: nil
        }
    }

    /// How many devices the key file lists, or `nil` for a fleet master key.
    public var deviceCount: Int? {
        switch source {
        case .keys(let entries): entries.count
        case .master: nil
        }
    }
}

/// Why a key file or key was refused, in words that say what to fix. Never contains key material.
public struct RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
