import Foundation

/// What a load run counted. Shards' counts add up.
public struct LoadCounts: Codable, Hashable, Sendable {
    public var sessionsOpened = 0
    /// Attempts to open a session that failed before it opened: connections refused, timed out or reset,
    /// session starts the centre never answered or closed on. `failureReasons` says why, in the firmware's
    /// words (`LinkCause`), and adds up to this.
    public var sessionFailures = 0
    public var failureReasons: [String: Int] = [:]
    /// Established sessions that ended (closed by the centre, silent link) and were opened again.
    public var reconnects = 0
    /// Alarms the scenario raised (its Poisson arrivals, from whose instants latency is measured), those that
    /// went on the wire at least once, and those the centre acknowledged.
    public var alarmsRaised = 0
    public var alarmsSent = 0
    public var alarmsAcknowledged = 0
    /// Alarms raised but never acknowledged by the end of the drain period: raised − acknowledged.
    public var alarmsLost = 0
    /// Poisson arrivals that found every started home of their event loop with an alarm still open (the
    /// firmware holds one alarm per home; each loop draws its share of the arrivals for its share of the homes,
    /// so one loop's homes may all be busy while another's are not): not raised, so not in `alarmsRaised`.
    /// Non-zero means the rate outruns the devices.
    public var alarmsWithoutFreeDevice = 0
    public var alarmRetransmissions = 0
    /// Acks for a message already acknowledged (the centre answered a retransmission and the original).
    public var duplicateAcks = 0
    /// `nak`s received, and how many for each reason (`busy`, `rateLimited`, …).
    public var rejected = 0
    public var rejectionReasons: [String: Int] = [:]
    public var cancelsSent = 0
    public var cancelsAcknowledged = 0
    public var heartbeatsSent = 0
    public var heartbeatAcks = 0
    public var caseUpdatesReceived = 0
    /// Down frames the devices refused (forged, stale, replayed, wrong session).
    public var refusedFrames = 0
    /// Device events (`event(mainsLost)`, …) sent and acknowledged.
    public var eventsSent = 0
    public var eventsAcknowledged = 0
    /// Links the tool cut on purpose (`--drop-links`), and datagrams it threw away (`--udp-loss`), both ways.
    public var linksDropped = 0
    public var datagramsDropped = 0
    /// Datagrams the tool could not send: its sockets' send queues full, or refused by the kernel.
    public var datagramsUnsent = 0
    /// Cases an operator engaged (a `caseUpdate` received for an acknowledged alarm).
    public var casesEngaged = 0
    /// Calls the centre offered, and what became of them: declined (alarms not chosen by `--call-share`),
    /// answered, then hung up by the device after `--call-duration`, ended by the centre first, or failed
    /// (no media, silence).
    public var callsOffered = 0
    public var callsDeclined = 0
    public var callsAnswered = 0
    public var callsCompleted = 0
    public var callsEndedByCentre = 0
    public var callsFailed = 0
    /// Answered calls that ended with no voice from the centre heard at the home (however they ended).
    public var callsSilent = 0
    /// Voice packets of answered calls: sent by the devices, received from the centre, and lost on the way
    /// here (RFC 3550 cumulative lost).
    public var voicePacketsSent = 0
    public var voicePacketsReceived = 0
    public var voicePacketsLost = 0
    /// SIP calls the devices placed (`--sip-call`; retries included), answered, and failed (never answered),
    /// the failures by how they ended (`486 Busy Here`, `timed out`, …), adding up to `sipCallsFailed`.
    public var sipCallsPlaced = 0
    public var sipCallsAnswered = 0
    public var sipCallsFailed = 0
    public var sipFailures: [String: Int] = [:]
    /// Answered SIP calls that ended, and of those, calls in which no voice came back.
    public var sipCallsEnded = 0
    public var sipCallsSilent = 0
    /// The most SIP calls held at once (answered, not yet ended) in one process; merged reports add the
    /// processes' peaks, an upper bound of the fleet's, reached only if the peaks came together.
    public var sipCallsHeldMost = 0
    /// Voice of the answered SIP calls: packets sent by the devices, received from the far end, and lost on
    /// the way here (RFC 3550 cumulative lost).
    public var sipVoicePacketsSent = 0
    public var sipVoicePacketsReceived = 0
    public var sipVoicePacketsLost = 0
    /// Each ended SIP call's voice loss, counted in bands (`LoadCounts.lossBand`): a distribution over calls
    /// that adds up exactly across shards.
    public var sipCallsByLoss: [String: Int] = [:]

