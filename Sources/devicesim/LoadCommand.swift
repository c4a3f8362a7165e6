import ArgumentParser
import DeviceKit
import Foundation
import NIOCore
import NIOPosix

/// `devicesim load`: many simulated devices against a dispatch centre, and the latency report.
struct LoadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Simulate a fleet of devices against a centre and measure alarm, session and heartbeat latencies.",
        discussion: """
            Each simulated device seals, retransmits and reconnects with the firmware's own code; devices share \
            the event loops (one per core) and, over UDP, sockets. Keys come from the fleet master key, so start \
            the centre with the same one: `devicesim center --master HEX`, or let the tool start (and crash) one with \
            --spawn-center. Latencies are measured from the \
            intended instant (the Poisson schedule, the ramp, the timer), so a stalled loop shows in them.
            """,
        subcommands: [LoadRunCommand.self, LoadMergeCommand.self, LoadCompareCommand.self],
        defaultSubcommand: LoadRunCommand.self
    )
}

/// Options shared by the run and the merge: objectives and the JSON file.
struct LoadOutputOptions: ParsableArguments {
    @Option(name: .customLong("slo"), help: "An objective such as 'alarm.p99<100ms', 'heartbeat.max<=2s' or 'lost==0'; repeat for more. Any missed: exit status 1. A latency over no sample at all is missed.")
    var objectives: [String] = []

    @Option(help: "Write the whole report (counts, percentiles, full histograms, context) to this JSON file, for `devicesim load merge` and `load compare`.")
    var json: String?

    @Option(help: "Write a self-contained HTML report to this file: PASS/FAIL banner with each objective, the run's context, latencies, rates over time with the run's phases, percentile plots, failures by reason, the data as .hgrm and CSV (no network needed to open it).")
    var html: String?

    @Option(help: ArgumentHelp("Write each latency histogram that measured something as HdrHistogram's percentile distribution (ms), PREFIX.alarm.hgrm, PREFIX.session.hgrm, …, for HdrHistogram's plotter.", valueName: "prefix"))
    var hgrm: String?

    @Option(help: "Write the run second by second (alarms raised, sent, acknowledged and their p50/p99/max, devices online, sessions, failures, retransmissions) to this CSV file.")
    var csv: String?

