import Crypto
import Testing

@testable import DeviceKit

/// The centre's keys and anchors in memory: derived once, retired with their epoch, bounded, never going back.
@Suite struct CenterKeysTests {
    static let master = try! FleetMasterKey(bytes: Array(0x40...0x5f))

    @Test func aDeviceKeyIsDerivedOnceAndKeptWithinTheBound() {
        var keys = CenterKeys(registry: DeviceRegistry(master: Self.master), cacheLimit: 2, anchors: [:])
        #expect(keys.deviceKey(1)?.derived == true)
        #expect(keys.deviceKey(1)?.derived == false, "kept")
        #expect(keys.deviceKey(1)?.key.upKey == DeviceKey(deviceID: 1, master: Self.master).upKey)
        _ = keys.deviceKey(2)
        _ = keys.deviceKey(3)
        #expect(keys.cachedKeys == 2)
        #expect(!keys.hasKey(1), "the least recently used is forgotten first")
    }

    @Test func theJournalsEpochDecidesTheKeyAndAnAdoptedLaterKeyRetiresTheOld() {
        var keys = CenterKeys(
            registry: DeviceRegistry(master: Self.master), cacheLimit: 8,
            anchors: [5: CenterJournal.StoredAnchor(epoch: 2, anchor: 900)])
        #expect(keys.currentEpoch(5) == 2)
        #expect(keys.deviceKey(5)?.key.epoch == 2)
        #expect(keys.storedAnchor(5, epoch: 2) == 900)
        #expect(keys.storedAnchor(5, epoch: 1) == nil, "an anchor of another epoch is not this key's")
        let later = keys.laterKey(5, epoch: 3)
        #expect(later?.epoch == 3)
        keys.remember(CenterJournal.StoredAnchor(epoch: 3, anchor: 10), device: 5)
        if let later { keys.adopt(later, for: 5) }
        #expect(keys.currentEpoch(5) == 3)
        #expect(keys.deviceKey(5)?.key.epoch == 3 && keys.deviceKey(5)?.derived == false)
    }

    @Test func whatIsRememberedNeverGoesBack() {
        var keys = CenterKeys(registry: DeviceRegistry(master: Self.master), cacheLimit: 8, anchors: [:])
        keys.remember(CenterJournal.StoredAnchor(epoch: 1, anchor: 500), device: 9)
        keys.remember(CenterJournal.StoredAnchor(epoch: 1, anchor: 400), device: 9)
        keys.remember(CenterJournal.StoredAnchor(epoch: 0, anchor: 9_000), device: 9)
        #expect(keys.storedAnchor(9, epoch: 1) == 500)
        keys.remember(CenterJournal.StoredAnchor(epoch: 2, anchor: 1), device: 9)
        #expect(keys.storedEpoch(9) == 2 && keys.storedAnchor(9, epoch: 2) == 1)
    }

    /// The down key now lives in the session's entry (`SessionEntry`), derived there once a session.
    @Test func aDownKeyIsTheSessionsAndFollowsItsAnchorAndEpoch() throws {
        let key = DeviceKey(deviceID: 4, master: Self.master)
        var entry = SessionEntry(machine: CenterSession(key: key, parameters: .init(), storedAnchor: nil))
        let first = entry.downKey(anchor: 100)
        #expect(first == key.downKey(anchor: 100))
        #expect(entry.downKey(anchor: 100) == first)
        #expect(entry.downKey(anchor: 101) == key.downKey(anchor: 101), "a new session, a new key")
        #expect(entry.downKey(anchor: 101) != first)
        let reprovisioned = try #require(DeviceRegistry(master: Self.master).key(for: 4, epoch: 1))
        var later = SessionEntry(machine: CenterSession(key: reprovisioned, parameters: .init(), storedAnchor: nil))
        #expect(later.downKey(anchor: 101) == reprovisioned.downKey(anchor: 101), "same anchor, later epoch")
        #expect(later.downKey(anchor: 101) != entry.downKey(anchor: 101))
    }
}