    public init() {}

    /// The bands of `sipCallsByLoss`, in order.
    public static let lossBands = ["0 %", "< 0.1 %", "< 1 %", "< 5 %", "≥ 5 %"]

    /// The band of a call that lost `ratio` of its packets.
    public static func lossBand(_ ratio: Double) -> String {
        switch ratio {
        case ...0: lossBands[0]
        case ..<0.001: lossBands[1]
        case ..<0.01: lossBands[2]
        case ..<0.05: lossBands[3]
        default: lossBands[4]
        }
    }

    public static func + (a: LoadCounts, b: LoadCounts) -> LoadCounts {
        var sum = LoadCounts()
        sum.sessionsOpened = a.sessionsOpened + b.sessionsOpened
        sum.sessionFailures = a.sessionFailures + b.sessionFailures
        sum.failureReasons = a.failureReasons.merging(b.failureReasons, uniquingKeysWith: +)
        sum.reconnects = a.reconnects + b.reconnects
        sum.alarmsRaised = a.alarmsRaised + b.alarmsRaised
        sum.alarmsSent = a.alarmsSent + b.alarmsSent
        sum.alarmsAcknowledged = a.alarmsAcknowledged + b.alarmsAcknowledged
        sum.alarmsLost = a.alarmsLost + b.alarmsLost
        sum.alarmsWithoutFreeDevice = a.alarmsWithoutFreeDevice + b.alarmsWithoutFreeDevice
        sum.alarmRetransmissions = a.alarmRetransmissions + b.alarmRetransmissions
        sum.duplicateAcks = a.duplicateAcks + b.duplicateAcks
        sum.rejected = a.rejected + b.rejected
        sum.rejectionReasons = a.rejectionReasons.merging(b.rejectionReasons, uniquingKeysWith: +)
        sum.cancelsSent = a.cancelsSent + b.cancelsSent
        sum.cancelsAcknowledged = a.cancelsAcknowledged + b.cancelsAcknowledged
        sum.heartbeatsSent = a.heartbeatsSent + b.heartbeatsSent
        sum.heartbeatAcks = a.heartbeatAcks + b.heartbeatAcks
        sum.caseUpdatesReceived = a.caseUpdatesReceived + b.caseUpdatesReceived
        sum.refusedFrames = a.refusedFrames + b.refusedFrames
        sum.eventsSent = a.eventsSent + b.eventsSent
        sum.eventsAcknowledged = a.eventsAcknowledged + b.eventsAcknowledged
        sum.linksDropped = a.linksDropped + b.linksDropped
        sum.datagramsDropped = a.datagramsDropped + b.datagramsDropped
        sum.datagramsUnsent = a.datagramsUnsent + b.datagramsUnsent
        sum.casesEngaged = a.casesEngaged + b.casesEngaged
        sum.callsOffered = a.callsOffered + b.callsOffered
        sum.callsDeclined = a.callsDeclined + b.callsDeclined
        sum.callsAnswered = a.callsAnswered + b.callsAnswered
        sum.callsCompleted = a.callsCompleted + b.callsCompleted
        sum.callsEndedByCentre = a.callsEndedByCentre + b.callsEndedByCentre
        sum.callsFailed = a.callsFailed + b.callsFailed
        sum.callsSilent = a.callsSilent + b.callsSilent
        sum.voicePacketsSent = a.voicePacketsSent + b.voicePacketsSent
        sum.voicePacketsReceived = a.voicePacketsReceived + b.voicePacketsReceived
        sum.voicePacketsLost = a.voicePacketsLost + b.voicePacketsLost
        sum.sipCallsPlaced = a.sipCallsPlaced + b.sipCallsPlaced
        sum.sipCallsAnswered = a.sipCallsAnswered + b.sipCallsAnswered
        sum.sipCallsFailed = a.sipCallsFailed + b.sipCallsFailed
        sum.sipFailures = a.sipFailures.merging(b.sipFailures, uniquingKeysWith: +)
        sum.sipCallsEnded = a.sipCallsEnded + b.sipCallsEnded
        sum.sipCallsSilent = a.sipCallsSilent + b.sipCallsSilent
        sum.sipCallsHeldMost = a.sipCallsHeldMost + b.sipCallsHeldMost
        sum.sipVoicePacketsSent = a.sipVoicePacketsSent + b.sipVoicePacketsSent
        sum.sipVoicePacketsReceived = a.sipVoicePacketsReceived + b.sipVoicePacketsReceived
        sum.sipVoicePacketsLost = a.sipVoicePacketsLost + b.sipVoicePacketsLost
        sum.sipCallsByLoss = a.sipCallsByLoss.merging(b.sipCallsByLoss, uniquingKeysWith: +)
        return sum
    }
}

