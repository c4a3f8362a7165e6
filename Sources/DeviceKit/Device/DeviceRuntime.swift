import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Runs one device: feeds button, power and network events into the pure machines and carries out what they
/// ask, in one place, on one event loop.
///
/// The machines: `PressDetector` (button level → presses), `AlarmMachine` (an alarm's life and the
/// indicators), `DeviceEventMachine` (power, battery, button presence), `LinkMachine` (connection, session,
/// heartbeats, backoff, dual path), `DeliveryMachine` (outbox → centre, retransmission). Cryptography and
/// counters are in `DeviceFrameSession`; durable state in the `Outbox` and the `CounterStore`.
///
/// Every mutable property is touched on `eventLoop` only; public methods hop there.
public final class DeviceRuntime: @unchecked Sendable {
    public let configuration: DeviceRuntimeConfiguration
    public let eventLoop: any EventLoop
    /// What happens, in order, for the demo, logs, tests and the load tester.
    public let observations: AsyncStream<DeviceObservation>

    private let outbox: any Outbox
    private let counterStore: any CounterStore
    private let indicators: any IndicatorOutput
    let logger: Logger
    private let observer: AsyncStream<DeviceObservation>.Continuation

    private var press: PressDetector
    var alarm: AlarmMachine
    private var events: DeviceEventMachine
    private var link: LinkMachine
    private var delivery: DeliveryMachine
    private var frames: DeviceFrameSession

