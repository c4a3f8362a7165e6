import Foundation

/// The HTML report of a load run: one self-contained page (inline CSS, inline SVG drawn here, no script, no
/// link to anything outside it), written as XHTML-compatible markup so that an XML parser reads it too.
///
/// From the top, as a load engineer reads k6's or Gatling's report: a PASS/FAIL banner with each objective;
/// the run's context (date, command line, version, host, commit); the latency table, with the reason
/// wherever a row is empty; rates over time (alarms raised, sent and acknowledged a second, devices online,
/// sessions opened a second, failures and retransmissions a second, alarm → ack p50/p99/max) over bands for
/// the ramp, each phase, the drain and the centre's down times; the percentile distributions on
/// HdrHistogram's "1/(1−p)" axis (p99.99 is as far from p99 as p99 from p90); the counts; the failures by
/// reason; and each histogram as a `.hgrm` file and the seconds as CSV, as links inside the page.
extension LoadReport {
    public func html(objectives: [ServiceLevelObjective] = []) -> String {
        var page = HTMLPage.head(title: "devicesim load: \(devices) devices")
        page += "<h1>devicesim load</h1>\n"
        page += banner(objectives: objectives)
        page += "<p id=\"headline\">" + HTMLPage.escape(headline) + "</p>\n"
        page += metadataTable()
        page += "<h2>Latency</h2>\n" + latencyTable()
        page += "<p class=\"note\">Latencies are measured from the intended instant (the Poisson instant, the ramp, the timer), "
            + "so a stalled loop shows in them (coordinated omission corrected).</p>\n"
        page += "<h2>Over time</h2>\n" + bandLegend()
        page += overTimePlots()
        page += "<h2>Percentile distributions</h2>\n"
        for metric in LoadMetric.allCases {
            page += "<h3>" + HTMLPage.escape(metric.label) + "</h3>\n"
            if let why = emptyReason(metric) {
                page += "<p class=\"empty\">Nothing measured: " + HTMLPage.escape(why) + ".</p>\n"
            } else {
                page += HTMLPage.percentilePlot([(metric.label, histogram(metric))])
            }
        }
        page += "<h2>Counts</h2>\n" + countsTable() + phaseTable()
        page += "<h2>Failures</h2>\n" + failureTable()
        page += "<h2>Data</h2>\n" + downloads()
        page += "</body></html>\n"
        return page
    }

    private var headline: String {
        "\(devices) devices over \(transports.joined(separator: "+")), shards \(shards.joined(separator: ", "))"
            + (scenario.map { ", scenario \($0)" } ?? "")
            + String(format: "; ramp %.1f s, steady %.1f s, %.2f alarms/s", rampSeconds, steadySeconds, alarmRate)
            + (linkDropRate > 0 || udpLoss > 0 ? String(format: "; faults: %.2f link drops/s, %.1f %% UDP loss", linkDropRate, udpLoss * 100) : "")
    }

    /// PASS when every objective is met (and the centre's journal check, if any, passed), FAIL otherwise,
    /// with each objective and what was measured; without objectives, says so.
    private func banner(objectives: [ServiceLevelObjective]) -> String {
        let verdicts = objectives.map { ($0, $0.evaluate(self).met) }
        let journalFailed = centerJournal?.passed == false
        let failed = verdicts.contains { !$0.1 } || journalFailed
        let verdict = failed ? "FAIL" : verdicts.isEmpty && centerJournal == nil ? "NO OBJECTIVE" : "PASS"
        let cls = failed ? "fail" : verdicts.isEmpty && centerJournal == nil ? "none" : "pass"
        var html = "<div id=\"verdict\" class=\"banner \(cls)\"><strong>\(verdict)</strong>"
        let missed = verdicts.filter { !$0.1 }.count
        if verdicts.isEmpty {
            html += " — no objective was given (--slo 'alarm.p99&lt;100ms', --slo 'lost==0', …)"
        } else {
            html += " — \(verdicts.count - missed) of \(verdicts.count) objective\(verdicts.count == 1 ? "" : "s") met"
        }
        html += "\n<ul>\n"
        for (objective, met) in verdicts {
            html += "<li class=\"\(met ? "met" : "missed")\">\(met ? "met" : "MISSED") <code>\(HTMLPage.escape(objective.text))</code> — "
                + HTMLPage.escape(objective.measured(in: self)) + "</li>\n"
        }
        if let check = centerJournal {
            html += "<li class=\"\(check.passed ? "met" : "missed")\">" + HTMLPage.escape(check.line) + "</li>\n"
        }
        return html + "</ul></div>\n"
    }

