import Foundation

extension LatencyHistogram {
    /// The distribution as HdrHistogram's own percentile output (`.hgrm`, values in milliseconds): the
    /// columns Value, Percentile, TotalCount and 1/(1-Percentile), five ticks per half distance, and the
    /// `#[Mean …]`, `#[Max …]` and `#[Buckets …]` footer, written by hdrhistogram-swift's
    /// `outputPercentileDistribution`, as wrk2 prints it and HdrHistogram's plotter reads it. `nil` when
    /// nothing was recorded.
    public var percentileDistribution: String? {
        guard count > 0 else { return nil }
        var text = ""
        histogram.outputPercentileDistribution(to: &text, outputValueUnitScalingRatio: 1000, percentileTicksPerHalfDistance: 5)
        return text
    }
}

/// A stretch of a run shown as a band behind the plots over time: the ramp, each phase of the steady part,
/// the drain, and each time the centre was down after a crash.
public struct LoadRunBand: Equatable, Sendable {
    public enum Kind: String, Sendable { case ramp, phase, drain, centerDown }
    public var name: String
    public var kind: Kind
    public var start: Double
    public var end: Double
}

extension LoadReport {
    /// The histograms as `.hgrm` files by file-name suffix (`alarm` …), those that measured something.
    public var percentileDistributions: [(metric: LoadMetric, text: String)] {
        LoadMetric.allCases.compactMap { metric in histogram(metric).percentileDistribution.map { (metric, $0) } }
    }

    /// When the steady part began and ended (seconds from the start).
    var steadyInterval: (start: Double, end: Double) {
        guard let first = phases.first, let last = phases.last else { return (rampSeconds, rampSeconds + steadySeconds) }
        return (first.startSeconds, last.startSeconds + last.durationSeconds)
    }

    /// The ramp, the phases, the drain (to the end of the run) and the centre's down times, in order.
    public var bands: [LoadRunBand] {
        let steady = steadyInterval
        var bands: [LoadRunBand] = []
        if steady.start > 0 { bands.append(LoadRunBand(name: "ramp", kind: .ramp, start: 0, end: steady.start)) }
        if phases.isEmpty {
            bands.append(LoadRunBand(name: "steady", kind: .phase, start: steady.start, end: steady.end))
        } else {
            for phase in phases {
                bands.append(LoadRunBand(name: phase.name, kind: .phase, start: phase.startSeconds, end: phase.startSeconds + phase.durationSeconds))
            }
        }
        let end = Double(runSeconds)
        if end > steady.end { bands.append(LoadRunBand(name: "drain", kind: .drain, start: steady.end, end: end)) }
        for restart in centerRestarts ?? [] {
            bands.append(LoadRunBand(name: "centre down", kind: .centerDown, start: restart.killedAt, end: restart.listeningAt))
        }
        return bands
    }

    /// The part of the run second `second` falls in: `ramp`, a phase's name or `drain`.
    func phaseName(ofSecond second: Int) -> String {
        let middle = Double(second) + 0.5
        return bands.first { $0.kind != .centerDown && $0.start <= middle && middle < $0.end }?.name
            ?? (middle < steadyInterval.start ? "ramp" : "drain")
    }

    /// The per-second series as CSV, one row a second, for a spreadsheet or a plotting tool; latencies in
    /// milliseconds, empty when no alarm was acknowledged in that second.
    public var secondsCSV: String {
        var lines = [
            "second,phase,alarms_raised,alarms_sent,alarms_acknowledged,alarm_p50_ms,alarm_p99_ms,alarm_max_ms,"
                + "devices_online,sessions_opened,sessions_lost,failed_attempts,rejected,alarm_retransmissions"
        ]
        let online = self.online
        for (k, s) in seconds.enumerated() {
            func ms(_ d: Duration) -> String { s.alarm.count == 0 ? "" : String(format: "%.3f", Double(d.nanoseconds) / 1e6) }
            let fields: [String] = [
                "\(s.second)", Self.csvField(phaseName(ofSecond: s.second)), "\(s.alarmsRaised)", "\(s.alarmsSent)", "\(s.alarmsAcknowledged)",
                ms(s.alarm.value(atPercentile: 50)), ms(s.alarm.value(atPercentile: 99)), ms(s.alarm.max),
                "\(online[k])", "\(s.sessionsOpened)", "\(s.sessionsLost)", "\(s.failedAttempts)", "\(s.rejected)", "\(s.alarmRetransmissions)",
            ]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled.
    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
