import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Runs one device in a home: `DeviceMachine` driven by the one device driver (`DeviceDriver`), in the
/// firmware's environment — the durable outbox and counter reservation, the indicators, its own connection
/// to the centre, logs and the observation stream.
///
/// All the device's logic is in the machine and the driving in `DeviceDriver`; this class holds only the
/// firmware's environment. Every mutable property is touched on `eventLoop` only (the driver asserts it);
/// public methods hop there.
public final class DeviceRuntime: DeviceDriver, @unchecked Sendable {
    public let configuration: DeviceRuntimeConfiguration
    public let eventLoop: any EventLoop
    /// What happens, in order, for the demo, logs, tests and the diagnostics.
    public let observations: AsyncStream<DeviceObservation>

    private let outbox: any Outbox
    private let counterStore: any CounterStore
    private let indicators: any IndicatorOutput
    let logger: Logger
    private let observer: AsyncStream<DeviceObservation>.Continuation

    var driver: DeviceDriverState
    private var started: NIODeadline

    public init(
        configuration: DeviceRuntimeConfiguration, outbox: any Outbox, counterStore: any CounterStore,
        indicators: any IndicatorOutput, eventLoop: any EventLoop, logger: Logger
    ) throws {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.outbox = outbox
        self.counterStore = counterStore
        self.indicators = indicators
        self.logger = logger
        (observations, observer) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        var limit: UInt64?
        var counterFault: String?
        do { limit = try counterStore.load() } catch { counterFault = "\(error)" }
        driver = DeviceDriverState(
            machine: DeviceMachine(
                configuration: configuration.machine, key: configuration.key, storedCounterLimit: limit, counterFault: counterFault,
                seed: UInt64.random(in: .min ... .max)))
        started = .now()
    }

    // MARK: Inputs (any thread)

    /// Loads the outbox, reports the restart, and connects.
    public func start() {
        eventLoop.execute { [self] in
            started = .now()
            var pending: [Message] = []
            do { pending = try outbox.pending(limit: 10_000) } catch { observe(.fault("cannot read the outbox: \(error)")) }
            feed { $0.start(pending: pending, bootCount: configuration.bootCount, now: $1) }
        }
    }

    /// Starts the SIP line of `[voice] sip` (`configuration.sip`), so that acknowledged alarms are followed by
    /// a call to the centre and its calls back are answered; returns the local SIP port. Call it before
    /// `start()`: an alarm acknowledged before the line is up has its call fail and tried again.
    public func startSIP() async throws -> Int? {
        guard let sip = configuration.sip else { return nil }
        return try await startSIPLine(sip, media: configuration.media, cname: "device-\(configuration.key.deviceID)")
    }

    /// Disconnects and stops every timer (a SIP call is hung up). Items still in the outbox stay there for the
    /// next start.
    public func stop() async {
        let stopped: ((any Channel)?, EventLoopFuture<Void>)? = try? await eventLoop.submit { [self] in
            defer { observer.finish() }
            let channel = stopDriver()
            return (channel, stopSIPLine(grace: .seconds(2)))
        }.get()
        try? await stopped?.0?.close()
        try? await stopped?.1.get()
    }

    /// The call button's level changed at `at` on `CLOCK_MONOTONIC` (the kernel's timestamp of an evdev
    /// event), or now. The press detector judges by that time, not by when this call gets to the loop.
    public func buttonEdge(down: Bool, at: Duration? = nil) {
        eventLoop.execute { [self] in
            let edgeTime = at.map(runtimeTime) ?? now().monotonic
            feed { $0.buttonEdge(down: down, at: edgeTime, now: $1) }
        }
    }

    /// A verdict a source judged itself (a replay, in its recording's time), instants on `CLOCK_MONOTONIC`.
    public func buttonJudged(_ verdict: PressDetector.Action) {
        eventLoop.execute { [self] in feed { $0.buttonJudged(verdict.mappingInstants(runtimeTime), now: $1) } }
    }

    /// The cancel input (a second button, or the pendant's cancel key).
    public func cancel() {
        eventLoop.execute { [self] in feed { $0.cancelRequested(now: $1) } }
    }

    /// A press that needs no debounce: the simulated button, a test alarm.
    public func raiseAlarm(kind: AlarmKind = .button) {
        eventLoop.execute { [self] in feed { $0.raiseAlarm(kind: kind, now: $1) } }
    }

    public func mainsChanged(present: Bool) {
        eventLoop.execute { [self] in feed { $0.mainsChanged(present: present, now: $1) } }
    }

    public func batteryMeasured(percent: UInt8) {
        eventLoop.execute { [self] in feed { $0.batteryMeasured(percent: percent, now: $1) } }
    }

