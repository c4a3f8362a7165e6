import NIOCore
import NIOPosix

/// The devices of a load run that live on one event loop, their shared UDP sockets, their ramp and alarm
/// schedules, and what they measured. Every property is touched on `loop` only: the runner's calls (`begin`,
/// `snapshot`, `stop`) assert it, and the devices' and timers' closures run there (`@unchecked Sendable` only
/// so that those closures may hold it).
final class LoadShard: @unchecked Sendable {
    let loop: any EventLoop
    let plan: LoadPlan
    /// The devices' machine configuration, held once for all of them.
    let deviceConfiguration: Shared<DeviceMachine.Configuration>
    let allocator = ByteBufferAllocator()
    /// Devices of this shard: ids `firstID + offset + n × stride` for n in 0..<count.
    private let firstID: UInt64
    private let stride: UInt64
    private var devices: [SimulatedDevice?]
    var sockets: [any Channel] = []
    private let start: NIODeadline
    private let wallAtStart: UInt64
    private let ramp: RampSchedule
    /// This shard's part of the process's devices, for its part of the rates.
    private let share: Double
    private let seed: UInt64
    /// The current phase's alarms and events, and the steady phase's link drops.
    private var arrivals: PoissonArrivals
    private var eventArrivals: PoissonArrivals
    private var dropArrivals: PoissonArrivals
    /// Bumped at each phase so that the previous phase's wake-ups end.
    private var phaseGeneration = 0
    private var random: SplitMix64
    private var started = 0
    private var stopped = false
    /// The shard's own timers (phases, arrivals, calls' ends), through one task of the loop.
    private let timers: ClosureTimers
    /// The devices' machine timers, through another.
    private let deviceTimers: LoopTimers<DeviceTimer>

    var counts = LoadCounts()
    var online = 0 {
        didSet {
            if online == devices.count, oldValue < online { fullyOnlineSince = now() }
            if online < devices.count { fullyOnlineSince = nil }
        }
    }
    /// Since when every device of the shard has been online: the instant the last one opened its session,
    /// exactly, rather than at the runner's once-a-second look (the ramp's achieved rate comes from it).
    private var fullyOnlineSince: Duration?
    /// Acknowledged alarms whose case no operator has engaged yet, and calls with media running.
    var alarmsAwaitingOperator = 0
    var activeCalls = 0
    /// SIP calls answered and not yet ended (`--sip-call`); the peak goes into `counts.sipCallsHeldMost`.
    private var sipCallsHeld = 0
    private var latency: [LatencyHistogram] = LoadMetric.allCases.map { _ in LatencyHistogram() }
    /// Alarm latencies since the last progress line.
    private var recentAlarms = LatencyHistogram()
    /// Second by second since the start of the run (index = second).
    private var seconds: [SecondResult] = []
    /// The alarms acknowledged, when the plan `keepsAcknowledgedAlarms`.
    private var acknowledgedAlarms: [FleetAlarmID] = []
    /// The heartbeat interval of the last session opened.
    private var heartbeatSeconds: Int?
    /// What the devices hear in their calls, with `LoadPlan.recordCalls`.
    let recorder: CallRecorder?

