import Foundation
import Testing

@testable import DeviceKit

/// `devicesim load` as a user runs it: the built binary, its output and its exit status.
@Suite(.serialized) struct LoadCommandTests {
    static let master = String(repeating: "5a", count: 32)

    /// Issue 14, defect 1, as filed: with nothing listening, the objective was "met (measured 0.000 ms)" and
    /// the exit status 0; the failed attempts had no reason.
    @Test func aRunAgainstNothingMissesItsObjectiveAndSaysWhy() async throws {
        let port = try await freeLoopbackPorts()
        let json = NSTemporaryDirectory() + "load-nothing-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let result = try await ChildProcess.run([
            "load", "--center", "127.0.0.1:\(port)", "--master", Self.master, "--devices", "10", "--duration", "1", "--alarm-rate", "50",
            "--drain", "0", "--slo", "alarm.p99<1ms", "--quiet", "--report", json,
        ])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("SLO MISSED alarm.p99<1ms  (nothing measured, alarm → ack: none of the"), "\(result.output)")
        #expect(result.output.contains("sent 0, acknowledged 0"), "\(result.output)")
        #expect(result.output.range(of: #"failed     [0-9]+ × nothing listens on that port \(connection refused\)"#, options: .regularExpression) != nil, "\(result.output)")
        // Issue 14, defect 6: the report says when, where and how it was made, and never carries the key.
        let text = try String(contentsOfFile: json, encoding: .utf8)
        #expect(!text.contains(Self.master))
        let context = try #require(try LoadReport(json: Data(text.utf8), name: json).context)
        #expect(context.commandLine.prefix(4) == ["load", "--center", "127.0.0.1:\(port)", "--master"])
        #expect(context.commandLine[4] == "(hidden)")
        #expect(context.version == DeviceRuntimeConfiguration.firmwareVersion.description)
        #expect(!context.host.isEmpty && !context.gitCommit.isEmpty)
        let began = try #require(ISO8601DateFormatter().date(from: context.date))
        #expect(abs(began.timeIntervalSinceNow) < 600)
    }

    /// `load merge … --hgrm --csv` writes the files, `load compare` prints the changes from the baseline.
    @Test func mergeExportsAndCompareComparesAsAUserRunsThem() async throws {
        let directory = NSTemporaryDirectory() + "load-files-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func write(_ name: String, shard: String, scale: Int) throws -> String {
            var alarm = LatencyHistogram()
            var second = SecondResult(second: 0)
            for k in 1...200 {
                alarm.record(.microseconds(k * scale))
                second.alarm.record(.microseconds(k * scale))
            }
            var counts = LoadCounts()
            counts.alarmsRaised = 200
            counts.alarmsSent = 200
            counts.alarmsAcknowledged = 200
            second.alarmsRaised = 200
            var report = LoadReport(
                shards: [shard], transports: ["udp"], devices: 5, rampSeconds: 0, steadySeconds: 1, alarmRate: 200, counts: counts,
                latency: [.alarm: alarm])
            report.seconds = [second]
            report.context = LoadRunContext(date: "2026-12-01T10:00:0\(scale % 10)Z", commandLine: ["load"], version: "0.3.0", host: "h", gitCommit: "abc")
            let path = directory + "/" + name
            try report.json().write(to: URL(fileURLWithPath: path))
            return path
        }
        let a = try write("a.json", shard: "0/2", scale: 100)
        let b = try write("b.json", shard: "1/2", scale: 200)
        let merged = try await ChildProcess.run(["load", "merge", a, b, "--report", directory + "/m.json", "--hgrm", directory + "/m", "--csv", directory + "/m.csv"])
        #expect(merged.status == 0, "\(merged.output)")
        let hgrm = try String(contentsOfFile: directory + "/m.alarm.hgrm", encoding: .utf8)
        #expect(hgrm.hasPrefix("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"))
        #expect(hgrm.contains("Total count    =          400]"))
        #expect(!FileManager.default.fileExists(atPath: directory + "/m.session.hgrm"))  // nothing measured
        let csv = try String(contentsOfFile: directory + "/m.csv", encoding: .utf8)
        #expect(csv.split(separator: "\n").dropFirst().first?.hasPrefix("0,") == true)
        #expect(csv.split(separator: "\n").dropFirst().first?.contains(",400,") == true, "\(csv)")  // raised in second 0
        // The merged run began when its earliest shard did.
        let context = try LoadReport(json: try Data(contentsOf: URL(fileURLWithPath: directory + "/m.json")), name: "m.json").context
        #expect(context?.date == "2026-12-01T10:00:00Z")
        #expect(context?.commandLine.prefix(2) == ["load", "merge"])
        // `--json m.json` of old, over the m.json written above: read as a third shard, and said so.
        let oldStyle = try await ChildProcess.run(["load", "merge", a, b, "--json", directory + "/m.json"])
        #expect(oldStyle.status == 65, "\(oldStyle.output)")
        #expect(oldStyle.output.hasSuffix("(--json is a switch now, the merged report on standard output: write it to a file with --report FILE)\n"), "\(oldStyle.output)")
        // As a switch, the merged report alone on standard output.
        let printed = try await ChildProcess.run(["load", "merge", a, b, "--json"])
        #expect(printed.status == 0, "\(printed.output)")
        #expect(try LoadReport(json: Data(printed.output.utf8), name: "standard output").counts.alarmsSent == 400)

        let compared = try await ChildProcess.run(["load", "compare", a, b, "--html", directory + "/c.html"])
        #expect(compared.status == 0, "\(compared.output)")
        #expect(compared.output.contains("baseline: \(a)"), "\(compared.output)")
        #expect(compared.output.contains("+100 %"), "\(compared.output)")
        #expect(FileManager.default.fileExists(atPath: directory + "/c.html"))
        let unwritable = try await ChildProcess.run(["load", "merge", a, "--hgrm", directory + "/no/such/dir/x"])
        #expect(unwritable.status != 0)
        #expect(unwritable.output.contains("cannot write the alarm → ack histogram to \(directory)/no/such/dir/x.alarm.hgrm (no such file or directory): check that its directory exists"), "\(unwritable.output)")
        let alone = try await ChildProcess.run(["load", "compare", a])
        #expect(alone.status == 64, "\(alone.output)")
        #expect(alone.output.contains("Name two reports or more to compare"), "\(alone.output)")
    }
}
