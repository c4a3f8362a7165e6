import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import DeviceKit

@Suite struct LoadReportHTMLTests {
    private var report: LoadReport {
        var alarm = LatencyHistogram()
        var heartbeat = LatencyHistogram()
        var seconds: [SecondResult] = []
        for s in 0..<20 {
            var second = SecondResult(second: s)
            for k in 1...50 {
                let latency = Duration.microseconds(k * 200 + s * 1_000)
                second.alarm.record(latency)
                alarm.record(latency)
                heartbeat.record(.microseconds(k * 30))
            }
            second.alarmsRaised = 50
            second.alarmsSent = 50
            second.alarmsAcknowledged = 50
            seconds.append(second)
        }
        var counts = LoadCounts()
        counts.alarmsRaised = 1_000
        counts.alarmsSent = 1_000
        counts.alarmsAcknowledged = 1_000
        counts.reconnects = 7
        counts.duplicateAcks = 3
        counts.alarmsLost = 0
        var report = LoadReport(
            shards: ["0/1"], transports: ["udp"], devices: 123, rampSeconds: 1, steadySeconds: 20, alarmRate: 50,
            counts: counts, latency: [.alarm: alarm, .heartbeat: heartbeat])
        report.seconds = seconds
        report.phases = [PhaseSummary(name: "power <cut> & spike", startSeconds: 1, durationSeconds: 20)]
        return report
    }

    /// Collects element names and text, failing on any markup error.
    private final class Collector: NSObject, XMLParserDelegate {
        var elements: [String: Int] = [:]
        var text = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements[name, default: 0] += 1
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { text += string }
    }

    private func parse(_ html: String) -> Collector {
        let collector = Collector()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = collector
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        return collector
    }

    @Test func theReportIsWellFormedSelfContainedAndCarriesTheNumbers() throws {
        let objectives = [try ServiceLevelObjective(parsing: "alarm.p99<100ms"), try ServiceLevelObjective(parsing: "reconnects==0")]
        let html = report.html(objectives: objectives)
        let collector = parse(html)
        #expect(!html.lowercased().contains("http://"))
        #expect(!html.lowercased().contains("https://"))
        #expect(!html.contains("<script"))
        // Over time: alarms, online, sessions, errors, alarm latency; a percentile plot for alarm and heartbeat.
        #expect(collector.elements["svg"] == 7)
        #expect(collector.elements["style"] == 1)
        let text = collector.text
        #expect(text.contains("123 devices"))
        #expect(text.contains("1000"))  // alarms raised
        #expect(text.contains("reconnects"))
        #expect(text.contains("duplicate acks"))
        #expect(text.contains("MISSED"))  // reconnects==0 with 7
        #expect(text.contains("met"))
        #expect(text.contains("power <cut> & spike"))  // escaped in the markup, read back whole
        #expect(text.contains("99.9 %"))  // 1,000 values: the axis ends at p99.9
        let p99 = report.histogram(.alarm).value(atPercentile: 99)
        #expect(text.contains(String(format: "%.1f ms", Double(p99.nanoseconds) / 1e6)))
    }

    /// The banner at the top: FAIL when any objective is missed, each objective with what was measured.
    @Test func theBannerSaysPassOrFailWithEachObjective() throws {
        let met = try ServiceLevelObjective(parsing: "alarm.p99<100ms")
        let missed = try ServiceLevelObjective(parsing: "reconnects==0")
        let failing = report.html(objectives: [met, missed])
        #expect(failing.contains("<div id=\"verdict\" class=\"banner fail\"><strong>FAIL</strong> — 1 of 2 objectives met"))
        #expect(failing.contains("<li class=\"missed\">MISSED <code>reconnects==0</code> — measured 7</li>"))
        // The banner comes before everything else the page shows.
        let banner = try #require(failing.range(of: "id=\"verdict\""))
        let firstTable = try #require(failing.range(of: "<table"))
        #expect(banner.lowerBound < firstTable.lowerBound)
        #expect(report.html(objectives: [met]).contains("<strong>PASS</strong> — 1 of 1 objective met"))
        #expect(report.html().contains("<strong>NO OBJECTIVE</strong>"))
        var journalMissing = report
        journalMissing.centerJournal = CenterJournalCheck(
            acknowledged: [FleetAlarmID(device: 1, alarm: 2), FleetAlarmID(device: 1, alarm: 3)], recorded: [FleetAlarmID(device: 1, alarm: 3)])
        #expect(journalMissing.html(objectives: [met]).contains("<strong>FAIL</strong>"))
    }