    private func metadataTable() -> String {
        var rows: [(String, String)] = []
        if let c = context {
            rows += [
                ("date", c.date), ("command", (["devicesim"] + c.commandLine).joined(separator: " ")), ("devicesim version", c.version),
                ("host", c.host), ("git commit", c.gitCommit),
            ]
        } else {
            rows.append(("context", "not recorded (a report made by the library alone)"))
        }
        rows += [
            ("devices", "\(devices)"), ("transport", transports.joined(separator: "+")), ("shards", shards.joined(separator: ", ")),
            ("ramp", String(format: "%.1f s", rampSeconds)), ("steady", String(format: "%.1f s", steadySeconds)),
            ("alarm rate", String(format: "%.2f a second", alarmRate)),
            ("heartbeat", heartbeatSeconds.map { "every \($0) s" } ?? "no session opened"),
        ]
        if let scenario { rows.append(("scenario", scenario)) }
        return HTMLPage.keyValueTable(id: "metadata", rows: rows)
    }

    /// Count, p50 … p99.99 and max of each latency; an empty row says why it is empty.
    private func latencyTable() -> String {
        let columns = LatencyHistogram.reportedPercentiles.map(\.0) + ["max"]
        var html = "<table id=\"latency\">\n<tr><th class=\"l\">latency</th><th>count</th>"
        for column in columns { html += "<th>\(column)</th>" }
        html += "</tr>\n"
        for metric in LoadMetric.allCases {
            let h = histogram(metric)
            html += "<tr><td class=\"l\">\(HTMLPage.escape(metric.label))</td><td>\(h.count)</td>"
            if let why = emptyReason(metric) {
                html += "<td class=\"l empty\" colspan=\"\(columns.count)\">\(HTMLPage.escape(why))</td></tr>\n"
                continue
            }
            for (_, p) in LatencyHistogram.reportedPercentiles { html += "<td>\(HTMLPage.ms(h.value(atPercentile: p)))</td>" }
            html += "<td>\(HTMLPage.ms(h.max))</td></tr>\n"
        }
        return html + "</table>\n"
    }

