import Logging

/// Reads mains and battery from the Linux power_supply class (`/sys/class/power_supply/<name>/`) and reports
/// what changes, every `pollInterval` (power_supply sends uevents, but polling a few small files is simpler and
/// works without udevd).
///
/// Which supplies:
/// - Mains: `PowerSupplySettings.mains`, or the first supply (by name) of type `Mains`. Where there is none,
///   the first of type `USB` stands in, its `online` taken as mains: a Raspberry Pi has no `Mains` supply, only
///   the USB-C input it runs from (and many boards none at all: then set `backend = "none"`).
/// - Battery: `PowerSupplySettings.battery`, or the first of type `Battery`, else of type `UPS` (a UPS HAT).
///   No battery is not an error: the device reports none.
///
/// Attributes: `type` (`Mains`, `Battery`, `USB`, `UPS`), `online` (0 or 1; a USB supply may say 2),
/// `capacity` (0 to 100), `status` (`Charging`, `Discharging`, `Full`, `Not charging`, `Unknown`), `present`.
/// Garbage in any of them is a `PowerSupplyError` that says which file and what it held; a driver's own status
/// word counts as `Unknown`.
public struct PowerSupplyMonitor: Sendable {
    public var settings: PowerSupplySettings
    private let logger: Logger

    public init(settings: PowerSupplySettings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// One supply as sysfs shows it, for `diag selftest`.
    public struct Supply: Hashable, Sendable {
        public var name: String
        /// `Mains`, `Battery`, `USB`, `UPS`, ... (`nil` without a `type` file).
        public var type: String?
        public var online: String?
        public var capacity: String?
        public var status: String?
        public var present: String?
    }

    /// Every supply under the root, by name; empty when there is none or no root.
    public func supplies() -> [Supply] {
        KernelFile.list(settings.root).map { name in
            func attribute(_ file: String) -> String? { KernelFile.attribute("\(settings.root)/\(name)/\(file)") }
            return Supply(name: name, type: attribute("type"), online: attribute("online"),
                          capacity: attribute("capacity"), status: attribute("status"), present: attribute("present"))
        }
    }

    /// Mains and battery now.
    public func snapshot() -> PowerSupplySnapshot {
        guard KernelFile.status(settings.root) != nil else {
            let missing = PowerSupplyError.noPowerSupplyClass(root: settings.root)
            return PowerSupplySnapshot(mains: .failure(missing), battery: settings.battery == nil ? nil : .failure(missing))
        }
        let supplies = supplies()
        return PowerSupplySnapshot(mains: Result { () throws(PowerSupplyError) in try mains(supplies) },
                                   battery: battery(supplies))
    }

    /// Runs until the task is cancelled: the first snapshot's values at once, then every change, each on the
    /// thread that polls (a slow fuel gauge on I²C then blocks no one else).
    public func run(_ emit: @escaping @Sendable (PowerChange) -> Void) async throws {
        let interval = settings.pollInterval
        let logger = logger
        let root = settings.root
        try await onDedicatedThread(name: "power-supply") { flag in
            var previous: PowerSupplySnapshot?
            repeat {
                let current = snapshot()
                for change in current.changes(since: previous) {
                    logger.debug("power supply changed", metadata: ["power.change": "\(change)", "power.root": "\(root)"])
                    emit(change)
                }
                previous = current
            } while flag.sleep(for: interval)
        }
    }

    // MARK: Choosing and reading

    private func mains(_ supplies: [Supply]) throws(PowerSupplyError) -> MainsReading {
        let supply: Supply
        if let name = settings.mains {
            supply = try configured(name, supplies, setting: "power.mains")
        } else if let found = supplies.first(where: { $0.type == "Mains" }) ?? supplies.first(where: { $0.type == "USB" }) {
            supply = found
        } else {
            throw .noSupply(type: "Mains", root: settings.root, setting: "power.mains")
        }
        let path = "\(settings.root)/\(supply.name)/online"
        guard let online = supply.online else { throw .unreadable(path: path, reason: "the file is missing or unreadable") }
        guard let value = UInt8(online) else { throw .garbage(path: path, value: online, expected: "0 or 1") }
        return MainsReading(supply: supply.name, present: value != 0)
    }

    private func battery(_ supplies: [Supply]) -> Result<BatteryReading, PowerSupplyError>? {
        let supply: Supply
        if let name = settings.battery {
            do throws(PowerSupplyError) {
                supply = try configured(name, supplies, setting: "power.battery")
            } catch {
                return .failure(error)
            }
        } else if let found = supplies.first(where: { $0.type == "Battery" }) ?? supplies.first(where: { $0.type == "UPS" }) {
            supply = found
        } else {
            return nil
        }
        return Result { () throws(PowerSupplyError) in
            let directory = "\(settings.root)/\(supply.name)"
            if let present = supply.present {
                guard let value = UInt8(present) else {
                    throw .garbage(path: directory + "/present", value: present, expected: "0 or 1")
                }
                guard value != 0 else { throw .batteryNotPresent(name: supply.name) }
            }
            guard let capacity = supply.capacity else {
                throw .unreadable(path: directory + "/capacity", reason: "the file is missing or unreadable")
            }
            guard let percent = UInt8(capacity), percent <= 100 else {
                throw .garbage(path: directory + "/capacity", value: capacity, expected: "a percentage from 0 to 100")
            }
            return BatteryReading(supply: supply.name, percent: percent, status: BatteryStatus(sysfs: supply.status ?? ""))
        }
    }

    private func configured(_ name: String, _ supplies: [Supply], setting: String) throws(PowerSupplyError) -> Supply {
        guard !name.contains("/"), let supply = supplies.first(where: { $0.name == name }) else {
            throw .supplyMissing(name: name, root: settings.root, setting: setting, available: supplies.map(\.name))
        }
        return supply
    }
}
