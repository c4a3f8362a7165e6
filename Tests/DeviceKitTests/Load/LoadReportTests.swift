import Foundation
import Testing

@testable import DeviceKit

@Suite struct LoadReportTests {
    private func report(shard: String, latencies: [Int], lost: Int = 0) -> LoadReport {
        var alarm = LatencyHistogram()
        for ms in latencies { alarm.record(.microseconds(ms)) }
        var counts = LoadCounts()
        counts.alarmsRaised = latencies.count + lost
        counts.alarmsSent = latencies.count + lost
        counts.alarmsAcknowledged = latencies.count
        counts.alarmsLost = lost
        counts.reconnects = 1
        return LoadReport(
            shards: [shard], transports: ["udp"], devices: 10, rampSeconds: 1, steadySeconds: 5, alarmRate: 2,
            counts: counts, latency: [.alarm: alarm, .session: LatencyHistogram()])
    }

    @Test func aReportSurvivesItsJSONExactly() throws {
        let original = report(shard: "0/2", latencies: [1, 17, 999, 1_234, 55_555, 7_000_000, 7_000_001])
        let decoded = try LoadReport(json: try original.json(), name: "a.json")
        #expect(decoded == original)
        #expect(decoded.histogram(.alarm).max == original.histogram(.alarm).max)
    }

    /// The keys name the centre as every name a user reads does (`centerJournal`, `centerRestarts`); a report
    /// written with the other spelling is read the same.
    @Test func theCentreKeysAreSpelledCenterAndTheOtherSpellingIsRead() throws {
        var original = report(shard: "0/1", latencies: [5])
        let id = FleetAlarmID(device: 1, alarm: 7)
        original.centerJournal = CenterJournalCheck(acknowledged: [id], recorded: [id])
        original.centerRestarts = [CenterRestart(killedAt: 1, listeningAt: 2)]
        let text = String(decoding: try original.json(), as: UTF8.self)
        #expect(text.contains("\"centerJournal\"") && text.contains("\"centerRestarts\"") && !text.contains("centre"))
        let older = text.replacingOccurrences(of: "\"centerJournal\"", with: "\"centreJournal\"")
            .replacingOccurrences(of: "\"centerRestarts\"", with: "\"centreRestarts\"")
        #expect(try LoadReport(json: Data(older.utf8), name: "older.json") == original)
    }

    /// A report of this format written before a count existed (`callsSilent`, `datagramsUnsent`) is read with
    /// that count at zero; a count it has is read as written.
    @Test func aCountAddedLaterIsReadAsZeroFromAReportWithoutIt() throws {
        var original = report(shard: "0/1", latencies: [5])
        original.counts.callsSilent = 4
        original.counts.datagramsUnsent = 2
        var object = try #require(try JSONSerialization.jsonObject(with: try original.json()) as? [String: Any])
        var counts = try #require(object["counts"] as? [String: Any])
        counts["datagramsUnsent"] = nil
        object["counts"] = counts
        let older = try LoadReport(json: try JSONSerialization.data(withJSONObject: object), name: "older.json")
        #expect(older.counts.datagramsUnsent == 0)
        #expect(older.counts.callsSilent == 4)
        original.counts.datagramsUnsent = 0
        #expect(older == original)
        // A report that is not one stays refused, its counts included.
        object["counts"] = "none"
        #expect(throws: LoadError.self) { try LoadReport(json: try JSONSerialization.data(withJSONObject: object), name: "bad.json") }
    }

    @Test func mergedShardsEqualOneProcessThatMeasuredEverything() throws {
        let a = (0..<5_000).map { ($0 * 7_919) % 100_000 + 1 }
        let b = (0..<3_000).map { ($0 * 104_729) % 3_000_000 + 1 }
        let left = try LoadReport(json: try report(shard: "0/2", latencies: a).json(), name: "a")
        let right = try LoadReport(json: try report(shard: "1/2", latencies: b, lost: 2).json(), name: "b")
        let merged = try LoadReport.merge([left, right])
        let whole = report(shard: "x", latencies: a + b)
        #expect(merged.histogram(.alarm) == whole.histogram(.alarm))
        for (_, p) in LatencyHistogram.reportedPercentiles {
            #expect(merged.histogram(.alarm).value(atPercentile: p) == whole.histogram(.alarm).value(atPercentile: p))
        }
        #expect(merged.histogram(.alarm).max == whole.histogram(.alarm).max)
        #expect(merged.counts.alarmsSent == 8_002)
        #expect(merged.counts.alarmsRaised == 8_002)
        #expect(merged.counts.alarmsLost == 2)
        #expect(merged.counts.reconnects == 2)
        #expect(merged.devices == 20)
        #expect(merged.alarmRate == 4)
        #expect(merged.shards == ["0/2", "1/2"])
        #expect(merged.table.contains("lost 2"))
    }