    func parsedObjectives() throws -> [ServiceLevelObjective] {
        do {
            return try objectives.map { text throws(LoadError) in try ServiceLevelObjective(parsing: text) }
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Prints the table and the verdicts, writes the JSON; exits 1 when an objective is missed. The report
    /// carries this command line, the host and the build, and `began` (when the run began).
    func finish(_ report: LoadReport, began: Date) throws {
        var report = report
        report.context = LoadRunContext.current(arguments: Array(CommandLine.arguments.dropFirst()), began: began)
        print(report.table)
        if let json {
            try writeReportFile(try report.json(), to: json, what: "the JSON report")
            print("report written to \(json)")
        }
        let objectives = try parsedObjectives()
        if let html {
            try writeReportFile(Data(report.html(objectives: objectives).utf8), to: html, what: "the HTML report")
            print("HTML report written to \(html)")
        }
        if let hgrm {
            for (metric, text) in report.percentileDistributions {
                let path = "\(hgrm).\(metric.rawValue).hgrm"
                try writeReportFile(Data(text.utf8), to: path, what: "the \(metric.label) histogram")
                print("\(metric.label) written to \(path)")
            }
        }
        if let csv {
            try writeReportFile(Data(report.secondsCSV.utf8), to: csv, what: "the seconds' CSV")
            print("second by second written to \(csv)")
        }
        let (lines, allMet) = ServiceLevelObjective.verdict(objectives, for: report)
        for line in lines { print(line) }
        fflush(nil)
        if !allMet || report.centreJournal?.passed == false { throw ExitCode(1) }
    }
}

/// The options of `devicesim load run` that say what the fleet does and against which centre: the ones a
/// coordinator passes on, as they were given, to each of its worker processes (with each worker's `--ramp`).
///
/// Each option is rendered back in `arguments`, in the order declared; LoadPlanOptionsTests fails for one
/// that is not, or that does not parse back to its value. Options a worker must not get as given (the
/// shard, the key, the report file, the workers) belong to `LoadRunCommand`, which sets the worker's own.
struct LoadPlanOptions: ParsableArguments {
    @Option(help: "The centre, HOST:PORT (the same port serves TCP and UDP); [::1]:PORT for IPv6. With --spawn-center, where the spawned centre listens.")
    var center: String?

    @Option(help: "Devices in the whole fleet; with shards, each process runs its part.")
    var devices: Int

    @Option(help: "tcp (one connection per device; 18,000 a worker process) or udp (devices share sockets; one process).")
    var transport: String = "tcp"

    @Option(help: "New sessions a second while the fleet connects.")
    var ramp: Double = 1000

    @Option(help: "Heartbeat interval in seconds, overriding the one the centre sets (default: the centre's, as the firmware does); with --spawn-center, the spawned centre's too (default 30).")
    var heartbeat: UInt16?

    @Option(help: "Alarms a second across the whole fleet, as a Poisson process, during the steady phase (default 2); each goes to a home without an alarm open.")
    var alarmRate: Double?

    @Option(help: "Device events (battery low and OK again, tamper) a second across the fleet, a Poisson process (default 0).")
    var eventRate: Double?

    @Option(help: "A scenario file (TOML, see examples/load/power-cut.toml): phases with their lengths, alarm and event rates and mains lost or restored; replaces --duration, --alarm-rate and --event-rate.")
    var scenario: String?

    @Option(help: "Links to cut a second across the fleet during the steady phase: a TCP connection closed, a UDP session lost; the device reconnects with backoff and resends.")
    var dropLinks: Double = 0

    @Option(help: "Share of datagrams thrown away in each direction, 0 to below 1 (UDP only), for example 0.1.")
    var udpLoss: Double = 0

    @Option(help: "The share of acknowledged alarms that are then cancelled, 0 to 1.")
    var cancelShare: Double = 0.1

    @Option(help: "The share of alarms whose device answers the centre's call (SRTP voice both ways, as the firmware's), 0 to 1; the others decline it. The centre calls when an operator engages the case.")
    var callShare: Double = 0

    @Option(help: "Seconds an answered call lasts before the device hangs up, unless the centre ends it first (closing the case ends it).")
    var callDuration: Double = 30

    @Option(help: "Seconds of the steady phase (alarms are raised), after the ramp and one second to settle (default 60).")
    var duration: Double?

    @Option(help: "Seconds to wait after the steady phase for outstanding acks; alarms still unacknowledged then are lost.")
    var drain: Double = 10

    @Option(help: "The first device id of the fleet.")
    var firstID: UInt32 = 1

    @Option(help: "Over UDP: how many devices share one socket.")
    var devicesPerSocket: Int = 1000

    /// These options as a command line that parses back to them, one entry an option, in the order above;
    /// an option left out (`nil`) is left to its default.
    var arguments: [String] {
        let options: [(name: String, value: (any CustomStringConvertible)?)] = [
            ("--center", center),
            ("--devices", devices),
            ("--transport", transport),
            ("--ramp", ramp),
            ("--heartbeat", heartbeat),
            ("--alarm-rate", alarmRate),
            ("--event-rate", eventRate),
            ("--scenario", scenario),
            ("--drop-links", dropLinks),
            ("--udp-loss", udpLoss),
            ("--cancel-share", cancelShare),
            ("--call-share", callShare),
            ("--call-duration", callDuration),
            ("--duration", duration),
            ("--drain", drain),
            ("--first-id", firstID),
            ("--devices-per-socket", devicesPerSocket),
        ]
        return options.flatMap { name, value in value.map { [name, $0.description] } ?? [] }
    }

    func validate() throws {
        guard Transport(rawValue: transport) != nil else { throw ValidationError("--transport must be tcp or udp, not '\(transport)'.") }
        guard devicesPerSocket >= 1 else { throw ValidationError("--devices-per-socket must be at least 1.") }
        if scenario != nil, duration != nil || alarmRate != nil || eventRate != nil {
            throw ValidationError("The scenario file sets the phases' lengths and rates: drop --duration, --alarm-rate and --event-rate, or the --scenario.")
        }
    }

    /// The plan of `shard` of the fleet, with keys from `master`, against `centre`; without source addresses.
    func plan(centre: SocketAddress, master: FleetMasterKey, shard: FleetShard) throws -> LoadPlan {
        let duration = duration ?? 60
        guard duration >= 0, duration < 1e9, drain >= 0, drain < 1e9 else {
            throw ValidationError("--duration and --drain must be 0 seconds or more, for example --duration 60.")
        }
        var plan = LoadPlan(
            centre: centre, master: master, transport: Transport(rawValue: transport) ?? .tcp, firstID: firstID,
            fleetSize: devices, shard: shard, rampRate: ramp, fleetAlarmRate: alarmRate ?? 2, cancelShare: cancelShare,
            heartbeatOverride: heartbeat, duration: .milliseconds(Int64(duration * 1000)),
            drain: .milliseconds(Int64(drain * 1000)), devicesPerSocket: devicesPerSocket)
        plan.fleetEventRate = eventRate ?? 0
        plan.fleetLinkDropRate = dropLinks
        plan.udpLoss = udpLoss
        plan.callShare = callShare
        guard callDuration > 0, callDuration < 1e6 else { throw ValidationError("--call-duration must be above 0 seconds, for example 30.") }
        plan.callDuration = .milliseconds(Int64(callDuration * 1000))
        if let scenario {
            guard let data = FileManager.default.contents(atPath: scenario) else {
                throw ValidationError("Cannot read the scenario \(scenario): check the path (an example: examples/load/power-cut.toml).")
            }
            plan.scenario = try LoadScenario(toml: String(decoding: data, as: UTF8.self), file: scenario)
        }
        return plan
    }
}

struct LoadRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a load test (the default: `devicesim load --center …` is `devicesim load run --center …`).")

    @OptionGroup var planOptions: LoadPlanOptions

    @Option(help: "This process's shard, I/N with I from 0 (as JOB_COMPLETION_INDEX), of the fleet's ids.")
    var shard: String?

    @Option(help: "The number of shards; the index comes from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).")
    var shards: Int?

    /// The fleet master key, the one the centre was started with.
    @OptionGroup var masterKey: MasterKeyOptions

    @Option(help: "Worker processes to spread this process's devices over, each at most 19,000 TCP devices (default: one per 18,000 TCP devices, one for UDP); one live progress line and one merged report.")
    var workers: Int?

    @Option(name: .customLong("source-addresses"), help: "Local addresses TCP devices connect from, in turn: a range 127.0.0.1-127.0.0.8 or a list 10.0.0.5,10.0.0.6 (default: for a centre on 127.0.0.0/8, 127.0.0.1, 127.0.0.2, … one per 1,000 devices).")
    var sourceAddressList: String?

    @Option(help: ArgumentHelp("Run as a worker of a coordinator starting at this CLOCK_MONOTONIC instant (ns): progress as JSON on standard output.", visibility: .hidden))
    var worker: UInt64?

    @Flag(help: "No progress line.")
    var quiet = false

    @OptionGroup var output: LoadOutputOptions

    @OptionGroup(title: "A centre the tool starts, and crashes") var spawnedCenter: SpawnedCenterOptions

    func validate() throws {
        guard planOptions.center != nil || spawnedCenter.spawnCenter else {
            throw ValidationError("Name the centre with --center HOST:PORT, or let the tool start one with --spawn-center.")
        }
        guard masterKey.isGiven() else {
            throw ValidationError("Give the fleet master key the centre uses: --master-file FILE, $\(MasterKeyOptions.environmentVariable), or systemd credentials (\(MasterKeyOptions.credentialName)).")
        }
        if shard != nil && shards != nil { throw ValidationError("Use --shard I/N, or --shards N with JOB_COMPLETION_INDEX, not both.") }
        _ = try output.parsedObjectives()
        do {
            let plan = try plan(centre: SocketAddress(ipAddress: "127.0.0.1", port: 1))
            let workers = workerCount(for: plan)
            try plan.validate(workers: workers)
            try spawnedCenter.restartSchedule.validate(steadyDuration: plan.steadyDuration)
            if spawnedCenter.spawnCenter, workers > 1 {
                throw LoadError(
                    "--spawn-center runs the devices in this one process, with the centre's journal checked against them: use --workers 1 (at most 19,000 TCP devices) or --transport udp, or start the centre yourself (devicesim center --workers N) and give --center")
            }
        } catch let error as LoadError {
            throw ValidationError(error.description + ".")
        }
    }

    private func fleetShard() throws -> FleetShard {
        if let shard { return try FleetShard(parsing: shard) }
        if let shards {
            guard let index = ProcessInfo.processInfo.environment["JOB_COMPLETION_INDEX"] else {
                throw LoadError("--shards needs JOB_COMPLETION_INDEX in the environment (a Kubernetes Indexed Job sets it); or use --shard I/N")
            }
            return try FleetShard(parsing: "\(index)/\(shards)")
        }
        return .whole
    }

    func masterHex() throws -> String {
        (try masterKey.hex()?.hex ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func fleetMasterKey() throws -> FleetMasterKey {
        guard let key = try masterKey.key() else { throw ValidationError("no fleet master key given") }
        return key
    }

    private func plan(centre: SocketAddress) throws -> LoadPlan {
        var plan = try planOptions.plan(centre: centre, master: try fleetMasterKey(), shard: try fleetShard())
        plan.sourceAddresses = try sourceAddresses(centre: centre, devices: plan.ids.count)
        return plan
    }

    private func centreAddress() throws -> SocketAddress {
        let center = planOptions.center ?? ""
        var host = Substring(center)
        guard let colon = host.lastIndex(of: ":"), let port = Int(host[host.index(after: colon)...]), (1...65535).contains(port) else {
            throw ValidationError("--center '\(center)' is not HOST:PORT: write for example 127.0.0.1:7700 or [::1]:7700.")
        }
        host = host[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        do {
            return try SocketAddress.makeAddressResolvingHost(String(host), port: port)
        } catch {
            throw ValidationError("--center: cannot resolve '\(host)': \(error)")
        }
    }

    func run() async throws {
        let began = Date()
        let given = try planOptions.center.map { _ in try centreAddress() }
        var plan = try plan(centre: try given ?? SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let workers = workerCount(for: plan)
        try plan.validate(workers: workers)
        if workers > 1 { return try await coordinate(plan, workers: workers, began: began) }
        let spawned = try await spawnedCenter.start(on: given, masterHex: try masterHex(), heartbeat: planOptions.heartbeat)
        if let spawned {
            plan.centre = spawned.address
            plan.keepsAcknowledgedAlarms = true
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let runner = LoadRunner(plan: plan, group: group)
        var report: LoadReport
        do {
            report = try await runner.run(startingAt: workerStart(), beside: spawned?.crashes(during: plan), progress: progressOutput())
        } catch {
            try? await group.shutdownGracefully()
            await spawned?.abandon()
            throw error
        }
        try await group.shutdownGracefully()
        try await spawned?.finish(&report, acknowledged: runner.acknowledgedAlarms)
        try output.finish(report, began: began)
    }
}

struct LoadMergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Add up the JSON reports of several shards, histograms exactly, and print the fleet's table.")

    @Argument(help: "The shards' reports, written by `devicesim load --json FILE`.")
    var reports: [String]

    @OptionGroup var output: LoadOutputOptions

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("Name the shards' JSON reports to merge: devicesim load merge a.json b.json") }
        _ = try output.parsedObjectives()
    }

    func run() async throws {
        var loaded: [LoadReport] = []
        for path in reports {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("Cannot read \(path): check the path.")
            }
            loaded.append(try LoadReport(json: data, name: path))
        }
        // The merged run began when its earliest shard did.
        let dates = loaded.compactMap { $0.context?.date }.compactMap { ISO8601DateFormatter().date(from: $0) }
        try output.finish(try LoadReport.merge(loaded), began: dates.min() ?? Date())
    }
}

struct LoadCompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare the JSON reports of several runs, the first the baseline: did a change make it better or worse?",
        discussion: """
            Prints each latency's p50 … p99.99 and max for every run with its change from the baseline, and the \
            counts; --html draws the runs' percentile curves over each other, as HdrHistogram's plotter does.
            """)

