import Foundation
import Logging
import Testing

@testable import DeviceKit

/// A temporary `/sys/class/power_supply` with the attributes a laptop-style ACPI system or a UPS HAT shows.
struct FakePowerSupplyClass {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "devicekit-power-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    func supply(_ name: String, _ attributes: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: "\(root)/\(name)", withIntermediateDirectories: true)
        for (attribute, value) in attributes { try set(name, attribute, value) }
    }

    func set(_ name: String, _ attribute: String, _ value: String) throws {
        // Atomically (a rename), so the polling loop never reads a half-written file.
        try (value + "\n").write(toFile: "\(root)/\(name)/\(attribute)", atomically: true, encoding: .utf8)
    }

    func delete(_ name: String, _ attribute: String? = nil) throws {
        try FileManager.default.removeItem(atPath: "\(root)/\(name)" + (attribute.map { "/" + $0 } ?? ""))
    }

    /// ACAD (Mains, online) and BAT0 (Battery, 87 %, Full), as ACPI shows them.
    static func laptop() throws -> FakePowerSupplyClass {
        let sysfs = try FakePowerSupplyClass()
        try sysfs.supply("ACAD", ["type": "Mains", "online": "1", "uevent": "POWER_SUPPLY_NAME=ACAD\nPOWER_SUPPLY_ONLINE=1"])
        try sysfs.supply("BAT0", [
            "type": "Battery", "present": "1", "capacity": "87", "status": "Full", "technology": "Li-ion",
            "voltage_now": "12554000", "capacity_level": "Normal",
        ])
        try sysfs.supply("ucsi-source-psy-USBC000:001", ["type": "USB", "online": "0", "usb_type": "[C] PD PD_PPS"])
        return sysfs
    }
}

@Suite struct PowerSupplyMonitorTests {
    static let logger = Logger(label: "test.power")

    static func monitor(_ sysfs: FakePowerSupplyClass, mains: String? = nil, battery: String? = nil) -> PowerSupplyMonitor {
        PowerSupplyMonitor(
            settings: PowerSupplySettings(root: sysfs.root, mains: mains, battery: battery, pollInterval: .milliseconds(20)),
            logger: logger)
    }