    public func buttonPresenceChanged(present: Bool) {
        eventLoop.execute { [self] in feed { $0.buttonPresenceChanged(present: present, now: $1) } }
    }

    /// The button's enclosure reports it was opened.
    public func tamperDetected() {
        eventLoop.execute { [self] in feed { $0.tamperDetected(now: $1) } }
    }

    // MARK: Calls

    /// Hangs up the call in progress (the person pressed cancel during a call, or a test). False if none.
    public func hangUp() async -> Bool {
        (try? await eventLoop.submit { [self] in hangUpCall() }.get()) ?? false
    }

    /// The media numbers of the call in progress, or `nil` without one.
    public func callStatistics() async -> MediaStatistics? {
        try? await eventLoop.submit { [self] in currentMediaLink?.statistics }.get()
    }

    /// Fault injection for tests and the load tool: the call stays up but this side sends no media.
    public func setMediaPaused(_ paused: Bool) {
        eventLoop.execute { [self] in currentMediaLink?.setSendingPaused(paused) }
    }

    // MARK: The firmware's environment (DeviceDriver)

    /// Monotonic time since start, and the wall clock.
    func now() -> ClockReading {
        ClockReading(
            wall: wallClockMilliseconds(),
            monotonic: .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds) - Int64(started.uptimeNanoseconds)))
    }

    func schedule(_ timer: DeviceMachine.Timer, after: Duration) {
        eventLoop.scheduleTask(in: TimeAmount(after)) { [self] in timerFired(timer) }
    }

    /// A `CLOCK_MONOTONIC` instant as time since start.
    private func runtimeTime(_ monotonic: Duration) -> Duration {
        monotonic - .nanoseconds(Int64(started.uptimeNanoseconds))
    }

    var transport: DeviceDriverTransport {
        switch configuration.transport {
        case .tcp: .tcp(connectTimeout: configuration.connectTimeout, source: nil)
        case .udp: .udp
        }
    }

    func address(_ path: LinkMachine.Path) -> SocketAddress {
        path == .primary ? configuration.primary : (configuration.secondary ?? configuration.primary)
    }

    func sendDatagram(_ buffer: ByteBuffer, to path: LinkMachine.Path) {
        // An impossible transition (see `impossibleTransition`): the firmware's transport is never `.sharedUDP`.
        assertionFailure("impossible transition: a device in a home has a socket of its own")
    }

    func reserveCounters(_ limit: UInt64) throws {
        try counterStore.store(limit)
    }

    func store(_ draft: DeviceMachine.Draft) throws -> Message {
        let message = try outbox.enqueue { draft.message(id: $0) }
        if case .alarm = message, configuration.faultInjection == .crashAfterStoringAlarm { kill(getpid(), SIGKILL) }
        return message
    }

    func remove(id: UInt32) throws {
        try outbox.remove(id: id)
    }

    func indicate(_ state: IndicatorState) {
        do { try indicators.show(state) } catch { logger.warning("indicator failed", metadata: ["error": "\(error)"]) }
        observe(.indicator(state))
    }

    func observe(_ observation: DeviceObservation.Kind) {
        if case .fault(let text) = observation { logger.error("\(text)") }
        observer.yield(DeviceObservation(at: now().monotonic, kind: observation))
    }

    var mediaSetup: DeviceMediaSetup {
        DeviceMediaSetup(
            cname: "device-\(configuration.key.deviceID)", parameters: configuration.media,
            video: configuration.capabilities.contains(.video))
    }

    /// The peer leaving and the first voice need nothing: the centre's callEnd follows on the control link,
    /// and the first voice is in the statistics.
    func mediaEvent(_ event: MediaLink.Event, callID: UInt32) {}

    /// The first voice of a SIP call is in its report's statistics.
    func sipMediaHeard() {}
}

extension DeviceRuntimeConfiguration {
    /// The machine's part of the configuration.
    var machine: DeviceMachine.Configuration {
        var machine = DeviceMachine.Configuration(
            link: .init(
                hasSecondary: secondary != nil,
                sessionStart: SessionStart(
                    firmware: firmware, capabilities: capabilities, bootCount: bootCount, model: model, keyEpoch: key.epoch),
                defaultHeartbeatInterval: defaultHeartbeatInterval, handshakeTimeout: handshakeTimeout, backoff: backoff,
                returnToPrimaryAfter: returnToPrimaryAfter),
            delivery: delivery, press: press, events: events, cancelWindow: cancelWindow,
            primaryName: LinkCause.address(primary), secondaryName: secondary.map(LinkCause.address))
        if let dc09 { machine.reportOverDC09(dc09.framing, supervision: dc09.supervision) }
        machine.sipVoice = sip?.voice
        return machine
    }
}

/// Wall-clock milliseconds since the Unix epoch.
func wallClockMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}
