/// What the centre knows of its devices' keys and anchors, in memory: the registry (key files or the fleet
/// master key), the devices' keys derived from it (two HKDFs each, kept in a bounded cache: a ramp of
/// handshakes asks for each key more than once, and with a master key every made-up id has one), and each
/// device's latest anchor and key epoch as far as this process knows — the
/// journal decides (several processes may share it), this only remembers its answers.
///
/// A value on the runtime's loop; no I/O. `derived` in the answers lets the owner count derivations.
struct CenterKeys {
    let registry: DeviceRegistry
    private var deviceKeys: BoundedCache<UInt32, DeviceKey>
    private var anchors: DeviceTable<CenterJournal.StoredAnchor>

    init(registry: DeviceRegistry, cacheLimit: Int, anchors: [UInt32: CenterJournal.StoredAnchor]) {
        self.registry = registry
        self.deviceKeys = BoundedCache(capacity: cacheLimit)
        self.anchors = DeviceTable(anchors)
    }

    /// Keys held for devices, for the metrics.
    var cachedKeys: Int { deviceKeys.count }

    /// Whether `device`'s key is at hand without a derivation.
    func hasKey(_ device: UInt32) -> Bool { deviceKeys.contains(device) }

    /// The key epoch `device` is at: the one its key file names, else the journal's (0 until it moves on).
    func currentEpoch(_ device: UInt32) -> UInt16 {
        registry.registeredEpoch(of: device) ?? anchors[device]?.epoch ?? 0
    }

    /// The device's latest anchor stored in the journal, if of the key epoch `epoch`.
    func storedAnchor(_ device: UInt32, epoch: UInt16) -> UInt64? {
        guard let stored = anchors[device], stored.epoch == epoch else { return nil }
        return stored.anchor
    }

    func storedEpoch(_ device: UInt32) -> UInt16? { anchors[device]?.epoch }

    /// The key of `device` at its current epoch, derived once and kept (at most `cacheLimit` keys, the least
    /// recently used forgotten first); `derived` when it cost a derivation now.
    mutating func deviceKey(_ device: UInt32) -> (key: DeviceKey, derived: Bool)? {
        let epoch = currentEpoch(device)
        if let key = deviceKeys.value(for: device), key.epoch == epoch { return (key, false) }
        guard let key = registry.key(for: device, epoch: epoch) else { return nil }
        deviceKeys.insert(key, for: device)
        return (key, true)
    }

    /// The key of a later epoch than the current one, for a re-provisioned device's `sessionStart`; never kept
    /// unless its session opens (`adopt`).
    func laterKey(_ device: UInt32, epoch: UInt16) -> DeviceKey? { registry.key(for: device, epoch: epoch) }

    /// The device moved to `key`'s epoch: its old key is retired.
    mutating func adopt(_ key: DeviceKey, for device: UInt32) { deviceKeys.insert(key, for: device) }

    /// The later of what this process knew and `stored`: a later epoch, or a higher anchor of the same one.
    mutating func remember(_ stored: CenterJournal.StoredAnchor, device: UInt32) {
        guard let known = anchors[device] else {
            anchors[device] = stored
            return
        }
        if stored.epoch > known.epoch || (stored.epoch == known.epoch && stored.anchor > known.anchor) {
            anchors[device] = stored
        }
    }
}
