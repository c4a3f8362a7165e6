import Foundation

/// The HTML report of a load run: one self-contained page (inline CSS, inline SVG drawn here, no script, no
/// link to anything), written as XHTML-compatible markup so that an XML parser reads it too.
///
/// It holds the summary table (counts, lost, duplicates, reconnects, SLO verdicts), alarm → ack latency over
/// time (p50, p99, max of each second) and the percentile distributions of alarm → ack, session set-up and
/// heartbeat round trip on HdrHistogram's "1/(1−p)" axis, where p99.99 is as far from p99 as p99 from p90.
extension LoadReport {
    public func html(objectives: [ServiceLevelObjective] = []) -> String {
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"/>
            <title>devicesim load: \(devices) devices</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }
            table { border-collapse: collapse; margin: 1em 0; }
            td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
            th { background: #f2f2f2; } td.l, th.l { text-align: left; }
            .met { color: #1a7f37; font-weight: bold; } .missed { color: #c62828; font-weight: bold; }
            svg { background: #fff; border: 1px solid #ddd; margin: 0.5em 0; }
            svg text { font: 11px system-ui, sans-serif; fill: #444; }
            </style></head><body>

            """
        page += "<h1>devicesim load</h1>\n<p>" + Self.escape(headline) + "</p>\n"
        page += summaryTable(objectives: objectives)
        page += "<h2>Alarm → ack over time</h2>\n"
        page += "<p>Each second's alarms acknowledged in it; latencies from the intended instant (coordinated omission corrected)."
            + (centreRestarts?.isEmpty == false ? " Dashed red lines: the centre crashed (SIGKILL) and restarted." : "") + "</p>\n"
        page += overTimePlot()
        page += "<h2>Percentile distributions</h2>\n"
        for metric in LoadMetric.allCases {
            page += "<h3>" + Self.escape(metric.label) + "</h3>\n" + percentilePlot(histogram(metric))
        }
        page += "</body></html>\n"
        return page
    }

    private var headline: String {
        "\(devices) devices over \(transports.joined(separator: "+")), shards \(shards.joined(separator: ", "))"
            + (scenario.map { ", scenario \($0)" } ?? "")
            + String(format: "; ramp %.1f s, steady %.1f s, %.2f alarms/s", rampSeconds, steadySeconds, alarmRate)
            + (linkDropRate > 0 || udpLoss > 0 ? String(format: "; faults: %.2f link drops/s, %.1f %% UDP loss", linkDropRate, udpLoss * 100) : "")
    }

    private func summaryTable(objectives: [ServiceLevelObjective]) -> String {
        let c = counts
        var rows: [(String, String)] = [
            ("alarms raised", "\(c.alarmsRaised)"), ("alarms sent (on the wire)", "\(c.alarmsSent)"),
            ("alarms acknowledged", "\(c.alarmsAcknowledged)"),
            ("alarms lost", "\(c.alarmsLost)"), ("alarm retransmissions", "\(c.alarmRetransmissions)"),
            ("duplicate acks", "\(c.duplicateAcks)"), ("rejected (nak)", "\(c.rejected)"),
            ("cancels sent / acknowledged", "\(c.cancelsSent) / \(c.cancelsAcknowledged)"),
            ("events sent / acknowledged", "\(c.eventsSent) / \(c.eventsAcknowledged)"),
            ("sessions opened", "\(c.sessionsOpened)"), ("failed session attempts", "\(c.sessionFailures)"),
            ("reconnects", "\(c.reconnects)"), ("links dropped on purpose", "\(c.linksDropped)"),
            ("datagrams dropped on purpose", "\(c.datagramsDropped)"),
            ("heartbeats sent / answered", "\(c.heartbeatsSent) / \(c.heartbeatAcks)"),
            ("refused down frames", "\(c.refusedFrames)"), ("cases an operator engaged", "\(c.casesEngaged)"),
        ]
        if c.callsOffered > 0 {
            rows += [
                ("calls offered / declined / answered", "\(c.callsOffered) / \(c.callsDeclined) / \(c.callsAnswered)"),
                ("calls completed / ended by the centre / failed", "\(c.callsCompleted) / \(c.callsEndedByCentre) / \(c.callsFailed)"),
                ("voice packets sent / received / lost", "\(c.voicePacketsSent) / \(c.voicePacketsReceived) / \(c.voicePacketsLost)"),
            ]
        }
        if let restarts = centreRestarts {
            let instants = restarts.map { String(format: "%.1f s", $0.killedAt) }
            rows.append(("centre crash restarts", "\(restarts.count)" + (instants.isEmpty ? "" : " at " + instants.joined(separator: ", "))))
        }
        if let check = centreJournal { rows.append(("centre journal", check.summary)) }
        if let all = allOnlineSeconds { rows.append(("all online after", String(format: "%.1f s", all))) }
        if let perDevice = residentBytesPerDevice { rows.append(("resident bytes per device", String(format: "%.0f", perDevice))) }
        var html = "<h2>Summary</h2>\n<table>\n"
        for (name, value) in rows { html += "<tr><th class=\"l\">\(Self.escape(name))</th><td>\(Self.escape(value))</td></tr>\n" }
        html += "</table>\n<table>\n<tr><th class=\"l\">latency</th><th>count</th>"
        let columns = LatencyHistogram.reportedPercentiles.map(\.0) + ["max"]
        for column in columns { html += "<th>\(column)</th>" }
        html += "</tr>\n"
        for metric in LoadMetric.allCases {
            let h = histogram(metric)
            html += "<tr><td class=\"l\">\(Self.escape(metric.label))</td><td>\(h.count)</td>"
            for (_, p) in LatencyHistogram.reportedPercentiles { html += "<td>\(h.count == 0 ? "—" : Self.ms(h.value(atPercentile: p)))</td>" }
            html += "<td>\(h.count == 0 ? "—" : Self.ms(h.max))</td></tr>\n"
        }
        html += "</table>\n"
        if !phases.isEmpty {
            html += "<table>\n<tr><th class=\"l\">phase</th><th>starts</th><th>lasts</th></tr>\n"
            for phase in phases {
                html += "<tr><td class=\"l\">\(Self.escape(phase.name))</td><td>" + String(format: "%.1f s", phase.startSeconds)
                    + "</td><td>" + String(format: "%.1f s", phase.durationSeconds) + "</td></tr>\n"
            }
            html += "</table>\n"
        }
        html += failureTable()
        if !objectives.isEmpty {
            html += "<table>\n<tr><th class=\"l\">objective</th><th>measured</th><th>verdict</th></tr>\n"
            for objective in objectives {
                let met = objective.evaluate(self).met
                html += "<tr><td class=\"l\">\(Self.escape(objective.text))</td><td>\(Self.escape(objective.measured(in: self)))</td>"
                html += met ? "<td class=\"met\">met</td></tr>\n" : "<td class=\"missed\">MISSED</td></tr>\n"
            }
            html += "</table>\n"
        }
        return html
    }

    /// Failed session attempts and refused messages, by reason, the most frequent first.
    private func failureTable() -> String {
        let rows = Self.byCount(counts.failureReasons).map { ("session attempt failed", $0.reason, $0.count) }
            + Self.byCount(counts.rejectionReasons).map { ("message refused by the centre (nak)", $0.reason, $0.count) }
        guard !rows.isEmpty else { return "" }
        var html = "<table id=\"failures\">\n<tr><th class=\"l\">failure</th><th class=\"l\">reason</th><th>count</th></tr>\n"
        for (kind, reason, count) in rows {
            html += "<tr><td class=\"l\">\(kind)</td><td class=\"l\">\(Self.escape(reason))</td><td>\(count)</td></tr>\n"
        }
        return html + "</table>\n"
    }

    // MARK: Plots

    private static let width = 900.0
    private static let height = 320.0
    private static let left = 70.0, right = 20.0, top = 20.0, bottom = 45.0
    private static let colours = ["#1f77b4", "#ff7f0e", "#d62728"]

    /// p50, p99 and max of each second against the second, in milliseconds.
    private func overTimePlot() -> String {
        let points = seconds.filter { $0.alarm.count > 0 }
        guard let last = seconds.last, !points.isEmpty else { return "<p>No alarm was acknowledged.</p>\n" }
        let series: [(String, [(Double, Double)])] = [
            ("p50", points.map { (Double($0.second), Self.milliseconds($0.alarm.value(atPercentile: 50))) }),
            ("p99", points.map { (Double($0.second), Self.milliseconds($0.alarm.value(atPercentile: 99))) }),
            ("max", points.map { (Double($0.second), Self.milliseconds($0.alarm.max)) }),
        ]
        let xMax = Swift.max(1, Double(last.second + 1))
        let yMax = Self.niceCeiling(series.flatMap { $0.1.map(\.1) }.max() ?? 1)
        var xTicks: [(Double, String)] = []
        let step = Self.niceCeiling(xMax / 10)
        var x = 0.0
        while x <= xMax {
            xTicks.append((x / xMax, String(format: "%.0f", x)))
            x += step
        }
        return Self.plot(
            series: series.map { name, values in (name, values.map { ($0.0 / xMax, $0.1 / yMax) }) },
            xTicks: xTicks, xLabel: "second of the run", yMax: yMax, markers: true,
            instants: (centreRestarts ?? []).map { Swift.min(1, $0.killedAt / xMax) })
    }

    /// Latency against percentile on the "1/(1−p)" axis, from p0 to the last percentile the count resolves.
    private func percentilePlot(_ h: LatencyHistogram) -> String {
        guard h.count > 0 else { return "<p>Nothing measured.</p>\n" }
        // log10(1/(1−p)) from 0 (p0) to the decade where one value in `count` sits, at most p99.999.
        let decades = Swift.min(5, Swift.max(1, ceil(log10(Double(h.count)))))
        var values: [(Double, Double)] = []
        let steps = 200
        for i in 0...steps {
            let x = decades * Double(i) / Double(steps)
            let p = 100 * (1 - pow(10, -x))
            values.append((x, Self.milliseconds(i == steps ? h.max : h.value(atPercentile: p))))
        }
        let yMax = Self.niceCeiling(values.map(\.1).max() ?? 1)
        let labels = ["0 %", "90 %", "99 %", "99.9 %", "99.99 %", "99.999 %"]
        let xTicks = (0...Int(decades)).map { (Double($0) / decades, labels[$0]) }
        return Self.plot(
            series: [("latency", values.map { ($0.0 / decades, $0.1 / yMax) })], xTicks: xTicks,
            xLabel: "percentile (1/(1−p) axis, log)", yMax: yMax, markers: false)
    }

    /// An SVG line chart of series scaled to 0…1 on both axes, with a linear millisecond y axis up to `yMax`,
    /// and dashed vertical lines at `instants` (the centre's crashes).
    private static func plot(
        series: [(String, [(Double, Double)])], xTicks: [(Double, String)], xLabel: String, yMax: Double, markers: Bool,
        instants: [Double] = []
    ) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        func px(_ x: Double) -> String { String(format: "%.1f", left + x * plotWidth) }
        func py(_ y: Double) -> String { String(format: "%.1f", top + (1 - y) * plotHeight) }
        var svg = String(format: "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", width, height, width, height)
        svg += "<rect x=\"\(px(0))\" y=\"\(py(1))\" width=\"\(String(format: "%.1f", plotWidth))\" height=\"\(String(format: "%.1f", plotHeight))\" fill=\"none\" stroke=\"#999\"/>\n"
        for i in 0...4 {
            let y = Double(i) / 4
            svg += "<line x1=\"\(px(0))\" y1=\"\(py(y))\" x2=\"\(px(1))\" y2=\"\(py(y))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(String(format: "%.1f", left - 6))\" y=\"\(py(y))\" text-anchor=\"end\" dominant-baseline=\"middle\">\(escape(formatMilliseconds(yMax * y)))</text>\n"
        }
        for (x, label) in xTicks {
            svg += "<line x1=\"\(px(x))\" y1=\"\(py(0))\" x2=\"\(px(x))\" y2=\"\(py(1))\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(px(x))\" y=\"\(String(format: "%.1f", top + plotHeight + 15))\" text-anchor=\"middle\">\(escape(label))</text>\n"
        }
        svg += "<text x=\"\(px(0.5))\" y=\"\(String(format: "%.1f", height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        for x in instants {
            svg += "<line x1=\"\(px(x))\" y1=\"\(py(0))\" x2=\"\(px(x))\" y2=\"\(py(1))\" stroke=\"#c62828\" stroke-dasharray=\"4 3\"><title>centre restart</title></line>\n"
        }
        for (k, (name, points)) in series.enumerated() {
            let colour = colours[k % colours.count]
            let path = points.map { "\(px($0.0)),\(py(Swift.min(1, $0.1)))" }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            if markers, points.count <= 300 {
                for point in points { svg += "<circle cx=\"\(px(point.0))\" cy=\"\(py(Swift.min(1, point.1)))\" r=\"2\" fill=\"\(colour)\"/>" }
                svg += "\n"
            }
            let legendX = left + 10 + Double(k) * 80
            svg += "<rect x=\"\(String(format: "%.1f", legendX))\" y=\"\(String(format: "%.1f", top + 6))\" width=\"12\" height=\"3\" fill=\"\(colour)\"/>"
            svg += "<text x=\"\(String(format: "%.1f", legendX + 16))\" y=\"\(String(format: "%.1f", top + 10))\">\(escape(name))</text>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private static func milliseconds(_ d: Duration) -> Double { Double(d.nanoseconds) / 1e6 }

    private static func ms(_ d: Duration) -> String { formatMilliseconds(milliseconds(d)) }

    private static func formatMilliseconds(_ v: Double) -> String {
        v == 0 ? "0" : v >= 1000 ? String(format: "%.2f s", v / 1000) : v >= 10 ? String(format: "%.1f ms", v) : String(format: "%.3f ms", v)
    }

    /// 1, 2 or 5 times a power of ten, at or above `value` (at least 0.001).
    static func niceCeiling(_ value: Double) -> Double {
        guard value.isFinite, value > 0.001 else { return 0.001 }
        let magnitude = pow(10, floor(log10(value)))
        for factor in [1.0, 2, 5, 10] where factor * magnitude >= value * 0.999_999 { return factor * magnitude }
        return 10 * magnitude
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(ch)
            }
        }
        return out
    }
}
