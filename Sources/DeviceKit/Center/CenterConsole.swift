import Foundation

/// What a person at the `--console` types, parsed (pure): `list`, `engage N`, `close N`, `call N`,
/// `hangup N`, `help`, `quit`.
public enum ConsoleCommand: Hashable, Sendable {
    case engage(Int64)
    case close(Int64)
    /// Call the home of case N again (a dropped call), or for the first time.
    case call(Int64)
    case hangUp(Int64)
    case list
    case help
    /// Stop the centre, as SIGTERM would.
    case quit

    /// What `help` prints: every command and what it does.
    public static let helpText = """
        commands:
          list       open cases: age, state, whether the device is online, its call
          engage N   an operator takes case N
          close N    close case N
          call N     call the home of case N (again, after a call dropped)
          hangup N   end the call of case N
          help       this list
          quit       stop the centre (as Ctrl-C or SIGTERM)
        """

    /// The command on `line`, or what is wrong with it and what to type.
    public static func parse(_ line: String) -> Result<ConsoleCommand, ConsoleCommandError> {
        let words = line.split(whereSeparator: \.isWhitespace).map { $0.lowercased() }
        guard let word = words.first else { return .failure(ConsoleCommandError("type a command, or 'help' for the list")) }
        switch word {
        case "list", "ls":
            return .success(.list)
        case "help", "?":
            return .success(.help)
        case "quit", "exit":
            return .success(.quit)
        case "engage", "close", "call", "hangup":
            guard words.count == 2, let id = Int64(words[1]) else {
                return .failure(ConsoleCommandError("type '\(word) N' with N the case number, e.g. '\(word) 1'"))
            }
            switch word {
            case "engage": return .success(.engage(id))
            case "close": return .success(.close(id))
            case "call": return .success(.call(id))
            default: return .success(.hangUp(id))
            }
        default:
            return .failure(ConsoleCommandError("unknown command '\(word)': type 'help' for the commands"))
        }
    }
}

public struct ConsoleCommandError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// A device as the operators see it: online (supervision) and what it last said, if this process heard it
/// since it started.
public struct DeviceSnapshot: Hashable, Sendable {
    public var device: UInt32
    public var online: Bool
    public var report: DeviceReport?

    public init(device: UInt32, online: Bool, report: DeviceReport?) {
        self.device = device
        self.online = online
        self.report = report
    }
}

/// An open case as the operator's list shows it: the case, whether its device is online now, and its call.
public struct CaseOverview: Hashable, Sendable {
    public enum Call: String, Hashable, Sendable {
        /// No call (none asked for, or it ended).
        case none
        /// Engaged, waiting for its turn to be called (`--engage-call-rate`).
        case waiting
        /// Media ports being bound.
        case placing
        /// Offered to the device, not yet answered.
        case offered
        /// Answered: media both ways.
        case connected
    }

    public var `case`: CasePolicy.Case
    public var deviceOnline: Bool
    public var call: Call

    public init(case: CasePolicy.Case, deviceOnline: Bool, call: Call) {
        self.case = `case`
        self.deviceOnline = deviceOnline
        self.call = call
    }

    /// The console's `list`: one row per case, with its age at `now` (milliseconds since the Unix epoch).
    public static func table(_ cases: [CaseOverview], now: WireTime) -> String {
        guard !cases.isEmpty else { return "no open cases" }
        let header = ["case", "device", "alarm", "age", "state", "device is", "call"]
        let rows = cases.map { overview -> [String] in
            let open = overview.case
            return [
                "\(open.id)", "\(open.device)", "\(open.alarmID)",
                open.openedAt == 0 ? "?" : age(now >= open.openedAt ? now - open.openedAt : 0),
                "\(open.state)", overview.deviceOnline ? "online" : "OFFLINE", overview.call.rawValue,
            ]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            zip(cells, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }

    /// `42 s`, `3 min 5 s`, `2 h 10 min`, `3 d 4 h`.
    static func age(_ milliseconds: UInt64) -> String {
        let seconds = milliseconds / 1000
        switch seconds {
        case ..<60: return "\(seconds) s"
        case ..<3600: return "\(seconds / 60) min \(seconds % 60) s"
        case ..<86_400: return "\(seconds / 3600) h \(seconds / 60 % 60) min"
        default: return "\(seconds / 86_400) d \(seconds / 3600 % 24) h"
        }
    }
}

extension CenterEvent {
    /// The line a person at the console sees for this event, or `nil` for events that are not theirs.
    /// - Parameter wall: the time to show, milliseconds since the Unix epoch.
    public func consoleLine(wall: WireTime) -> String? {
        let time = Self.clock(wall)
        switch self {
        case .listening(let ports):
            return "\(time)  listening for devices on TCP \(ports.tcp), UDP \(ports.udp)" + (ports.dc09.map { ", DC-09 on TCP and UDP \($0)" } ?? "")
                + (ports.sip.map { ", SIP (operator phones) on UDP and TCP \($0)" } ?? "")
                + (ports.metrics.map { ", metrics on \($0)" } ?? "")
                + (ports.web.map { ", operators' web console on HTTP \($0)" } ?? "")
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
            return "\(time)  call \(callID) with device \(device) ended by the \(endedBy.words) (\(reason))"
                + (statistics.map { "\n          \($0.summary)" } ?? "")
        case .operatorCall(let device, let phone, let stage):
            let leg = "\(time)  operator phone \(phone) for device \(device)"
            switch stage {
            case .ringing: return "\(leg): ringing"
            case .answered(let setup): return "\(leg): answered in \(Int(setup.rounded())) ms; calling the home"
            case .bridged: return "\(leg): CONNECTED to the home, voice both ways"
            case .notAnswered(let why): return "\(leg): not answered (\(why)); trying the next phone"
            case .waiting(let why): return "\(time)  device \(device): NO OPERATOR PHONE (\(why)); the case waits and the phones are tried again"
            case .ended(let why, let statistics): return "\(leg): ended (\(why))" + (statistics.map { "\n          \($0.summary)" } ?? "")
            }
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
