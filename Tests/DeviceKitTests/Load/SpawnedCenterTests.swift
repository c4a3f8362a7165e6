import Foundation
import Testing

@testable import DeviceKit

/// `devicesim load --spawn-center` as a load engineer runs it: the tool starts the centre, crashes it
/// mid-run, and checks afterwards that the centre's journal holds every alarm the devices saw acknowledged.
@Suite(.serialized) struct SpawnedCenterTests {
    static let master = String(repeating: "5a", count: 32)

    /// The pids the tool printed for the centres it started, and the temporary directory of the first.
    static func centres(in output: String) -> (pids: [Int32], directory: String?) {
        var pids: [Int32] = []
        var directory: String?
        for line in output.split(separator: "\n") where line.hasPrefix("centre (pid ") {
            if let pid = Int32(line.dropFirst("centre (pid ".count).prefix { $0.isNumber }) { pids.append(pid) }
            if directory == nil, let log = line.range(of: "; log ") {
                directory = URL(fileURLWithPath: String(line[log.upperBound...])).deletingLastPathComponent().path
            }
        }
        return (pids, directory)
    }

    /// Running, or stopped but not yet reaped by anyone (a zombie is gone for our purpose).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return stat[close...].dropFirst(2).first != "Z"
    }

    @Test(arguments: ["tcp", "udp"])
    func aCentreCrashedMidRunLosesNoAcknowledgedAlarm(transport: String) async throws {
        let directory = NSTemporaryDirectory() + "spawn-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let json = directory + "/run.json"
        // Over UDP a device learns of the crash from silence: two heartbeat intervals, so 1 s heartbeats.
        let result = try await ChildProcess.run([
            "load", "--spawn-center", "--restart-center", "1", "--devices", "200", "--transport", transport,
            "--master", Self.master, "--alarm-rate", "40", "--duration", "3", "--heartbeat-interval", "1s", "--drain", "100",
            "--devices-per-socket", "64", "--quiet", "--report", json,
        ])
        #expect(result.status == 0, "\(result.output)")
        let report = try LoadReport(json: try Data(contentsOf: URL(fileURLWithPath: json)), name: json)
        let c = report.counts
        #expect(report.centerRestarts?.count == 1, "\(result.output)")
        #expect(c.alarmsSent > 40)  // 40 a second for 3 s: about 120
        #expect(c.alarmsAcknowledged == c.alarmsSent)
        #expect(c.alarmsLost == 0)
        // Every device had a session when the centre died, and lost it.
        #expect(c.reconnects >= 200, "\(result.output)")
        let check = try #require(report.centerJournal, "\(result.output)")
        #expect(check.passed, "\(check.line)")
        #expect(check.acknowledged == c.alarmsAcknowledged)
        #expect(check.recorded >= check.acknowledged)
        #expect(result.output.contains("centre journal: \(check.recorded) alarms recorded, all \(c.alarmsAcknowledged) acknowledged alarms present"))

        // No centre outlives the tool, and its key file is gone with it.
        let centres = Self.centres(in: result.output)
        #expect(centres.pids.count == 2, "\(result.output)")
        for pid in centres.pids { #expect(!Self.isRunning(pid), "centre \(pid) still runs") }
        let centreDirectory = try #require(centres.directory)
        #expect(FileManager.default.fileExists(atPath: centreDirectory + "/center.log"))
        #expect(!FileManager.default.fileExists(atPath: centreDirectory + "/master.hex"))
        // The journal removed, the check having passed; its writer lock too. The log stays, to be read.
        let left = try FileManager.default.contentsOfDirectory(atPath: centreDirectory)
        #expect(left == ["center.log"], "\(left)")
        try? FileManager.default.removeItem(atPath: centreDirectory)
    }

    /// The same on a PostgreSQL journal: the check reads the database, and every acknowledged alarm is there.
    @Test func aCentreOnPostgresCrashedMidRunLosesNoAcknowledgedAlarm() async throws {
        let (cluster, database) = try await offThePool {
            let cluster = try PostgresTestCluster.shared
            return (cluster, try cluster.newDatabase())
        }
        let directory = NSTemporaryDirectory() + "spawn-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let json = directory + "/run.json"
        let result = try await ChildProcess.run(
            [
                "load", "--spawn-center", "--center-journal", database.description, "--restart-center", "1", "--devices", "100",
                "--transport", "udp", "--master", Self.master, "--alarm-rate", "40", "--duration", "3", "--heartbeat-interval", "1s",
                "--drain", "100", "--quiet", "--report", json,
            ], environment: ["PGPASSWORD": cluster.password])
        #expect(result.status == 0, "\(result.output)")
        let report = try LoadReport(json: try Data(contentsOf: URL(fileURLWithPath: json)), name: json)
        #expect(report.centerRestarts?.count == 1, "\(result.output)")
        #expect(report.counts.alarmsAcknowledged > 40 && report.counts.alarmsLost == 0)
        let check = try #require(report.centerJournal, "\(result.output)")
        #expect(check.passed && check.acknowledged == report.counts.alarmsAcknowledged, "\(check.line)")
        let counted = try await offThePool { try cluster.psql("SELECT COUNT(*) FROM message WHERE kind = 'alarm'", database: database.database) }
        #expect(Int(counted.trimmingCharacters(in: .whitespacesAndNewlines)) == check.recorded, "the check read this database")
        for pid in Self.centres(in: result.output).pids { #expect(!Self.isRunning(pid), "centre \(pid) still runs") }
    }

    @Test func ctrlCStopsTheSpawnedCentreToo() async throws {
        let output = NSTemporaryDirectory() + "spawn-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let tool = try ChildProcess.launch(
            ["load", "--spawn-center", "--devices", "10", "--master", Self.master, "--duration", "600", "--quiet"], output: output)
        var pids: [Int32] = []
        try await eventually("the tool says its centre listens") {
            pids = Self.centres(in: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "").pids
            return !pids.isEmpty
        }
        #expect(pids.allSatisfy(Self.isRunning))
        kill(tool.processIdentifier, SIGINT)
        try await ChildProcess.exit(tool, within: .seconds(120))
        #expect(tool.terminationStatus == 128 + SIGINT)
        for pid in pids { #expect(!Self.isRunning(pid), "centre \(pid) still runs") }
        if let directory = Self.centres(in: (try? String(contentsOfFile: output, encoding: .utf8)) ?? "").directory {
            #expect(!FileManager.default.fileExists(atPath: directory + "/master.hex"))
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// SIGKILL leaves the tool no chance to stop its centre: the centre's standard input, a pipe the tool
    /// held, reaches end of file, and the centre stops by itself.
    @Test func aCentreDoesNotOutliveAToolKilledWithSIGKILL() async throws {
        let output = NSTemporaryDirectory() + "spawn-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let tool = try ChildProcess.launch(
            ["load", "--spawn-center", "--devices", "10", "--master", Self.master, "--duration", "600", "--quiet"], output: output)
        let text = { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        var pids: [Int32] = []
        try await eventually("the tool says its centre listens") {
            pids = Self.centres(in: text()).pids
            return !pids.isEmpty || !tool.isRunning
        }
        #expect(pids.count == 1 && pids.allSatisfy(Self.isRunning), "\(text())")
        defer { for pid in pids where Self.isRunning(pid) { kill(pid, SIGKILL) } }
        kill(tool.processIdentifier, SIGKILL)
        try await ChildProcess.exit(tool, within: .seconds(60))
        #expect(tool.terminationReason == .uncaughtSignal && tool.terminationStatus == SIGKILL)
        try await eventually(within: .seconds(60), "the centre (pid \(pids)) ends after the tool") { !pids.contains(where: Self.isRunning) }
        // It stopped as on SIGTERM, and said why, rather than being killed.
        let directory = try #require(Self.centres(in: text()).directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = (try? String(contentsOfFile: directory + "/center.log", encoding: .utf8)) ?? ""
        #expect(log.contains("standard input closed"), "\(log)")
    }
}

/// The pure parts: when the crashes happen, and what the journal check concludes.
struct CenterRestartScheduleTests {
    @Test func instantsAreWithinTheSteadyPhaseInOrderAndOnce() throws {
        let schedule = CenterRestartSchedule(at: [.seconds(25), .seconds(10)], every: .seconds(10))
        #expect(
            schedule.instants(steadyStart: .seconds(2), steadyDuration: .seconds(30)) == [.seconds(12), .seconds(22), .seconds(27)])
        #expect(CenterRestartSchedule().instants(steadyStart: .seconds(2), steadyDuration: .seconds(30)).isEmpty)
        #expect(throws: LoadError.self) { try CenterRestartSchedule(at: [.seconds(30)]).validate(steadyDuration: .seconds(30)) }
        #expect(throws: LoadError.self) { try CenterRestartSchedule(every: .zero).validate(steadyDuration: .seconds(30)) }
        try CenterRestartSchedule(at: [.seconds(29)], down: .seconds(3)).validate(steadyDuration: .seconds(30))
    }

    @Test func theJournalCheckNamesMissingAndDuplicatedAlarms() {
        let a = FleetAlarmID(device: 1, alarm: 7), b = FleetAlarmID(device: 2, alarm: 7), c = FleetAlarmID(device: 3, alarm: 9)
        let fine = CenterJournalCheck(acknowledged: [a, b], recorded: [b, a, c])
        #expect(fine.passed)
        #expect(fine.line == "centre journal: 3 alarms recorded, all 2 acknowledged alarms present")
        let missing = CenterJournalCheck(acknowledged: [a, b, c], recorded: [a, a])
        #expect(!missing.passed)
        #expect(missing.missingCount == 2)
        #expect(missing.duplicated == 1)
        #expect(
            missing.line
                == "centre journal: 2 alarms recorded, 2 of 3 acknowledged alarms MISSING (device 2 alarm 7, device 3 alarm 9); 1 acknowledged alarms recorded MORE THAN ONCE")
    }
}
