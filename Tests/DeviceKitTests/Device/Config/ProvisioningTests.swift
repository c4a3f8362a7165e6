import Foundation
import NIOCore
import Testing

@testable import DeviceKit

@Suite final class ProvisioningTests {
    let directory: String
    var configPath: String { directory + "/device.toml" }
    var registryPath: String { directory + "/centre-registry.toml" }

    init() throws { directory = try makeTemporaryDirectory("provision") }
    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func request(_ id: UInt32, master: [UInt8]? = nil, registry: Bool = true) throws -> Provisioning.Request {
        Provisioning.Request(
            deviceID: id, primaryCentre: try CentreAddress(parsing: "centre.example:7700"),
            secondaryCentre: CentreAddress(host: "backup.example", port: 7700), configPath: configPath,
            registryPath: registry ? registryPath : nil, masterKey: master, stateDirectory: "/var/lib/devicekit")
    }

    /// `provision --sip` (issue 16, part 3): the [voice] table is written and read back.
    @Test func aSIPCentreIsWrittenAsTheVoiceTable() throws {
        var request = try request(1001)
        request.voice = VoiceSettings(sip: try VoiceSettings.centre("sip:arc@10.0.0.9:5070;transport=tcp", key: "--sip"))
        _ = try Provisioning.provision(request)
        let voice = try #require(try DeviceConfig.load(path: configPath).voice)
        #expect(voice.sip.description == "sip:arc@10.0.0.9:5070;transport=tcp" && voice.sipPort == 5060 && voice.srtp == .optional)
    }

    @Test func theDerivedRootKeySealsExactlyAsTheLibrarysFleetDerivation() throws {
        let master = Array(UInt8(0x40)...0x5f)
        for id: UInt32 in [0, 1, 1001, 0x12_3456, .max] {
            let root = try Provisioning.derivedRootKey(deviceID: id, master: master)
            #expect(root.count == 32)
            let provisioned = try DeviceKey(deviceID: id, rootKey: root)
            let fleet = DeviceKey(deviceID: id, master: try FleetMasterKey(bytes: master))
            #expect(try sealedAlarm(provisioned) == sealedAlarm(fleet))
        }
    }