    @Argument(help: "The runs' reports, written by `devicesim load --json FILE` (or `load merge --json`); the first is the baseline.")
    var reports: [String]

    @Option(help: "Write the comparison as a self-contained HTML page to this file (no network needed to open it).")
    var html: String?

    func validate() throws {
        guard reports.count >= 2 else { throw ValidationError("Name two reports or more to compare: devicesim load compare before.json after.json") }
    }

    func run() async throws {
        var runs: [LoadComparison.Run] = []
        for path in reports {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ValidationError("Cannot read \(path): check the path.")
            }
            runs.append(LoadComparison.Run(name: path, report: try LoadReport(json: data, name: path)))
        }
        let comparison = try LoadComparison(runs)
        print(comparison.table)
        if let html {
            try writeReportFile(Data(comparison.html().utf8), to: html, what: "the HTML comparison")
            print("HTML comparison written to \(html)")
        }
    }
}

/// Writes one of the files a load run or comparison was asked for, or says which and why it could not (the
/// system's reason, which Foundation's error hides).
private func writeReportFile(_ data: Data, to path: String, what: String) throws {
    func failure(_ reason: String) -> LoadError {
        LoadError("cannot write \(what) to \(path) (\(reason.lowercased())): check that its directory exists and that you may write there")
    }
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw failure(String(cString: strerror(errno))) }
    close(descriptor)
    do {
        try data.write(to: URL(fileURLWithPath: path))
    } catch {
        throw failure(error.localizedDescription)
    }
}
