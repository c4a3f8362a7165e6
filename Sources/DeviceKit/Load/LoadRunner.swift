import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// What one `devicesim load` process does: which devices, against which centre, at what rates.
public struct LoadPlan: Sendable {
    public var centre: SocketAddress
    /// The devices' secondary centre (`--secondary`), as the firmware's dual path: a device whose primary
    /// fails twice in a row opens its session there (protocol.md §3.6). `nil`: the primary only.
    public var secondary: SocketAddress?
    public var master: FleetMasterKey
    public var transport: Transport
    /// The whole fleet: ids `firstID ..< firstID + fleetSize`, of which this process runs `shard`'s part.
    public var firstID: UInt32
    public var fleetSize: Int
    public var shard: FleetShard
    /// New sessions a second, for this process.
    public var rampRate: Double
    /// Alarms a second across the whole fleet (a Poisson process); this process raises its share.
    public var fleetAlarmRate: Double
    /// Share of acknowledged alarms that the person then cancels.
    public var cancelShare: Double
    /// Heartbeat interval in seconds that overrides the centre's; `nil` follows the centre, as the firmware does.
    public var heartbeatOverride: UInt16?
    /// How long alarms are raised, after the ramp and `settle`.
    public var duration: Duration
    /// Wait between the end of the ramp and the first alarm, for the last handshakes.
    public var settle: Duration
    /// How long to wait after the last alarm for acknowledgements before counting the rest as lost.
    public var drain: Duration
    public var devicesPerSocket: Int
    public var handshakeTimeout: Duration
    /// How long a TCP device waits for its connection, as the firmware's `connectTimeout`.
    public var connectTimeout: Duration = DeviceRuntimeConfiguration.defaultConnectTimeout
    public var backoff: Backoff
    public var delivery: DeliveryMachine.Configuration
    public var seed: UInt64
    /// The first up-frame counter of every device: wall-clock milliseconds × 64, so each run starts above the
    /// last (a centre refuses a session anchor that does not rise) as long as a device sends fewer than 64
    /// frames per millisecond of wall time between two runs' starts. Fits 48 bits until about 2109.
    public var counterStart: UInt64
    /// The first reliable message id, from the wall clock in seconds × 16 (so a centre's journal sees new ids).
    public var firstMessageID: UInt32
    /// Device events (battery low/OK, tamper) a second across the fleet, a Poisson process, without a scenario.
    public var fleetEventRate: Double = 0
    /// Phases that replace `duration` and the rates, from a scenario file.
    public var scenario: LoadScenario?
    /// Links the tool cuts a second across the fleet (a Poisson process in the steady phase): a TCP device's
    /// connection is closed, a UDP device's session dropped; either reconnects with backoff and resends.
    public var fleetLinkDropRate: Double = 0
    /// Share of datagrams the tool throws away, each way (UDP only).
    public var udpLoss: Double = 0
    /// Share of alarms whose device answers the centre's call (protocol.md §4.8); the others decline it.
    public var callShare: Double = 0
    /// How long an answered call lasts before the device hangs up (unless the centre ends it first).
    public var callDuration: Duration = .seconds(30)
    /// The simulated devices' media: voice only (the video stub stays off), silence reported as the firmware does.
    public var media = MediaLink.Parameters(video: false)
    /// Keep the id of every alarm the devices see acknowledged (`LoadRunner.acknowledgedAlarms`), to look
    /// for each in the centre's journal afterwards.
    public var keepsAcknowledgedAlarms = false
    /// Local addresses TCP devices connect from, by id in turn; `nil` lets the kernel choose.
    public var sourceAddresses: SourceAddresses?
    /// Report over SIA DC-09 to any DC-09 receiver instead of our protocol (`--protocol dc09`); `nil`: ours.
    public var dc09: DC09Load?
    /// Write what each device hears in each answered call to this directory (`--record-calls`, `CallRecorder`).
    public var recordCalls: String?
    /// The devices call this SIP address after an alarm's ack, as a home with `[voice] sip` does
    /// (`--sip-call`); `callShare` and `callDuration` apply to these calls then.
    public var sip: LoadSIPCalls?
    /// Event loops (threads) to run this process's devices on (`--loops`); `nil`: `eventLoops(cores:)` decides.
    public var loops: Int?

