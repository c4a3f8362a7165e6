import Foundation

/// Several load runs side by side, the first the baseline, to answer the everyday question "did this change
/// make it better or worse?": each latency's percentiles with their change from the baseline, the counts, and
/// (in HTML) the runs' percentile curves overlaid as HdrHistogram's plotter draws them.
public struct LoadComparison: Sendable {
    public struct Run: Sendable {
        public var name: String
        public var report: LoadReport
        public init(name: String, report: LoadReport) {
            self.name = name
            self.report = report
        }
    }

    /// A change this small (in percent of the baseline) is shown as no change: runs of the same code differ so.
    public static let noticeablePercent = 5.0

    public let runs: [Run]

    public init(_ runs: [Run]) throws(LoadError) {
        guard runs.count >= 2 else { throw LoadError("give two reports or more to compare: devicesim load compare before.json after.json") }
        self.runs = runs
    }

    private var baseline: Run { runs[0] }

    /// The statistics each table shows: p50 … p99.99 and max.
    private static var statistics: [(name: String, percentile: Double)] { LatencyHistogram.reportedPercentiles + [("max", 100)] }

    private static func value(_ h: LatencyHistogram, _ percentile: Double) -> Duration {
        percentile >= 100 ? h.max : h.value(atPercentile: percentile)
    }

    /// The change from `base` to `value` in percent, or nil when either is missing or the base is zero.
    static func change(from base: Double?, to value: Double?) -> Double? {
        guard let base, let value, base > 0 else { return nil }
        return (value - base) / base * 100
    }

    /// "+22 %", "-8 %"; a fall of more than 99.5 % keeps its decimals, so that it does not read as -100 %
    /// (a latency that went to zero).
    static func describe(_ change: Double) -> String {
        change > -100 && change <= -99.5 ? String(format: "%+.2f %%", change) : String(format: "%+.0f %%", change)
    }

