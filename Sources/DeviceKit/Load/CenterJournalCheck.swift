/// One alarm of the fleet: the device that raised it and its message id.
public struct FleetAlarmID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var device: UInt32
    public var alarm: UInt32

    public init(device: UInt32, alarm: UInt32) {
        self.device = device
        self.alarm = alarm
    }

    public static func < (a: Self, b: Self) -> Bool { (a.device, a.alarm) < (b.device, b.alarm) }

    public var description: String { "device \(device) alarm \(alarm)" }
}

/// The centre's own view of loss, after a run against a centre the tool started: every alarm the devices saw
/// acknowledged must be in the centre's journal exactly once, crashes or not. An ack sent before the alarm
/// was durable would show here as a missing alarm, which the devices' counts alone could never reveal.
public struct CenterJournalCheck: Codable, Hashable, Sendable {
    /// Alarms in the journal (from every run that used it, with `--center-journal`).
    public var recorded: Int
    /// Alarms the devices saw acknowledged.
    public var acknowledged: Int
    /// Acknowledged alarms absent from the journal: how many, and the first few.
    public var missingCount: Int
    public var missing: [String]
    /// Acknowledged alarms recorded more than once.
    public var duplicated: Int

    /// How many missing alarms are named.
    static let namedAtMost = 20

    public init(acknowledged: [FleetAlarmID], recorded: [FleetAlarmID]) {
        var times: [FleetAlarmID: Int] = [:]
        for alarm in recorded { times[alarm, default: 0] += 1 }
        let absent = acknowledged.filter { times[$0] == nil }.sorted()
        self.recorded = recorded.count
        self.acknowledged = acknowledged.count
        missingCount = absent.count
        missing = absent.prefix(Self.namedAtMost).map(\.description)
        duplicated = acknowledged.count { (times[$0] ?? 0) > 1 }
    }

    /// Reads the journal at `location` without writing to it.
    public init(journal location: JournalLocation, acknowledged: [FleetAlarmID]) throws {
        let recorded = try CenterJournal.recordedAlarms(readOnly: location).map { FleetAlarmID(device: $0.device, alarm: $0.alarmID) }
        self.init(acknowledged: acknowledged, recorded: recorded)
    }

    public var passed: Bool { missingCount == 0 && duplicated == 0 }

    /// Shards' checks, each against its own centre.
    static func + (a: Self, b: Self) -> Self {
        var sum = a
        sum.recorded += b.recorded
        sum.acknowledged += b.acknowledged
        sum.missingCount += b.missingCount
        sum.missing = Array((a.missing + b.missing).prefix(namedAtMost))
        sum.duplicated += b.duplicated
        return sum
    }

    /// "centre journal: N alarms recorded, all acknowledged alarms present", or what is wrong.
    public var line: String { "centre journal: " + summary }

    /// The line without its name.
    public var summary: String {
        var line = "\(recorded) alarms recorded, "
        if passed { return line + "all \(acknowledged) acknowledged alarms present" }
        if missingCount > 0 {
            line += "\(missingCount) of \(acknowledged) acknowledged alarms MISSING ("
                + missing.joined(separator: ", ") + (missingCount > missing.count ? ", …)" : ")")
        }
        if duplicated > 0 { line += (missingCount > 0 ? "; " : "") + "\(duplicated) acknowledged alarms recorded MORE THAN ONCE" }
        return line
    }
}
