/// A goal a load run must meet, as `--slo` writes it: a latency percentile or a count, bounded above.
///
/// ```
/// alarm.p99<100ms     heartbeat.max<=2s     session.p99.9<500ms     lost==0     rejected<10
/// ```
/// Latencies: `alarm`, `session`, `heartbeat`, `engaged`, `voice`, `jitter` (see `LoadMetric`) with `p50`, `p90`,
/// `p99`, `p99.9`, `p99.99` or `max`, and a value in `us`, `ms` or `s`. Counts: `lost`, `rejected`,
/// `reconnects`, `duplicates`, `retransmissions`, `failedcalls`, `voicelost` (voice packets lost), `sipfailed`
/// (SIP calls never answered), `sipvoicelost`. `--sip-call` runs also have `sipsetup` (INVITE → 200) and `sipjitter`.
public struct ServiceLevelObjective: Hashable, Sendable, CustomStringConvertible {
    public enum Measure: Hashable, Sendable {
        case latency(LoadMetric, percentile: Double)
        case count(Count)
    }

    public enum Count: String, Hashable, Sendable, CaseIterable {
        case lost, rejected, reconnects, duplicates, retransmissions, failedcalls, voicelost, sipfailed, sipvoicelost
    }

    public enum Comparison: String, Hashable, Sendable {
        case below = "<", atMost = "<=", equal = "=="
    }

    public let text: String
    public let measure: Measure
    public let comparison: Comparison
    /// Nanoseconds for a latency, a plain number for a count.
    public let bound: Int64

    public var description: String { text }

    public init(parsing text: String) throws(LoadError) {
        let compact = text.filter { !$0.isWhitespace }
        let help = "write for example 'alarm.p99<100ms', 'heartbeat.max<=2s' or 'lost==0'"
        guard let opStart = compact.firstIndex(where: { "<=".contains($0) }) else {
            throw LoadError("--slo '\(text)' has no comparison (<, <= or ==): \(help)")
        }
        let name = String(compact[..<opStart])
        var rest = compact[opStart...]
        let comparison: Comparison
        if rest.hasPrefix("<=") {
            comparison = .atMost
            rest = rest.dropFirst(2)
        } else if rest.hasPrefix("==") {
            comparison = .equal
            rest = rest.dropFirst(2)
        } else if rest.hasPrefix("<") {
            comparison = .below
            rest = rest.dropFirst()
        } else {
            throw LoadError("--slo '\(text)': use <, <= or == between the measure and the bound: \(help)")
        }
        if let count = Count(rawValue: name) {
            guard let value = Int64(rest), value >= 0 else {
                throw LoadError("--slo '\(text)': the bound of \(name) must be a whole number, as in '\(name)==0'")
            }
            self.init(text: text, measure: .count(count), comparison: comparison, bound: value)
            return
        }
        guard let dot = name.firstIndex(of: "."), let metric = LoadMetric(rawValue: String(name[..<dot])) else {
            throw LoadError(
                "--slo '\(text)': '\(name)' is not a measure; latencies are \(LoadMetric.allCases.map(\.rawValue).joined(separator: ", ")) with .p50 … .max, counts are "
                    + Count.allCases.map(\.rawValue).joined(separator: ", "))
        }
        let statistic = String(name[name.index(after: dot)...])
        let percentile: Double
        if statistic == "max" {
            percentile = 100
        } else if statistic.hasPrefix("p"), let p = Double(statistic.dropFirst()), p > 0, p < 100 {
            percentile = p
        } else {
            throw LoadError("--slo '\(text)': '\(statistic)' is not a statistic: use p50, p90, p99, p99.9, p99.99 or max")
        }
        let units: [(String, Double)] = [("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9)]
        guard let (unit, scale) = units.first(where: { rest.hasSuffix($0.0) }),
            let number = Double(rest.dropLast(unit.count)), number >= 0, number < 1e9
        else {
            throw LoadError("--slo '\(text)': the bound must be a duration with its unit, us, ms or s, as in '100ms'")
        }
        self.init(text: text, measure: .latency(metric, percentile: percentile), comparison: comparison, bound: Int64(number * scale))
    }

    private init(text: String, measure: Measure, comparison: Comparison, bound: Int64) {
        self.text = text
        self.measure = measure
        self.comparison = comparison
        self.bound = bound
    }

    /// The measured value (nanoseconds or a count) and whether it meets the objective. A latency measured
    /// over no sample at all is `nil`, and misses: a run that measured nothing has shown nothing.
    public func evaluate(_ report: LoadReport) -> (measured: Int64?, met: Bool) {
        let measured: Int64
        switch measure {
        case .latency(let metric, let percentile):
            let h = report.histogram(metric)
            guard h.count > 0 else { return (nil, false) }
            measured = (percentile >= 100 ? h.max : h.value(atPercentile: percentile)).nanoseconds
        case .count(let count):
            let c = report.counts
            switch count {
            case .lost: measured = Int64(c.alarmsLost)
            case .rejected: measured = Int64(c.rejected)
            case .reconnects: measured = Int64(c.reconnects)
            case .duplicates: measured = Int64(c.duplicateAcks)
            case .retransmissions: measured = Int64(c.alarmRetransmissions)
            case .failedcalls: measured = Int64(c.callsFailed)
            case .voicelost: measured = Int64(c.voicePacketsLost)
            case .sipfailed: measured = Int64(c.sipCallsFailed)
            case .sipvoicelost: measured = Int64(c.sipVoicePacketsLost)
            }
        }
        switch comparison {
        case .below: return (measured, measured < bound)
        case .atMost: return (measured, measured <= bound)
        case .equal: return (measured, measured == bound)
        }
    }

    /// One line per objective, and whether all were met.
    public static func verdict(_ objectives: [ServiceLevelObjective], for report: LoadReport) -> (lines: [String], allMet: Bool) {
        var allMet = true
        var lines: [String] = []
        for objective in objectives {
            let met = objective.evaluate(report).met
            allMet = allMet && met
            lines.append("SLO \(met ? "met   " : "MISSED") \(objective.text)  (\(objective.measured(in: report)))")
        }
        return (lines, allMet)
    }

    /// What was measured, for people: "measured 12.500 ms", "measured 0", or why nothing was.
    public func measured(in report: LoadReport) -> String {
        let (value, _) = evaluate(report)
        switch (measure, value) {
        case (.latency, let value?): return String(format: "measured %.3f ms", Double(value) / 1e6)
        case (.latency(let metric, _), nil):
            return "nothing measured, \(metric.label): " + (report.emptyReason(metric) ?? "no sample")
        case (.count, let value): return "measured \(value ?? 0)"
        }
    }
}