/// The latencies a load run measures, each from the intended instant of the action (see `PoissonArrivals`).
public enum LoadMetric: String, Codable, CodingKeyRepresentable, CaseIterable, Sendable {
    /// Alarm raised (its Poisson instant) → the centre's `ack`.
    case alarm
    /// Session meant to start (ramp instant, or reconnect timer) → `sessionAccept`.
    case session
    /// Heartbeat due → `heartbeatAck`.
    case heartbeat
    /// Alarm raised → the `caseUpdate` saying an operator engaged the case.
    case engaged
    /// Alarm raised → the first voice packet of the operator's call (alarms with a call only).
    case voice
    /// Each answered call's interarrival jitter of the centre's voice at its end (RFC 3550 §6.4.1): not a
    /// latency, but a duration that merges and reports the same way.
    case jitter
    /// Each answered call's median one-way delay of the centre's stamped voice (`--stamp-voice`, with an
    /// operator phone that stamps, through the centre's bridge: protocol.md §8).
    case voiceDelay
    /// `--sip-call`: a device's INVITE sent → its 200 OK received, per answered call.
    case sipSetup = "sipsetup"
    /// `--sip-call`: each ended SIP call's interarrival jitter of the far end's voice (as `jitter`).
    case sipJitter = "sipjitter"

    public var label: String {
        switch self {
        case .alarm: "alarm → ack"
        case .session: "session set-up"
        case .heartbeat: "heartbeat round trip"
        case .engaged: "alarm → operator"
        case .voice: "alarm → operator voice"
        case .jitter: "voice jitter per call"
        case .voiceDelay: "operator → home voice delay per call"
        case .sipSetup: "SIP INVITE → 200"
        case .sipJitter: "SIP jitter per call"
        }
    }
}

/// One second of a run (seconds counted from the start of each shard's run, so that shards started together
/// line up), for the rates over time: what happened in it, as counts that add up over shards, and the
/// alarm → ack latencies of the acknowledgements that came in it, a histogram that merges like the run's.
public struct SecondResult: Codable, Equatable, Sendable {
    public var second: Int
    /// Alarms raised in it (by intended instant), alarms that went on the wire for the first time in it, and
    /// acknowledgements received in it, whose latencies are `alarm`.
    public var alarmsRaised = 0
    public var alarmsSent = 0
    public var alarmsAcknowledged = 0
    public var alarm = LatencyHistogram.compact()
    /// Sessions opened, and established sessions lost, in it: the devices online at its end are the
    /// running sum (`LoadReport.online`), which adds up over shards where a level would not.
    public var sessionsOpened = 0
    public var sessionsLost = 0
    /// Failed session attempts, `nak`s received and alarm retransmissions in it.
    public var failedAttempts = 0
    public var rejected = 0
    public var alarmRetransmissions = 0

