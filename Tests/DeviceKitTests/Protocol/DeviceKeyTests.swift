import Crypto
import Testing

@testable import DeviceKit

/// The keys a device derives (protocol.md §3.2), however they are held.
@Suite struct DeviceKeyTests {
    static let master = try! FleetMasterKey(bytes: Array(0x40...0x5f))

    /// A fleet device keeps the root it derived from the master (inline): its keys must be those of a device
    /// provisioned with that root.
    @Test(arguments: [UInt16(0), 9])
    func aFleetDevicesKeysAreThoseOfItsDerivedRoot(epoch: UInt16) throws {
        let fleet = DeviceKey(deviceID: 0x0012_3456, master: Self.master, epoch: epoch)
        let root = Self.master.rootKey(for: 0x0012_3456, epoch: epoch).withUnsafeBytes { Array($0) }
        let provisioned = try DeviceKey(deviceID: 0x0012_3456, rootKey: root, epoch: epoch)
        #expect(bytes(fleet.upKey) == bytes(provisioned.upKey))
        for anchor: UInt64 in [0, 1, 0xFFFF_FFFF_FFFF] {
            #expect(bytes(fleet.downKey(anchor: anchor)) == bytes(provisioned.downKey(anchor: anchor)))
        }
        #expect(bytes(fleet.downKey(anchor: 1)) != bytes(fleet.downKey(anchor: 2)), "a down key per session")
        #expect(bytes(fleet.downKey(anchor: 1)) != bytes(DeviceKey(deviceID: 0x0012_3457, master: Self.master, epoch: epoch).downKey(anchor: 1)))
    }

    /// The inline copy of a derived key is the key.
    @Test func anInlineKeyGivesBackTheKeyItWasMadeFrom() {
        let key = SymmetricKey(data: Array(UInt8(0)..<32))
        #expect(bytes(InlineKey(key).symmetricKey) == Array(UInt8(0)..<32))
    }

    private func bytes(_ key: SymmetricKey) -> [UInt8] { key.withUnsafeBytes { Array($0) } }
}