    @Test func perSecondResultsSurviveTheJSONAndMergeSecondBySecond() throws {
        func seconds(_ spec: [(Int, [Int])]) -> [SecondResult] {
            spec.map { second, latencies in
                var s = SecondResult(second: second)
                s.alarmsSent = latencies.count + 1
                s.alarmsAcknowledged = latencies.count
                for us in latencies { s.alarm.record(.microseconds(us)) }
                return s
            }
        }
        var left = report(shard: "0/2", latencies: [1])
        left.seconds = seconds([(0, []), (1, [100, 200, 300]), (2, [5_000])])
        var right = report(shard: "1/2", latencies: [1])
        right.seconds = seconds([(1, [150, 90_000]), (3, [7])])
        let decodedLeft = try LoadReport(json: try left.json(), name: "a")
        #expect(decodedLeft.seconds == left.seconds)
        let merged = try LoadReport.merge([decodedLeft, try LoadReport(json: try right.json(), name: "b")])
        #expect(merged.seconds.map(\.second) == [0, 1, 2, 3])
        #expect(merged.seconds.map(\.alarmsAcknowledged) == [0, 5, 1, 1])
        #expect(merged.seconds.map(\.alarmsSent) == [1, 7, 2, 2])
        var whole = LatencyHistogram()
        for us in [100, 200, 300, 150, 90_000] { whole.record(.microseconds(us)) }
        #expect(merged.seconds[1].alarm == whole)
        #expect(merged.seconds[1].alarm.max == .microseconds(90_000))
        // p50/p99/max per second are in the JSON for people and dashboards.
        let text = String(decoding: try merged.json(), as: UTF8.self)
        #expect(text.contains("\"seconds\""))
        #expect(text.contains("\"p99\""))
    }

    /// Failures by reason and the new per-second counts add up over shards; online is the running sum of both.
    @Test func failureReasonsAndSecondsAddUpAcrossShards() throws {
        var left = report(shard: "0/2", latencies: [1])
        left.counts.failureReasons = ["refused": 2, "reset": 1]
        left.counts.rejectionReasons = ["busy": 1]
        var right = report(shard: "1/2", latencies: [1])
        right.counts.failureReasons = ["refused": 3]
        var a = [SecondResult(second: 0), SecondResult(second: 1)]
        a[0].sessionsOpened = 5
        a[1].sessionsLost = 1
        a[1].failedAttempts = 2
        a[1].alarmRetransmissions = 4
        var b = [SecondResult(second: 0), SecondResult(second: 1), SecondResult(second: 2)]
        b[1].sessionsOpened = 3
        b[2].rejected = 1
        left.seconds = a
        right.seconds = b
        let merged = try LoadReport.merge([try LoadReport(json: try left.json(), name: "a"), try LoadReport(json: try right.json(), name: "b")])
        #expect(merged.counts.failureReasons == ["refused": 5, "reset": 1])
        #expect(merged.counts.rejectionReasons == ["busy": 1])
        #expect(merged.online == [5, 7, 7])
        #expect(merged.seconds.map(\.failedAttempts) == [0, 2, 0])
        #expect(merged.seconds.map(\.alarmRetransmissions) == [0, 4, 0])
        #expect(merged.seconds.map(\.rejected) == [0, 0, 1])
    }

    @Test func theSameShardTwiceIsRefused() {
        let a = report(shard: "0/2", latencies: [1])
        #expect(throws: LoadError.self) { try LoadReport.merge([a, a]) }
    }

