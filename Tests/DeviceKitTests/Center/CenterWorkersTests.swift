import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// Several centres on one port (SO_REUSEPORT) sharing one journal, as `devicesim center --workers N` runs
/// them: the journal, not a process's memory, decides whether a session may open and whether an alarm is new.
@Suite(.serialized) struct CenterWorkersTests {
    /// Two centres in this process bound to the same TCP and UDP ports, on one journal file.
    static func startPair(_ journal: String) async throws -> [RunningCentre] {
        let first = try await RunningCentre.start(journal: journal) { $0.reusePort = true }
        let second = try await RunningCentre.start(journal: journal) { configuration in
            configuration.reusePort = true
            configuration.tcpPort = first.ports.tcp
            configuration.udpPort = first.ports.udp
        }
        #expect(second.ports.tcp == first.ports.tcp && second.ports.udp == first.ports.udp)
        return [first, second]
    }

    /// Connects device `id` over TCP until the kernel hands the connection to `centres[target]`: it picks one
    /// of the sockets on the port by each connection's 4-tuple, so a few tries reach either.
    static func connect(_ id: UInt32, to target: Int, of centres: [RunningCentre]) async throws -> TestDevice {
        let accepted = "center_connections_accepted_total"
        for _ in 0..<100 {
            let before = centres.map { $0.metric(accepted) }
            let device = try await TestDevice.connect(id, to: centres[target])
            try await eventually("one of the centres accepts the connection") {
                zip(centres, before).contains { $0.metric(accepted) > $1 }
            }
            if centres[target].metric(accepted) > before[target] { return device }
            await device.close()
        }
        throw HarnessError("100 connections never reached centre \(target)")
    }

