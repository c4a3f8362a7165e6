import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import DeviceKit

/// How a load run is split over worker processes and source addresses: the pure arithmetic.
@Suite struct LoadWorkersTests {
    static let key = try! FleetMasterKey(bytes: Array(repeating: 1, count: 32))

    func plan(fleet: Int, shard: FleetShard = .whole, transport: Transport = .tcp) throws -> LoadPlan {
        var plan = LoadPlan(
            centre: try .init(ipAddress: "127.0.0.1", port: 1), master: Self.key, transport: transport, firstID: 7, fleetSize: fleet,
            shard: shard, rampRate: 3000, fleetAlarmRate: 13)
        plan.fleetEventRate = 5
        plan.fleetLinkDropRate = 2
        return plan
    }

    /// Workers of shard I/N run shards (I·n + j)/(N·n): together exactly the process's ids, each once, in order;
    /// and the processes of a sharded fleet, each split, cover the fleet.
    @Test func workersSplitAShardIntoDisjointBlocksThatCoverIt() throws {
        for fleet in [1, 2, 7, 100, 1_001, 100_000, 99_991] {
            for shards in [1, 2, 3, 7] {
                var fleetIDs: [UInt64] = []
                for index in 0..<shards {
                    let parent = FleetShard(index: index, count: shards)
                    let parentIDs = parent.ids(first: 7, fleet: fleet)
                    for workers in [1, 2, 3, 6] {
                        let blocks = parent.split(into: workers).map { $0.ids(first: 7, fleet: fleet) }
                        #expect(blocks.flatMap { Array($0) } == Array(parentIDs), "fleet \(fleet), shard \(parent), \(workers) workers")
                        #expect(blocks.map(\.count).max()! - blocks.map(\.count).min()! <= 1)
                    }
                    fleetIDs += Array(parentIDs)
                }
                #expect(fleetIDs == Array(7..<7 + UInt64(fleet)))
            }
        }
        #expect(FleetShard(index: 1, count: 3).split(into: 2) == [FleetShard(index: 2, count: 6), FleetShard(index: 3, count: 6)])
    }

    /// The workers' fleet-wide rates are their parts of the process's, which they add up to; their ramps
    /// add up to the process's, so every worker's ramp ends (and steady phase begins) with the process's.
    @Test func workersRatesAddUpToTheProcesss() throws {
        for (fleet, shard, workers) in [(100_000, FleetShard.whole, 6), (30_000, FleetShard(index: 1, count: 3), 2), (1_001, FleetShard(index: 0, count: 2), 7)] {
            let parent = try plan(fleet: fleet, shard: shard)
            let plans = parent.workerPlans(workers)
            #expect(plans.count == workers)
            func sum(_ value: (LoadPlan) -> Double) -> Double { plans.reduce(0) { $0 + value($1) } }
            #expect(abs(sum(\.alarmRate) - parent.alarmRate) < 1e-9)
            #expect(abs(sum(\.processShare) - parent.processShare) < 1e-12)
            #expect(abs(sum { $0.fleetEventRate * $0.processShare } - parent.fleetEventRate * parent.processShare) < 1e-9)
            #expect(abs(sum { $0.fleetLinkDropRate * $0.processShare } - parent.fleetLinkDropRate * parent.processShare) < 1e-9)
            #expect(abs(sum(\.rampRate) - parent.rampRate) < 1e-6)
            for worker in plans {
                #expect(worker.fleetAlarmRate == parent.fleetAlarmRate)  // fleet-wide: each takes its part by its ids
                // Within one ramp interval per worker of the process's start of the steady phase.
                let bound = Duration.seconds(Double(workers) / parent.rampRate)
                #expect((parent.steadyStart - bound...parent.steadyStart + bound).contains(worker.steadyStart))
            }
        }
    }

    @Test func workersAreChosenByTheOpenFileLimit() throws {
        #expect(LoadWorkers.automaticCount(transport: .tcp, devices: 18_000) == 1)
        #expect(LoadWorkers.automaticCount(transport: .tcp, devices: 18_001) == 2)
        #expect(LoadWorkers.automaticCount(transport: .tcp, devices: 100_000) == 6)
        #expect(LoadWorkers.automaticCount(transport: .udp, devices: 1_000_000) == 1)
        let big = try plan(fleet: 100_000)
        try big.validate(workers: LoadWorkers.automaticCount(transport: .tcp, devices: big.ids.count))
        // An explicit one process keeps the limit, and the message says what to type instead.
        #expect { try big.validate(workers: 1) } throws: { "\($0)".contains("leave out --workers") && "\($0)".contains("--workers 6") }
        #expect(throws: LoadError.self) { try big.validate(workers: 5) }
        try plan(fleet: 100_000, transport: .udp).validate(workers: 1)
        #expect(throws: LoadError.self) { try plan(fleet: 3).validate(workers: 4) }
        #expect(throws: LoadError.self) { try plan(fleet: 3).validate(workers: 0) }
    }