    @Test func aFileThatIsNoReportIsRefusedInPlainWords() {
        for text in ["{}", "not json", #"{"format":"other"}"#] {
            #expect(throws: LoadError.self) { try LoadReport(json: Data(text.utf8), name: "x.json") }
        }
        var json = String(decoding: (try? report(shard: "0/1", latencies: [5]).json()) ?? Data(), as: UTF8.self)
        json = json.replacingOccurrences(of: "\"us\"", with: "\"ms\"")
        #expect(throws: LoadError.self) { try LoadReport(json: Data(json.utf8), name: "x.json") }
        // JSONEncoder writes the slash escaped.
        let current = LoadReport.currentFormat.replacingOccurrences(of: "/", with: #"\/"#)
        let older = json.replacingOccurrences(of: #""format" : "\#(current)""#, with: #""format" : "devicesim-load\/2""#)
        #expect(older != json)
        #expect(throws: LoadError("x.json has format 'devicesim-load/2'; this devicesim reads '\(LoadReport.currentFormat)': run the load again with this devicesim")) {
            try LoadReport(json: Data(older.utf8), name: "x.json")
        }
    }
}

@Suite struct ServiceLevelObjectiveTests {
    private var report: LoadReport {
        var alarm = LatencyHistogram()
        for ms in 1...100 { alarm.record(.milliseconds(ms)) }
        var counts = LoadCounts()
        counts.alarmsLost = 0
        counts.rejected = 3
        return LoadReport(
            shards: ["0/1"], transports: ["tcp"], devices: 1, rampSeconds: 0, steadySeconds: 1, alarmRate: 1,
            counts: counts, latency: [.alarm: alarm])
    }

    @Test func latencyObjectivesParseAndJudge() throws {
        let met = try ServiceLevelObjective(parsing: "alarm.p99<100ms")
        #expect(met.measure == .latency(.alarm, percentile: 99))
        #expect(met.comparison == .below)
        #expect(met.bound == 100_000_000)
        #expect(met.evaluate(report).met)
        #expect(try ServiceLevelObjective(parsing: "alarm.p99 < 98ms").evaluate(report).met == false)
        #expect(try ServiceLevelObjective(parsing: "alarm.max<=0.2s").evaluate(report).met)
        #expect(try ServiceLevelObjective(parsing: "alarm.p99.9<=100500us").evaluate(report).met)
    }

    /// Issue 14, defect 1: a latency objective over no sample was met with "measured 0.000 ms".
    @Test func aLatencyObjectiveOverNoSampleIsMissedAndSaysWhy() throws {
        var report = report
        report.counts.sessionFailures = 53
        report.counts.failureReasons = ["nothing listens on that port (connection refused)": 53]
        let objective = try ServiceLevelObjective(parsing: "heartbeat.p50<1ms")
        let (measured, met) = objective.evaluate(report)
        #expect(measured == nil)
        #expect(!met)
        let (lines, allMet) = ServiceLevelObjective.verdict([objective], for: report)
        #expect(!allMet)
        #expect(lines == ["SLO MISSED heartbeat.p50<1ms  (nothing measured, heartbeat round trip: no session opened: 53 attempts failed (see the failures))"])
    }

    @Test func countObjectivesParseAndJudge() throws {
        #expect(try ServiceLevelObjective(parsing: "lost==0").evaluate(report).met)
        #expect(try ServiceLevelObjective(parsing: "rejected<3").evaluate(report).met == false)
        #expect(try ServiceLevelObjective(parsing: "rejected<=3").evaluate(report).met)
        let (lines, allMet) = ServiceLevelObjective.verdict(
            [try .init(parsing: "lost==0"), try .init(parsing: "rejected<1")], for: report)
        #expect(!allMet)
        #expect(lines.count == 2)
        #expect(lines[1].contains("MISSED rejected<1"))
    }

    @Test func badObjectivesAreRefusedInPlainWords() {
        for text in ["alarm.p99", "alarm.p99>5ms", "alarm.p99<5", "alarm.p100<5ms", "alarms.p99<5ms", "alarm.q99<5ms", "lost<x", "lost<-1", "<5ms", "alarm.p99<ms"] {
            #expect(throws: LoadError.self, "\(text)") { try ServiceLevelObjective(parsing: text) }
        }
    }
}