    public init(second: Int) { self.second = second }

    public mutating func add(_ other: SecondResult) {
        alarmsRaised += other.alarmsRaised
        alarmsSent += other.alarmsSent
        alarmsAcknowledged += other.alarmsAcknowledged
        alarm.add(other.alarm)
        sessionsOpened += other.sessionsOpened
        sessionsLost += other.sessionsLost
        failedAttempts += other.failedAttempts
        rejected += other.rejected
        alarmRetransmissions += other.alarmRetransmissions
    }

    /// Adds two runs' seconds, second by second.
    static func merge(_ a: [SecondResult], _ b: [SecondResult]) -> [SecondResult] {
        var bySecond: [Int: SecondResult] = [:]
        for s in a + b { bySecond[s.second, default: SecondResult(second: s.second)].add(s) }
        return bySecond.keys.sorted().compactMap { bySecond[$0] }
    }
}

/// The result of a load run, or of several shards merged: what `--json` writes and `load merge` reads.
public struct LoadReport: Codable, Equatable, Sendable {
    public static let currentFormat = "devicesim-load/5"
    public var format = LoadReport.currentFormat
    /// `I/N` of every shard that went into this report.
    public var shards: [String]
    /// `tcp`, `udp`; over SIA DC-09 `dc09/tcp`, `dc09/udp` (`--protocol dc09`).
    public var transports: [String]
    public static let dc09Prefix = "dc09/"
    /// Whether the run reported over DC-09, which tells no case's progress and carries no calls.
    public var isDC09: Bool { !transports.isEmpty && transports.allSatisfy { $0.hasPrefix(Self.dc09Prefix) } }
    public var devices: Int
    /// Time to open the sessions (ramp), then the steady phase in which alarms are raised.
    public var rampSeconds: Double
    public var steadySeconds: Double
    public var alarmRate: Double
    public var counts: LoadCounts
    public var latency: [LoadMetric: LatencyHistogram]
    /// Resident memory of the processes before the devices started and while they all held sessions
    /// (summed over shards); absent where /proc is not.
    public var residentBytesBefore: Int?
    public var residentBytesHolding: Int?
    /// When every device first had a session (seconds from the start; the slowest shard's after a merge).
    public var allOnlineSeconds: Double?
    /// CPU seconds the processes spent in the steady phase once all were online, and the heartbeats answered then.
    public var steadyCPUSeconds: Double?
    public var steadyHeartbeats: Int?
    /// Second by second: alarms raised, sent and acknowledged, alarm → ack latencies, sessions, failures.
    public var seconds: [SecondResult] = []
    /// The scenario file's name, if the run followed one, and the steady part's phases (the scenario's, or
    /// one called "steady"): names, starts and lengths.
    public var scenario: String?
    public var phases: [PhaseSummary] = []
    /// The heartbeat interval in force (`--heartbeat-interval`, else the centre's), once a session opened.
    public var heartbeatSeconds: Int?
    /// When, where, with what and how the run was made; absent in a report of the library alone.
    public var context: LoadRunContext?
    /// Faults the run injected: link drops a second, share of datagrams lost each way.
    public var linkDropRate: Double = 0
    public var udpLoss: Double = 0
    /// With a centre the tool started (`--spawn-center`): its crashes and restarts, and the check of its
    /// journal against the alarms the devices saw acknowledged. Absent otherwise (and in older reports).
    public var centerRestarts: [CenterRestart]?
    public var centerJournal: CenterJournalCheck?

    public init(
        shards: [String], transports: [String], devices: Int, rampSeconds: Double, steadySeconds: Double,
        alarmRate: Double, counts: LoadCounts, latency: [LoadMetric: LatencyHistogram]
    ) {
        self.shards = shards
        self.transports = transports
        self.devices = devices
        self.rampSeconds = rampSeconds
        self.steadySeconds = steadySeconds
        self.alarmRate = alarmRate
        self.counts = counts
        self.latency = latency
    }