    static let start = Message.sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1))

    @Test func aSessionStartReplayedToTheOtherCentreIsRefusedByTheJournal() async throws {
        let journal = temporaryJournal()
        let centres = try await Self.startPair(journal)
        let (a, b) = (centres[0], centres[1])
        let onA = try await Self.connect(1, to: 0, of: centres)
        onA.setCounter(65_536)
        #expect(try await onA.handshake() != nil)

        // B started before this session and holds no anchor of device 1 in memory: only the journal knows.
        let onB = try await Self.connect(1, to: 1, of: centres)
        onB.setCounter(65_536)
        try await onB.send(Self.start)  // the same frame as A accepted: a replay
        try await eventually("B refuses the replay as stale") { b.metric(#"center_frames_refused_total{category="stale"}"#) == 1 }
        onB.setCounter(60_000)
        try await onB.send(Self.start)  // an older anchor
        try await eventually("B refuses the older anchor too") {
            b.metric(#"center_frames_refused_total{category="stale"}"#) == 2
        }
        #expect(onB.inbound.all.isEmpty, "B answered a replayed or older sessionStart")
        #expect(b.metric("center_sessions_opened_total") == 0)
        #expect(try CenterJournal(path: journal).anchors() == [1: 65_536])

        // The device itself moves to B with a new anchor: accepted, and the journal holds it.
        onB.setCounter(70_000)
        #expect(try await onB.handshake() != nil)
        #expect(b.metric("center_sessions_opened_total") == 1)
        #expect(try CenterJournal(path: journal).anchors() == [1: 70_000])
        // A replay of that new session's start to A is refused there, although A's memory says 65,536.
        let again = try await Self.connect(1, to: 0, of: centres)
        again.setCounter(70_000)
        try await again.send(Self.start)
        try await eventually("A refuses the replay as stale") { a.metric(#"center_frames_refused_total{category="stale"}"#) == 1 }
        #expect(again.inbound.all.isEmpty)
        #expect(a.metric("center_sessions_opened_total") == 1)
        for centre in centres { await centre.stop() }
    }

    @Test func anAlarmRetransmittedToTheOtherCentreIsAcknowledgedButDispatchedOnce() async throws {
        let journal = temporaryJournal()
        let centres = try await Self.startPair(journal)
        let (a, b) = (centres[0], centres[1])
        let onA = try await Self.connect(1, to: 0, of: centres)
        try await onA.handshake()
        try await onA.send(.testAlarm(7))
        #expect(try await onA.received { $0 == .ack(Ack(id: 7)) } != nil)

        // The device lost A's ack, say, reconnected, and the kernel handed it to B: it sends alarm 7 again.
        let onB = try await Self.connect(1, to: 1, of: centres)
        onB.setCounter(onA.counter + 100)
        #expect(try await onB.handshake() != nil)
        try await onB.send(.testAlarm(7))
        #expect(try await onB.received { $0 == .ack(Ack(id: 7)) } != nil, "B acknowledges the retransmission")
        _ = try await b.events.first { $0 == .duplicateAlarm(device: 1, alarmID: 7) }

        let alarms = centres.map { centre in centre.events.all.count { if case .alarm = $0 { true } else { false } } }
        #expect(alarms == [1, 0], "alarm events of A and B")
        #expect(a.metric("center_alarms_recorded_total") + b.metric("center_alarms_recorded_total") == 1)
        #expect(b.metric("center_alarms_duplicate_total") == 1)
        for centre in centres { await centre.stop() }
        let reopened = try CenterJournal(path: journal)
        #expect(try reopened.alarms().map(\.alarmID) == [7])
        #expect(try reopened.openCases().map(\.alarmID) == [7], "one case for the alarm, not two")
    }

    // MARK: devicesim center --workers

    static let master = String(repeating: "5a", count: 32)

    /// Starts `devicesim center --workers 2 arguments…` and waits for its "listening" line; returns it and the process.
    static func launchWorkers(
        directory: String, port: Int, metricsPort: Int, arguments: [String] = [], input: Pipe? = nil
    ) async throws -> (Process, String, String) {
        let output = directory + "/centre.out"
        let process = try ChildProcess.launch(
            [
                "center", "--workers", "2", "--host", "127.0.0.1", "--port", "\(port)", "--metrics-port", "\(metricsPort)",
                "--master", master, "--journal", directory + "/centre.sqlite", "--heartbeat-interval", "1",
                "--rate", "100", "--burst", "100", "--auto-engage-after", "50", "--auto-close-after", "0.1",
            ] + arguments, output: output, input: input)
        let text = { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
        do {
            try await eventually("the workers listen, or the centre ends") {
                text().contains("2 workers listen") || !process.isRunning
            }
        } catch {
            kill(process.processIdentifier, SIGKILL)
            throw error
        }
        guard process.isRunning else { throw HarnessError("the centre ended before listening: \(text())") }
        return (process, output, text())
    }

    @Test func twoWorkerProcessesShareTheTCPDevicesOfALoadRunAndLoseNoAlarm() async throws {
        let directory = NSTemporaryDirectory() + "workers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try await freeLoopbackPorts(span: 3)  // the centre's, then the two workers' metrics ports
        let metricsPort = port + 1
        let (centre, output, _) = try await Self.launchWorkers(directory: directory, port: port, metricsPort: metricsPort)
        defer { if centre.isRunning { kill(centre.processIdentifier, SIGKILL) } }

        let plan = LoadPlan(
            centre: try SocketAddress(ipAddress: "127.0.0.1", port: port),
            master: try FleetMasterKey(bytes: Array(repeating: 0x5A, count: 32)), transport: .tcp, fleetSize: 300,
            rampRate: 1000, fleetAlarmRate: 40, cancelShare: 0.3, duration: .milliseconds(1500),
            settle: .milliseconds(500), drain: .seconds(100), seed: 7)
        let report = try await LoadRunner(plan: plan, group: MultiThreadedEventLoopGroup.singleton).run()
        let c = report.counts
        #expect(report.devices == 300)
        #expect(c.sessionsOpened >= 300)
        #expect(c.alarmsSent > 20)
        #expect(c.alarmsAcknowledged == c.alarmsSent)
        #expect(c.alarmsLost == 0)

        // Both workers took connections and opened sessions; together they recorded each alarm once.
        var accepted: [Double] = []
        var sessions: [Double] = []
        var recorded: [Double] = []
        for worker in 0..<2 {
            let text = try await httpGet(port: metricsPort + worker, path: "/metrics")
            accepted.append(Self.sample("center_connections_accepted_total", in: text))
            sessions.append(Self.sample("center_sessions_opened_total", in: text))
            recorded.append(Self.sample("center_alarms_recorded_total", in: text))
        }
        #expect(accepted.allSatisfy { $0 > 0 }, "connections accepted by worker 0 and 1: \(accepted)")
        #expect(sessions.allSatisfy { $0 > 0 } && sessions.reduce(0, +) >= 300, "sessions by worker: \(sessions)")
        #expect(recorded.reduce(0, +) == Double(c.alarmsAcknowledged), "alarms recorded by worker: \(recorded)")

        centre.terminate()  // SIGTERM to the parent, which forwards it
        try await ChildProcess.exit(centre, within: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(centre.terminationStatus == 0, "\(text)")
        let alarms = try CenterJournal(path: directory + "/centre.sqlite").alarms()
        #expect(alarms.count == c.alarmsAcknowledged)
        #expect(Set(alarms.map { "\($0.device)/\($0.alarmID)" }).count == alarms.count)
    }

    @Test func aWorkerThatDiesStopsTheCentreWithAnErrorNamingIt() async throws {
        let directory = NSTemporaryDirectory() + "workers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try await freeLoopbackPorts(span: 3)
        let (centre, output, line) = try await Self.launchWorkers(directory: directory, port: port, metricsPort: port + 1)
        defer { if centre.isRunning { kill(centre.processIdentifier, SIGKILL) } }
        let pids = try #require(Self.workerPIDs(in: line))
        #expect(pids.count == 2)
        kill(pids[1], SIGKILL)
        try await ChildProcess.exit(centre, within: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(centre.terminationStatus != 0)
        #expect(text.contains("centre worker 1 (pid \(pids[1])) was killed by signal 9 unexpectedly"), "\(text)")
        // The other worker was stopped, not left serving alone.
        try await eventually("worker 0 ends") { kill(pids[0], 0) != 0 }
    }

    /// The pids of the "workers listen" line.
    static func workerPIDs(in output: String) -> [Int32]? {
        output.split(separator: "\n").first { $0.contains("workers listen") }?
            .components(separatedBy: "pids ").last?.split(separator: ";").first?.split(separator: " ").compactMap { Int32($0) }
    }

    /// `--stop-with-stdin` on the parent of workers, as `devicesim load --spawn-center --center-arg --workers …`
    /// starts it: the end of its standard input stops every worker, and the centre ends as on SIGTERM.
    @Test func theParentOfWorkersStopsThemWhenItsStandardInputCloses() async throws {
        let directory = NSTemporaryDirectory() + "workers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try await freeLoopbackPorts(span: 3)
        let input = Pipe()
        let (centre, output, line) = try await Self.launchWorkers(
            directory: directory, port: port, metricsPort: port + 1, arguments: ["--stop-with-stdin"], input: input)
        defer { if centre.isRunning { kill(centre.processIdentifier, SIGKILL) } }
        let pids = try #require(Self.workerPIDs(in: line))
        #expect(pids.count == 2)
        try input.fileHandleForWriting.close()
        try await ChildProcess.exit(centre, within: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(centre.terminationReason == .exit && centre.terminationStatus == 0, "\(text)")
        // The parent returns once it has reaped every worker.
        for pid in pids { #expect(kill(pid, 0) != 0, "worker \(pid) still runs") }
    }

    @Test func workersOnPortZeroAreRefusedWithAHint() async throws {
        let result = try await ChildProcess.run(["center", "--workers", "2", "--port", "0", "--master", Self.master])
        #expect(result.status != 0)
        #expect(result.output.contains("give one, e.g. --port 7700"), "\(result.output)")
    }

    static func sample(_ name: String, in text: String) -> Double {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces)) ?? .nan
        }
        return 0
    }
}