    /// - Parameters:
    ///   - firstID, stride, count: the shard's device ids.
    ///   - share: this shard's part of the process's devices, for its part of the alarm and ramp rates.
    init(loop: any EventLoop, plan: LoadPlan, firstID: UInt64, stride: UInt64, count: Int, share: Double, seed: UInt64, start: NIODeadline, wallAtStart: UInt64) {
        self.loop = loop
        self.timers = LoopTimers(loop: loop)
        self.deviceTimers = LoopTimers(loop: loop, slack: Self.deviceTimerSlack) { $0.device.timerFired($0.timer) }
        self.plan = plan
        centrePeers = (DatagramPeer(plan.address(.primary)), DatagramPeer(plan.address(.secondary)))
        recorder = plan.recordCalls.map(CallRecorder.init(directory:))
        deviceConfiguration = Shared(plan.deviceConfiguration)
        self.firstID = firstID
        self.stride = stride
        self.devices = Array(repeating: nil, count: count)
        self.start = start
        self.wallAtStart = wallAtStart
        ramp = RampSchedule(rate: max(plan.rampRate * share, 1e-6), devices: count)
        self.share = share
        self.seed = seed
        arrivals = PoissonArrivals(rate: 0, start: plan.steadyStart, seed: seed)
        eventArrivals = PoissonArrivals(rate: 0, start: plan.steadyStart, seed: seed)
        dropArrivals = PoissonArrivals(
            rate: count == 0 ? 0 : plan.fleetLinkDropRate * plan.processShare * share, start: plan.steadyStart, seed: seed ^ 0xD809)
        random = SplitMix64(seed: seed ^ 0x5eed)
    }

    var deviceCount: Int { devices.count }

