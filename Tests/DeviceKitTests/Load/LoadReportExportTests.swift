import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

@testable import DeviceKit

/// The report's data for other tools (.hgrm, CSV), its context, and the comparison of runs.
@Suite struct LoadReportExportTests {
    private func report(latenciesMicroseconds: [Int], shard: String = "0/1") -> LoadReport {
        var alarm = LatencyHistogram()
        for us in latenciesMicroseconds { alarm.record(.microseconds(us)) }
        var counts = LoadCounts()
        counts.alarmsRaised = latenciesMicroseconds.count
        counts.alarmsSent = latenciesMicroseconds.count
        counts.alarmsAcknowledged = latenciesMicroseconds.count
        return LoadReport(
            shards: [shard], transports: ["udp"], devices: 10, rampSeconds: 1, steadySeconds: 5, alarmRate: 2, counts: counts,
            latency: [.alarm: alarm])
    }

    /// HdrHistogram's percentile output, as its Java original and wrk2 print it: the header, one row per
    /// tick (Value in ms with 3 decimals, Percentile with 12, TotalCount, 1/(1-Percentile)), the last row
    /// without the last column, and the three footer lines.
    @Test func aHistogramExportsInHdrHistogramsPercentileFormat() throws {
        let latencies = (1...1_000).map { $0 * 37 % 50_000 + 100 }
        let h = report(latenciesMicroseconds: latencies).histogram(.alarm)
        let text = try #require(h.percentileDistribution)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.removeFirst() == "       Value     Percentile TotalCount 1/(1-Percentile)")
        #expect(lines.removeFirst() == "")
        #expect(lines.removeLast() == "")
        let footer = lines.suffix(3)
        #expect(footer.first?.hasPrefix("#[Mean    = ") == true)
        // The largest value's bucket, as HdrHistogram prints it (the highest value equivalent to the max).
        let maxLine = try #require(footer.dropFirst().first)
        let printedMax = try #require(maxLine.wholeMatch(of: #/#\[Max     = +([0-9]+\.[0-9]{3}), Total count    = +1000\]/#))
        let max = Double(h.max.nanoseconds) / 1e6
        #expect((max...(max * 1.001)).contains(try #require(Double(printedMax.1))), "\(maxLine)")
        #expect(footer.last?.hasPrefix("#[Buckets = ") == true)
        let rows = lines.dropLast(3)
        let row = #/^ *([0-9]+\.[0-9]{3}) ([01]\.[0-9]{12}) +([0-9]+) +([0-9]+\.[0-9]{2})$/#
        let last = #/^ *([0-9]+\.[0-9]{3}) 1\.000000000000 +1000$/#
        #expect(rows.count > 20)
        for line in rows.dropLast() { #expect(line.wholeMatch(of: row) != nil, "\(line)") }
        #expect(rows.last.flatMap { $0.wholeMatch(of: last) } != nil, "\(rows.last ?? "")")
        // The median row holds the histogram's own median, in ms.
        let median = try #require(rows.first { $0.contains(" 0.500000000000 ") })
        #expect(median.hasPrefix(String(format: "%12.3f", Double(h.value(atPercentile: 50).nanoseconds) / 1e6)))
        #expect(LatencyHistogram().percentileDistribution == nil)
    }

    /// One CSV row a second, with the phase it falls in and the devices online as the running sum.
    @Test func theSecondsExportAsCSV() throws {
        var r = report(latenciesMicroseconds: [1_000])
        r.phases = [PhaseSummary(name: "cut, then \"spike\"", startSeconds: 1, durationSeconds: 1)]
        var seconds = (0..<3).map { SecondResult(second: $0) }
        seconds[0].sessionsOpened = 10
        seconds[1].alarmsRaised = 2
        seconds[1].alarmsSent = 2
        seconds[1].alarmsAcknowledged = 1
        seconds[1].alarm.record(.microseconds(1_500))
        seconds[1].sessionsLost = 3
        seconds[2].sessionsOpened = 2
        seconds[2].failedAttempts = 4
        r.seconds = seconds
        #expect(r.secondsCSV.split(separator: "\n").map(String.init) == [
            "second,phase,alarms_raised,alarms_sent,alarms_acknowledged,alarm_p50_ms,alarm_p99_ms,alarm_max_ms,devices_online,sessions_opened,sessions_lost,failed_attempts,rejected,alarm_retransmissions",
            "0,ramp,0,0,0,,,,10,10,0,0,0,0",
            "1,\"cut, then \"\"spike\"\"\",2,2,1,1.500,1.500,1.500,7,0,3,0,0,0",
            "2,drain,0,0,0,,,,9,2,0,4,0,0",
        ])
    }

    /// The command line in a report never carries the master key.
    @Test func theContextHidesTheMasterKey() {
        let key = String(repeating: "5a", count: 32)
        #expect(LoadRunContext.hidingKeys(["load", "--master", key, "--devices", "3", "--master=\(key)"])
            == ["load", "--master", "(hidden)", "--devices", "3", "--master=(hidden)"])
        let context = LoadRunContext.current(arguments: ["load", "--master", key])
        #expect(!context.host.isEmpty)
        #expect(context.version == DeviceRuntimeConfiguration.firmwareVersion.description)
        #expect(context.date.hasSuffix("Z"))
    }

    /// The commit stamp beside a binary counts only for the binary it was written for.
    @Test func theBuildStampCountsOnlyForTheBinaryItDescribes() throws {
        let directory = NSTemporaryDirectory() + "stamp-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let binary = directory + "/devicesim"
        try Data("binary".utf8).write(to: URL(fileURLWithPath: binary))
        #expect(BuildStamp.commit(ofExecutable: binary) == "unknown")  // no stamp
        let identity = try #require(BuildStamp.identity(of: binary))
        try Data("0123abc-modified\n\(identity)\n".utf8).write(to: URL(fileURLWithPath: directory + "/" + BuildStamp.fileName))
        #expect(BuildStamp.commit(ofExecutable: binary) == "0123abc-modified")
        try Data("rebuilt since".utf8).write(to: URL(fileURLWithPath: binary))
        #expect(BuildStamp.commit(ofExecutable: binary) == "unknown")
    }

    /// Issue 14: "did this change make it better or worse" — each percentile with its change from the baseline.
    @Test func aComparisonShowsEachRunsChangeFromTheBaseline() throws {
        let before = report(latenciesMicroseconds: (1...1_000).map { $0 * 10 })
        let after = report(latenciesMicroseconds: (1...1_000).map { $0 * 20 })
        var worse = after
        worse.counts.alarmsLost = 3
        let comparison = try LoadComparison([.init(name: "before.json", report: before), .init(name: "after.json", report: worse)])
        let table = comparison.table
        #expect(table.contains("baseline: before.json"))
        let afterRow = try #require(table.split(separator: "\n").first { $0.hasPrefix("  after.json") && $0.contains("ms") })
        #expect(afterRow.components(separatedBy: "+100 %").count - 1 == 6, "\(afterRow)")  // p50 … max all doubled
        let html = comparison.html()
        let parser = XMLParser(data: Data(html.utf8))
        #expect(parser.parse(), "\(String(describing: parser.parserError))")
        #expect(!html.contains("<script") && !html.lowercased().contains("http"))
        #expect(html.contains("alarm → ack p99 19.8 ms (+100 %, worse)"))
        #expect(html.contains("3 alarms lost (baseline 0)"))
        #expect(html.components(separatedBy: "<polyline class=\"series\"").count - 1 == 2)  // both runs' alarm curves
        #expect(html.contains("<td class=\"worse\">20.0 ms (+100 %)</td>"))
        #expect(throws: LoadError.self) { try LoadComparison([.init(name: "one.json", report: before)]) }
        #expect(LoadComparison.describe(-99.6) == "-99.60 %")
        #expect(LoadComparison.describe(-100) == "-100 %")
        #expect(LoadComparison.describe(22.4) == "+22 %")
    }
}