    public func histogram(_ metric: LoadMetric) -> LatencyHistogram { latency[metric] ?? LatencyHistogram() }

    /// Adds counts and histograms (exactly: bucket by bucket) of shards' reports.
    public static func merge(_ reports: [LoadReport]) throws(LoadError) -> LoadReport {
        guard var merged = reports.first else { throw LoadError("give at least one report to merge") }
        for report in reports.dropFirst() {
            merged.shards += report.shards
            for t in report.transports where !merged.transports.contains(t) { merged.transports.append(t) }
            merged.devices += report.devices
            merged.rampSeconds = max(merged.rampSeconds, report.rampSeconds)
            merged.steadySeconds = max(merged.steadySeconds, report.steadySeconds)
            merged.alarmRate += report.alarmRate
            merged.counts = merged.counts + report.counts
            merged.residentBytesBefore = sum(merged.residentBytesBefore, report.residentBytesBefore)
            merged.residentBytesHolding = sum(merged.residentBytesHolding, report.residentBytesHolding)
            merged.steadyCPUSeconds = sum(merged.steadyCPUSeconds, report.steadyCPUSeconds)
            merged.steadyHeartbeats = sum(merged.steadyHeartbeats, report.steadyHeartbeats)
            merged.heartbeatSeconds = [merged.heartbeatSeconds, report.heartbeatSeconds].compactMap { $0 }.max()
            merged.allOnlineSeconds = merged.allOnlineSeconds.flatMap { a in report.allOnlineSeconds.map { max(a, $0) } }
            for (metric, histogram) in report.latency { merged.latency[metric, default: LatencyHistogram()].add(histogram) }
            merged.seconds = SecondResult.merge(merged.seconds, report.seconds)
            merged.linkDropRate += report.linkDropRate
            merged.udpLoss = max(merged.udpLoss, report.udpLoss)
            if let restarts = report.centerRestarts { merged.centerRestarts = ((merged.centerRestarts ?? []) + restarts).sorted { $0.killedAt < $1.killedAt } }
            if let check = report.centerJournal { merged.centerJournal = merged.centerJournal.map { $0 + check } ?? check }
        }
        let shardSet = Set(merged.shards)
        if shardSet.count != merged.shards.count {
            throw LoadError("the same shard appears twice among the reports (\(merged.shards.joined(separator: ", "))): merge each shard's file once")
        }
        return merged
    }

    private static func sum<T: AdditiveArithmetic>(_ a: T?, _ b: T?) -> T? {
        guard let a, let b else { return nil }
        return a + b
    }

    /// Resident memory the devices added, per device.
    public var residentBytesPerDevice: Double? {
        guard let before = residentBytesBefore, let holding = residentBytesHolding, devices > 0 else { return nil }
        return Double(holding - before) / Double(devices)
    }

    /// This side's CPU time per heartbeat round trip in the steady phase (alarms, if any, included).
    public var cpuSecondsPerHeartbeat: Double? {
        guard let cpu = steadyCPUSeconds, let beats = steadyHeartbeats, beats > 0 else { return nil }
        return cpu / Double(beats)
    }

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    public init(json data: Data, name: String) throws(LoadError) {
        struct Format: Decodable { var format: String }
        // The format first, so that an older report is named as such rather than by its first missing field.
        if let format = try? JSONDecoder().decode(Format.self, from: data).format, format != Self.currentFormat {
            throw LoadError("\(name) has format '\(format)'; this devicesim reads '\(Self.currentFormat)': run the load again with this devicesim")
        }
        do {
            self = try JSONDecoder().decode(LoadReport.self, from: Self.renamingCentreKeys(data))
        } catch {
            throw LoadError("\(name) is not a report written by `devicesim load --json`: \(Self.describe(error))")
        }
    }