    func now() -> Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds) - Int64(start.uptimeNanoseconds)) }

    /// Wall-clock milliseconds at a run instant.
    func wallTime(at instant: Duration) -> WireTime { wallAtStart + UInt64(max(0, instant.milliseconds)) }

    func record(_ metric: LoadMetric, _ latency: Duration) {
        self.latency[metric.index].record(latency)
        if metric == .alarm {
            recentAlarms.record(latency)
            let n = secondIndex(now())
            seconds[n].alarmsAcknowledged += 1
            seconds[n].alarm.record(latency)
        }
    }

    /// An answered call ended: how, and its media numbers.
    func callEnded(_ statistics: MediaStatistics, reason: CallEndReason, byCentre: Bool) {
        activeCalls -= 1
        switch (reason, byCentre) {
        case (.hangUp, false): counts.callsCompleted += 1
        case (.hangUp, true): counts.callsEndedByCentre += 1
        default: counts.callsFailed += 1
        }
        if statistics.audio.received == 0 { counts.callsSilent += 1 }
        counts.voicePacketsSent += Int(statistics.audioPacketsSent)
        counts.voicePacketsReceived += Int(statistics.audio.received)
        counts.voicePacketsLost += max(0, Int(statistics.audio.cumulativeLost))
        record(.jitter, .microseconds(Int64(statistics.audio.jitterMilliseconds * 1000)))
        if let delay = statistics.stampedDelay { record(.voiceDelay, .microseconds(Int64(delay.p50Milliseconds * 1000))) }
    }

    /// A device's SIP call was answered after `setupTime` (INVITE → 200).
    func sipCallAnswered(setupTime: Duration) {
        counts.sipCallsAnswered += 1
        record(.sipSetup, setupTime)
        sipCallsHeld += 1
        counts.sipCallsHeldMost = max(counts.sipCallsHeldMost, sipCallsHeld)
    }

    /// A device's SIP call ended: answered (its voice numbers) or failed (how).
    func sipCallEnded(_ report: SIPPhone.CallReport) {
        guard report.setupTime != nil else {
            counts.sipCallsFailed += 1
            counts.sipFailures[Self.failure(report.end), default: 0] += 1
            return
        }
        sipCallsHeld -= 1
        counts.sipCallsEnded += 1
        guard let statistics = report.statistics else {
            counts.sipCallsSilent += 1
            return
        }
        if statistics.audio.received == 0 { counts.sipCallsSilent += 1 }
        counts.sipVoicePacketsSent += Int(statistics.audioPacketsSent)
        counts.sipVoicePacketsReceived += Int(statistics.audio.received)
        counts.sipVoicePacketsLost += max(0, Int(statistics.audio.cumulativeLost))
        counts.sipCallsByLoss[LoadCounts.lossBand(statistics.audio.lossRatio), default: 0] += 1
        record(.sipJitter, .microseconds(Int64(statistics.audio.jitterMilliseconds * 1000)))
    }

    private static func failure(_ end: SIPUserAgent.CallEnd) -> String {
        switch end {
        case .refused(let code, let reason): "\(code) \(reason)"
        case .timedOut: "timed out"
        case .failed(let why): why.hasPrefix("no SIP phone") ? "no SIP phone" : "failed"
        case .hungUp: "hung up before the answer"
        case .byPeer, .cancelledByCaller: "ended by the far end before the answer"
        case .noAcknowledgement: "no ACK"
        }
    }

    /// A device's alarm acknowledged for the first time, `latency` after its intended instant.
    func alarmAcknowledged(_ alarm: FleetAlarmID, latency: Duration) {
        counts.alarmsAcknowledged += 1
        record(.alarm, latency)
        if plan.keepsAcknowledgedAlarms { acknowledgedAlarms.append(alarm) }
    }

    /// An alarm raised, counted in the second of its intended instant.
    func alarmRaised(intended: Duration) {
        counts.alarmsRaised += 1
        seconds[secondIndex(intended)].alarmsRaised += 1
    }

    /// An alarm went on the wire for the first time.
    func alarmSent() {
        counts.alarmsSent += 1
        seconds[secondIndex(now())].alarmsSent += 1
    }

    func alarmRetransmitted() {
        counts.alarmRetransmissions += 1
        seconds[secondIndex(now())].alarmRetransmissions += 1
    }

    /// An attempt to open a session failed, for `reason` (the firmware's words).
    func attemptFailed(reason: String) {
        counts.sessionFailures += 1
        counts.failureReasons[reason, default: 0] += 1
        seconds[secondIndex(now())].failedAttempts += 1
    }

    /// The centre refused a message (`nak`) for `reason`.
    func rejected(reason: String) {
        counts.rejected += 1
        counts.rejectionReasons[reason, default: 0] += 1
        seconds[secondIndex(now())].rejected += 1
    }

    /// A session opened with `heartbeatSeconds` (0: the firmware's default, 30 s).
    func sessionOpened(heartbeatSeconds: Int) {
        counts.sessionsOpened += 1
        seconds[secondIndex(now())].sessionsOpened += 1
        self.heartbeatSeconds = heartbeatSeconds > 0 ? heartbeatSeconds : 30
    }

    /// An established session ended (the device reconnects).
    func sessionLost() {
        counts.reconnects += 1
        seconds[secondIndex(now())].sessionsLost += 1
    }

    /// The index of `instant`'s second in `seconds`, which grows to hold it.
    private func secondIndex(_ instant: Duration) -> Int {
        let n = Swift.max(0, Int(instant.nanoseconds / 1_000_000_000))
        while seconds.count <= n { seconds.append(SecondResult(second: seconds.count)) }
        return n
    }

    /// Runs `body` on the loop after `after`, unless the shard stopped.
    func schedule(_ after: Duration, _ body: @escaping @Sendable () -> Void) {
        timers.schedule(in: after, body)
    }

    func schedule(_ timer: DeviceTimer, after: Duration) {
        deviceTimers.schedule(in: after, timer)
    }

    // MARK: Running

    /// Opens the shared sockets (UDP), then starts the ramp and the alarm schedule. On the loop.
    func begin() -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        guard plan.transport == .udp, plan.dc09 == nil, !devices.isEmpty else {
            startDue()
            schedulePhases()
            return loop.makeSucceededVoidFuture()
        }
        let socketCount = (devices.count + plan.devicesPerSocket - 1) / plan.devicesPerSocket
        let host = plan.centre.protocol == .inet6 ? "::" : "0.0.0.0"
        let binds = (0..<socketCount).map { _ in
            // The socket is ours so that sends are batched without NIO's per-datagram envelopes
            // (BatchedDatagramSocket); NIO's channel owns and closes it, and reads it (autoRead).
            loop.makeCompletedFuture { try BatchedDatagramSocket.bound(host: host, port: 0, reusePort: false) }.flatMap { [self] descriptor in
                DatagramBootstrap(group: loop)
                    .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                    .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
                    // Up to 32 datagrams a recvmmsg, in equal slots a little over the largest frame.
                    .channelOption(.datagramVectorReadMessageCount, value: Self.datagramsPerRead)
                    .channelOption(
                        .recvAllocator,
                        value: FixedSizeRecvByteBufferAllocator(capacity: (Wire.maximumFrameLength + 512) * Self.datagramsPerRead))
                    .channelInitializer { [self] channel in
                        channel.eventLoop.makeCompletedFuture {
                            let socket = BatchedDatagramSocket(
                                descriptor: descriptor, slot: Wire.maximumFrameLength + 512, batch: Self.datagramsPerRead,
                                queueLimit: 4 << 20)
                            try channel.pipeline.syncOperations.addHandler(BatchedDatagramReader(
                                socket: socket, readInterval: .zero, readsPerTurn: 1, received: { [self] datagram, _ in route(datagram) }))
                        }
                    }
                    .withBoundSocket(descriptor)
            }
        }
        return EventLoopFuture.whenAllSucceed(binds, on: loop).flatMapThrowing { [self] channels in
            sockets = channels
            datagramSockets = try channels.map { try $0.pipeline.syncOperations.handler(type: BatchedDatagramReader.self).socket }
            startDue()
            schedulePhases()
        }
    }

    /// Starts every device whose ramp instant has come, and wakes up for the next.
    func startDue() {
        guard !stopped else { return }
        let due = ramp.startedBy(now())
        while started < due {
            let n = started
            let id = UInt32(truncatingIfNeeded: firstID + UInt64(n) * stride)
            let device = SimulatedDevice(id: id, socket: n / plan.devicesPerSocket, shard: self)
            devices[n] = device
            started += 1
            device.start(intended: ramp.instant(of: n))
        }
        if started < devices.count {
            // At most one wake-up a `rampTick`: at 15,000 starts a second a shard would otherwise sleep and wake
            // every 67 µs for one device. The devices due by then start together, their session starts leave in
            // one `sendmmsg`, and each is measured from its own instant, so the wait is in the set-up latency.
            schedule(Swift.max(ramp.instant(of: started) - now(), Self.rampTick)) { [self] in startDue() }
        }
    }

    /// The ramp's shortest wait between two wake-ups.
    static let rampTick = Duration.milliseconds(1)

    /// Wakes up at the start of each phase of the steady part, and for the link drops.
    private func schedulePhases() {
        guard !devices.isEmpty else { return }
        var start = plan.steadyStart
        for (k, phase) in plan.phases.enumerated() {
            let at = start
            schedule(at - now()) { [self] in begin(phase: phase, number: k, at: at) }
            start += phase.duration
        }
        if dropArrivals.rate > 0 { schedule(dropArrivals.next - now()) { [self] in dropsDue() } }
    }

    /// A phase begins: its Poisson schedules replace the last one's, and mains go out or come back.
    private func begin(phase: LoadScenario.Phase, number: Int, at start: Duration) {
        phaseGeneration += 1
        let phaseSeed = seed &+ UInt64(number) &* 0x9E37_79B9_7F4A_7C15
        let rate = plan.processShare * share
        arrivals = PoissonArrivals(rate: phase.alarmRate * rate, start: start, seed: phaseSeed)
        eventArrivals = PoissonArrivals(rate: phase.eventRate * rate, start: start, seed: phaseSeed ^ 0xE7E7)
        let end = start + phase.duration
        alarmsDue(until: end, generation: phaseGeneration)
        eventsDue(until: end, generation: phaseGeneration)
        if phase.mainsLostShare > 0 || phase.mainsRestoredShare > 0 {
            for device in devices {
                guard let device else { continue }
                if device.mainsPresent {
                    // The power goes out now; the firmware's event machine delays its report by up to the phase.
                    if phase.mainsLostShare > 0, random.nextUnit() < phase.mainsLostShare {
                        device.mainsChanged(present: false, reportWithin: phase.duration)
                    }
                } else if phase.mainsRestoredShare > 0, random.nextUnit() < phase.mainsRestoredShare {
                    let instant = start + phase.duration * random.nextUnit()
                    schedule(instant - now()) { device.mainsChanged(present: true, reportWithin: phase.duration) }
                }
            }
        }
    }

    /// Raises every alarm whose Poisson instant has come, on a device chosen at random among those without
    /// an open alarm (the firmware allows one per home), and wakes up for the next.
    private func alarmsDue(until end: Duration, generation: Int) {
        guard !stopped, generation == phaseGeneration else { return }
        for instant in arrivals.due(at: now()) where instant < end && started > 0 {
            // A few random draws find a free home unless nearly all have an alarm open: then the arrival
            // goes to the next free one in order, or, with none, is counted as a press during an alarm.
            var chosen: SimulatedDevice?
            for _ in 0..<8 {
                if let device = devices[Int(random.next() % UInt64(started))], device.canRaiseAlarm {
                    chosen = device
                    break
                }
            }
            if chosen == nil { chosen = devices[0..<started].lazy.compactMap { $0 }.first { $0.canRaiseAlarm } }
            if let chosen { chosen.raiseAlarm(intended: instant) } else { counts.alarmsWithoutFreeDevice += 1 }
        }
        if arrivals.rate > 0, arrivals.next < end {
            schedule(arrivals.next - now()) { [self] in alarmsDue(until: end, generation: generation) }
        }
    }

    /// Device events (battery low/OK, tamper) on devices chosen at random, as alarms are.
    private func eventsDue(until end: Duration, generation: Int) {
        guard !stopped, generation == phaseGeneration else { return }
        for instant in eventArrivals.due(at: now()) where instant < end && started > 0 {
            let n = Int(random.next() % UInt64(started))
            devices[n]?.deviceEvent()
        }
        if eventArrivals.rate > 0, eventArrivals.next < end {
            schedule(eventArrivals.next - now()) { [self] in eventsDue(until: end, generation: generation) }
        }
    }

    /// Cuts the link of a device chosen at random, for each drop due, during the steady part.
    private func dropsDue() {
        guard !stopped else { return }
        let end = plan.steadyStart + plan.steadyDuration
        for instant in dropArrivals.due(at: now()) where instant < end && started > 0 {
            let n = Int(random.next() % UInt64(started))
            if devices[n]?.dropLink() == true { counts.linksDropped += 1 }
        }
        if dropArrivals.next < end { schedule(dropArrivals.next - now()) { [self] in dropsDue() } }
    }

    /// Stops every device and closes the sockets. On the loop.
    func stop() -> EventLoopFuture<Void> {
        loop.preconditionInEventLoop()
        for device in devices { device?.stop() }
        recorder?.finishAll()
        stopped = true
        timers.stop()
        deviceTimers.stop()
        let closes = sockets.map { $0.close() }
        sockets = []
        datagramSockets = []
        return EventLoopFuture.andAllComplete(closes, on: loop)
    }

    // MARK: UDP

    static let datagramsPerRead = 32

    /// How late a device's machine timer may fire so that the timers of many devices wake the loop once
    /// (`LoopTimers` says why). A heartbeat's round trip is measured from its sending, so it does not count.
    static let deviceTimerSlack = Duration.milliseconds(1)

    /// The shared sockets' batched sends, by socket number, and whether a flush of them is scheduled.
    var datagramSockets: [BatchedDatagramSocket] = []
    private var flushScheduled = false

    /// The centre's addresses as the sockets take them, made once rather than a datagram.
    private let centrePeers: (primary: DatagramPeer?, secondary: DatagramPeer?)

    /// Sends through the shared socket: queued now, sent with everything else this turn of the loop queued
    /// (the heartbeats of one timer wake-up leave in one `sendmmsg` a socket).
    func sendDatagram(_ buffer: ByteBuffer, socket: Int, to path: LinkMachine.Path) {
        let centre = path == .secondary ? centrePeers.secondary : centrePeers.primary
        guard socket < datagramSockets.count, !datagramLost(), let peer = centre else { return }
        guard datagramSockets[socket].enqueue(to: peer, { $0.writeImmutableBuffer(buffer) }) else {
            counts.datagramsUnsent += 1
            return
        }
        scheduleFlush(after: .zero)
    }

    private func scheduleFlush(after delay: TimeAmount) {
        guard !flushScheduled else { return }
        flushScheduled = true
        if delay == .zero {
            loop.execute { [self] in flushSockets() }
        } else {
            loop.scheduleTask(in: delay) { [self] in flushSockets() }
        }
    }

    /// Sends what every socket queued; a socket whose send buffer is full is tried again a millisecond later.
    private func flushSockets() {
        flushScheduled = false
        var blocked = false
        for socket in datagramSockets where socket.hasQueued {
            let flushed = socket.flush()
            counts.datagramsUnsent += flushed.dropped
            blocked = blocked || flushed.blocked
        }
        if blocked { scheduleFlush(after: .milliseconds(1)) }
    }

    /// Routes a datagram to its device by the header's device id.
    func route(_ datagram: ByteBuffer) {
        guard !datagramLost() else { return }
        guard let frame = try? SealedFrame(datagram: datagram) else {
            counts.refusedFrames += 1
            return
        }
        let id = UInt64(frame.header.deviceID)
        guard id >= firstID, (id - firstID) % stride == 0 else {
            counts.refusedFrames += 1
            return
        }
        let n = (id - firstID) / stride
        guard n < UInt64(devices.count), let device = devices[Int(n)] else {
            counts.refusedFrames += 1
            return
        }
        device.received(frame)
    }

    /// Whether to throw this datagram away (`--udp-loss`), counting it if so.
    private func datagramLost() -> Bool {
        guard plan.udpLoss > 0, random.nextUnit() < plan.udpLoss else { return false }
        counts.datagramsDropped += 1
        return true
    }

    // MARK: Reading out

    struct Snapshot: Sendable {
        var counts: LoadCounts
        var online: Int
        var fullyOnlineSince: Duration?
        var started: Int
        var unacknowledgedAlarms: Int
        var alarmsAwaitingOperator: Int
        var activeCalls: Int
        var recentAlarms: LatencyHistogram
        /// Only when asked for (they are large).
        var latency: [LatencyHistogram]?
        var seconds: [SecondResult]?
        var acknowledgedAlarms: [FleetAlarmID]?
        var heartbeatSeconds: Int?
    }

    /// What the shard counted; empties the recent-alarm histogram. On the loop.
    func snapshot(withHistograms: Bool) -> Snapshot {
        loop.preconditionInEventLoop()
        defer { recentAlarms.reset() }
        return Snapshot(
            counts: counts, online: online, fullyOnlineSince: fullyOnlineSince, started: started,
            unacknowledgedAlarms: counts.alarmsRaised - counts.alarmsAcknowledged,
            alarmsAwaitingOperator: alarmsAwaitingOperator, activeCalls: activeCalls,
            recentAlarms: recentAlarms, latency: withHistograms ? latency : nil, seconds: withHistograms ? seconds : nil,
            acknowledgedAlarms: withHistograms ? acknowledgedAlarms : nil, heartbeatSeconds: heartbeatSeconds)
    }
}

extension LoadMetric {
    var index: Int {
        switch self {
        case .alarm: 0
        case .session: 1
        case .heartbeat: 2
        case .engaged: 3
        case .voice: 4
        case .jitter: 5
        case .voiceDelay: 6
        case .sipSetup: 7
        case .sipJitter: 8
        }
    }
}
