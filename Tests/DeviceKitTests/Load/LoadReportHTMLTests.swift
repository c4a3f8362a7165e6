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
            second.alarmsSent = 50
            second.alarmsAcknowledged = 50
            seconds.append(second)
        }
        var counts = LoadCounts()
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

    @Test func theReportIsWellFormedSelfContainedAndCarriesTheNumbers() throws {
        let objectives = [try ServiceLevelObjective(parsing: "alarm.p99<100ms"), try ServiceLevelObjective(parsing: "reconnects==0")]
        let html = report.html(objectives: objectives)
        let collector = Collector()
        let parser = XMLParser(data: Data(html.utf8))
        parser.delegate = collector
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        #expect(!html.lowercased().contains("http://"))
        #expect(!html.lowercased().contains("https://"))
        #expect(!html.contains("<script"))
        // One plot over time (p50, p99, max) and a percentile plot for each measured metric (no session here).
        #expect(collector.elements["svg"] == 3)
        #expect(collector.elements["polyline"] == 3 + 2)
        #expect(collector.text.contains("Nothing measured"))
        #expect(collector.elements["style"] == 1)
        let text = collector.text
        #expect(text.contains("123 devices"))
        #expect(text.contains("1000"))  // alarms sent
        #expect(text.contains("reconnects"))
        #expect(text.contains("duplicate acks"))
        #expect(text.contains("MISSED"))  // reconnects==0 with 7
        #expect(text.contains("met"))
        #expect(text.contains("power <cut> & spike"))  // escaped in the markup, read back whole
        #expect(text.contains("99.9 %"))  // 1,000 values: the axis ends at p99.9
        let p99 = report.histogram(.alarm).value(atPercentile: 99)
        #expect(text.contains(String(format: "%.1f ms", Double(p99.nanoseconds) / 1e6)))
    }

    @Test func anEmptyRunStillMakesAPage() {
        let empty = LoadReport(
            shards: ["0/1"], transports: ["tcp"], devices: 1, rampSeconds: 0, steadySeconds: 0, alarmRate: 0,
            counts: LoadCounts(), latency: [:])
        let html = empty.html()
        let parser = XMLParser(data: Data(html.utf8))
        #expect(parser.parse())
        #expect(html.contains("No alarm was acknowledged"))
    }
}