    public init(
        centre: SocketAddress, master: FleetMasterKey, transport: Transport = .udp, firstID: UInt32 = 1, fleetSize: Int,
        shard: FleetShard = .whole, rampRate: Double = 1000, fleetAlarmRate: Double = 2, cancelShare: Double = 0.1,
        heartbeatOverride: UInt16? = nil, duration: Duration = .seconds(60), settle: Duration = .seconds(1),
        drain: Duration = .seconds(10), devicesPerSocket: Int = 1000, handshakeTimeout: Duration = .seconds(5),
        backoff: Backoff = Backoff(), delivery: DeliveryMachine.Configuration = .init(),
        seed: UInt64 = UInt64.random(in: .min ... .max)
    ) {
        self.centre = centre
        self.master = master
        self.transport = transport
        self.firstID = firstID
        self.fleetSize = fleetSize
        self.shard = shard
        self.rampRate = rampRate
        self.fleetAlarmRate = fleetAlarmRate
        self.cancelShare = cancelShare
        self.heartbeatOverride = heartbeatOverride
        self.duration = duration
        self.settle = settle
        self.drain = drain
        self.devicesPerSocket = max(1, devicesPerSocket)
        self.handshakeTimeout = handshakeTimeout
        self.backoff = backoff
        self.delivery = delivery
        self.seed = seed
        let wallMilliseconds = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        counterStart = min(wallMilliseconds << 6, Wire.maximumUpCounter / 2)
        firstMessageID = UInt32(truncatingIfNeeded: (wallMilliseconds / 1000) &* 16)
    }

    /// The event loops this process runs its devices on, on a machine of `cores` cores: `loops` if given; for
    /// our protocol over UDP without calls, one for every `datagramsPerLoop` round trips a second the plan asks
    /// at its busiest (the ramp's session starts, or the steady phase's heartbeats, alarms, events and cut
    /// links), at most one a core; otherwise one a core.
    ///
    /// A loop more than the work needs costs: each loop sleeps and wakes for its own timers and its own share
    /// of the centre's answers, and on a machine shared with the centre those wake-ups are the load tool's
    /// largest cost. 20,000 devices with 2 s heartbeats (10,000 round trips a second) took 16.0–17.4 µs of CPU
    /// a round trip on one loop against 18.7–19.7 µs on two, the centre beside it 11.0–11.6 against 12.7–12.8
    /// µs a frame (docs/benchmarks.md). A handshake ramp of 40,000 a second is better on two.
    public func eventLoops(cores: Int) -> Int {
        let cores = Swift.max(1, cores)
        if let loops { return Swift.max(1, loops) }
        guard transport == .udp, dc09 == nil, sip == nil, callShare == 0 else { return cores }
        let heartbeat = Double(heartbeatOverride ?? Self.centreHeartbeatSeconds)
        let steady = Double(ids.count) / heartbeat + alarmRate + (fleetEventRate + fleetLinkDropRate) * processShare
        let busiest = Swift.max(rampRate, steady)
        return Swift.min(cores, Swift.max(1, Int((busiest / Self.datagramsPerLoop).rounded(.up))))
    }

    /// Round trips a second one loop is given at most when `eventLoops` chooses (a loop takes about 16 µs of
    /// CPU a round trip: a third of a core).
    public static let datagramsPerLoop = 20_000.0
    /// The heartbeat interval a centre sets unless told otherwise (`devicesim center`'s default).
    static let centreHeartbeatSeconds: UInt16 = 30

    /// This process's device ids.
    public var ids: Range<UInt64> { shard.ids(first: firstID, fleet: fleetSize) }

    /// This process's part of the fleet, for its part of fleet-wide rates.
    public var processShare: Double { fleetSize == 0 ? 0 : Double(ids.count) / Double(fleetSize) }