    private func countsTable() -> String {
        let c = counts
        var rows: [(String, String)] = [
            ("alarms raised (Poisson arrivals)", "\(c.alarmsRaised)"), ("alarms sent (went on the wire)", "\(c.alarmsSent)"),
            ("alarms acknowledged", "\(c.alarmsAcknowledged)"), ("alarms lost (raised − acknowledged)", "\(c.alarmsLost)"),
            ("arrivals not raised (every home of their event loop had an alarm open)", "\(c.alarmsWithoutFreeDevice)"),
            ("alarm retransmissions", "\(c.alarmRetransmissions)"), ("duplicate acks", "\(c.duplicateAcks)"), ("rejected (nak)", "\(c.rejected)"),
            ("cancels sent / acknowledged", "\(c.cancelsSent) / \(c.cancelsAcknowledged)"),
            ("events sent / acknowledged", "\(c.eventsSent) / \(c.eventsAcknowledged)"),
            ("sessions opened", "\(c.sessionsOpened)"), ("failed session attempts", "\(c.sessionFailures)"),
            ("reconnects", "\(c.reconnects)"), ("links dropped on purpose", "\(c.linksDropped)"),
            ("datagrams dropped on purpose", "\(c.datagramsDropped)"), ("datagrams unsent (send buffers full)", "\(c.datagramsUnsent)"),
            ("heartbeats sent / answered", "\(c.heartbeatsSent) / \(c.heartbeatAcks)"),
            ("refused down frames", "\(c.refusedFrames)"), ("cases an operator engaged", "\(c.casesEngaged)"),
        ]
        if c.callsOffered > 0 {
            rows += [
                ("calls offered / declined / answered", "\(c.callsOffered) / \(c.callsDeclined) / \(c.callsAnswered)"),
                ("calls completed / ended by the centre / failed", "\(c.callsCompleted) / \(c.callsEndedByCentre) / \(c.callsFailed)"),
                ("calls without voice", "\(c.callsSilent)"),
                ("voice packets sent / received / lost", "\(c.voicePacketsSent) / \(c.voicePacketsReceived) / \(c.voicePacketsLost)"),
            ]
        }
        if c.sipCallsPlaced > 0 {
            rows += [
                ("SIP calls placed / answered / failed", "\(c.sipCallsPlaced) / \(c.sipCallsAnswered) / \(c.sipCallsFailed)"),
                ("SIP failures", c.sipFailures.isEmpty ? "none" : Self.byCount(c.sipFailures).map { "\($0.count) \($0.reason)" }.joined(separator: ", ")),
                ("SIP calls held at once, at most", "\(c.sipCallsHeldMost)"),
                ("SIP calls ended / without voice back", "\(c.sipCallsEnded) / \(c.sipCallsSilent)"),
                ("SIP voice packets sent / received / lost", "\(c.sipVoicePacketsSent) / \(c.sipVoicePacketsReceived) / \(c.sipVoicePacketsLost)"),
                ("SIP calls by voice loss", LoadCounts.lossBands.map { "\($0): \(c.sipCallsByLoss[$0] ?? 0)" }.joined(separator: ", ")),
            ]
        }
        if let restarts = centerRestarts {
            let instants = restarts.map { String(format: "%.1f s", $0.killedAt) }
            rows.append(("centre crash restarts", "\(restarts.count)" + (instants.isEmpty ? "" : " at " + instants.joined(separator: ", "))))
        }
        if let check = centerJournal { rows.append(("centre journal", check.summary)) }
        rows.append(("all online after", allOnlineSeconds.map { String(format: "%.1f s", $0) } ?? "never: not every device was online at once"))
        if let perDevice = residentBytesPerDevice { rows.append(("resident bytes per device", String(format: "%.0f", perDevice))) }
        return HTMLPage.keyValueTable(id: "counts", rows: rows)
    }