    @Test func sourceAddressesAreReadFromARangeOrAList() throws {
        let range = try SourceAddresses(parsing: "127.0.0.1-127.0.0.8")
        #expect(range.addresses.compactMap(\.ipAddress) == (1...8).map { "127.0.0.\($0)" })
        #expect(try SourceAddresses(parsing: "127.0.0.255-127.0.1.1").addresses.compactMap(\.ipAddress) == ["127.0.0.255", "127.0.1.0", "127.0.1.1"])
        let list = try SourceAddresses(parsing: "10.0.0.5, 10.0.0.6")
        #expect(list.addresses.compactMap(\.ipAddress) == ["10.0.0.5", "10.0.0.6"])
        #expect(try SourceAddresses(parsing: range.description) == range)
        #expect(range.address(for: 16).ipAddress == "127.0.0.1")
        #expect(range.address(for: 17).ipAddress == "127.0.0.2")
        for bad in ["", "127.0.0.8-127.0.0.1", "127.0.0.1-", "localhost", "127.0.0.1-127.0.8.1", "1.2.3.4,", "256.0.0.1-256.0.0.2"] {
            #expect(throws: LoadError.self, "\(bad)") { try SourceAddresses(parsing: bad) }
        }
    }

    /// Only a loopback centre and more devices than one address serves get addresses chosen by the tool.
    @Test func sourceAddressesAreChosenForALoopbackCentre() throws {
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 7700)
        let chosen = SourceAddresses.automatic(centre: loopback, devices: 100_000)
        #expect(chosen?.addresses.compactMap(\.ipAddress) == (0..<100).map { "127.0.\(($0 + 1) / 256).\(($0 + 1) % 256)" })
        #expect(SourceAddresses.automatic(centre: loopback, devices: 1_500)?.addresses.count == 2)
        #expect(SourceAddresses.automatic(centre: loopback, devices: 1_000) == nil)
        #expect(SourceAddresses.automatic(centre: try SocketAddress(ipAddress: "10.1.2.3", port: 7700), devices: 100_000) == nil)
        #expect(SourceAddresses.automatic(centre: try SocketAddress(ipAddress: "::1", port: 7700), devices: 100_000) == nil)
        var udp = try plan(fleet: 10)
        udp.transport = .udp
        udp.sourceAddresses = chosen
        #expect(throws: LoadError.self) { try udp.validate() }
    }
}