    /// This process's alarms a second (averaged over the phases of a scenario).
    public var alarmRate: Double {
        let seconds = Double(steadyDuration.nanoseconds) / 1e9
        guard seconds > 0 else { return fleetAlarmRate * processShare }
        let alarms = phases.reduce(0.0) { $0 + $1.alarmRate * Double($1.duration.nanoseconds) / 1e9 }
        return alarms / seconds * processShare
    }

    /// The steady part of the run: the scenario's phases, or one phase from the flags.
    public var phases: [LoadScenario.Phase] {
        scenario?.phases ?? [LoadScenario.Phase(name: "steady", duration: duration, alarmRate: fleetAlarmRate, eventRate: fleetEventRate)]
    }

    /// How long alarms are raised: the scenario's phases, or `duration`.
    public var steadyDuration: Duration { scenario?.duration ?? duration }

    /// When the steady phase begins: after the ramp and the settle time.
    public var steadyStart: Duration { RampSchedule(rate: rampRate, devices: ids.count).length + settle }

    /// Checks the plan, run by `workers` processes; the messages say which flag to change.
    public func validate(workers: Int = 1) throws(LoadError) {
        guard fleetSize >= 1 else { throw LoadError("--devices must be at least 1") }
        guard UInt64(firstID) + UInt64(fleetSize) - 1 <= UInt64(UInt32.max) else {
            throw LoadError("--first-id \(firstID) with --devices \(fleetSize) runs past the largest device id, 4294967295")
        }
        guard rampRate > 0, rampRate.isFinite else { throw LoadError("--ramp must be above 0 new sessions a second") }
        guard fleetAlarmRate >= 0, fleetAlarmRate.isFinite else { throw LoadError("--alarm-rate must be 0 or more alarms a second") }
        guard (0...1).contains(cancelShare) else { throw LoadError("--cancel-share must be between 0 and 1, for example 0.1") }
        guard duration >= .zero, drain >= .zero else { throw LoadError("--duration and --drain must be 0 seconds or more") }
        if let heartbeatOverride, heartbeatOverride == 0 { throw LoadError("--heartbeat-interval must be at least 1 second") }
        guard fleetEventRate >= 0, fleetEventRate.isFinite else { throw LoadError("--event-rate must be 0 or more events a second") }
        guard fleetLinkDropRate >= 0, fleetLinkDropRate.isFinite else { throw LoadError("--drop-links must be 0 or more link drops a second") }
        guard (0..<1).contains(udpLoss) else { throw LoadError("--udp-loss must be at least 0 and below 1, for example 0.1 for 10 %") }
        if udpLoss > 0, transport != .udp { throw LoadError("--udp-loss needs --transport udp") }
        guard (0...1).contains(callShare) else { throw LoadError("--call-share must be between 0 and 1, for example 0.2") }
        guard callDuration > .zero else { throw LoadError("--call-duration must be above 0 seconds") }
        if let scenario, scenario.phases.isEmpty { throw LoadError("the scenario has no phase: add a [[phase]] table") }
        guard workers >= 1, workers <= max(1, ids.count) else {
            throw LoadError("--workers must be from 1 to the \(ids.count) devices of this process, or left out to choose by itself")
        }
        let perWorker = (ids.count + workers - 1) / workers
        if transport == .tcp, perWorker > LoadWorkers.maximumTCPDevicesPerProcess {
            let needed = (ids.count + LoadWorkers.maximumTCPDevicesPerProcess - 1) / LoadWorkers.maximumTCPDevicesPerProcess
            throw LoadError(
                "\(perWorker) TCP devices in one process exceed the 20,000 open files allowed here: leave out --workers "
                    + "(the tool then starts one worker process per 18,000 devices), give --workers \(needed) or more, or use --transport udp")
        }
        if dc09 != nil {
            guard callShare == 0 || sip != nil else { throw LoadError("--call-share needs our protocol or --sip-call: DC-09 carries events, not calls") }
            guard udpLoss == 0 else { throw LoadError("--udp-loss needs our protocol (DC-09 devices have sockets of their own)") }
            if transport == .udp, perWorker > LoadWorkers.maximumTCPDevicesPerProcess {
                throw LoadError("\(perWorker) DC-09 devices over UDP in one process exceed the open files allowed here (each has a socket of its own): give --workers \((ids.count + LoadWorkers.maximumTCPDevicesPerProcess - 1) / LoadWorkers.maximumTCPDevicesPerProcess) or more")
            }
        }
        if recordCalls != nil, workers > 1 {
            throw LoadError("--record-calls records in one process: give --workers 1 (at most 19,000 TCP devices) or --transport udp")
        }
        if let secondary {
            guard secondary.protocol == centre.protocol else {
                throw LoadError("--secondary must be of --center's family (IPv4 or IPv6): the devices' UDP sockets are of one family")
            }
            guard dc09 == nil else { throw LoadError("--secondary needs our protocol: DC-09 devices report to one receiver") }
        }
        if let sourceAddresses {
            guard transport == .tcp else { throw LoadError("--source-addresses needs --transport tcp (UDP devices share sockets)") }
            guard sourceAddresses.addresses.allSatisfy({ $0.protocol == centre.protocol }) else {
                throw LoadError("--source-addresses must be of the centre's family (IPv4 or IPv6), as the centre's address \(centre)")
            }
        }
    }