    var connection: (any Channel)?
    private var connectionGeneration = 0
    private var started: NIODeadline
    var stopped = false
    /// Centre time minus local wall time, in ms, once a session told us.
    private var clockOffset: Int64?
    private var sessionStartSentAt: Duration?
    private var heartbeatsInFlight: [UInt64: Duration] = [:]
    /// Ids of reliable centre messages already handled, so a retransmission is acked but not applied twice.
    private var handledCentreIDs = HandledIDs()
    private var currentIndicator: IndicatorState = .idle
    /// What the alarm machine shows; `refreshIndicator` combines it with the link's health.
    private var alarmIndicator: IndicatorState = .idle
    private var health = LinkHealth()
    /// The last failed connect in plain words, for `LinkHealth`.
    private var lastConnectFailure: String?
    /// The centre of the open (or last) session.
    private var sessionPath: LinkMachine.Path = .primary
    /// Why the counter reservation cannot be trusted (missing, damaged, another key epoch): then nothing is
    /// ever sealed, the device does not connect, and alarms wait in the outbox for a re-provisioned key.
    private var counterFault: String?
    /// The call's life (DeviceRuntime+Call.swift), its media links by call id, the offers being taken.
    var call = CallMachine(role: .callee)
    var mediaLinks: [UInt32: MediaLink] = [:]
    var takenOffers: [UInt32: CallOffer] = [:]
    /// The media numbers of a call just stopped, for its `ended` report.
    var stoppedCallStatistics: [UInt32: MediaStatistics] = [:]

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
        let seed = UInt64.random(in: .min ... .max)
        press = PressDetector(configuration: configuration.press)
        alarm = AlarmMachine(cancelWindow: configuration.cancelWindow)
        events = DeviceEventMachine(configuration: configuration.events, seed: seed ^ 1)
        link = LinkMachine(
            configuration: .init(
                hasSecondary: configuration.secondary != nil,
                sessionStart: SessionStart(
                    firmware: configuration.firmware, capabilities: configuration.capabilities,
                    bootCount: configuration.bootCount, model: configuration.model, keyEpoch: configuration.key.epoch),
                defaultHeartbeatInterval: configuration.defaultHeartbeatInterval,
                handshakeTimeout: configuration.handshakeTimeout, backoff: configuration.backoff,
                returnToPrimaryAfter: configuration.returnToPrimaryAfter),
            seed: seed ^ 2)
        delivery = DeliveryMachine(configuration: configuration.delivery, seed: seed ^ 3)
        var limit: UInt64 = 0
        do { limit = try counterStore.load() } catch { counterFault = "\(error)" }
        frames = DeviceFrameSession(key: configuration.key, storedCounterLimit: limit)
        started = .now()
    }

    // MARK: Inputs (any thread)

    /// Loads the outbox, reports the restart, and connects.
    public func start() {
        eventLoop.execute { [self] in
            started = .now()
            health.started(now: now())
            show(.idle)
            do {
                let pending = try outbox.pending(limit: 10_000)
                if !pending.isEmpty { observe(.recovered(count: pending.count)) }
                run(delivery.loaded(pending))
            } catch {
                fault("cannot read the outbox: \(error)")
            }
            run(events.booted(bootCount: configuration.bootCount))
            if let counterFault {
                logger.critical("\(counterFault)")
                run(health.cannotSeal(cause: counterFault))
            } else {
                run(link.start())
            }
        }
    }

    /// Disconnects and stops every timer. Items still in the outbox stay there for the next start.
    public func stop() async {
        let channel: (any Channel)? = try? await eventLoop.submit { [self] in
            stopped = true
            let c = connection
            connection = nil
            _ = link.stop()
            run(call.stop())
            observer.finish()
            return c
        }.get()
        try? await channel?.close()
    }

    /// The call button's level changed at `at` on `CLOCK_MONOTONIC` (the kernel's timestamp of an evdev
    /// event), or now. The press detector judges by that time, not by when this call gets to the loop.
    public func buttonEdge(down: Bool, at: Duration? = nil) {
        eventLoop.execute { [self] in run(press.edge(down: down, at: at.map(runtimeTime) ?? now())) }
    }

    /// A verdict a source judged itself (a replay, in its recording's time), instants on `CLOCK_MONOTONIC`.
    public func buttonJudged(_ verdict: PressDetector.Action) {
        eventLoop.execute { [self] in
            if case .wakeUp = verdict { return }  // a source's own timer, not ours
            run([verdict.mappingInstants(runtimeTime)])
        }
    }

    /// The cancel input (a second button, or the pendant's cancel key).
    public func cancel() {
        eventLoop.execute { [self] in run(alarm.cancelRequested(now: now())) }
    }

    /// A press that needs no debounce: the simulated button, a test alarm, the load tester.
    public func raiseAlarm(kind: AlarmKind = .button) {
        eventLoop.execute { [self] in run(alarm.pressed(kind: kind, at: now())) }
    }

    public func mainsChanged(present: Bool) {
        eventLoop.execute { [self] in run(events.mainsChanged(present: present)) }
    }

    public func batteryMeasured(percent: UInt8) {
        eventLoop.execute { [self] in run(events.batteryMeasured(percent: percent)) }
    }

    public func buttonPresenceChanged(present: Bool) {
        eventLoop.execute { [self] in run(events.buttonPresenceChanged(present: present)) }
    }

    /// The button's enclosure reports it was opened.
    public func tamperDetected() {
        eventLoop.execute { [self] in run(events.tamperDetected(at: now())) }
    }

    /// Monotonic time since start.
    func now() -> Duration { .nanoseconds(NIODeadline.now().uptimeNanoseconds - started.uptimeNanoseconds) }

    /// A `CLOCK_MONOTONIC` instant as time since start.
    private func runtimeTime(_ monotonic: Duration) -> Duration {
        monotonic - .nanoseconds(Int64(started.uptimeNanoseconds))
    }

    // MARK: Machines' actions

    private func run(_ actions: [PressDetector.Action]) {
        for action in actions {
            switch action {
            case .wakeUp(let at):
                schedule(at - now()) { $0.run($0.press.timeReached(at)) }
            case .pressed(let at):
                observe(.button(action))
                run(alarm.pressed(kind: .button, at: at))
            case .longPressed, .released, .tooShort, .glitch, .bounce:
                observe(.button(action))
            case .stuck(let since):
                observe(.fault("the call button has been held down for \((now() - since).milliseconds / 1000) s: is it stuck?"))
            }
        }
    }

    func run(_ actions: [AlarmMachine.Action]) {
        for action in actions {
            switch action {
            case .storeAlarm(let kind, let pressedAt, let hold):
                let (time, synchronised) = wireTime(at: pressedAt)
                var alarmFlags: AlarmFlags = synchronised ? [.clockSynchronised] : []
                if !events.status.contains(.mainsPresent) { alarmFlags.insert(.onBattery) }
                let flags = alarmFlags
                let battery = events.battery
                do {
                    let message = try outbox.enqueue { id in
                        .alarm(Alarm(id: id, kind: kind, triggeredAt: time, battery: battery, flags: flags, holdMilliseconds: hold))
                    }
                    guard case .alarm(let stored) = message else { continue }
                    if configuration.faultInjection == .crashAfterStoringAlarm { kill(getpid(), SIGKILL) }
                    run(alarm.stored(stored))
                    run(delivery.enqueued(message))
                } catch {
                    fault("cannot store the alarm: \(error)")
                    run(alarm.storeFailed())
                }
            case .storeCancel(let alarmID):
                let at = wireTime(at: now()).0
                store { .alarmCancel(AlarmCancel(id: $0, alarmID: alarmID, cancelledAt: at)) }
            case .storeEvent(let kind, let value):
                store(event: kind, value: value)
            case .setIndicator(let state):
                alarmIndicator = state
                refreshIndicator()
            case .scheduleTimer(let timer, let after):
                schedule(after) { $0.run($0.alarm.timerFired(timer)) }
            case .story(let step):
                observe(.story(step))
            }
        }
    }

    private func run(_ actions: [DeviceEventMachine.Action]) {
        for action in actions {
            switch action {
            case .storeEvent(let kind, let value):
                store(event: kind, value: value)
            case .scheduleTimer(let timer, let after):
                schedule(after) { $0.run($0.events.timerFired(timer)) }
            }
        }
    }

    private func run(_ actions: [LinkMachine.Action]) {
        for action in actions {
            switch action {
            case .connect(let path):
                connect(path)
            case .disconnect:
                disconnect()
            case .send(let message):
                if case .sessionStart = message { sessionStartSentAt = now() }
                send(message)
            case .sendHeartbeat:
                let battery = events.battery
                var status = events.status
                if delivery.isBusy { status.insert(.backlog) }
                if alarm.openAlarm != nil { status.insert(.alarmActive) }
                if let counter = send(.heartbeat(Heartbeat(status: status, battery: battery))) {
                    heartbeatsInFlight[counter] = now()
                    if heartbeatsInFlight.count > 8 { heartbeatsInFlight.remove(at: heartbeatsInFlight.startIndex) }
                }
            case .scheduleTimer(let timer, let after):
                schedule(after) { $0.run($0.link.timerFired(timer, now: $0.now())) }
            case .sessionEstablished(let path, let accept):
                if let sent = sessionStartSentAt { correctClock(centreTime: accept.centreTime, roundTrip: now() - sent) }
                apply(accept.settings)
                sessionPath = path
                observe(.sessionEstablished(path))
                run(health.sessionEstablished(now: now()))
                refreshIndicator()
                run(delivery.linkUp())
            case .sessionLost(let reason):
                delivery.linkDown()
                frames.reset()
                observe(.sessionLost(reason))
                run(health.sessionLost(dead: reason == .silent || reason == .unanswered, cause: cause(of: reason), now: now()))
            case .attemptFailed(let path, let reason):
                sessionPath = path
                let cause = reason == .connectFailed ? (lastConnectFailure ?? cause(of: reason)) : cause(of: reason)
                run(health.attemptFailed(cause: cause, now: now()))
            }
        }
    }

    private func run(_ actions: [LinkHealth.Action]) {
        for action in actions {
            switch action {
            case .down(let cause):
                observe(.linkDown(centre: centreAddress, cause: cause))
                refreshIndicator()
            case .restored(let after):
                observe(.linkRestored(centre: centreAddress, after: after))
            case .stillDown(let duration, let cause):
                observe(.linkStillDown(centre: centreAddress, for: duration, cause: cause, waiting: delivery.waiting))
            case .scheduleTimer(let timer, let after):
                schedule(after) { $0.run($0.health.timerFired(timer, now: $0.now())) }
            }
        }
    }

    private func cause(of reason: LinkLossReason) -> String {
        LinkCause.lost(reason, handshakeTimeout: configuration.handshakeTimeout, heartbeat: configuration.defaultHeartbeatInterval)
    }

    /// The centre the device is trying to reach, as `127.0.0.1:7730`.
    private var centreAddress: String {
        LinkCause.address(sessionPath == .primary ? configuration.primary : (configuration.secondary ?? configuration.primary))
    }

    private func run(_ actions: [DeliveryMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let message):
                send(message)
            case .scheduleTimer(let timer, let after):
                schedule(after) { $0.run($0.delivery.timerFired(timer)) }
            case .remove(let id):
                do { try outbox.remove(id: id) } catch { fault("cannot remove message \(id) from the outbox: \(error)") }
            case .delivered(let message):
                observe(.delivered(message))
                if case .alarm(let a) = message { run(alarm.delivered(alarmID: a.id)) }
            case .refused(let message, let reason):
                observe(.fault("the centre refused \(message.kind.name) \(message.reliableID ?? 0): \(reason)"))
            }
        }
        run(link.busyChanged(delivery.isBusy, now: now()))
    }

    // MARK: Storage, indicators, observations

    func store(_ build: @escaping @Sendable (UInt32) -> Message) {
        do {
            run(delivery.enqueued(try outbox.enqueue(build)))
        } catch {
            fault("cannot store a message: \(error)")
        }
    }

    private func store(event kind: DeviceEventKind, value: UInt32) {
        let at = wireTime(at: now()).0
        store { .event(DeviceEvent(id: $0, kind: kind, at: at, value: value)) }
    }

    /// Shows the alarm's state, or what the link's health makes of it: with the centre out of reach, an
    /// idle device shows the fault and an alarm being sent shows that it is stored and waiting.
    private func refreshIndicator() {
        let state: IndicatorState
        switch (alarmIndicator, health.isDown) {
        case (.idle, true): state = .fault
        case (.sending, true): state = .waiting
        default: state = alarmIndicator
        }
        if state != currentIndicator { show(state) }
    }

    private func show(_ state: IndicatorState) {
        currentIndicator = state
        do { try indicators.show(state) } catch { logger.warning("indicator failed", metadata: ["error": "\(error)"]) }
        observe(.indicator(state))
    }

    private func fault(_ text: String) {
        logger.error("\(text)")
        show(.fault)
        observe(.fault(text))
    }

    func observe(_ observation: DeviceObservation.Kind) {
        observer.yield(DeviceObservation(at: now(), kind: observation))
    }

    /// Centre-corrected wall-clock time of a monotonic instant, and whether it is corrected.
    private func wireTime(at instant: Duration) -> (WireTime, Bool) {
        let ago = now() - instant
        let wall = Int64(wallClockMilliseconds()) - ago.milliseconds + (clockOffset ?? 0)
        return (WireTime(max(0, wall)), clockOffset != nil)
    }

    private func correctClock(centreTime: WireTime, roundTrip: Duration) {
        clockOffset = Int64(centreTime) + roundTrip.milliseconds / 2 - Int64(wallClockMilliseconds())
    }

    private func apply(_ settings: Settings) {
        if let ms = settings.cancelWindowMilliseconds { alarm.cancelWindow = .milliseconds(Int64(ms)) }
    }

    // MARK: Timers

    private func schedule(_ after: Duration, _ body: @escaping @Sendable (DeviceRuntime) -> Void) {
        eventLoop.scheduleTask(in: .nanoseconds(after.nanoseconds)) { [self] in
            guard !stopped else { return }
            body(self)
        }
    }

    // MARK: Network

    private func connect(_ path: LinkMachine.Path) {
        guard !stopped else { return }
        let address = path == .primary ? configuration.primary : (configuration.secondary ?? configuration.primary)
        connectionGeneration += 1
        let generation = connectionGeneration
        let future: EventLoopFuture<any Channel>
        switch configuration.transport {
        case .tcp:
            future = ClientBootstrap(group: eventLoop)
                .connectTimeout(.nanoseconds(configuration.connectTimeout.nanoseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(FrameDecoder()),
                            InboundFrames<SealedFrame>(runtime: self, generation: generation) { $0 })
                    }
                }
                .connect(to: address)
        case .udp:
            future = DatagramBootstrap(group: eventLoop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            InboundFrames<AddressedEnvelope<ByteBuffer>>(runtime: self, generation: generation) {
                                try? SealedFrame(datagram: $0.data)
                            })
                    }
                }
                .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
        }
        future.whenComplete { [self] result in
            guard generation == connectionGeneration, !stopped else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                connection = channel
                observe(.connected(path))
                run(link.connected())
            case .failure(let error):
                lastConnectFailure = LinkCause.connectFailed(error)
                logger.debug("connect failed", metadata: ["path": "\(path.rawValue)", "cause": "\(lastConnectFailure ?? "")"])
                run(link.connectFailed())
            }
        }
    }

    private func disconnect() {
        connectionGeneration += 1
        frames.reset()
        connection?.close(promise: nil)
        connection = nil
    }

    fileprivate func channelClosed(generation: Int) {
        guard generation == connectionGeneration, !stopped else { return }
        connection = nil
        connectionGeneration += 1
        frames.reset()
        run(link.disconnected())
    }

    fileprivate func received(_ frame: SealedFrame, generation: Int) {
        guard generation == connectionGeneration, !stopped else { return }
        let message: Message
        do {
            message = try frames.open(frame)
        } catch {
            logger.debug("refused a frame", metadata: ["reason": "\(error)"])
            observe(.refused(error))
            // An authentic reliable message this version cannot read (a later version's critical
            // extension): answered, so the centre does not retry it forever (protocol.md §4.1).
            if case .undecodable(let undecodable) = error, let id = undecodable.id {
                send(.nak(Nak(id: id, reason: undecodable.nakReason, senderTime: wireTime(at: now()).0)))
            }
            return
        }
        run(link.messageReceived(message, now: now()))
        switch message {
        case .sessionAccept:
            break  // handled by the link machine
        case .heartbeatAck(let ack):
            if let sent = heartbeatsInFlight.removeValue(forKey: ack.echoedCounter) {
                let rtt = now() - sent
                delivery.roundTripMeasured(rtt)
                correctClock(centreTime: ack.centreTime, roundTrip: rtt)
                observe(.heartbeatRoundTrip(rtt))
            }
        case .ack(let ack):
            run(delivery.ackReceived(id: ack.id))
        case .nak(let nak):
            run(delivery.nakReceived(nak))
        case .caseUpdate(let update):
            guard acknowledge(update.id) else { return }
            run(alarm.caseUpdated(update))
        case .configPush(let push):
            guard acknowledge(push.id) else { return }
            apply(push.settings)
        case .diagnosticsRequest(let request):
            guard acknowledge(request.id) else { return }
            let battery = events.battery
            let status = events.status
            let pending = UInt16(clamping: delivery.waiting)
            let uptime = UInt32(clamping: now().components.seconds)
            store {
                .diagnosticsReport(
                    DiagnosticsReport(
                        id: $0, requestID: request.id, battery: battery, mainsPresent: status.contains(.mainsPresent),
                        buttonPresent: status.contains(.buttonPresent), uptimeSeconds: uptime, outboxPending: pending,
                        storageWritable: true))
            }
        case .callOffer(let offer):
            guard acknowledge(offer.id) else { return }
            callOffered(offer)
        case .callAnswer(let answer):
            _ = acknowledge(answer.id)  // the device does not place calls: nothing to answer
        case .callEnd(let end):
            guard acknowledge(end.id) else { return }
            let actions = call.endReceived(callID: end.callID, reason: end.reason)
            if actions.isEmpty { run(alarm.callChanged(active: false)) } else { run(actions) }
        case .sessionStart, .heartbeat, .alarm, .alarmCancel, .event, .diagnosticsReport:
            break  // up-only messages; the frame session refuses them before this
        }
    }

    /// Acks a reliable centre message; returns whether it is new (a retransmission is acked, not applied).
    private func acknowledge(_ id: UInt32) -> Bool {
        send(.ack(Ack(id: id)))
        return handledCentreIDs.firstTime(id)
    }

    /// Seals and writes a message; returns its frame counter.
    @discardableResult
    private func send(_ message: Message) -> UInt64? {
        guard counterFault == nil, let channel = connection else { return nil }
        var buffer = channel.allocator.buffer(capacity: 64)
        do {
            while true {
                switch try frames.seal(message, into: &buffer) {
                case .reserveCounters(let limit):
                    try counterStore.store(limit)
                    frames.counterReservationStored(limit)
                case .sealed(let counter):
                    switch configuration.transport {
                    case .tcp: channel.writeAndFlush(buffer, promise: nil)
                    case .udp:
                        let address = link.status == .up(.secondary) || link.status == .connecting(.secondary)
                            ? (configuration.secondary ?? configuration.primary) : configuration.primary
                        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
                    }
                    return counter
                }
            }
        } catch {
            fault("cannot seal \(message.kind.name): \(error)")
            return nil
        }
    }
}

/// Receives frames for the runtime from a TCP stream (already cut by `FrameDecoder`) or UDP datagrams.
private final class InboundFrames<InboundIn>: ChannelInboundHandler, @unchecked Sendable {
    private let runtime: DeviceRuntime
    private let generation: Int
    private let frame: (InboundIn) -> SealedFrame?

    init(runtime: DeviceRuntime, generation: Int, frame: @escaping (InboundIn) -> SealedFrame?) {
        self.runtime = runtime
        self.generation = generation
        self.frame = frame
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let frame = frame(unwrapInboundIn(data)) else { return }
        runtime.received(frame, generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        runtime.channelClosed(generation: generation)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)  // a TCP stream with a bad frame cannot be resynchronised
    }
}

/// Wall-clock milliseconds since the Unix epoch.
func wallClockMilliseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
}