/// Worker processes and source addresses for real: the built `devicesim`, a centre on loopback.
@Suite(.serialized) struct LoadWorkerProcessTests {
    /// `devicesim load --workers 2`: two processes, one progress line, one merged report with both shards,
    /// every device's session opened at the centre from the addresses given, every alarm acknowledged.
    @Test func twoWorkerProcessesReportAsOneFleet() async throws {
        let centre = try await TestCentre.start()
        let json = NSTemporaryDirectory() + "load-workers-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: json) }
        let result = try await ChildProcess.run([
            "load", "--center", "127.0.0.1:\(centre.ports.tcp)", "--master", String(repeating: "5a", count: 32),
            "--transport", "tcp", "--devices", "300", "--first-id", "50001", "--workers", "2", "--ramp", "1000",
            "--alarm-rate", "30", "--duration", "2", "--drain", "100", "--source-addresses", "127.0.0.2-127.0.0.3",
            "--report", json,
        ])
        let seen = centre.stop()
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("300 devices over 2 worker processes (150 + 150), from 127.0.0.2,127.0.0.3"), "\(result.output)")
        #expect(result.output.contains("worker 1 of 2 (shard 0/2), process"), "\(result.output)")
        #expect(result.output.contains("worker 2 of 2 (shard 1/2), process"), "\(result.output)")
        // The coordinator's own progress line, whole-fleet figures.
        #expect(result.output.contains("/300  alarms/s"), "\(result.output)")
        let report = try LoadReport(json: try Data(contentsOf: URL(fileURLWithPath: json)), name: json)
        #expect(report.devices == 300)
        #expect(report.shards == ["0/2", "1/2"])
        let c = report.counts
        // Every device opened its session at the centre (below); a device counts it once the answer reaches
        // it, which on a loaded machine can be after its worker's run ended (298 of 300 seen in a full suite).
        let openedAtCentre = seen.count { if case .sessionOpened = $0 { true } else { false } }
        #expect(c.sessionsOpened > 0 && c.sessionsOpened <= openedAtCentre)
        #expect(c.alarmsSent > 20)  // 30/s for 2 s
        #expect(c.alarmsAcknowledged == c.alarmsSent)
        #expect(c.alarmsLost == 0)
        #expect(report.histogram(.alarm).count == UInt64(c.alarmsAcknowledged))
        let opened = Set(seen.compactMap { if case .sessionOpened(let device, _) = $0 { device } else { nil } })
        #expect(opened == Set(50_001...50_300))
    }

    /// A worker killed mid-run ends the run: exit status 70 (a failure, not a usage error nor a verdict: it was
    /// 1, which says an objective was missed), the error names it, the other worker is stopped.
    @Test func aWorkerThatDiesEndsTheRunAndIsNamed() async throws {
        let centre = try await TestCentre.start()
        defer { _ = centre.stop() }
        let output = NSTemporaryDirectory() + "load-workers-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let (coordinator, workers) = try await startLongRun(port: centre.ports.tcp, output: output)
        kill(workers[1], SIGKILL)
        try await ChildProcess.exit(coordinator, within: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 70, "\(text)")
        #expect(text.contains("process \(workers[1]), was killed by signal 9"), "\(text)")
        #expect(!text.contains("Usage:"), "\(text)")
        #expect(text.range(of: #"worker [12] of 2 \(shard [01]/2\)"#, options: .regularExpression) != nil, "\(text)")
        try await eventually("the other worker is stopped") { !Self.isRunning(workers[0]) }
    }

    /// SIGTERM to the coordinator reaches every worker, and the coordinator says so.
    @Test func sigtermToTheCoordinatorEndsEveryWorker() async throws {
        let centre = try await TestCentre.start()
        defer { _ = centre.stop() }
        let output = NSTemporaryDirectory() + "load-workers-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let (coordinator, workers) = try await startLongRun(port: centre.ports.tcp, output: output)
        coordinator.terminate()
        try await ChildProcess.exit(coordinator, within: .seconds(120))
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(coordinator.terminationStatus == 130, "\(text)")
        #expect(text.contains("stopped by a signal: every worker process has ended"), "\(text)")
        // Ended, and reaped by whoever inherited them: a moment after the coordinator's own exit at most.
        try await eventually("every worker gone") { workers.allSatisfy { !Self.isRunning($0) } }
    }

    /// A coordinator of two workers that would run for ten minutes, returned once both workers are there.
    func startLongRun(port: Int, output: String) async throws -> (coordinator: Process, workers: [Int32]) {
        let coordinator = try ChildProcess.launch(
            [
                "load", "--center", "127.0.0.1:\(port)", "--master", String(repeating: "5a", count: 32), "--transport", "tcp",
                "--devices", "100", "--first-id", "60001", "--workers", "2", "--duration", "600",
            ], output: output)
        var workers: [Int32] = []
        try await eventually("the coordinator starts two workers") {
            workers = Self.children(of: coordinator.processIdentifier)
            return workers.count == 2
        }
        return (coordinator, workers)
    }

    /// Processes whose parent is `pid`, from /proc.
    static func children(of pid: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { candidate in
            guard let stat = try? String(contentsOfFile: "/proc/\(candidate)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            // "pid (comm) state ppid …": the command may hold spaces, so count from its closing parenthesis.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 1 && Int32(fields[1]) == pid && fields[0] != "Z"
        }.sorted()
    }

    /// Whether `pid` is a live process (not gone, not a zombie awaiting its parent).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: close)...].split(separator: " ").first != "Z"
    }

    /// Devices given source addresses connect from them, in turn by id (seen by a plain server that accepts).
    @Test func devicesConnectFromTheSourceAddressesGiven() async throws {
        let peers = Mutex<[String]>([])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                peers.withLock { $0.append(channel.remoteAddress?.ipAddress ?? "?") }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        var plan = LoadPlan(
            centre: try SocketAddress(ipAddress: "127.0.0.1", port: server.localAddress?.port ?? 0), master: LoadWorkersTests.key,
            transport: .tcp, firstID: 10, fleetSize: 40, rampRate: 1000, fleetAlarmRate: 0, duration: .seconds(600),
            settle: .milliseconds(100), drain: .zero, handshakeTimeout: .seconds(600))
        plan.sourceAddresses = try SourceAddresses(parsing: "127.0.0.2-127.0.0.3")
        let run = Task { try await LoadRunner(plan: plan, group: MultiThreadedEventLoopGroup.singleton).run() }
        try await eventually("the server accepts the 40 connections") { peers.withLock { $0.count } >= 40 }
        run.cancel()
        await #expect(throws: CancellationError.self) { try await run.value }
        try await server.close()
        let byAddress = Dictionary(grouping: peers.withLock { $0 }, by: { $0 }).mapValues(\.count)
        #expect(byAddress == ["127.0.0.2": 20, "127.0.0.3": 20])
    }
}