    /// With `recordCalls`: makes the directory and checks that a file can be written in it, or says why not.
    public func prepareCallRecording() throws(LoadError) {
        if let recordCalls { try CallRecorder.prepare(directory: recordCalls) }
    }

    /// An id-sharing stride for shards so that shard `k` of `loops` holds ids `lower + k + n × loops`.
    func shardLayout(loops: Int) -> [(firstID: UInt64, count: Int)] {
        let range = ids
        let total = range.count
        return (0..<loops).map { k in
            let count = total > k ? (total - k + loops - 1) / loops : 0
            return (range.lowerBound + UInt64(k), count)
        }
    }
}

/// A load run over SIA DC-09 (docs/dc09.md): the devices run the firmware's DC-09 framing against any DC-09
/// receiver. Each device reports under an account of its own, its id in hex (`account(of:)`), so that a
/// receiver tells them apart and their sequence numbers do not mix.
public struct DC09Load: Sendable {
    /// Receiver, line, payload and key; the account is each device's own.
    public var framing: DC09FrameSession.Configuration
    /// A `NULL` supervision frame this often.
    public var supervision: Duration
    /// The simulated devices' cancel window: a DC-09 alarm ends this long after its press, when acknowledged.
    public static let cancelWindow = Duration.seconds(1)

    public init(framing: DC09FrameSession.Configuration, supervision: Duration = .seconds(60)) {
        self.framing = framing
        self.supervision = supervision
    }