    @Test func theDerivedRootKeyReproducesTheFleetVectorOfTheProtocol() throws {
        // protocol.md §7.11.
        let root = try Provisioning.derivedRootKey(deviceID: 1_193_046, master: Array(UInt8(0x40)...0x5f))
        let key = try DeviceKey(deviceID: 1_193_046, rootKey: root)
        let alarm = Message.alarm(
            Alarm(id: 4_000_000_001, kind: .test, triggeredAt: 1_795_000_000_000, battery: 255, flags: AlarmFlags(rawValue: 6),
                  pressCount: 3, holdMilliseconds: 1200))
        var wire = ByteBuffer()
        try SealedFrame.seal(alarm, direction: .up, deviceID: 1_193_046, counter: 1_048_577, key: key.upKey, into: &wire)
        #expect(
            Hex.encode(wire.readableBytesView)
                == "10003300123456000000100001984064be1b37134e2e7a171da065236f4dd84c29527b69f14b405debb2963f3649cb2b7dc319")
    }

    @Test func aShortMasterKeyIsRefused() {
        #expect(throws: KeyError.wrongMasterLength(16)) { try Provisioning.derivedRootKey(deviceID: 1, master: Array(repeating: 1, count: 16)) }
    }

    @Test func provisioningWritesAPrivateConfigAndARegistryLineWithTheSameKey() throws {
        let outcome = try Provisioning.provision(try request(1001))
        #expect(outcome.derived == false)

        let config = try DeviceConfig.load(path: configPath)
        #expect(config == outcome.config)
        #expect(config.deviceID == 1001)
        #expect(config.primaryCentre.description == "centre.example:7700")
        #expect(config.secondaryCentre?.description == "backup.example:7700")
        let key = try config.rootKey()
        #expect(key.count == 32)
        let mode = try FileManager.default.attributesOfItem(atPath: configPath)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let registry = try CentreRegistry(toml: String(contentsOfFile: registryPath, encoding: .utf8))
        #expect(registry.keys == [1001: key])
    }

    @Test func eachDeviceGetsItsOwnRandomKeyAndTheRegistryKeepsBoth() throws {
        let first = try Provisioning.provision(try request(1001))
        var second = try request(1002)
        second.configPath = directory + "/device-1002.toml"
        let outcome = try Provisioning.provision(second)
        let registry = try CentreRegistry(toml: String(contentsOfFile: registryPath, encoding: .utf8))
        #expect(registry.keys.count == 2)
        #expect(registry.keys[1001] == (try first.config.rootKey()))
        #expect(registry.keys[1002] == (try outcome.config.rootKey()))
        #expect(registry.keys[1001] != registry.keys[1002])
    }

    @Test func aDuplicateIDIsRefusedAndNothingIsWritten() throws {
        _ = try Provisioning.provision(try request(1001))
        let registryBefore = try String(contentsOfFile: registryPath, encoding: .utf8)
        var again = try request(1001)
        again.configPath = directory + "/other.toml"
        let error = #expect(throws: ProvisioningError.self) { try Provisioning.provision(again) }
        #expect(error?.description.contains("already has device 1001") == true)
        #expect(!FileManager.default.fileExists(atPath: again.configPath))
        #expect(try String(contentsOfFile: registryPath, encoding: .utf8) == registryBefore)
    }

    @Test func anExistingConfigIsNotOverwrittenUnlessAsked() throws {
        try "keep me".write(toFile: configPath, atomically: true, encoding: .utf8)
        let error = #expect(throws: ProvisioningError.self) { try Provisioning.provision(try request(1001, registry: false)) }
        #expect(error?.description.contains("exists") == true)
        #expect(try String(contentsOfFile: configPath, encoding: .utf8) == "keep me")
        var overwrite = try request(1001, registry: false)
        overwrite.overwrite = true
        _ = try Provisioning.provision(overwrite)
        #expect(try DeviceConfig.load(path: configPath).deviceID == 1001)
    }

    @Test func aMasterDerivedDeviceHoldsItsDerivedKeyAndNeverTheMaster() throws {
        let master = Array(repeating: UInt8(0xab), count: 32)
        let outcome = try Provisioning.provision(try request(77, master: master, registry: false))
        #expect(outcome.derived)
        let text = try String(contentsOfFile: configPath, encoding: .utf8)
        #expect(!text.contains(Hex.encode(master)))
        #expect(try DeviceConfig.load(path: configPath).rootKey() == Provisioning.derivedRootKey(deviceID: 77, master: master))
        #expect(!FileManager.default.fileExists(atPath: registryPath))
    }

    @Test func aRegistryAndAMasterKeyTogetherAreRefused() throws {
        #expect(throws: ProvisioningError.self) {
            try Provisioning.provision(try request(1, master: Array(repeating: 1, count: 32), registry: true))
        }
        #expect(!FileManager.default.fileExists(atPath: configPath))
    }

    @Test func anOperatorsRegistryKeepsItsCommentsAndGainsALine() throws {
        let existing = "# Lyon centre\n[devices]\n5 = \"\(Hex.encode(Array(repeating: UInt8(5), count: 32)))\" # flat 3B"
        try existing.write(toFile: registryPath, atomically: true, encoding: .utf8)
        _ = try Provisioning.provision(try request(6))
        let text = try String(contentsOfFile: registryPath, encoding: .utf8)
        #expect(text.hasPrefix(existing + "\n6 = \""))
        #expect(try CentreRegistry(toml: text).keys.keys.sorted() == [5, 6])
    }

    @Test func aRegistryWhoseDevicesAreNotTheLastSectionIsRefused() throws {
        try "[devices]\n[centre]\nname = \"Lyon\"\n".write(toFile: registryPath, atomically: true, encoding: .utf8)
        let error = #expect(throws: ProvisioningError.self) { try Provisioning.provision(try request(6)) }
        #expect(error?.description.contains("the last in the file") == true)
        #expect(!FileManager.default.fileExists(atPath: configPath))
    }

    @Test func aRegistryWithoutDevicesGainsTheSection() throws {
        try "[centre]\nname = \"Lyon\"".write(toFile: registryPath, atomically: true, encoding: .utf8)
        _ = try Provisioning.provision(try request(6))
        let text = try String(contentsOfFile: registryPath, encoding: .utf8)
        #expect(try CentreRegistry(toml: text).keys.keys.sorted() == [6])
    }

    @Test func anUnwritableConfigPathWritesNoRegistryLine() throws {
        var unwritable = try request(9)
        unwritable.configPath = directory + "/missing-dir/device.toml"
        #expect(throws: ProvisioningError.self) { try Provisioning.provision(unwritable) }
        #expect(!FileManager.default.fileExists(atPath: registryPath))
    }

    // MARK: Key epochs (protocol.md §3.2): the recovery for a lost state directory

    @Test func reProvisioningMovesToTheNextEpochWithANewKeyAndAFreshReservation() throws {
        let master = Array(UInt8(0x40)...0x5f)
        var first = try request(1001, master: master, registry: false)
        first.stateDirectory = directory + "/state"
        first.writeState = true
        let epoch0 = try Provisioning.provision(first)
        #expect(epoch0.config.keyEpoch == 0)
        #expect(try CounterReservationFile(path: directory + "/state/counter").load() == 0)
        try CounterReservationFile(path: directory + "/state/counter").store(655_360)  // the key in use
        try FileManager.default.removeItem(atPath: directory + "/state")  // the state directory is lost

        var again = first
        again.overwrite = true
        let epoch1 = try Provisioning.provision(again)
        #expect(epoch1.config.keyEpoch == 1)
        #expect(try DeviceConfig.load(path: configPath).keyEpoch == 1)
        #expect(try epoch1.config.rootKey() == Provisioning.derivedRootKey(deviceID: 1001, master: master, epoch: 1))
        #expect(try epoch1.config.rootKey() != epoch0.config.rootKey())
        #expect(try CounterReservationFile(path: directory + "/state/counter", epoch: 1).load() == 0)
    }

    @Test func aRegistryLineIsReplacedOnlyByALaterEpoch() throws {
        _ = try Provisioning.provision(try request(7))
        var again = try request(7)
        again.overwrite = true
        let outcome = try Provisioning.provision(again)
        #expect(outcome.config.keyEpoch == 1)
        let registry = try CentreRegistry(toml: String(contentsOfFile: registryPath, encoding: .utf8))
        #expect(registry.entries[7] == CentreRegistry.Entry(key: try outcome.config.rootKey(), epoch: 1))
        #expect(try DeviceRegistry(keyFile: String(contentsOfFile: registryPath, encoding: .utf8)).registeredEpoch(of: 7) == 1)
        var same = try request(7)
        same.overwrite = true
        same.keyEpoch = 1
        let error = #expect(throws: ProvisioningError.self) { try Provisioning.provision(same) }
        #expect(error?.description.contains("at key epoch 1") == true)
    }

    @Test func provisioningWithoutStateWritesNoReservation() throws {
        var request = try request(8, registry: false)
        request.stateDirectory = directory + "/state"
        _ = try Provisioning.provision(request)
        #expect(!FileManager.default.fileExists(atPath: directory + "/state/counter"))
    }
}
