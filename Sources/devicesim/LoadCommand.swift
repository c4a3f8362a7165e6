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
            the centre with the same one: `devicesim center --master-file FILE`, or let the tool start (and crash) \
            one with --spawn-center. Latencies are measured from the intended instant (the Poisson schedule, the \
            ramp, the timer), so a stalled loop shows in them. Durations take a unit (250ms, 1.5s, 2min); a plain \
            number is seconds.

            \(loadExitStatus)
            """,
        subcommands: [LoadRunCommand.self, LoadMergeCommand.self, LoadCompareCommand.self],
        defaultSubcommand: LoadRunCommand.self
    )
}

/// The exit status paragraph of `load`, `load run` and `load merge`.
let loadExitStatus = ExitStatus.help(
    [.verdict, .dataError, .noInput, .noHost, .software, .cannotCreate, .ioError, .noPermission, .configuration],
    [.verdict: "an objective (--slo) was missed, or the centre's journal (--center-journal) lacks an acknowledged alarm or holds one twice",
     .dataError: "a report to merge or compare is not one this devicesim reads",
     .noInput: "the master key file, the scenario or a report to merge is missing",
     .noHost: "--center's or --secondary's host does not resolve",
     .software: "an internal error, or a worker process failed",
     .cannotCreate: "a report file cannot be written, or nothing can be written in --record-calls' directory",
     .ioError: "a call recording could not be written",
     .configuration: "the master key or the scenario is invalid"])

/// Options shared by the run and the merge: objectives and the report files.
struct LoadOutputOptions: ParsableArguments {
    @Option(name: .customLong("slo"), help: "An objective such as 'alarm.p99<100ms', 'heartbeat.max<=2s' or 'lost==0'; repeat for more. Any missed: exit status 1. A latency over no sample at all is missed.")
    var objectives: [String] = []

    @Option(help: "Write the whole report (counts, percentiles, full histograms, context) to this JSON file, for `devicesim load merge` and `load compare`.")
    var report: String?

    @Flag(help: "Print the report as JSON on standard output instead of the table (the other lines go to standard error).")
    var json = false

    @Option(help: "Write a self-contained HTML report to this file: PASS/FAIL banner with each objective, the run's context, latencies, rates over time with the run's phases, percentile plots, failures by reason, the data as .hgrm and CSV (no network needed to open it).")
    var html: String?

    @Option(help: ArgumentHelp("Write each latency histogram that measured something as HdrHistogram's percentile distribution (ms), PREFIX.alarm.hgrm, PREFIX.session.hgrm, …, for HdrHistogram's plotter.", valueName: "prefix"))
    var hgrm: String?

    @Option(help: "Write the run second by second (alarms raised, sent, acknowledged and their p50/p99/max, devices online, sessions, failures, retransmissions) to this CSV file.")
    var csv: String?

    /// The hint for an old command line's `--json FILE`, now that `--json` is a switch and FILE an argument.
    func oldJSONOption(_ arguments: [String]) -> ValidationError? {
        guard json, let file = arguments.last(where: { $0.hasSuffix(".json") }) else { return nil }
        return ValidationError("--json is a switch now (the report as JSON on standard output): write the report file with --report \(file).")
    }

    func parsedObjectives() throws -> [ServiceLevelObjective] {
        do {
            return try objectives.map { text throws(LoadError) in try ServiceLevelObjective(parsing: text) }
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Prints the table (or with --json the report) and the verdicts, writes the report files; exits 1 when an
    /// objective is missed. The report carries this command line, the host and the build, and `began` (when the
    /// run began).
    func finish(_ report: LoadReport, began: Date) throws {
        var report = report
        report.context = LoadRunContext.current(arguments: Array(CommandLine.arguments.dropFirst()), began: began)
        // With --json, standard output carries the report alone.
        let say: (String) -> Void = json ? { FileHandle.standardError.write(Data(($0 + "\n").utf8)) } : { print($0) }
        if json {
            print(String(decoding: try report.json(), as: UTF8.self))
        } else {
            print(report.table)
        }
        if let path = self.report {
            try writeReportFile(try report.json(), to: path, what: "the report")
            say("report written to \(path)")
        }
        let objectives = try parsedObjectives()
        if let html {
            try writeReportFile(Data(report.html(objectives: objectives).utf8), to: html, what: "the HTML report")
            say("HTML report written to \(html)")
        }
        if let hgrm {
            for (metric, text) in report.percentileDistributions {
                let path = "\(hgrm).\(metric.rawValue).hgrm"
                try writeReportFile(Data(text.utf8), to: path, what: "the \(metric.label) histogram")
                say("\(metric.label) written to \(path)")
            }
        }
        if let csv {
            try writeReportFile(Data(report.secondsCSV.utf8), to: csv, what: "the seconds' CSV")
            say("second by second written to \(csv)")
        }
        let (lines, allMet) = ServiceLevelObjective.verdict(objectives, for: report)
        for line in lines { say(line) }
        fflush(nil)
        if !allMet || report.centerJournal?.passed == false { throw ExitCode(ExitStatus.verdict.rawValue) }
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

    @Option(help: "The devices' secondary centre, HOST:PORT, as the firmware's dual path: a device whose primary (--center) fails twice in a row opens its session here, and stays until its primary works again (it tries after 5 minutes).")
    var secondary: String?

    @Option(parsing: .unconditional, help: "Devices in the whole fleet; with shards, each process runs its part.")
    var devices: Int

    @Option(help: "tcp (one connection per device; 18,000 a worker process) or udp (devices share sockets; one process).")
    var transport: String = "tcp"

    @Option(parsing: .unconditional, help: "New sessions a second while the fleet connects.")
    var ramp: Double = 1000

    @Option(parsing: .unconditional, help: "Heartbeat interval in whole seconds, overriding the one the centre sets (default: the centre's, as the firmware does); with --spawn-center, the spawned centre's too (default 30s).", transform: DurationOption.seconds)
    var heartbeatInterval: DurationOption?

    /// `--heartbeat`, this option's old name, still accepted.
    @Option(name: .customLong("heartbeat"), parsing: .unconditional, help: .hidden, transform: DurationOption.seconds)
    var heartbeatAlias: DurationOption?

    @Option(parsing: .unconditional, help: "Alarms a second across the whole fleet, as a Poisson process, during the steady phase (default 2); each goes to a home without an alarm open.")
    var alarmRate: Double?

    @Option(parsing: .unconditional, help: "Device events (battery low and OK again, tamper) a second across the fleet, a Poisson process (default 0).")
    var eventRate: Double?

    @Option(help: "A scenario file (TOML, see examples/load/power-cut.toml): phases with their lengths, alarm and event rates and mains lost or restored; replaces --duration, --alarm-rate and --event-rate.")
    var scenario: String?

    @Option(parsing: .unconditional, help: "Links to cut a second across the fleet during the steady phase: a TCP connection closed, a UDP session lost; the device reconnects with backoff and resends.")
    var dropLinks: Double = 0

    @Option(parsing: .unconditional, help: "Share of datagrams thrown away in each direction, 0 to below 1 (UDP only), for example 0.1.")
    var udpLoss: Double = 0

    @Option(parsing: .unconditional, help: "The share of acknowledged alarms that are then cancelled, 0 to 1.")
    var cancelShare: Double = 0.1

    @Option(parsing: .unconditional, help: "The share of alarms whose device answers the centre's call (SRTP voice both ways, as the firmware's), 0 to 1; the others decline it. The centre calls when an operator engages the case. With --sip-call: the share of acknowledged alarms whose device places a SIP call.")
    var callShare: Double = 0

    @Option(parsing: .unconditional, help: "How long an answered call (ours or, with --sip-call, SIP) lasts before the device hangs up, unless the centre ends it first (closing the case ends it; default 30s).", transform: DurationOption.seconds)
    var callDuration: DurationOption?

    @Flag(help: "A measurement mode for calls: the devices write the send time into their voice and measure the one-way delay of the centre's stamped voice (a bridged operator phone's, `devicesim sip answer --stamp-voice`); the centre and the phone on this machine.")
    var stampVoice = false

    @Option(help: ArgumentHelp("Write what each device hears in each answered call (the µ-law voice packets it received, in arrival order) to DIR/device-<id>-call-<callID>.wav, µ-law 8 kHz mono, when the call ends; at most 10 minutes a call. DIR is made if missing. One process only (--workers 1).", valueName: "dir"))
    var recordCalls: String?

    @Option(parsing: .unconditional, help: "The steady phase (alarms are raised), after the ramp and one second to settle (default 60s).", transform: DurationOption.seconds)
    var duration: DurationOption?

    @Option(parsing: .unconditional, help: "How long to wait at most after the steady phase for outstanding acks; alarms still unacknowledged then are lost (default 10s; 30s with --drop-links or --udp-loss, under which an alarm may still be on its way after 10 s).", transform: DurationOption.seconds)
    var drain: DurationOption?

    @Option(parsing: .unconditional, help: "The first device id of the fleet.")
    var firstID: UInt32 = 1

    @Option(parsing: .unconditional, help: "Over UDP: how many devices share one socket.")
    var devicesPerSocket: Int = 1000

    @Option(name: .customLong("protocol"), help: ArgumentHelp(
        "devicekit (ours, the default) or dc09: the devices report over SIA DC-09 to any DC-09 receiver (docs/dc09.md).",
        discussion: """
            Over DC-09 each device reports under an account of its own, its id in hex with at least four digits \
            (device 1 is 0001); a NULL supervision frame goes every --heartbeat-interval (default 60s); latency is \
            event to ACK. Over UDP each DC-09 device has a socket of its own (a NAK names no account to route it \
            by). No master key is needed.
            """))
    var reportingProtocol: String = "devicekit"

    @Option(help: "Over DC-09: the payload, sia (SIA-DCS) or cid (ADM-CID, Contact ID).")
    var dc09Format: String = "sia"

    @Option(help: "Over DC-09: a file holding the accounts' AES key in hex (32, 48 or 64 digits); frames are then encrypted.")
    var dc09KeyFile: String?

    @Option(help: "Over DC-09: the receiver number, hex digits.")
    var dc09Receiver: String = "0"

    @Option(help: "Over DC-09: the line (account prefix), hex digits.")
    var dc09Line: String = "0"

    @Option(help: "The devices call this SIP address after an alarm's ack, as homes with [voice] sip do (sip:arc@HOST[:PORT]), each from a SIP port of its own; --call-share and --call-duration apply to these calls, and the report gives their set-up time (INVITE → 200), the calls held at once and each call's voice loss and jitter.")
    var sipCall: String?

    @Option(help: "With --sip-call: udp or tcp (default udp, or the URI's transport parameter).")
    var sipTransport: String?

    @Option(help: "With --sip-call: each device's SIP user is this prefix and its id (default: the id alone).")
    var sipUserPrefix: String?

    @Option(help: "With --sip-call: a file holding the digest password of every device (one line), for a PBX that asks for one.")
    var sipPasswordFile: String?

    @Option(parsing: .unconditional, help: "Event-loop threads for this process's devices (default: over UDP with our protocol and no calls, one per 20,000 round trips a second at the run's busiest, in the ramp or after it, at most one a core; otherwise one a core).")
    var loops: Int?

    /// These options as a command line that parses back to them, one entry an option, in the order above;
    /// an option left out (`nil`) is left to its default.
    var arguments: [String] {
        let options: [(name: String, value: (any CustomStringConvertible)?)] = [
            ("--center", center),
            ("--secondary", secondary),
            ("--devices", devices),
            ("--transport", transport),
            ("--ramp", ramp),
            ("--heartbeat-interval", heartbeatInterval),
            ("--heartbeat", heartbeatAlias),
            ("--alarm-rate", alarmRate),
            ("--event-rate", eventRate),
            ("--scenario", scenario),
            ("--drop-links", dropLinks),
            ("--udp-loss", udpLoss),
            ("--cancel-share", cancelShare),
            ("--call-share", callShare),
            ("--call-duration", callDuration),
            ("--record-calls", recordCalls),
            ("--duration", duration),
            ("--drain", drain),
            ("--first-id", firstID),
            ("--devices-per-socket", devicesPerSocket),
            ("--protocol", reportingProtocol),
            ("--dc09-format", dc09Format),
            ("--dc09-key-file", dc09KeyFile),
            ("--dc09-receiver", dc09Receiver),
            ("--dc09-line", dc09Line),
            ("--sip-call", sipCall),
            ("--sip-transport", sipTransport),
            ("--sip-user-prefix", sipUserPrefix),
            ("--sip-password-file", sipPasswordFile),
            ("--loops", loops),
        ]
        return options.flatMap { name, value in value.map { [name, $0.description] } ?? [] } + (stampVoice ? ["--stamp-voice"] : [])
    }

    /// Whether the devices report over DC-09 (`--protocol dc09`).
    var reportsOverDC09: Bool { reportingProtocol == ReportingProtocol.dc09.rawValue }

    /// `--heartbeat-interval` (or `--heartbeat`) in whole seconds, as devices are told it; `nil` when not given.
    func heartbeatSeconds() throws -> UInt16? {
        try (heartbeatInterval ?? heartbeatAlias)?.wholeSeconds("--heartbeat-interval")
    }

    func validate() throws {
        if heartbeatInterval != nil && heartbeatAlias != nil {
            throw ValidationError("--heartbeat is the old name of --heartbeat-interval: give it once.")
        }
        _ = try heartbeatSeconds()
        guard Transport(rawValue: transport) != nil else { throw ValidationError("--transport must be tcp or udp, not '\(transport)'.") }
        guard devicesPerSocket >= 1 else { throw ValidationError("--devices-per-socket must be at least 1.") }
        if let loops, loops < 1 { throw ValidationError("--loops must be at least 1.") }
        guard let reporting = ReportingProtocol(rawValue: reportingProtocol) else {
            throw ValidationError("--protocol must be devicekit or dc09, not '\(reportingProtocol)'.")
        }
        guard DC09Settings.Format(rawValue: dc09Format) != nil else { throw ValidationError("--dc09-format must be sia or cid, not '\(dc09Format)'.") }
        for (option, value) in [("--dc09-receiver", dc09Receiver), ("--dc09-line", dc09Line)]
        where !(1...6).contains(value.count) || !value.allSatisfy(\.isHexDigit) {
            throw ValidationError("\(option) must be 1 to 6 hex digits, not '\(value)'.")
        }
        if reporting == .devicekit, dc09KeyFile != nil || dc09Format != "sia" || dc09Receiver != "0" || dc09Line != "0" {
            throw ValidationError("The --dc09-… options need --protocol dc09.")
        }
        if let sipCall {
            _ = try SIPCommandSupport.uri(sipCall, what: "--sip-call")
            if let sipTransport, !["udp", "tcp"].contains(sipTransport) { throw ValidationError("--sip-transport must be udp or tcp, not '\(sipTransport)'.") }
        } else if sipTransport != nil || sipUserPrefix != nil || sipPasswordFile != nil {
            throw ValidationError("--sip-transport, --sip-user-prefix and --sip-password-file need --sip-call sip:arc@HOST.")
        }
        if scenario != nil, duration != nil || alarmRate != nil || eventRate != nil {
            throw ValidationError("The scenario file sets the phases' lengths and rates: drop --duration, --alarm-rate and --event-rate, or the --scenario.")
        }
    }

    /// The plan of `shard` of the fleet, with keys from `master`, against `centre`; without source addresses.
    /// Reads the scenario file, if any.
    func plan(centre: SocketAddress, master: FleetMasterKey, shard: FleetShard) throws -> LoadPlan {
        var plan = LoadPlan(
            centre: centre, master: master, transport: Transport(rawValue: transport) ?? .tcp, firstID: firstID,
            fleetSize: devices, shard: shard, rampRate: ramp, fleetAlarmRate: alarmRate ?? 2, cancelShare: cancelShare,
            heartbeatOverride: try heartbeatSeconds(), duration: duration?.duration ?? .seconds(60),
            drain: drain?.duration ?? (dropLinks > 0 || udpLoss > 0 ? .seconds(30) : .seconds(10)), devicesPerSocket: devicesPerSocket)
        plan.fleetEventRate = eventRate ?? 0
        plan.fleetLinkDropRate = dropLinks
        plan.udpLoss = udpLoss
        plan.callShare = callShare
        plan.callDuration = callDuration?.duration ?? .seconds(30)
        plan.media.stampVoice = stampVoice
        plan.recordCalls = recordCalls
        plan.loops = loops
        if reportsOverDC09 {
            let key = try dc09KeyFile.map { try DC09Key(bytes: try GivenKey.file($0, what: "the DC-09 key file").bytes(.dc09)) }
            plan.dc09 = DC09Load(framing: DC09FrameSession.Configuration(
                account: "0000", receiver: dc09Receiver.uppercased(), line: dc09Line.uppercased(),
                payload: DC09Settings.Format(rawValue: dc09Format)?.id ?? .siaDCS, key: key))
        }
        if let sipCall {
            let uri = try SIPCommandSupport.uri(sipCall, what: "--sip-call")
            let target = try SIPCommandSupport.target(for: uri, transport: sipTransport == "tcp" ? .tcp : .udp)
            var password: String?
            if let sipPasswordFile {
                password = try readTextFile(sipPasswordFile, what: "the SIP password file", advice: "check the path").trimmingCharacters(in: .whitespacesAndNewlines)
            }
            plan.sip = LoadSIPCalls(
                uri: uri, target: target, host: SIPEndpoint.localAddress(towards: target.address) ?? "127.0.0.1",
                userPrefix: sipUserPrefix ?? "", password: password)
        }
        if let scenario {
            let text = try readTextFile(scenario, what: "the scenario", advice: "check the path (an example: examples/load/power-cut.toml)")
            do { plan.scenario = try LoadScenario(toml: text, file: scenario) } catch {
                throw CommandFailure(.configuration, "\(error)")
            }
        }
        return plan
    }
}

struct LoadRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a load test (the default: `devicesim load --center …` is `devicesim load run --center …`).",
        discussion: loadExitStatus)

    @OptionGroup var planOptions: LoadPlanOptions

    @Option(help: "This process's shard, I/N with I from 0 (as JOB_COMPLETION_INDEX), of the fleet's ids.")
    var shard: String?

    @Option(parsing: .unconditional, help: "The number of shards; the index comes from JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).")
    var shards: Int?

    /// The fleet master key, the one the centre was started with.
    @OptionGroup var masterKey: MasterKeyOptions

    @Option(parsing: .unconditional, help: "Worker processes to spread this process's devices over, each at most 19,000 TCP devices (default: one per 18,000 TCP devices, one for UDP); one live progress line and one merged report.")
    var workers: Int?

    @Option(name: .customLong("source-addresses"), help: "Local addresses TCP devices connect from, in turn: a range 127.0.0.1-127.0.0.8 or a list 10.0.0.5,10.0.0.6 (default: for a centre on 127.0.0.0/8, 127.0.0.1, 127.0.0.2, … one per 1,000 devices).")
    var sourceAddressList: String?

    @Option(help: ArgumentHelp("Run as a worker of a coordinator starting at this CLOCK_MONOTONIC instant (ns): progress as JSON on standard output.", visibility: .hidden))
    var worker: UInt64?

    @Flag(help: "No progress line.")
    var quiet = false

    @OptionGroup var output: LoadOutputOptions

    @OptionGroup(title: "A centre the tool starts, and crashes") var spawnedCenter: SpawnedCenterOptions

    /// What an old command line's `--json FILE` leaves behind now that `--json` is a switch: the file name.
    @Argument(help: .hidden)
    var stray: [String] = []

    func validate() throws {
        guard stray.isEmpty else { throw output.oldJSONOption(stray) ?? ValidationError("Unexpected argument '\(stray.joined(separator: " "))'.") }
        guard planOptions.center != nil || spawnedCenter.spawnCenter else {
            throw ValidationError("Name the centre with --center HOST:PORT, or let the tool start one with --spawn-center.")
        }
        guard masterKey.isGiven() || planOptions.reportsOverDC09 else {
            throw ValidationError("Give the fleet master key the centre uses: --master-file FILE, $\(MasterKeyOptions.environmentVariable), or systemd credentials (\(MasterKeyOptions.credentialName)).")
        }
        if shard != nil && shards != nil { throw ValidationError("Use --shard I/N, or --shards N with JOB_COMPLETION_INDEX, not both.") }
        _ = try output.parsedObjectives()
        if let center = planOptions.center { _ = try Self.hostAndPort(center) }
        if let secondary = planOptions.secondary { _ = try Self.hostAndPort(secondary, option: "--secondary") }
    }

    /// The checks of a plan (its rates, shares, workers, the restarts of a spawned centre), made once its files
    /// are read (`run`): usage errors all the same.
    private func check(_ plan: LoadPlan, workers: Int) throws {
        try Self.usage {
            try plan.validate(workers: workers)
            try spawnedCenter.restartSchedule.validate(steadyDuration: plan.steadyDuration)
            if spawnedCenter.centerJournal != nil, workers > 1 {
                throw LoadError(
                    "--center-journal checks the journal against the alarms this one process saw acknowledged: use --workers 1 (at most 19,000 TCP devices) or --transport udp")
            }
            if spawnedCenter.spawnCenter, workers > 1 {
                throw LoadError(
                    "--spawn-center runs the devices in this one process, with the centre's journal checked against them: use --workers 1 (at most 19,000 TCP devices) or --transport udp, or start the centre yourself (devicesim center --workers N) and give --center")
            }
        }
    }

    /// `body`'s result; the `LoadError` it throws (options that cannot be used together, a shard or source
    /// addresses that do not parse) is a usage error.
    private static func usage<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as LoadError { throw ValidationError(error.description + ".") }
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

    /// The master key in hex, checked, for a file that a spawned centre or the workers read.
    func masterHex() throws -> String {
        Hex.encode(try masterKey.bytes() ?? (planOptions.reportsOverDC09 ? Self.unusedMaster : []))
    }

    /// The master of a DC-09 run given none: DC-09 frames are not sealed, so the devices' keys are never used.
    static let unusedMaster = [UInt8](repeating: 0, count: 32)

    private func fleetMasterKey() throws -> FleetMasterKey {
        if let key = try masterKey.key() { return key }
        if planOptions.reportsOverDC09 { return try FleetMasterKey(bytes: Self.unusedMaster) }
        throw ValidationError("no fleet master key given")
    }

    private func plan(centre: SocketAddress) throws -> LoadPlan {
        var plan = try planOptions.plan(centre: centre, master: try fleetMasterKey(), shard: try Self.usage(fleetShard))
        plan.sourceAddresses = try Self.usage { try sourceAddresses(centre: centre, devices: plan.ids.count) }
        return plan
    }

    /// `--center` as host and port, or a usage error saying what to write.
    static func hostAndPort(_ center: String, option: String = "--center") throws -> (host: String, port: Int) {
        var host = Substring(center)
        guard let colon = host.lastIndex(of: ":"), let port = Int(host[host.index(after: colon)...]) else {
            throw ValidationError("\(option) '\(center)' is not HOST:PORT: write for example 127.0.0.1:7700 or [::1]:7700.")
        }
        try PortOption.check(port, option: "\(option)'s port", zeroPicksFree: false)
        host = host[..<colon]
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return (String(host), port)
    }

    private static func resolve(_ endpoint: String, option: String) throws -> SocketAddress {
        let (host, port) = try hostAndPort(endpoint, option: option)
        do {
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw CommandFailure(.noHost, "\(option): cannot resolve '\(host)': \(CentreAddress.unknownHostWords(error))")
        }
    }

    func run() async throws {
        let began = Date()
        let given = try planOptions.center.map { try Self.resolve($0, option: "--center") }
        var plan = try plan(centre: try given ?? SocketAddress(ipAddress: "127.0.0.1", port: 1))
        plan.secondary = try planOptions.secondary.map { try Self.resolve($0, option: "--secondary") }
        let workers = workerCount(for: plan)
        try check(plan, workers: workers)
        if workers > 1 { return try await coordinate(plan, workers: workers, began: began) }
        do { try plan.prepareCallRecording() } catch { throw CommandFailure(.cannotCreate, error.description) }
        let spawned = try await spawnedCenter.start(on: given, masterHex: try masterHex(), heartbeat: try planOptions.heartbeatSeconds())
        if let spawned { plan.centre = spawned.address }
        plan.keepsAcknowledgedAlarms = spawnedCenter.centerJournal != nil || spawned != nil
        let loops = plan.eventLoops(cores: System.coreCount)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: loops)
        let runner = LoadRunner(plan: plan, group: group, loops: loops)
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
        if let check = try spawnedCenter.checkGivenJournal(acknowledged: runner.acknowledgedAlarms) { report.centerJournal = check }
        let recordings = runner.callRecordings
        if let directory = plan.recordCalls {
            FileHandle.standardError.write(Data("calls recorded: \(recordings.written.count) in \(directory)\n".utf8))
        }
        try output.finish(report, began: began)
        if !recordings.failures.isEmpty {
            throw CommandFailure(.ioError, "could not write \(recordings.failures.count) call recording(s): " + recordings.failures.joined(separator: "; "))
        }
    }
}

/// The reports named on a command line, read and parsed: a missing file is a missing input (66), one that is
/// not a report of this devicesim wrong data (65).
private func readReports(_ paths: [String]) throws -> [LoadReport] {
    try paths.map { path in
        let text = try readTextFile(path, what: "the report", advice: "check the path (reports are written by devicesim load --report FILE)")
        do { return try LoadReport(json: Data(text.utf8), name: path) } catch { throw CommandFailure(.dataError, "\(error)") }
    }
}

struct LoadMergeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Add up the JSON reports of several shards, histograms exactly, and print the fleet's table.",
        discussion: loadExitStatus)

    @Argument(help: "The shards' reports, written by `devicesim load --report FILE`.")
    var reports: [String]

    @OptionGroup var output: LoadOutputOptions

    func validate() throws {
        guard !reports.isEmpty else { throw ValidationError("Name the shards' JSON reports to merge: devicesim load merge a.json b.json") }
        _ = try output.parsedObjectives()
    }

    func run() async throws {
        // `load merge a.json b.json --json fleet.json` of old: fleet.json is now taken for a report.
        if let hint = output.oldJSONOption(reports), !FileManager.default.fileExists(atPath: reports.last ?? "") { throw hint }
        let loaded = try readReports(reports)
        // The merged run began when its earliest shard did.
        let dates = loaded.compactMap { $0.context?.date }.compactMap { ISO8601DateFormatter().date(from: $0) }
        let merged: LoadReport
        do { merged = try LoadReport.merge(loaded) } catch {
            // An old command line's `--json fleet.json` over a fleet.json that exists: it was read as a shard.
            let hint = output.json ? " (--json is a switch now, the merged report on standard output: write it to a file with --report FILE)" : ""
            throw CommandFailure(.dataError, "\(error)\(hint)")
        }
        try output.finish(merged, began: dates.min() ?? Date())
    }
}

struct LoadCompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare the JSON reports of several runs, the first the baseline: did a change make it better or worse?",
        discussion: """
            Prints each latency's p50 … p99.99 and max for every run with its change from the baseline, and the \
            counts; --html draws the runs' percentile curves over each other, as HdrHistogram's plotter does.

            \(ExitStatus.help(
                [.dataError, .noInput, .cannotCreate],
                [.dataError: "a report is not one this devicesim reads, or the reports cannot be compared",
                 .noInput: "a report is missing", .cannotCreate: "the HTML file cannot be written"]))
            """)

    @Argument(help: "The runs' reports, written by `devicesim load --report FILE` (or `load merge --report FILE`); the first is the baseline.")
    var reports: [String]

    @Option(help: "Write the comparison as a self-contained HTML page to this file (no network needed to open it).")
    var html: String?

    func validate() throws {
        guard reports.count >= 2 else { throw ValidationError("Name two reports or more to compare: devicesim load compare before.json after.json") }
    }

    func run() async throws {
        let runs = zip(reports, try readReports(reports)).map { LoadComparison.Run(name: $0, report: $1) }
        let comparison: LoadComparison
        do { comparison = try LoadComparison(runs) } catch { throw CommandFailure(.dataError, "\(error)") }
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
    func failure(_ reason: String) -> CommandFailure {
        CommandFailure(.cannotCreate, "cannot write \(what) to \(path) (\(reason.lowercased())): check that its directory exists and that you may write there")
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