    /// Device `id`'s account: its id in upper-case hex, at least four digits (device 1 is `0001`, device
    /// 70000 is `11170`).
    public static func account(of id: UInt32) -> String {
        let hex = String(id, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

/// One line of progress, once a second; workers send it to their coordinator as a line of JSON.
public struct LoadProgress: Codable, Sendable {
    public enum Phase: String, Codable, Comparable, Sendable {
        case ramp, steady, drain
        public static func < (a: Phase, b: Phase) -> Bool { a.order < b.order }
        private var order: Int {
            switch self {
            case .ramp: 0
            case .steady: 1
            case .drain: 2
            }
        }
    }
    public var elapsed: Duration
    public var phase: Phase
    public var devices: Int
    public var online: Int
    /// Alarms raised a second, and so far; acknowledged so far.
    public var alarmsPerSecond: Double
    public var alarmsRaised: Int
    public var alarmsAcknowledged: Int
    /// p99 of the alarms acknowledged in the last second, if any.
    public var recentAlarmP99: Duration?
    public var reconnects: Int
    /// Attempts to open a session that failed, so far.
    public var failedAttempts: Int
    /// The alarms acknowledged in the last second, whose p99 is `recentAlarmP99`: workers' add up exactly.
    public var recentAlarms = LatencyHistogram.compact()

    public var line: String {
        let p99 = recentAlarmP99.map { String(format: "%.1f ms", Double($0.nanoseconds) / 1e6) } ?? "—"
        return String(
            format: "%6.1f s  %@  online %d/%d  alarms/s %.1f  acked %d/%d  alarm p99 %@  reconnects %d  failed attempts %d",
            Double(elapsed.nanoseconds) / 1e9, phase.rawValue.padding(toLength: 6, withPad: " ", startingAt: 0),
            online, devices, alarmsPerSecond, alarmsAcknowledged, alarmsRaised, p99, reconnects, failedAttempts)
    }
}

/// Runs a load plan on an event-loop group: ramp, steady phase, drain; then the report.
///
/// The process's devices are spread over the group's loops (one `LoadShard` each); no device has a thread.
public final class LoadRunner: Sendable {
    public let plan: LoadPlan
    private let group: any EventLoopGroup
    private let loops: Int
    private let acknowledged = Mutex<[FleetAlarmID]>([])
    private let recordings = Mutex<(written: [String], failures: [String])>(([], []))

    public init(plan: LoadPlan, group: any EventLoopGroup, loops: Int = System.coreCount) {
        self.plan = plan
        self.group = group
        self.loops = max(1, loops)
    }

    /// The alarms the devices saw acknowledged in the last run, if the plan `keepsAcknowledgedAlarms`.
    public var acknowledgedAlarms: [FleetAlarmID] { acknowledged.withLock { $0 } }

    /// The call recordings of the last run (`LoadPlan.recordCalls`): the files written, and the ones that
    /// could not be, each with why.
    public var callRecordings: (written: [String], failures: [String]) { recordings.withLock { $0 } }

    /// Runs the plan.
    /// - Parameters:
    ///   - startingAt: when the run's clock starts (ramp, phases, seconds of the report), so that the workers
    ///     of one coordinator share a time axis; `nil` for now. Later than now: waits for it.
    ///   - companion: work beside the run, given its start instant (the centre crashes of
    ///     `--restart-center`); the run awaits it before it reports, and rethrows its error.
    public func run(
        startingAt: NIODeadline? = nil, beside companion: (@Sendable (NIODeadline) async throws -> Void)? = nil,
        progress: @Sendable (LoadProgress) -> Void = { _ in }
    ) async throws -> LoadReport {
        try plan.validate()
        try plan.prepareCallRecording()
        let before = ProcessUsage.current()
        let start = startingAt ?? NIODeadline.now()
        if start > NIODeadline.now() { try await Task.sleep(for: .nanoseconds((start - NIODeadline.now()).nanoseconds)) }
        let beside = companion.map { work in Task { try await work(start) } }
        defer { beside?.cancel() }
        // The wall clock at `start`, which may have passed while this process was starting.
        let late = Double((NIODeadline.now() - start).nanoseconds) / 1e6
        let wall = UInt64(max(0, Date().timeIntervalSince1970 * 1000 - late))
        let layout = plan.shardLayout(loops: loops)
        let total = max(1, plan.ids.count)
        var shards: [LoadShard] = []
        for (k, part) in layout.enumerated() where part.count > 0 {
            shards.append(
                LoadShard(
                    loop: group.next(), plan: plan, firstID: part.firstID, stride: UInt64(loops), count: part.count,
                    share: Double(part.count) / Double(total), seed: plan.seed ^ UInt64(k + 1) &* 0xD1B5_4A32_D192_ED03,
                    start: start, wallAtStart: wall))
        }
        for shard in shards { try await shard.loop.flatSubmit { shard.begin() }.get() }
        var steadyBegan: (usage: ProcessUsage, heartbeats: Int)?
        var steadyEnded: (usage: ProcessUsage, heartbeats: Int)?
        var allOnline: Duration?
        var holding: ProcessUsage?

        let steadyEnd = plan.steadyStart + plan.steadyDuration
        let drainEnd = steadyEnd + plan.drain
        var previousRaised = 0
        var previousTick = Duration.zero
        while true {
            do { try await Task.sleep(for: .seconds(1)) } catch {
                // Cancelled: the devices end with the run, not later on a loop that outlives it.
                for shard in shards { try? await shard.loop.flatSubmit { shard.stop() }.get() }
                throw error
            }
            let elapsed = Duration.nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds))
            var snapshots: [LoadShard.Snapshot] = []
            for shard in shards { snapshots.append(try await shard.loop.submit { shard.snapshot(withHistograms: false) }.get()) }
            let counts = snapshots.reduce(LoadCounts()) { $0 + $1.counts }
            var recent = LatencyHistogram()
            for s in snapshots { recent.add(s.recentAlarms) }
            let phase: LoadProgress.Phase = elapsed < plan.steadyStart ? .ramp : elapsed < steadyEnd ? .steady : .drain
            let seconds = Double((elapsed - previousTick).nanoseconds) / 1e9
            progress(
                LoadProgress(
                    elapsed: elapsed, phase: phase, devices: plan.ids.count, online: snapshots.reduce(0) { $0 + $1.online },
                    alarmsPerSecond: seconds > 0 ? Double(counts.alarmsRaised - previousRaised) / seconds : 0,
                    alarmsRaised: counts.alarmsRaised, alarmsAcknowledged: counts.alarmsAcknowledged,
                    recentAlarmP99: recent.count > 0 ? recent.value(atPercentile: 99) : nil, reconnects: counts.reconnects,
                    failedAttempts: counts.sessionFailures, recentAlarms: recent))
            previousRaised = counts.alarmsRaised
            let online = snapshots.reduce(0) { $0 + $1.online }
            if allOnline == nil, online == plan.ids.count {
                // The instant the last shard became whole, not this tick's: the ramp's rate is measured from it.
                allOnline = snapshots.compactMap(\.fullyOnlineSince).max() ?? elapsed
                holding = ProcessUsage.current()
            }
            // The CPU window: the steady phase with every device online, so no handshakes are in it.
            if steadyBegan == nil, elapsed >= plan.steadyStart, allOnline != nil, let usage = ProcessUsage.current() {
                steadyBegan = (usage, counts.heartbeatAcks)
            }
            if steadyEnded == nil, steadyBegan != nil, elapsed >= steadyEnd, let usage = ProcessUsage.current() {
                steadyEnded = (usage, counts.heartbeatAcks)
            }
            previousTick = elapsed
            // Done early once nothing awaits an answer: alarms, device events not refused, calls in progress,
            // and (when the centre has an operator who engages cases) the operator's engagement.
            let unacknowledged = snapshots.reduce(0) { $0 + $1.unacknowledgedAlarms }
            let eventsPending = counts.eventsSent - counts.eventsAcknowledged - counts.rejected
            let callsActive = snapshots.reduce(0) { $0 + $1.activeCalls }
            let awaitingOperator = counts.casesEngaged > 0 ? snapshots.reduce(0) { $0 + $1.alarmsAwaitingOperator } : 0
            // SIP calls placed and not yet over: ringing, or answered and held.
            let sipCallsUp = counts.sipCallsPlaced - counts.sipCallsFailed - counts.sipCallsEnded
            let settled = unacknowledged == 0 && eventsPending <= 0 && callsActive == 0 && awaitingOperator == 0 && sipCallsUp <= 0
            if elapsed >= drainEnd || (elapsed >= steadyEnd && settled) { break }
        }
        try await beside?.value

        var counts = LoadCounts()
        var latency = LoadMetric.allCases.map { _ in LatencyHistogram() }
        var seconds: [SecondResult] = []
        var acknowledgedAlarms: [FleetAlarmID] = []
        var heartbeatSeconds: Int?
        for shard in shards {
            let snapshot = try await shard.loop.flatSubmit {
                let snapshot = shard.snapshot(withHistograms: true)
                return shard.stop().map { snapshot }
            }.get()
            counts = counts + snapshot.counts
            for (i, h) in (snapshot.latency ?? []).enumerated() { latency[i].add(h) }
            seconds = SecondResult.merge(seconds, snapshot.seconds ?? [])
            acknowledgedAlarms += snapshot.acknowledgedAlarms ?? []
            if plan.recordCalls != nil {
                let (written, failures) = try await shard.loop.submit { (shard.recorder?.written ?? [], shard.recorder?.failures ?? []) }.get()
                recordings.withLock { $0.written += written; $0.failures += failures }
            }
            heartbeatSeconds = [heartbeatSeconds, snapshot.heartbeatSeconds].compactMap { $0 }.max()
        }
        acknowledged.withLock { $0 = acknowledgedAlarms }
        counts.alarmsLost = counts.alarmsRaised - counts.alarmsAcknowledged
        var byMetric: [LoadMetric: LatencyHistogram] = [:]
        for metric in LoadMetric.allCases { byMetric[metric] = latency[metric.index] }
        var report = LoadReport(
            shards: [plan.shard.description], transports: [(plan.dc09 == nil ? "" : LoadReport.dc09Prefix) + plan.transport.rawValue], devices: plan.ids.count,
            rampSeconds: Double(RampSchedule(rate: plan.rampRate, devices: plan.ids.count).length.nanoseconds) / 1e9,
            steadySeconds: Double(plan.steadyDuration.nanoseconds) / 1e9, alarmRate: plan.alarmRate, counts: counts,
            latency: byMetric)
        report.seconds = seconds
        report.heartbeatSeconds = heartbeatSeconds
        report.scenario = plan.scenario?.name
        var phaseStart = plan.steadyStart
        for phase in plan.phases {
            report.phases.append(
                PhaseSummary(name: phase.name, startSeconds: Double(phaseStart.nanoseconds) / 1e9, durationSeconds: Double(phase.duration.nanoseconds) / 1e9))
            phaseStart += phase.duration
        }
        report.linkDropRate = plan.fleetLinkDropRate * plan.processShare
        report.udpLoss = plan.udpLoss
        report.residentBytesBefore = before?.residentBytes
        report.residentBytesHolding = holding?.residentBytes
        report.allOnlineSeconds = allOnline.map { Double($0.nanoseconds) / 1e9 }
        if let began = steadyBegan, let ended = steadyEnded {
            report.steadyCPUSeconds = ended.usage.cpuSeconds - began.usage.cpuSeconds
            report.steadyHeartbeats = ended.heartbeats - began.heartbeats
        }
        return report
    }
}

/// A load run whose devices call a SIP address after each alarm's ack (`--sip-call`), as homes with
/// `[voice] sip` do: each device has a SIP endpoint of its own (its own UDP and TCP port) and runs the
/// firmware's `SIPVoiceMachine`, so a PBX or the centre's operator bridge is loaded as real homes would load it.
public struct LoadSIPCalls: Sendable {
    public var uri: SIPURI
    public var target: SIPTarget
    /// The devices' address: in their Via, Contact and SDP.
    public var host: String
    /// A device's SIP user is this prefix and its id (`home-1001`).
    public var userPrefix: String
    /// The digest password of every device, for a PBX that challenges.
    public var password: String?
    public var srtp: SRTPPolicy

    public init(uri: SIPURI, target: SIPTarget, host: String, userPrefix: String = "", password: String? = nil, srtp: SRTPPolicy = .optional) {
        self.uri = uri
        self.target = target
        self.host = host
        self.userPrefix = userPrefix
        self.password = password
        self.srtp = srtp
    }

    /// Device `id`'s line, as the firmware builds its own from `[voice]`.
    func settings(device id: UInt32) -> DeviceSIPSettings {
        let user = userPrefix + String(id)
        return DeviceSIPSettings(
            uri: uri, target: target, identity: SIPURI(user: user, host: host.contains(":") ? "[\(host)]" : host), host: host, port: 0,
            srtp: srtp, credentials: password.map { SIPDigestCredentials(username: user, password: $0) })
    }
}