    /// Issue 14: a 20 s run with 30 s heartbeats measures no heartbeat, and the page says so where the row is.
    @Test func anEmptyRowSaysWhy() {
        var report = report
        report.latency[.heartbeat] = LatencyHistogram()
        report.counts.sessionsOpened = 123
        report.heartbeatSeconds = 30
        let html = report.html()
        let why = "no heartbeat was sent: they are due every 30 s, and the run lasted 20 s (give --heartbeat-interval, or a longer --duration)"
        #expect(html.contains("<tr><td class=\"l\">heartbeat round trip</td><td>0</td><td class=\"l empty\" colspan=\"6\">\(why)</td></tr>"))
        #expect(html.contains("<p class=\"empty\">Nothing measured: \(why).</p>"))
        #expect(report.table.contains("empty      heartbeat round trip: \(why)"))
    }

    /// The ramp, the phases, the drain and the centre's down time are bands behind every plot over time;
    /// max is drawn before p99, dashed with rings, so that p99 shows where they are equal.
    @Test func phasesAreBandsAndP99StaysVisibleOverMax() throws {
        var report = report
        report.centerRestarts = [CenterRestart(killedAt: 5, listeningAt: 6.5)]
        #expect(report.bands.map(\.name) == ["ramp", "power <cut> & spike", "centre down"])
        report.phases = [
            PhaseSummary(name: "cut", startSeconds: 1, durationSeconds: 10), PhaseSummary(name: "spike", startSeconds: 11, durationSeconds: 5),
        ]
        #expect(report.bands.map(\.name) == ["ramp", "cut", "spike", "drain", "centre down"])
        #expect(report.bands.map(\.start) == [0, 1, 11, 16, 5])
        #expect(report.bands.map(\.end) == [1, 11, 16, 20, 6.5])
        let html = report.html()
        let collector = parse(html)
        #expect(collector.elements["svg"] == 7)
        // Five plots over time, five bands each.
        #expect(html.components(separatedBy: "<rect class=\"band\"").count - 1 == 25)
        let latency = try #require(html.range(of: "<h3>Alarm → ack over time</h3>"))
        let rest = html[latency.upperBound...]
        let max = try #require(rest.range(of: "<title>max</title>"))
        let p99 = try #require(rest.range(of: "<title>p99</title>"))
        #expect(max.lowerBound < p99.lowerBound)
        #expect(rest.contains("stroke-dasharray=\"6 3\" points="))
    }

    /// The histograms as .hgrm and the seconds as CSV, inside the page as data: links.
    @Test func thePageCarriesTheDataAsHgrmAndCSV() throws {
        let html = report.html()
        for name in ["alarm.hgrm", "heartbeat.hgrm", "seconds.csv"] { #expect(html.contains("<a download=\"\(name)\" href=\"data:text/plain;charset=utf-8;base64,")) }
        #expect(!html.contains("session.hgrm"))  // nothing measured
        let link = try #require(html.range(of: #"download="alarm.hgrm" href="data:text/plain;charset=utf-8;base64,([^"]+)""#, options: .regularExpression))
        let encoded = html[link].split(separator: ",").last.map { String($0.dropLast()) } ?? ""
        let text = String(decoding: try #require(Data(base64Encoded: encoded)), as: UTF8.self)
        #expect(text == report.histogram(.alarm).percentileDistribution)
    }

    @Test func anEmptyRunStillMakesAPage() {
        let empty = LoadReport(
            shards: ["0/1"], transports: ["tcp"], devices: 1, rampSeconds: 0, steadySeconds: 0, alarmRate: 0,
            counts: LoadCounts(), latency: [:])
        let html = empty.html()
        let parser = XMLParser(data: Data(html.utf8))
        #expect(parser.parse())
        #expect(html.contains("Nothing measured: no alarm was raised (alarm rate 0, or no steady phase)."))
        #expect(html.contains("<strong>NO OBJECTIVE</strong>"))
    }
}
