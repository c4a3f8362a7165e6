import DeviceKit

/// What the console's JSON carries (docs/console.md, "Objects"). Encoded with sorted keys; `nil` is `null`.

/// A case as the queue and the case panel show it.
struct CaseRow: Equatable, Sendable, Encodable {
    var id: Int64
    var device: UInt32
    var alarm: UInt32
    var kind = "button"
    var state: String
    var pressedAt: WireTime?
    var receivedAt: WireTime
    var lateMs: Int64?
    var clockVerified = false
    var battery: Int?
    var onBattery = false
    var online = false
    var takenBy: String?
    var call = "none"
    var resident: ResidentSummary?
    var model: String?
    var flags: [String] = []
    /// Whether the centre was asked for the device's model (not encoded).
    var described = false

    init(id: Int64, device: UInt32, alarm: UInt32, state: String, receivedAt: WireTime) {
        self.id = id
        self.device = device
        self.alarm = alarm
        self.state = state
        self.receivedAt = receivedAt
    }

    mutating func fill(from alarm: Alarm, late: Int64?) {
        kind = alarm.kind.description
        pressedAt = alarm.triggeredAt
        clockVerified = alarm.flags.contains(.clockSynchronised)
        lateMs = clockVerified ? late.map { max($0, 0) } : nil
        battery = alarm.battery == 255 ? nil : Int(alarm.battery)
        onBattery = alarm.flags.contains(.onBattery)
    }

    private enum CodingKeys: String, CodingKey {
        case id, device, alarm, kind, state, pressedAt, receivedAt, lateMs, clockVerified, battery, onBattery, online
        case takenBy, call, resident, model, flags
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(device, forKey: .device)
        try container.encode(alarm, forKey: .alarm)
        try container.encode(kind, forKey: .kind)
        try container.encode(state, forKey: .state)
        try container.encode(pressedAt, forKey: .pressedAt)
        try container.encode(receivedAt, forKey: .receivedAt)
        try container.encode(lateMs, forKey: .lateMs)
        try container.encode(clockVerified, forKey: .clockVerified)
        try container.encode(battery, forKey: .battery)
        try container.encode(onBattery, forKey: .onBattery)
        try container.encode(online, forKey: .online)
        try container.encode(takenBy, forKey: .takenBy)
        try container.encode(call, forKey: .call)
        try container.encode(resident, forKey: .resident)
        try container.encode(model, forKey: .model)
        try container.encode(flags, forKey: .flags)
    }
}

/// The resident of a home, as a queue row shows them.
struct ResidentSummary: Equatable, Sendable, Codable {
    var name: String
    var address: String
}

struct StateCounts: Equatable, Sendable, Encodable {
    var received = 0
    var operatorEngaged = 0
    var helpDispatched = 0
}

struct DeviceCounts: Equatable, Sendable, Encodable {
    var online: Int
    var offline: Int
}

/// The stream's first message, and what a console that fell behind gets.
struct ConsoleSnapshot: Sendable, Encodable {
    var seq: Int
    var cases: [CaseRow]
    var more: Int
    var counts: StateCounts
    var devices: DeviceCounts
}

/// What changed in the view.
struct ConsoleBatch: Sendable, Encodable {
    var seq: Int
    var upsert: [CaseRow]
    var remove: [Int64]
    var more: Int
    var counts: StateCounts
    var devices: DeviceCounts
}

/// A device as the devices tab and the case panel show it.
struct DeviceRow: Sendable, Encodable {
    var device: UInt32
    var online: Bool
    var lastHeard: WireTime?
    var battery: Int?
    var batteryLow: Bool?
    var mains: Bool?
    var button: Bool?
    var tamper: Bool?
    var firmware: String?
    var model: String?
    var resident: ResidentSummary?
    var attention: [String]

    /// From what the centre knows now, what the journal last recorded of its supervision, and the registry.
    init(snapshot: DeviceSnapshot?, device: UInt32, lastRecorded: WireTime?, resident: ResidentSummary?) {
        self.device = device
        online = snapshot?.online ?? false
        let report = snapshot?.report
        lastHeard = report.map(\.lastHeard).flatMap { $0 == 0 ? nil : $0 } ?? lastRecorded
        let battery = report?.battery.map(Int.init)
        self.battery = battery
        let status = report?.status
        batteryLow = status.map { $0.contains(.batteryLow) || (battery.map { $0 < 20 } ?? false) }
        mains = status.map { $0.contains(.mainsPresent) }
        button = status.map { $0.contains(.buttonPresent) }
        tamper = status.map { $0.contains(.tamper) }
        firmware = report?.firmware?.description
        model = report?.model
        self.resident = resident
        var attention: [String] = []
        if lastHeard == nil && snapshot == nil {
            attention.append("neverHeard")
        } else if !online {
            attention.append("offline")
        }
        if batteryLow == true { attention.append("batteryLow") }
        if mains == false { attention.append("mainsLost") }
        if button == false { attention.append("buttonMissing") }
        if tamper == true { attention.append("tamper") }
        self.attention = attention
    }

    private enum CodingKeys: String, CodingKey {
        case device, online, lastHeard, battery, batteryLow, mains, button, tamper, firmware, model, resident, attention
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(device, forKey: .device)
        try container.encode(online, forKey: .online)
        try container.encode(lastHeard, forKey: .lastHeard)
        try container.encode(battery, forKey: .battery)
        try container.encode(batteryLow, forKey: .batteryLow)
        try container.encode(mains, forKey: .mains)
        try container.encode(button, forKey: .button)
        try container.encode(tamper, forKey: .tamper)
        try container.encode(firmware, forKey: .firmware)
        try container.encode(model, forKey: .model)
        try container.encode(resident, forKey: .resident)
        try container.encode(attention, forKey: .attention)
    }
}
