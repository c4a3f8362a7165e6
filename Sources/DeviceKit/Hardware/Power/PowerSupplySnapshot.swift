/// Mains and battery as the Linux power_supply class shows them at one moment, and what changed since the
/// last look.
///
/// Pure: `PowerSupplyMonitor` reads the files and makes snapshots; `changes(since:)` compares two of them.

/// The battery's charging state, as the kernel writes it in `status`.
public enum BatteryStatus: String, Hashable, Sendable, CaseIterable, Codable {
    case charging = "Charging"
    case discharging = "Discharging"
    case full = "Full"
    case notCharging = "Not charging"
    case unknown = "Unknown"

    /// The kernel's text; anything else (a driver's own word) is `.unknown`.
    public init(sysfs text: String) {
        self = BatteryStatus(rawValue: text) ?? .unknown
    }
}

/// What the device runtime hears from `PowerSupplyMonitor`.
///
/// `.mains` goes to `DeviceRuntime.mainsChanged(present:)`, `.battery` to `batteryMeasured(percent:)`;
/// `.unreadable` is for the log and `diag selftest` (the centre hears nothing: the last values stand).
public enum PowerChange: Hashable, Sendable {
    case mains(present: Bool)
    case battery(percent: UInt8, status: BatteryStatus)
    /// Mains or battery cannot be read; `reason` says why and what to set.
    case unreadable(reason: String)
}

/// Why mains or the battery cannot be read, in words that say what to change.
public enum PowerSupplyError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The class directory is missing.
    case noPowerSupplyClass(root: String)
    /// No supply of the wanted type, and none configured.
    case noSupply(type: String, root: String, setting: String)
    /// The configured supply does not exist.
    case supplyMissing(name: String, root: String, setting: String, available: [String])
    /// An attribute that must be there is missing or cannot be read.
    case unreadable(path: String, reason: String)
    /// An attribute holds something other than what the kernel writes.
    case garbage(path: String, value: String, expected: String)
    /// `present` is 0: the battery is disconnected.
    case batteryNotPresent(name: String)

    public var description: String {
        switch self {
        case .noPowerSupplyClass(let root):
            return "\(root) is missing: this kernel shows no power supplies (a container, or a board without "
                + "power sensing); set backend = \"none\" under [power]"
        case let .noSupply(type, root, setting):
            return "no power supply of type \(type) under \(root): set \(setting) or backend = \"none\""
        case let .supplyMissing(name, root, setting, available):
            let choices = available.isEmpty ? "there are none" : "there are: " + available.joined(separator: ", ")
            return "no power supply named \(name) under \(root) (\(choices)): correct \(setting) in device.toml"
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason)"
        case let .garbage(path, value, expected):
            return "\(path) holds '\(value.prefix(40))', not \(expected): the driver misbehaves, or this is not a power supply"
        case .batteryNotPresent(let name):
            return "battery \(name) reports present = 0: it is missing or disconnected; check its connector"
        }
    }
}

/// Mains, read from one supply.
public struct MainsReading: Hashable, Sendable {
    /// The supply's directory name (`AC`, `ACAD`, `rpi-usb`).
    public var supply: String
    public var present: Bool

    public init(supply: String, present: Bool) {
        self.supply = supply
        self.present = present
    }
}

/// The battery, read from one supply.
public struct BatteryReading: Hashable, Sendable {
    public var supply: String
    public var percent: UInt8
    public var status: BatteryStatus

    public init(supply: String, percent: UInt8, status: BatteryStatus) {
        self.supply = supply
        self.percent = percent
        self.status = status
    }
}

/// Mains and battery at one look.
public struct PowerSupplySnapshot: Hashable, Sendable {
    public var mains: Result<MainsReading, PowerSupplyError>
    /// `nil` when the device has no battery and none is configured: nothing to report, and nothing wrong.
    public var battery: Result<BatteryReading, PowerSupplyError>?

    public init(mains: Result<MainsReading, PowerSupplyError>, battery: Result<BatteryReading, PowerSupplyError>?) {
        self.mains = mains
        self.battery = battery
    }

    /// What changed since `previous` (everything readable, when there is none): each value once when it
    /// changes, each problem once when it appears, so a poll loop does not repeat itself.
    public func changes(since previous: PowerSupplySnapshot?) -> [PowerChange] {
        var changes: [PowerChange] = []
        switch (mains, previous?.mains) {
        case (.success(let now), .success(let then)) where now.present == then.present:
            break
        case (.success(let now), _):
            changes.append(.mains(present: now.present))
        case (.failure(let now), .failure(let then)) where now == then:
            break
        case (.failure(let now), _):
            changes.append(.unreadable(reason: now.description))
        }
        switch (battery, previous?.battery) {
        case (nil, _):
            break
        case (.success(let now), .success(let then)?) where now.percent == then.percent && now.status == then.status:
            break
        case (.success(let now), _):
            changes.append(.battery(percent: now.percent, status: now.status))
        case (.failure(let now), .failure(let then)?) where now == then:
            break
        case (.failure(let now), _):
            changes.append(.unreadable(reason: now.description))
        }
        return changes
    }
}