    @Test func theFirstLookReportsMainsAndBattery() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        let snapshot = Self.monitor(sysfs).snapshot()
        #expect(snapshot.mains == .success(MainsReading(supply: "ACAD", present: true)))
        #expect(snapshot.battery == .success(BatteryReading(supply: "BAT0", percent: 87, status: .full)))
        #expect(snapshot.changes(since: nil) == [.mains(present: true), .battery(percent: 87, status: .full)])
    }

    @Test func unpluggingMainsAndADroppingBatteryAreEachReportedOnce() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        let monitor = Self.monitor(sysfs)
        let first = monitor.snapshot()
        try sysfs.set("ACAD", "online", "0")
        try sysfs.set("BAT0", "status", "Discharging")
        let unplugged = monitor.snapshot()
        #expect(unplugged.changes(since: first) == [.mains(present: false), .battery(percent: 87, status: .discharging)])
        #expect(monitor.snapshot().changes(since: unplugged) == [])
        try sysfs.set("BAT0", "capacity", "19")
        let low = monitor.snapshot()
        #expect(low.changes(since: unplugged) == [.battery(percent: 19, status: .discharging)])
        try sysfs.set("ACAD", "online", "1")
        try sysfs.set("BAT0", "status", "Charging")
        #expect(monitor.snapshot().changes(since: low) == [.mains(present: true), .battery(percent: 19, status: .charging)])
    }

    @Test func configuredNamesWinOverTypes() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        try sysfs.supply("AC2", ["type": "Mains", "online": "0"])
        try sysfs.supply("BAT1", ["type": "Battery", "capacity": "40", "status": "Not charging"])
        let snapshot = Self.monitor(sysfs, mains: "AC2", battery: "BAT1").snapshot()
        #expect(snapshot.mains == .success(MainsReading(supply: "AC2", present: false)))
        #expect(snapshot.battery == .success(BatteryReading(supply: "BAT1", percent: 40, status: .notCharging)))
    }

    @Test func aRaspberryPiRunsFromUSBWhichCountsAsMains() throws {
        let sysfs = try FakePowerSupplyClass()
        defer { sysfs.remove() }
        try sysfs.supply("rpi-usb", ["type": "USB", "online": "1"])
        let monitor = Self.monitor(sysfs)
        #expect(monitor.snapshot().mains == .success(MainsReading(supply: "rpi-usb", present: true)))
        #expect(monitor.snapshot().battery == nil, "no battery is nothing to report")
        try sysfs.set("rpi-usb", "online", "2")
        #expect(monitor.snapshot().mains == .success(MainsReading(supply: "rpi-usb", present: true)), "2: programmable USB source")
    }

    @Test func aUPSHatServesAsTheBattery() throws {
        let sysfs = try FakePowerSupplyClass()
        defer { sysfs.remove() }
        try sysfs.supply("ups", ["type": "UPS", "online": "1", "capacity": "100", "status": "Full"])
        #expect(Self.monitor(sysfs).snapshot().battery == .success(BatteryReading(supply: "ups", percent: 100, status: .full)))
    }

    @Test func withoutMainsTheReasonSaysWhatToSet() throws {
        let sysfs = try FakePowerSupplyClass()
        defer { sysfs.remove() }
        try sysfs.supply("BAT0", ["type": "Battery", "capacity": "50"])
        let snapshot = Self.monitor(sysfs).snapshot()
        #expect(snapshot.changes(since: nil) == [
            .unreadable(reason: "no power supply of type Mains under \(sysfs.root): set power.mains or backend = \"none\""),
            .battery(percent: 50, status: .unknown),
        ])
    }

    @Test func aSupplyThatDisappearsIsReportedOnceAndRecovers() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        let monitor = Self.monitor(sysfs, battery: "BAT0")
        let first = monitor.snapshot()
        try sysfs.delete("BAT0")
        let gone = monitor.snapshot()
        let reason = "no power supply named BAT0 under \(sysfs.root) (there are: ACAD, ucsi-source-psy-USBC000:001): "
            + "correct power.battery in device.toml"
        #expect(gone.changes(since: first) == [.unreadable(reason: reason)])
        #expect(monitor.snapshot().changes(since: gone) == [], "the same problem is not repeated")
        try sysfs.supply("BAT0", ["type": "Battery", "capacity": "86", "status": "Discharging"])
        #expect(monitor.snapshot().changes(since: gone) == [.battery(percent: 86, status: .discharging)])
    }

    @Test func aDifferentProblemIsReportedAgain() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        let monitor = Self.monitor(sysfs)
        try sysfs.set("BAT0", "capacity", "lots")
        let garbled = monitor.snapshot()
        try sysfs.set("BAT0", "present", "0")
        #expect(monitor.snapshot().changes(since: garbled) == [
            .unreadable(reason: "battery BAT0 reports present = 0: it is missing or disconnected; check its connector"),
        ])
        try sysfs.set("ACAD", "online", "?")
        let changes = monitor.snapshot().changes(since: garbled)
        #expect(changes.count == 2)
        #expect(changes.first == .unreadable(reason: PowerSupplyError.garbage(
            path: "\(sysfs.root)/ACAD/online", value: "?", expected: "0 or 1").description))
    }

    @Test func aDisconnectedBatteryIsUnreadable() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        try sysfs.set("BAT0", "present", "0")
        #expect(Self.monitor(sysfs).snapshot().battery
            == .failure(.batteryNotPresent(name: "BAT0")))
        #expect(PowerSupplyError.batteryNotPresent(name: "BAT0").description
            == "battery BAT0 reports present = 0: it is missing or disconnected; check its connector")
    }

    @Test(arguments: [
        ("BAT0", "capacity", "abc", "a percentage from 0 to 100"),
        ("BAT0", "capacity", "101", "a percentage from 0 to 100"),
        ("BAT0", "capacity", "-5", "a percentage from 0 to 100"),
        ("BAT0", "capacity", "", "a percentage from 0 to 100"),
        ("BAT0", "present", "yes", "0 or 1"),
        ("ACAD", "online", "on", "0 or 1"),
        ("ACAD", "online", "99999", "0 or 1"),
    ])
    func garbageIsATypedErrorNamingTheFile(supply: String, attribute: String, value: String, expected: String) throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        try sysfs.set(supply, attribute, value)
        let snapshot = Self.monitor(sysfs).snapshot()
        let error = PowerSupplyError.garbage(path: "\(sysfs.root)/\(supply)/\(attribute)", value: value, expected: expected)
        if supply == "ACAD" {
            #expect(snapshot.mains == .failure(error))
        } else {
            #expect(snapshot.battery == .failure(error))
        }
        #expect(snapshot.changes(since: nil).contains(.unreadable(reason: error.description)))
    }

    @Test func aMissingOnlineFileIsUnreadable() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        try sysfs.delete("ACAD", "online")
        #expect(Self.monitor(sysfs).snapshot().mains
            == .failure(.unreadable(path: "\(sysfs.root)/ACAD/online", reason: "the file is missing or unreadable")))
    }

    @Test func anUnknownStatusWordIsUnknown() throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        try sysfs.set("BAT0", "status", "Trickle\u{0}charging")
        #expect(Self.monitor(sysfs).snapshot().battery == .success(BatteryReading(supply: "BAT0", percent: 87, status: .unknown)))
    }

    @Test func noPowerSupplyClassSaysSetBackendNone() throws {
        let sysfs = try FakePowerSupplyClass()
        sysfs.remove()
        let snapshot = Self.monitor(sysfs).snapshot()
        #expect(snapshot.battery == nil)
        #expect(snapshot.changes(since: nil) == [.unreadable(reason:
            "\(sysfs.root) is missing: this kernel shows no power supplies (a container, or a board without power "
                + "sensing); set backend = \"none\" under [power]")])
    }

    @Test func theLoopEmitsTheFirstValuesThenOnlyChanges() async throws {
        let sysfs = try FakePowerSupplyClass.laptop()
        defer { sysfs.remove() }
        let recorder = NoticeRecorder<PowerChange>()
        let task = Task { try await Self.monitor(sysfs).run { recorder.record($0) } }
        _ = try await recorder.wait { $0.count >= 2 }
        try sysfs.set("ACAD", "online", "0")
        _ = try await recorder.wait { $0.count >= 3 }
        try sysfs.set("BAT0", "capacity", "86")
        _ = try await recorder.wait { $0.count >= 4 }
        // A later change and its report: the looks in between repeated nothing.
        try sysfs.set("ACAD", "online", "1")
        _ = try await recorder.wait { $0.count >= 5 }
        task.cancel()
        try await task.value
        #expect(recorder.all == [
            .mains(present: true), .battery(percent: 87, status: .full), .mains(present: false),
            .battery(percent: 86, status: .full), .mains(present: true),
        ])
    }
}