    /// Latencies and counts of every run, with each one's change from the baseline, as text.
    public var table: String {
        func pad(_ s: String, _ n: Int) -> String { String(repeating: " ", count: max(0, n - s.count)) + s }
        let nameWidth = max(24, runs.map { $0.name.count + 2 }.max() ?? 0)
        var lines = ["baseline: \(baseline.name); changes in % of the baseline (latency up is worse)"]
        for metric in LoadMetric.allCases where runs.contains(where: { $0.report.histogram(metric).count > 0 }) {
            lines.append("")
            lines.append(metric.label.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + pad("count", 9) + Self.statistics.map { pad($0.name, 18) }.joined())
            for (k, run) in runs.enumerated() {
                let h = run.report.histogram(metric)
                var row = "  " + run.name.padding(toLength: nameWidth - 2, withPad: " ", startingAt: 0) + pad("\(h.count)", 9)
                for (_, p) in Self.statistics {
                    guard h.count > 0 else {
                        row += pad("—", 18)
                        continue
                    }
                    let ms = HTMLPage.milliseconds(Self.value(h, p))
                    var cell = HTMLPage.format(ms, .milliseconds)
                    let base = baseline.report.histogram(metric)
                    if k > 0, base.count > 0, let change = Self.change(from: HTMLPage.milliseconds(Self.value(base, p)), to: ms) {
                        cell += " " + Self.describe(change)
                    }
                    row += pad(cell, 18)
                }
                lines.append(row)
            }
        }
        lines.append("")
        lines.append("counts".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + Self.countColumns.map { pad($0.name, 14) }.joined())
        for run in runs {
            lines.append("  " + run.name.padding(toLength: nameWidth - 2, withPad: " ", startingAt: 0) + Self.countColumns.map { pad("\($0.value(run.report.counts))", 14) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    private static let countColumns: [(name: String, value: @Sendable (LoadCounts) -> Int)] = [
        ("raised", { $0.alarmsRaised }), ("sent", { $0.alarmsSent }), ("acknowledged", { $0.alarmsAcknowledged }), ("lost", { $0.alarmsLost }),
        ("retransmitted", { $0.alarmRetransmissions }), ("rejected", { $0.rejected }), ("failed att.", { $0.sessionFailures }),
        ("reconnects", { $0.reconnects }),
    ]

    /// One self-contained page: the runs' context, then per latency the overlaid percentile curves and the
    /// table of changes, then the counts.
    public func html() -> String {
        var page = HTMLPage.head(title: "devicesim load compare: " + runs.map(\.name).joined(separator: " vs "))
        page += "<h1>devicesim load compare</h1>\n"
        page += summary()
        var rows = "<table id=\"runs\">\n<tr><th class=\"l\">run</th><th class=\"l\">date</th><th class=\"l\">git commit</th><th class=\"l\">host</th><th class=\"l\">devices</th><th class=\"l\">command</th></tr>\n"
        for run in runs {
            let c = run.report.context
            rows += "<tr><td class=\"l\">\(HTMLPage.escape(run.name))</td><td class=\"l\">\(HTMLPage.escape(c?.date ?? "unknown"))</td>"
                + "<td class=\"l\">\(HTMLPage.escape(c?.gitCommit ?? "unknown"))</td><td class=\"l\">\(HTMLPage.escape(c?.host ?? "unknown"))</td>"
                + "<td class=\"l\">\(run.report.devices) over \(HTMLPage.escape(run.report.transports.joined(separator: "+")))</td>"
                + "<td class=\"l\"><code>\(HTMLPage.escape(c.map { (["devicesim"] + $0.commandLine).joined(separator: " ") } ?? "unknown"))</code></td></tr>\n"
        }
        page += rows + "</table>\n"
        for metric in LoadMetric.allCases {
            page += "<h2>" + HTMLPage.escape(metric.label) + "</h2>\n"
            guard runs.contains(where: { $0.report.histogram(metric).count > 0 }) else {
                page += "<p class=\"empty\">No run measured it: " + HTMLPage.escape(baseline.report.emptyReason(metric) ?? "nothing measured") + ".</p>\n"
                continue
            }
            page += HTMLPage.percentilePlot(runs.map { ($0.name, $0.report.histogram(metric)) })
            page += latencyTable(metric)
        }
        page += "<h2>Counts</h2>\n<table id=\"counts\">\n<tr><th class=\"l\">run</th>"
        for column in Self.countColumns { page += "<th>\(HTMLPage.escape(column.name))</th>" }
        page += "</tr>\n"
        for run in runs {
            page += "<tr><td class=\"l\">\(HTMLPage.escape(run.name))</td>"
            for column in Self.countColumns { page += "<td>\(column.value(run.report.counts))</td>" }
            page += "</tr>\n"
        }
        page += "</table>\n</body></html>\n"
        return page
    }

    /// For each run after the baseline, alarm → ack p99 and lost alarms against the baseline's, in words.
    private func summary() -> String {
        var html = "<div id=\"verdict\" class=\"banner none\"><strong>Compared with \(HTMLPage.escape(baseline.name))</strong>\n<ul>\n"
        let base = baseline.report
        for run in runs.dropFirst() {
            var parts: [String] = []
            for metric in [LoadMetric.alarm, .session, .heartbeat] {
                let a = base.histogram(metric), b = run.report.histogram(metric)
                guard a.count > 0, b.count > 0,
                    let change = Self.change(from: HTMLPage.milliseconds(a.value(atPercentile: 99)), to: HTMLPage.milliseconds(b.value(atPercentile: 99)))
                else { continue }
                let word = change >= Self.noticeablePercent ? "worse" : change <= -Self.noticeablePercent ? "better" : "about the same"
                parts.append("<span class=\"\(word == "about the same" ? "" : word)\">\(HTMLPage.escape(metric.label)) p99 \(HTMLPage.ms(b.value(atPercentile: 99))) (\(Self.describe(change)), \(word))</span>")
            }
            let lost = run.report.counts.alarmsLost
            parts.append("<span class=\"\(lost > base.counts.alarmsLost ? "worse" : lost < base.counts.alarmsLost ? "better" : "")\">\(lost) alarms lost (baseline \(base.counts.alarmsLost))</span>")
            html += "<li>\(HTMLPage.escape(run.name)): " + parts.joined(separator: "; ") + "</li>\n"
        }
        return html + "</ul></div>\n"
    }

    private func latencyTable(_ metric: LoadMetric) -> String {
        var html = "<table class=\"compare\">\n<tr><th class=\"l\">run</th><th>count</th>"
        for (name, _) in Self.statistics { html += "<th>\(name)</th>" }
        html += "</tr>\n"
        let base = baseline.report.histogram(metric)
        for (k, run) in runs.enumerated() {
            let h = run.report.histogram(metric)
            html += "<tr><td class=\"l\">\(HTMLPage.escape(run.name))\(k == 0 ? " (baseline)" : "")</td><td>\(h.count)</td>"
            for (_, p) in Self.statistics {
                guard h.count > 0 else {
                    html += "<td class=\"empty\">—</td>"
                    continue
                }
                let ms = HTMLPage.milliseconds(Self.value(h, p))
                var cell = HTMLPage.format(ms, .milliseconds)
                var cls = ""
                if k > 0, base.count > 0, let change = Self.change(from: HTMLPage.milliseconds(Self.value(base, p)), to: ms) {
                    cell += " (" + Self.describe(change) + ")"
                    cls = change >= Self.noticeablePercent ? " class=\"worse\"" : change <= -Self.noticeablePercent ? " class=\"better\"" : ""
                }
                html += "<td\(cls)>\(HTMLPage.escape(cell))</td>"
            }
            html += "</tr>\n"
        }
        return html + "</table>\n"
    }
}
