/// What our events are called in DC-09's two payloads: SIA-DCS codes (SIA DC-03, two letters) and Ademco
/// Contact ID (SIA DC-05: qualifier, three-digit event, partition, zone or user). The one table; docs/dc09.md
/// shows it and a test holds the two the same.
public struct DC09EventCode: Hashable, Sendable {
    /// The SIA-DCS event code, e.g. `QA`.
    public var sia: String
    /// Contact ID: 1 new event or opening, 3 restore or closing.
    public var qualifier: Int
    /// Contact ID event, e.g. 101.
    public var contactID: Int
    /// The zone (SIA-DCS after the code, Contact ID's last three digits): which input it came from.
    public var zone: Int
    /// In words, for logs and the table.
    public var meaning: String

    /// The content of the first brackets for account `account`, partition (area) `area`:
    /// `#1234|Nri1/QA001` (SIA-DCS) or `#1234|1101 01 001` (Contact ID). A SIA-DCS `user` (the gateway's
    /// device under a shared account) goes in its `id` modifier: `#1234|Nid305419896/ri1/QA001`.
    public func data(_ id: DC09Frame.ID, account: String, area: Int = 1, user: UInt32? = nil) -> String {
        switch id {
        case .contactID: "#\(account)|\(qualifier)\(digits(contactID, 3)) \(digits(area, 2)) \(digits(zone, 3))"
        default: "#\(account)|N\(user.map { "id\($0)/" } ?? "")ri\(area)/\(sia)\(digits(zone, 3))"
        }
    }

    private func digits(_ n: Int, _ count: Int) -> String {
        let text = String(n)
        return String(repeating: "0", count: max(0, count - text.count)) + text
    }
}

public enum DC09EventCodes {
    /// An alarm of `kind`. Zones: 1 the device's button, 2 a pendant, 3 a fall detector, 4 inactivity.
    public static func alarm(_ kind: AlarmKind) -> DC09EventCode {
        switch kind {
        case .pendant: .init(sia: "QA", qualifier: 1, contactID: 101, zone: 2, meaning: "personal emergency: pendant")
        case .fall: .init(sia: "MA", qualifier: 1, contactID: 100, zone: 3, meaning: "medical alarm: fall detected")
        case .inactivity: .init(sia: "MA", qualifier: 1, contactID: 102, zone: 4, meaning: "inactivity: fail to report in")
        case .test: .init(sia: "RP", qualifier: 1, contactID: 602, zone: 0, meaning: "test alarm (periodic test report)")
        default: .init(sia: "QA", qualifier: 1, contactID: 101, zone: 1, meaning: "personal emergency: the call button")
        }
    }

    /// The person cancelled an alarm of `kind` (its zone says which).
    public static func cancel(_ kind: AlarmKind) -> DC09EventCode {
        .init(sia: "OC", qualifier: 1, contactID: 406, zone: alarm(kind).zone, meaning: "cancelled by the person")
    }

    /// A device event; nil for one DC-09 does not carry (`pressDuringAlarm`: the open alarm is already
    /// reported; the receiving centre hears the person over voice).
    public static func event(_ kind: DeviceEventKind) -> DC09EventCode? {
        switch kind {
        case .mainsLost: .init(sia: "AT", qualifier: 1, contactID: 301, zone: 0, meaning: "mains lost")
        case .mainsRestored: .init(sia: "AR", qualifier: 3, contactID: 301, zone: 0, meaning: "mains restored")
        case .lowBattery: .init(sia: "YT", qualifier: 1, contactID: 302, zone: 0, meaning: "low battery")
        case .batteryOK: .init(sia: "YR", qualifier: 3, contactID: 302, zone: 0, meaning: "battery OK")
        case .buttonMissing: .init(sia: "EM", qualifier: 1, contactID: 333, zone: 1, meaning: "call button missing")
        case .buttonRestored: .init(sia: "EN", qualifier: 3, contactID: 333, zone: 1, meaning: "call button restored")
        case .tamper: .init(sia: "TA", qualifier: 1, contactID: 137, zone: 0, meaning: "tamper")
        case .restart: .init(sia: "RR", qualifier: 1, contactID: 305, zone: 0, meaning: "restart (system reset)")
        default: nil
        }
    }

    /// Every row of the table, in the order docs/dc09.md lists them.
    public static var table: [DC09EventCode] {
        [AlarmKind.button, .pendant, .fall, .inactivity, .test].map(alarm) + [cancel(.button)]
            + [DeviceEventKind.mainsLost, .mainsRestored, .lowBattery, .batteryOK, .buttonMissing, .buttonRestored, .tamper, .restart]
            .compactMap(event)
    }
}