    private func phaseTable() -> String {
        var html = "<table id=\"phases\">\n<tr><th class=\"l\">part of the run</th><th>starts</th><th>ends</th></tr>\n"
        for band in bands {
            html += "<tr><td class=\"l\">\(HTMLPage.escape(band.name))</td><td>" + String(format: "%.1f s", band.start)
                + "</td><td>" + String(format: "%.1f s", band.end) + "</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// Failed session attempts and refused messages, by reason, the most frequent first.
    private func failureTable() -> String {
        let rows = Self.byCount(counts.failureReasons).map { ("session attempt failed", $0.reason, $0.count) }
            + Self.byCount(counts.rejectionReasons).map { ("message refused by the centre (nak)", $0.reason, $0.count) }
        guard !rows.isEmpty else { return "<p id=\"failures\">No session attempt failed and the centre refused no message.</p>\n" }
        var html = "<table id=\"failures\">\n<tr><th class=\"l\">failure</th><th class=\"l\">reason</th><th>count</th></tr>\n"
        for (kind, reason, count) in rows {
            html += "<tr><td class=\"l\">\(kind)</td><td class=\"l\">\(HTMLPage.escape(reason))</td><td>\(count)</td></tr>\n"
        }
        return html + "</table>\n"
    }

    /// Each histogram as HdrHistogram's `.hgrm` and the seconds as CSV, as `data:` links (no network).
    private func downloads() -> String {
        var html = "<ul id=\"downloads\">\n"
        for (metric, text) in percentileDistributions {
            html += "<li>" + HTMLPage.download(name: "\(metric.rawValue).hgrm", text: text, label: "\(metric.label) (.hgrm, HdrHistogram's percentile format, ms)") + "</li>\n"
        }
        html += "<li>" + HTMLPage.download(name: "seconds.csv", text: secondsCSV, label: "the run second by second (.csv)") + "</li>\n"
        return html + "</ul>\n"
    }

    // MARK: Over time

    private func bandLegend() -> String {
        "<p class=\"note\">Bands: <span class=\"sw ramp\"></span> ramp, <span class=\"sw phase\"></span> the steady part's phases, "
            + "<span class=\"sw drain\"></span> drain" + (centerRestarts?.isEmpty == false ? ", <span class=\"sw down\"></span> the centre down after a crash (SIGKILL)" : "")
            + ". Each point is one second of the run, drawn at its middle (devices online: at its end).</p>\n"
    }

    private func overTimePlots() -> String {
        guard !seconds.isEmpty else { return "<p class=\"empty\">The run recorded no second.</p>\n" }
        // A second's counts at its middle; the devices online at its end.
        let xs = seconds.map { Double($0.second) + 0.5 }
        func series(_ name: String, _ values: [Int], at offset: Double = 0) -> HTMLPage.Series {
            (name, zip(xs, values.map(Double.init)).map { ($0 + offset, $1) })
        }
        let online = self.online
        var html = ""
        html += "<h3>Alarms a second</h3>\n" + plotOverTime([
            series("raised", seconds.map(\.alarmsRaised)), series("sent", seconds.map(\.alarmsSent)),
            series("acknowledged", seconds.map(\.alarmsAcknowledged)),
        ], unit: .count, styles: [.dashed, .plain, .plain])
        html += "<h3>Devices online</h3>\n" + plotOverTime([series("online", online, at: 0.5)], unit: .count, yMinimum: Double(devices))
        html += "<h3>Sessions opened a second</h3>\n" + plotOverTime([series("opened", seconds.map(\.sessionsOpened)), series("lost", seconds.map(\.sessionsLost))], unit: .count)
        html += "<h3>Errors and retransmissions a second</h3>\n" + plotOverTime([
            series("failed attempts", seconds.map(\.failedAttempts)), series("rejected (nak)", seconds.map(\.rejected)),
            series("alarm retransmissions", seconds.map(\.alarmRetransmissions)),
        ], unit: .count)
        html += "<h3>Alarm → ack over time</h3>\n"
        let points = seconds.filter { $0.alarm.count > 0 }
        if points.isEmpty {
            html += "<p class=\"empty\">Nothing measured: " + HTMLPage.escape(emptyReason(.alarm) ?? "no alarm was acknowledged") + ".</p>\n"
        } else {
            func latency(_ name: String, _ value: (SecondResult) -> Duration) -> HTMLPage.Series {
                (name, points.map { (Double($0.second) + 0.5, HTMLPage.milliseconds(value($0))) })
            }
            // Max first and dashed, p99 over it with its own markers: p99 stays visible where it equals max.
            html += "<p class=\"note\">Each second's alarms acknowledged in it: p50, p99 and max.</p>\n"
            html += plotOverTime([
                latency("max", { $0.alarm.max }), latency("p99", { $0.alarm.value(atPercentile: 99) }),
                latency("p50", { $0.alarm.value(atPercentile: 50) }),
            ], unit: .milliseconds, styles: [.dashed, .markers, .plain])
        }
        return html
    }

    private func plotOverTime(
        _ series: [HTMLPage.Series], unit: HTMLPage.Unit, yMinimum: Double = 0, styles: [HTMLPage.LineStyle] = []
    ) -> String {
        let xMax = Swift.max(1, Double(runSeconds), bands.map(\.end).max() ?? 0)
        return HTMLPage.plot(
            series: series, xMax: xMax, xLabel: "second of the run", unit: unit, yMinimum: yMinimum, styles: styles,
            bands: bands, instants: (centerRestarts ?? []).map(\.killedAt))
    }
}

/// What the report and the comparison pages share: the page's head, tables, SVG plots, escaping (which the
/// operators' console's login page uses too).
public enum HTMLPage {
    typealias Series = (name: String, points: [(Double, Double)])
    enum Unit { case milliseconds, count }
    enum LineStyle { case plain, dashed, markers }

    static func head(title: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"/>
        <title>\(escape(title))</title>
        <style>
        body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; max-width: 1000px; }
        table { border-collapse: collapse; margin: 1em 0; }
        td, th { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
        th { background: #f2f2f2; } td.l, th.l { text-align: left; }
        td.empty, p.empty { color: #8a6d00; font-style: italic; }
        .met { color: #1a7f37; font-weight: bold; } .missed { color: #c62828; font-weight: bold; }
        .better { color: #1a7f37; } .worse { color: #c62828; }
        .banner { padding: 0.8em 1.2em; border-radius: 6px; margin: 1em 0; font-size: 16px; }
        .banner.pass { background: #e6f4ea; border: 2px solid #1a7f37; }
        .banner.fail { background: #fdecea; border: 2px solid #c62828; }
        .banner.none { background: #f2f2f2; border: 2px solid #999; }
        .banner ul { margin: 0.4em 0 0 0; font-size: 14px; }
        .note { color: #555; }
        .sw { display: inline-block; width: 14px; height: 10px; border: 1px solid #bbb; }
        .sw.ramp { background: #e8eefc; } .sw.phase { background: #eef7ee; } .sw.drain { background: #f6f0e6; } .sw.down { background: #fbe3e3; }
        svg { background: #fff; border: 1px solid #ddd; margin: 0.5em 0; }
        svg text { font: 11px system-ui, sans-serif; fill: #444; }
        code { background: #f6f6f6; padding: 0 3px; }
        </style></head><body>

        """
    }

    static func keyValueTable(id: String, rows: [(String, String)]) -> String {
        var html = "<table id=\"\(id)\">\n"
        for (name, value) in rows { html += "<tr><th class=\"l\">\(escape(name))</th><td class=\"l\">\(escape(value))</td></tr>\n" }
        return html + "</table>\n"
    }

    static func download(name: String, text: String, label: String) -> String {
        "<a download=\"\(escape(name))\" href=\"data:text/plain;charset=utf-8;base64,\(Data(text.utf8).base64EncodedString())\">\(escape(name))</a> — \(escape(label))"
    }

    // MARK: Plots

    static let width = 900.0
    static let height = 300.0
    static let left = 70.0, right = 20.0, top = 24.0, bottom = 45.0
    static let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    static let bandColours: [LoadRunBand.Kind: String] = [.ramp: "#e8eefc", .phase: "#eef7ee", .drain: "#f6f0e6", .centerDown: "#fbe3e3"]

    /// Latency against percentile on the "1/(1−p)" axis, one curve a histogram (runs overlaid, as
    /// HdrHistogram's plotter does), from p0 to the last percentile the largest count resolves.
    static func percentilePlot(_ histograms: [(String, LatencyHistogram)]) -> String {
        let measured = histograms.filter { $0.1.count > 0 }
        guard let largest = measured.map(\.1.count).max() else { return "<p class=\"empty\">Nothing measured.</p>\n" }
        // log10(1/(1−p)) from 0 (p0) to the decade where one value in `count` sits, at most p99.999.
        let decades = Swift.min(5, Swift.max(1, ceil(log10(Double(largest)))))
        var series: [Series] = []
        for (name, h) in measured {
            let own = Swift.min(decades, Swift.max(1, ceil(log10(Double(h.count)))))
            let steps = 200
            var values: [(Double, Double)] = []
            for i in 0...steps {
                let x = own * Double(i) / Double(steps)
                let p = 100 * (1 - pow(10, -x))
                values.append((x, milliseconds(i == steps ? h.max : h.value(atPercentile: p))))
            }
            series.append((name, values))
        }
        let labels = ["0 %", "90 %", "99 %", "99.9 %", "99.99 %", "99.999 %"]
        let xTicks = (0...Int(decades)).map { (Double($0), labels[$0]) }
        return plot(series: series, xMax: decades, xTicks: xTicks, xLabel: "percentile (1/(1−p) axis, log)", unit: .milliseconds)
    }

    /// An SVG line chart: x from 0 to `xMax`, y linear from 0 to a round number above the largest value
    /// (and at least `yMinimum`), bands behind the lines and dashed vertical lines at `instants`.
    static func plot(
        series: [Series], xMax: Double, xTicks: [(Double, String)]? = nil, xLabel: String, unit: Unit, yMinimum: Double = 0,
        styles: [LineStyle] = [], bands: [LoadRunBand] = [], instants: [Double] = []
    ) -> String {
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let yMax = niceCeiling(Swift.max(yMinimum, series.flatMap { $0.points.map(\.1) }.max() ?? 0, unit == .count ? 1 : 0.001), unit: unit)
        func px(_ x: Double) -> String { String(format: "%.1f", left + Swift.min(1, Swift.max(0, x / xMax)) * plotWidth) }
        func py(_ y: Double) -> String { String(format: "%.1f", top + (1 - Swift.min(1, Swift.max(0, y / yMax))) * plotHeight) }
        var svg = String(format: "<svg width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", width, height, width, height)
        for band in bands where band.end > band.start {
            let bandWidth = (Swift.min(band.end, xMax) - band.start) / xMax * plotWidth
            svg += "<rect class=\"band\" x=\"\(px(band.start))\" y=\"\(py(yMax))\" width=\"\(String(format: "%.1f", bandWidth))\" "
                + "height=\"\(String(format: "%.1f", plotHeight))\" fill=\"\(bandColours[band.kind] ?? "#eee")\"><title>\(escape(band.name))</title></rect>"
            // A name where it fits: above the plot for the run's parts, inside at the bottom for the centre's down times.
            if band.kind == .centerDown {
                svg += "<text x=\"\(px(band.start))\" y=\"\(String(format: "%.1f", top + plotHeight - 4))\" style=\"fill: #c62828\">\(escape(band.name))</text>"
            } else if bandWidth >= Double(band.name.count) * 6 + 4 {
                svg += "<text x=\"\(String(format: "%.1f", left + band.start / xMax * plotWidth + 3))\" y=\"\(String(format: "%.1f", top - 6))\">\(escape(band.name))</text>"
            }
            svg += "\n"
        }
        svg += "<rect x=\"\(px(0))\" y=\"\(py(yMax))\" width=\"\(String(format: "%.1f", plotWidth))\" height=\"\(String(format: "%.1f", plotHeight))\" fill=\"none\" stroke=\"#999\"/>\n"
        for i in 0...4 {
            let y = yMax * Double(i) / 4
            svg += "<line x1=\"\(px(0))\" y1=\"\(py(y))\" x2=\"\(px(xMax))\" y2=\"\(py(y))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(String(format: "%.1f", left - 6))\" y=\"\(py(y))\" text-anchor=\"end\" dominant-baseline=\"middle\">\(escape(format(y, unit)))</text>\n"
        }
        for (x, label) in xTicks ?? linearTicks(xMax) {
            svg += "<line x1=\"\(px(x))\" y1=\"\(py(0))\" x2=\"\(px(x))\" y2=\"\(py(yMax))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(px(x))\" y=\"\(String(format: "%.1f", top + plotHeight + 15))\" text-anchor=\"middle\">\(escape(label))</text>\n"
        }
        svg += "<text x=\"\(String(format: "%.1f", left + plotWidth / 2))\" y=\"\(String(format: "%.1f", height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        for x in instants {
            svg += "<line x1=\"\(px(x))\" y1=\"\(py(0))\" x2=\"\(px(x))\" y2=\"\(py(yMax))\" stroke=\"#c62828\" stroke-dasharray=\"4 3\"><title>centre crash</title></line>\n"
        }
        for (k, (name, points)) in series.enumerated() {
            let colour = colours[k % colours.count]
            let style = k < styles.count ? styles[k] : .plain
            let path = points.map { "\(px($0.0)),\(py($0.1))" }.joined(separator: " ")
            let dash = style == .dashed ? " stroke-dasharray=\"6 3\"" : ""
            let widthAttribute = style == .markers ? "2.5" : "1.5"
            svg += "<polyline class=\"series\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"\(widthAttribute)\"\(dash) points=\"\(path)\"><title>\(escape(name))</title></polyline>\n"
            if points.count <= 400, points.count > 0, style != .plain || points.count <= 120 {
                // The dashed series is drawn first with rings, so a series equal to it still lets it show.
                let radius = style == .markers ? "3.2" : style == .dashed ? "5" : "2"
                let fill = style == .dashed ? "none" : colour
                for point in points {
                    svg += "<circle cx=\"\(px(point.0))\" cy=\"\(py(point.1))\" r=\"\(radius)\" fill=\"\(fill)\" stroke=\"\(colour)\"/>"
                }
                svg += "\n"
            }
            let legendX = left + 10 + Double(k) * 150
            svg += "<rect x=\"\(String(format: "%.1f", legendX))\" y=\"\(String(format: "%.1f", top + 8))\" width=\"14\" height=\"3\" fill=\"\(colour)\"/>"
            svg += "<text x=\"\(String(format: "%.1f", legendX + 18))\" y=\"\(String(format: "%.1f", top + 13))\">\(escape(name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    private static func linearTicks(_ xMax: Double) -> [(Double, String)] {
        let step = Swift.max(1, niceCeiling(xMax / 10, unit: .count))
        return stride(from: 0.0, through: xMax, by: step).map { ($0, String(format: "%.0f", $0)) }
    }

    static func milliseconds(_ d: Duration) -> Double { Double(d.nanoseconds) / 1e6 }

    static func ms(_ d: Duration) -> String { format(milliseconds(d), .milliseconds) }

    static func format(_ v: Double, _ unit: Unit) -> String {
        switch unit {
        case .count: return v == v.rounded() ? String(format: "%.0f", v) : String(format: "%.1f", v)
        case .milliseconds:
            return v == 0 ? "0" : v >= 1000 ? String(format: "%.2f s", v / 1000) : v >= 10 ? String(format: "%.1f ms", v) : String(format: "%.3f ms", v)
        }
    }

    /// 1, 2 or 5 times a power of ten, at or above `value`: at least 0.001 (ms) or 1 (counts).
    static func niceCeiling(_ value: Double, unit: Unit = .milliseconds) -> Double {
        let floor = unit == .count ? 1.0 : 0.001
        guard value.isFinite, value > floor else { return floor }
        let magnitude = pow(10, Foundation.floor(log10(value)))
        for factor in [1.0, 2, 5, 10] where factor * magnitude >= value * 0.999_999 { return factor * magnitude }
        return 10 * magnitude
    }

    /// Text made safe for HTML element content and attribute values, in double or single quotes.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }
}

extension LoadReport {
    static func escape(_ text: String) -> String { HTMLPage.escape(text) }
}
