/// What a person at the `--console` types, parsed (pure): `engage N`, `close N`, `call N`, `hangup N`, `list`.
public enum ConsoleCommand: Hashable, Sendable {
    case engage(Int64)
    case close(Int64)
    /// Call the home of case N again (a dropped call), or for the first time.
    case call(Int64)
    case hangUp(Int64)
    case list

    /// The command on `line`, or a hint saying what to type.
    public static func parse(_ line: String) -> Result<ConsoleCommand, ConsoleCommandError> {
        let words = line.split(whereSeparator: \.isWhitespace).map { $0.lowercased() }
        switch words.first {
        case "list"?, "ls"?:
            return .success(.list)
        case "engage"?, "close"?, "call"?, "hangup"?:
            guard words.count == 2, let id = Int64(words[1]) else {
                return .failure(ConsoleCommandError("type '\(words[0]) N' with N the case number, e.g. '\(words[0]) 1'"))
            }
            switch words[0] {
            case "engage": return .success(.engage(id))
            case "close": return .success(.close(id))
            case "call": return .success(.call(id))
            default: return .success(.hangUp(id))
            }
        default:
            return .failure(ConsoleCommandError("commands: 'engage N', 'close N', 'call N', 'hangup N', 'list'"))
        }
    }
}

public struct ConsoleCommandError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension CenterEvent {
    /// The line a person at the console sees for this event, or `nil` for events that are not theirs.
    /// - Parameter wall: the time to show, milliseconds since the Unix epoch.
    public func consoleLine(wall: WireTime) -> String? {
        let time = Self.clock(wall)
        switch self {
        case .listening(let ports):
            return "\(time)  centre listening on TCP \(ports.tcp), UDP \(ports.udp)"
                + (ports.metrics.map { ", metrics on \($0)" } ?? "")
        case .alarm(let device, let alarm, let late, let dispatched):
            let battery = alarm.battery == 255 ? "unknown" : "\(alarm.battery) %"
            let lateness = alarm.flags.contains(.clockSynchronised)
                ? "\(Double(max(late, 0)) / 1000) s late" : "device clock unverified"
            return "\(time)  ALARM device \(device) alarm \(alarm.id) \(alarm.kind) battery \(battery), \(lateness)"
                + (dispatched ? "" : " (not dispatched)")
        case .caseUpdate(let id, let device, let alarmID, let state):
            return "\(time)  case \(id) device \(device) alarm \(alarmID): \(state)"
        case .alarmCancelled(let device, let alarmID):
            return "\(time)  device \(device) withdrew alarm \(alarmID)"
        case .offline(let device):
            return "\(time)  device \(device) OFFLINE"
        case .online(let device):
            return "\(time)  device \(device) online"
        case .callOffered(let device, let callID, let alarmID):
            return "\(time)  calling device \(device) (call \(callID)\(alarmID == 0 ? "" : ", alarm \(alarmID)"))"
        case .callStarted(let device, let callID):
            return "\(time)  call \(callID) with device \(device): connected, SRTP voice both ways"
        case .mediaSilent(let device, let callID, let seconds):
            return "\(time)  call \(callID) with device \(device): NO MEDIA for \(Int(seconds)) s; the case stays open, type 'call N' to call again"
        case .callEnded(let device, let callID, let reason, let endedBy, let statistics):
            return "\(time)  call \(callID) with device \(device) ended by the \(endedBy) (\(reason))"
                + (statistics.map { "\n          \($0.summary)" } ?? "")
        case .alarmFlagged(let device, let alarmID, let flags):
            return "\(time)  ATTENTION device \(device) alarm \(alarmID): \(flags.joined(separator: "; "))"
        case .idConflict(let device, let id, let kind):
            return "\(time)  device \(device) reused id \(id) for another \(kind): refused (its ids restarted? check its state directory)"
        case .keyEpochChanged(let device, let epoch):
            return "\(time)  device \(device) moved to key epoch \(epoch) (re-provisioned); its old key is retired"
        case .eventsDropped(let count):
            return "\(time)  WARNING: \(count) events dropped: the console could not keep up (cases are in the journal; type 'list')"
        case .sessionOpened, .duplicateAlarm, .recorded, .caseUpdateDelivered, .refused, .connectionClosed:
            return nil
        }
    }

    /// HH:MM:SS UTC.
    static func clock(_ wall: WireTime) -> String {
        let seconds = wall / 1000 % 86_400
        func two(_ n: UInt64) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(two(seconds / 3600)):\(two(seconds / 60 % 60)):\(two(seconds % 60))"
    }
}
