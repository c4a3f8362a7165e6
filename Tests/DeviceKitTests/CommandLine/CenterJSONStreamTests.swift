import Foundation
import Testing

@testable import DeviceKit

/// `devicesim center --json` as a script reads it, from a real centre and a real device: every event with the
/// time it happened, a message's type said once, the one spelling in names and values.
@Suite(.serialized) final class CenterJSONStreamTests {
    let directory: String

    init() throws { directory = try makeTemporaryDirectory("json-stream") }
    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// The events had no timestamp: a reader had to stamp them itself, late.
    @Test func everyEventCarriesTheTimeItHappened() async throws {
        let log = directory + "/center.out"
        let started = Date()
        let centre = try ChildProcess.launch(
            ["center", "--json", "--host", "127.0.0.1", "--port", "0", "--journal", directory + "/c.sqlite",
             "--auto-engage-after", "100ms", "--auto-close-after", "200ms", "--no-call-on-engage"],
            environment: ["DEVICEKIT_MASTER_KEY": ChildProcess.masterHex], output: log)
        defer { if centre.isRunning { centre.terminate() } }
        var port = 0
        try await eventually("the centre listens") {
            let first = lines(log).first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            port = first?["tcp"] as? Int ?? 0
            return port > 0
        }
        let config = try await ChildProcess.provision(id: 61, port: port, directory: directory)
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "presses = []", with: "presses = [\"100ms\"]")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let device = try ChildProcess.launch(["run", "--config", config])
        defer { if device.isRunning { device.terminate() } }
        try await eventually("the case closes") { lines(log).contains { $0.contains(#""event":"caseUpdate""#) && $0.contains(#""state":"closed""#) } }
        device.terminate()
        try await ChildProcess.exit(device, within: .seconds(60))
        centre.terminate()
        try await ChildProcess.exit(centre, within: .seconds(60))
        let ended = Date()

        let events = try lines(log).map { line in try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)") }
        #expect(events.first?["event"] as? String == "listening")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        for event in events {
            let at = try #require(event["at"] as? String, "no time: \(event)")
            #expect(at.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(at)")
            let date = try #require(formatter.date(from: at))
            #expect(date >= started.addingTimeInterval(-1) && date <= ended.addingTimeInterval(1), "\(at) outside the run")
        }
        let kinds = events.compactMap { $0["event"] as? String }
        #expect(kinds.contains("online") && kinds.contains("alarm") && kinds.contains("caseUpdate"), "\(kinds)")
        // A recorded message's type once, beside "event"; no battery of 255 %.
        for event in events where event["event"] as? String == "recorded" {
            #expect((event["message"] as? [String: Any])?["type"] == nil, "\(event)")
        }
        let alarm = try #require(events.first { $0["event"] as? String == "alarm" })
        #expect(alarm["battery"] is NSNull || ((alarm["battery"] as? Int).map { $0 <= 100 } ?? false), "\(alarm)")
    }
}
