/// What an event frame from a DC-09 transmitter means in our terms: `DC09EventCodes` read backwards, so a
/// receiver takes exactly the codes our devices send (the one table) and answers `DUH` to every other.
///
/// The code picks the event; the zone tells apart the alarms that share a code (SIA-DCS `QA` zone 2 is a
/// pendant, any other zone the call button; `MA` zone 4 is inactivity, any other a fall). Pure.
public enum DC09ReceivedEvent: Hashable, Sendable {
    case alarm(AlarmKind)
    /// Cancelled by the person (SIA-DCS `OC`, Contact ID 1 406): the device's open alarm, if any.
    case cancel
    case event(DeviceEventKind)

    /// The event of `frame` (SIA-DCS or Contact ID), or `nil` for a code the table does not have.
    public init?(_ frame: DC09Frame) {
        guard let code = DC09Receiving.code(of: frame) else { return nil }
        let zone = Self.zone(of: frame)
        guard let event = Self.event(frame.id, code: code, zone: zone) else { return nil }
        self = event
    }

    /// Whether a receiver takes `code` in a frame of type `id` (`DC09Receiving.takes`).
    public static func takes(_ id: DC09Frame.ID, _ code: String) -> Bool {
        event(id, code: code, zone: nil) != nil
    }

    /// Every row of the table as (event, code): alarms first, in `DC09EventCodes.table`'s order, so that the
    /// first row of a code is its reading for a zone no row names.
    private static let rows: [(DC09ReceivedEvent, DC09EventCode)] =
        [AlarmKind.button, .pendant, .fall, .inactivity, .test].map { (.alarm($0), DC09EventCodes.alarm($0)) }
        + [(.cancel, DC09EventCodes.cancel(.button))]
        + [DeviceEventKind.mainsLost, .mainsRestored, .lowBattery, .batteryOK, .buttonMissing, .buttonRestored, .tamper, .restart]
        .compactMap { kind in DC09EventCodes.event(kind).map { (.event(kind), $0) } }

    static func event(_ id: DC09Frame.ID, code: String, zone: Int?) -> DC09ReceivedEvent? {
        let matching = rows.filter { _, row in
            switch id {
            case .siaDCS: row.sia == code
            case .contactID: "\(row.qualifier)\(row.contactID)" == code
            default: false
            }
        }
        // A cancel names its alarm's zone; its one row takes any zone.
        return (matching.first { $0.1.zone == zone } ?? matching.first)?.0
    }

    /// The zone of an event: SIA-DCS's digits after the code, Contact ID's last group.
    static func zone(of frame: DC09Frame) -> Int? {
        guard let bar = frame.data.firstIndex(of: "|") else { return nil }
        let rest = frame.data[frame.data.index(after: bar)...]
        switch frame.id {
        case .contactID:
            // `1101 01 001`: qualifier and event, partition, zone.
            let groups = rest.split(separator: " ")
            guard groups.count >= 3 else { return nil }
            return Int(groups[2].prefix(3))
        case .siaDCS:
            guard let code = DC09Receiving.code(of: frame), let at = rest.range(of: code) else { return nil }
            let digits = rest[at.upperBound...].prefix { $0.isASCII && $0.isNumber }
            return digits.isEmpty ? nil : Int(digits.prefix(4))
        default:
            return nil
        }
    }

    /// The message of our protocol this event is, under message id `id`; `cancelling` is the alarm a cancel
    /// withdraws (the device's open alarm, or 0 when none is open), `at` when it happened.
    public func message(id: UInt32, at: WireTime, cancelling alarmID: UInt32) -> Message {
        switch self {
        case .alarm(let kind):
            // Battery unknown (255): DC-09 carries none. The time is the transmitter's own clock.
            .alarm(Alarm(id: id, kind: kind, triggeredAt: at, battery: 255, flags: []))
        case .cancel:
            .alarmCancel(AlarmCancel(id: id, alarmID: alarmID, cancelledAt: at))
        case .event(let kind):
            .event(DeviceEvent(id: id, kind: kind, at: at, value: 0))
        }
    }

    /// What makes a frame the message it is across its retransmissions: its type, sequence, line, account and
    /// data, never its timestamp (a sender may stamp a retransmission anew, e.g. after a `NAK` corrected its
    /// clock) nor its extended data. The journal holds one message per identity within its retransmission
    /// window (docs/dc09.md, "The same event twice").
    public static func identity(of frame: DC09Frame) -> String {
        "\(frame.id.rawValue) \(frame.sequence) L\(frame.line ?? "") #\(frame.account ?? "") [\(frame.data)]"
    }
}