    /// The report with the keys of its other spelling (`centreRestarts`, `centreJournal`, written before the
    /// names were one) under their names now, and every count a report of this format written before the
    /// count existed lacks (`callsSilent`, `datagramsUnsent`) as zero; other reports unchanged.
    private static func renamingCentreKeys(_ data: Data) -> Data {
        guard var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return data }
        var changed = false
        for (old, new) in [("centreRestarts", "centerRestarts"), ("centreJournal", "centerJournal")] {
            guard let value = object.removeValue(forKey: old), object[new] == nil else { continue }
            object[new] = value
            changed = true
        }
        if var counts = object["counts"] as? [String: Any], let defaults = Self.zeroCounts() {
            for (key, zero) in defaults where counts[key] == nil {
                counts[key] = zero
                changed = true
            }
            object["counts"] = counts
        }
        guard changed, let rewritten = try? JSONSerialization.data(withJSONObject: object) else { return data }
        return rewritten
    }

    /// `LoadCounts()` as JSON: every count at zero.
    private static func zeroCounts() -> [String: Any]? {
        guard let data = try? JSONEncoder().encode(LoadCounts()) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return (path.isEmpty ? "" : "at \(path): ") + context.debugDescription
        case nil: return "\(error)"
        @unknown default: return "\(error)"
        }
    }

    /// The final table, as `devicesim load` prints it.
    public var table: String {
        func ms(_ d: Duration) -> String {
            let v = Double(d.nanoseconds) / 1e6
            return v >= 1000 ? String(format: "%.2f s", v / 1000) : String(format: "%.2f ms", v)
        }
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        var lines: [String] = []
        lines.append(
            "\(devices) devices over \(transports.joined(separator: "+")), shard\(shards.count == 1 ? "" : "s") \(shards.joined(separator: ", ")); "
                + String(format: "ramp %.1f s, steady %.1f s, %.2f alarms/s", rampSeconds, steadySeconds, alarmRate))
        let columns = LatencyHistogram.reportedPercentiles.map(\.0) + ["max"]
        lines.append(pad("", 22) + pad("count", 9) + columns.map { pad($0, 11) }.joined())
        for metric in LoadMetric.allCases {
            let h = histogram(metric)
            var row = metric.label.padding(toLength: 22, withPad: " ", startingAt: 0) + pad("\(h.count)", 9)
            for (_, p) in LatencyHistogram.reportedPercentiles { row += pad(h.count == 0 ? "—" : ms(h.value(atPercentile: p)), 11) }
            row += pad(h.count == 0 ? "—" : ms(h.max), 11)
            lines.append(row)
        }
        for metric in LoadMetric.allCases {
            if let why = emptyReason(metric) { lines.append("empty      \(metric.label): \(why)") }
        }
        let c = counts
        lines.append(
            "alarms     raised \(c.alarmsRaised), sent \(c.alarmsSent), acknowledged \(c.alarmsAcknowledged), lost \(c.alarmsLost), "
                + "retransmitted \(c.alarmRetransmissions), duplicate acks \(c.duplicateAcks), rejected (nak) \(c.rejected)"
                + (c.rejectionReasons.isEmpty ? "" : " (" + Self.byCount(c.rejectionReasons).map { "\($0.count) \($0.reason)" }.joined(separator: ", ") + ")"))
        if c.alarmsWithoutFreeDevice > 0 {
            lines.append("arrivals   \(c.alarmsWithoutFreeDevice) not raised: every home of their event loop had an alarm open (add devices or lower the rate)")
        }
        lines.append("cancels    sent \(c.cancelsSent), acknowledged \(c.cancelsAcknowledged); case updates received \(c.caseUpdatesReceived)")
        if c.eventsSent > 0 { lines.append("events     sent \(c.eventsSent), acknowledged \(c.eventsAcknowledged)") }
        if c.callsOffered > 0 {
            let lossPercent = c.voicePacketsReceived + c.voicePacketsLost == 0 ? 0 : 100 * Double(c.voicePacketsLost) / Double(c.voicePacketsReceived + c.voicePacketsLost)
            lines.append(
                "calls      offered \(c.callsOffered), declined \(c.callsDeclined), answered \(c.callsAnswered): completed \(c.callsCompleted), "
                    + "ended by the centre \(c.callsEndedByCentre), failed \(c.callsFailed), \(c.callsSilent) without voice; "
                    + "voice packets sent \(c.voicePacketsSent), "
                    + "received \(c.voicePacketsReceived), lost \(c.voicePacketsLost) ("
                    + String(format: "%.2f %%)", lossPercent))
        }
        if c.sipCallsPlaced > 0 {
            let heard = c.sipVoicePacketsReceived + c.sipVoicePacketsLost
            lines.append(
                "sip calls  placed \(c.sipCallsPlaced), answered \(c.sipCallsAnswered), failed \(c.sipCallsFailed)"
                    + (c.sipFailures.isEmpty ? "" : " (" + Self.byCount(c.sipFailures).map { "\($0.count) \($0.reason)" }.joined(separator: ", ") + ")")
                    + "; at most \(c.sipCallsHeldMost) held at once; ended \(c.sipCallsEnded), \(c.sipCallsSilent) without voice back")
            lines.append(
                "sip voice  packets sent \(c.sipVoicePacketsSent), received \(c.sipVoicePacketsReceived), lost \(c.sipVoicePacketsLost) ("
                    + String(format: "%.3f %%", heard == 0 ? 0 : 100 * Double(c.sipVoicePacketsLost) / Double(heard)) + "); calls by loss: "
                    + LoadCounts.lossBands.map { "\($0) \(c.sipCallsByLoss[$0] ?? 0)" }.joined(separator: ", "))
        }
        if linkDropRate > 0 || udpLoss > 0 {
            lines.append(
                String(format: "faults     %.2f link drops/s, %.1f %% UDP loss each way: ", linkDropRate, udpLoss * 100)
                    + "\(c.linksDropped) links dropped, \(c.datagramsDropped) datagrams dropped, \(c.reconnects) reconnects, "
                    + (c.alarmsLost == 0 ? "no alarm lost" : "\(c.alarmsLost) ALARMS LOST"))
        }
        if let restarts = centerRestarts {
            let instants = restarts.map { String(format: "%.1f s (down %.2f s)", $0.killedAt, $0.downSeconds) }
            lines.append(
                "centre     \(restarts.count) crash restart\(restarts.count == 1 ? "" : "s")"
                    + (restarts.isEmpty ? "" : " at " + instants.joined(separator: ", ")) + ", "
                    + (c.alarmsLost == 0 ? "no alarm lost" : "\(c.alarmsLost) ALARMS LOST")
                    + ", \(c.duplicateAcks) duplicate acks")
        }
        if let check = centerJournal { lines.append(check.line) }
        lines.append(
            "sessions   opened \(c.sessionsOpened), failed attempts \(c.sessionFailures), reconnects \(c.reconnects); "
                + "heartbeats sent \(c.heartbeatsSent), answered \(c.heartbeatAcks); refused down frames \(c.refusedFrames)"
                + (c.datagramsUnsent == 0 ? "" : "; \(c.datagramsUnsent) DATAGRAMS UNSENT (the tool's send buffers were full)"))
        for (reason, count) in Self.byCount(c.failureReasons) { lines.append("failed     \(count) × \(reason)") }
        if let all = allOnlineSeconds {
            lines.append(String(format: "ramp       all %d devices online after %.1f s: %.0f sessions/s achieved", devices, all, all > 0 ? Double(devices) / all : 0))
        } else {
            lines.append("ramp       not every device was online at once during the run")
        }
        if let perDevice = residentBytesPerDevice, let holding = residentBytesHolding {
            lines.append(String(format: "memory     %.0f bytes resident per device (%.1f MB holding the fleet)", perDevice, Double(holding) / 1e6))
        }
        if let perBeat = cpuSecondsPerHeartbeat, let cpu = steadyCPUSeconds, let beats = steadyHeartbeats {
            lines.append(String(format: "cpu        %.1f µs of this process per heartbeat round trip, steady and all online (%.2f s for %d heartbeats)", perBeat * 1e6, cpu, beats))
        }
        lines.append("latencies are measured from the intended instant (Poisson schedule, ramp, timer), so loop stalls count")
        return lines.joined(separator: "\n")
    }

    /// Reasons and their counts, the most frequent first (then by reason, so the order is stable).
    static func byCount(_ reasons: [String: Int]) -> [(reason: String, count: Int)] {
        reasons.map { (reason: $0.key, count: $0.value) }.sorted { $0.count != $1.count ? $0.count > $1.count : $0.reason < $1.reason }
    }

    /// How long the run lasted, by its last second with anything in it.
    public var runSeconds: Int { seconds.last.map { $0.second + 1 } ?? 0 }

    /// Devices online at the end of each second of `seconds`: the running sum of sessions opened and lost.
    public var online: [Int] {
        var level = 0
        return seconds.map { second in
            level += second.sessionsOpened - second.sessionsLost
            return level
        }
    }

    /// Why `metric` measured nothing, in words that say what to change; `nil` when it measured something.
    public func emptyReason(_ metric: LoadMetric) -> String? {
        guard histogram(metric).count == 0 else { return nil }
        let c = counts
        let noSession =
            c.sessionsOpened == 0
            ? "no session opened" + (c.sessionFailures > 0 ? ": \(c.sessionFailures) attempts failed (see the failures)" : "") : nil
        switch metric {
        case .alarm:
            if c.alarmsRaised == 0 { return "no alarm was raised (alarm rate 0, or no steady phase)" }
            if c.alarmsSent == 0 { return "none of the \(c.alarmsRaised) alarms raised went on the wire: " + (noSession ?? "no device had a session then") }
            return "none of the \(c.alarmsSent) alarms sent was acknowledged"
        case .session:
            return noSession ?? "no session set-up was measured"
        case .heartbeat:
            if let noSession { return noSession }
            if c.heartbeatsSent == 0 {
                let every = heartbeatSeconds.map { "they are due every \($0) s" } ?? "none came due"
                return "no heartbeat was sent: \(every), and the run lasted \(runSeconds) s (give --heartbeat-interval, or a longer --duration)"
            }
            return "none of the \(c.heartbeatsSent) heartbeats sent was answered"
        case .engaged where isDC09, .voice where isDC09, .jitter where isDC09, .voiceDelay where isDC09:
            return "DC-09 tells no case's progress and carries no calls (the receiving centre's operator works the alarm on its own system)"
        case .engaged:
            if c.alarmsAcknowledged == 0 { return "no alarm was acknowledged" }
            return "no operator engaged a case during the run (a centre engages cases with --auto-engage-after MS; --spawn-center does)"
        case .voiceDelay:
            return "no stamped voice arrived: it is measured with --stamp-voice and an operator phone that stamps its voice (devicesim sip answer --stamp-voice) bridged by the centre"
        case .sipSetup, .sipJitter:
            if c.sipCallsPlaced == 0 { return "no SIP call was placed (give --sip-call sip:arc@HOST and a --call-share above 0)" }
            if c.sipCallsAnswered == 0 { return "none of the \(c.sipCallsPlaced) SIP calls placed was answered (see the failures)" }
            return "no answered SIP call ended during the run (a --call-duration shorter than the drain)"
        case .voice, .jitter:
            if c.callsOffered == 0 { return "the centre called about no alarm (it calls when an operator engages a case)" }
            if c.callsAnswered == 0 { return "every call offered was declined (--call-share 0 declines them all)" }
            return metric == .voice
                ? "no voice packet arrived in the \(c.callsAnswered) calls answered" : "no answered call ended during the run"
        }
    }
}
