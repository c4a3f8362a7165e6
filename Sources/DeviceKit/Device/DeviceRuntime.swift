import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Runs one device: the firmware's driver of `DeviceMachine`. It feeds the machine button, power, storage
/// and network events with the time, and carries out what it asks: the durable outbox and counter
/// reservation, the indicators, the connection to the centre, timers and the voice link (+Media).
///
/// All the device's logic is in the machine; this class holds only I/O, in one place, on one event loop.
/// Every mutable property is touched on `eventLoop` only (asserted); public methods hop there.
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

    var machine: DeviceMachine
    var connection: (any Channel)?
    private var started: NIODeadline
    var stopped = false
    /// The media links of calls, by call id (DeviceRuntime+Media.swift).
    var mediaLinks: [UInt32: MediaLink] = [:]

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
        machine = DeviceMachine(
            configuration: configuration.machine, storedCounterLimit: limit, counterFault: counterFault,
            seed: UInt64.random(in: .min ... .max))
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

    /// Disconnects and stops every timer. Items still in the outbox stay there for the next start.
    public func stop() async {
        let channel: (any Channel)? = try? await eventLoop.submit { [self] in
            feed { $0.stop(now: $1) }
            stopped = true
            let c = connection
            connection = nil
            observer.finish()
            return c
        }.get()
        try? await channel?.close()
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

    // MARK: Time

    /// Monotonic time since start, and the wall clock.
    func now() -> DeviceMachine.Instant {
        DeviceMachine.Instant(
            wall: wallClockMilliseconds(),
            monotonic: .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds) - Int64(started.uptimeNanoseconds)))
    }

    /// A `CLOCK_MONOTONIC` instant as time since start.
    private func runtimeTime(_ monotonic: Duration) -> Duration {
        monotonic - .nanoseconds(Int64(started.uptimeNanoseconds))
    }

    // MARK: Running the machine

    /// Feeds one event to the machine, with the time, and carries out its actions. On the event loop.
    func feed(_ event: (inout DeviceMachine, DeviceMachine.Instant) -> [DeviceMachine.Action]) {
        eventLoop.preconditionInEventLoop()
        let actions = event(&machine, now())
        for action in actions { perform(action) }
    }

    private func perform(_ action: DeviceMachine.Action) {
        switch action {
        case .connect(let path, let generation):
            connect(path, generation: generation)
        case .disconnect:
            connection?.close(promise: nil)
            connection = nil
        case .transmit(let buffer, let path):
            transmit(buffer, to: path)
        case .reserveCounters(let limit):
            do {
                try counterStore.store(limit)
                feed { $0.countersReserved(limit, now: $1) }
            } catch {
                logger.error("cannot store the frame counter: \(error)")
                feed { $0.counterStoreFailed("\(error)", now: $1) }
            }
        case .store(let draft):
            let message: Message
            do {
                message = try outbox.enqueue { draft.message(id: $0) }
            } catch {
                feed { $0.storeFailed(draft, error: "\(error)", now: $1) }
                return
            }
            if case .alarm = message, configuration.faultInjection == .crashAfterStoringAlarm { kill(getpid(), SIGKILL) }
            feed { $0.stored(message, now: $1) }
        case .remove(let id):
            do { try outbox.remove(id: id) } catch { observe(.fault("cannot remove message \(id) from the outbox: \(error)")) }
        case .schedule(let timer, let after):
            eventLoop.scheduleTask(in: TimeAmount(after)) { [self] in
                guard !stopped else { return }
                feed { $0.timerFired(timer, now: $1) }
            }
        case .indicate(let state):
            do { try indicators.show(state) } catch { logger.warning("indicator failed", metadata: ["error": "\(error)"]) }
            observe(.indicator(state))
        case .observe(let kind):
            if case .fault(let text) = kind { logger.error("\(text)") }
            observe(kind)
        case .bindMedia(let offer):
            bindMedia(offer)
        case .startMedia(let callID, let local, let remote):
            startMedia(callID, local: local, remote: remote)
        case .stopMedia(let callID, let reason):
            let statistics = mediaLinks.removeValue(forKey: callID)?.stop(reason: reason.description)
            feed { $0.mediaStopped(callID: callID, statistics: statistics, now: $1) }
        }
    }

    func observe(_ observation: DeviceObservation.Kind) {
        observer.yield(DeviceObservation(at: now().monotonic, kind: observation))
    }

    // MARK: Network

    private func connect(_ path: LinkMachine.Path, generation: Int) {
        guard !stopped else { return }
        let address = self.address(path)
        let future: EventLoopFuture<any Channel>
        switch configuration.transport {
        case .tcp:
            future = ClientBootstrap(group: eventLoop)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
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
            switch result {
            case .success(let channel):
                // An earlier attempt's connection, come too late: not ours any more.
                guard !stopped, machine.isCurrentConnection(generation) else { return channel.close(promise: nil) }
                connection = channel
                feed { $0.connected(generation: generation, now: $1) }
            case .failure(let error):
                let cause = LinkCause.connectFailed(error)
                logger.debug("connect failed", metadata: ["path": "\(path.rawValue)", "cause": "\(cause)"])
                feed { $0.connectFailed(generation: generation, cause: cause, now: $1) }
            }
        }
    }

    private func transmit(_ buffer: ByteBuffer, to path: LinkMachine.Path) {
        guard let channel = connection else { return }
        switch configuration.transport {
        case .tcp: channel.writeAndFlush(buffer, promise: nil)
        case .udp: channel.writeAndFlush(AddressedEnvelope(remoteAddress: address(path), data: buffer), promise: nil)
        }
    }

    private func address(_ path: LinkMachine.Path) -> SocketAddress {
        path == .primary ? configuration.primary : (configuration.secondary ?? configuration.primary)
    }

    fileprivate func channelClosed(generation: Int) {
        guard !stopped, machine.isCurrentConnection(generation) else { return }
        connection = nil
        feed { $0.closed(generation: generation, now: $1) }
    }

    fileprivate func received(_ frame: SealedFrame, generation: Int) {
        guard !stopped else { return }
        feed { $0.frameReceived(frame, generation: generation, now: $1) }
    }
}

extension DeviceRuntimeConfiguration {
    /// The machine's part of the configuration.
    var machine: DeviceMachine.Configuration {
        DeviceMachine.Configuration(
            key: key,
            link: .init(
                hasSecondary: secondary != nil,
                sessionStart: SessionStart(
                    firmware: firmware, capabilities: capabilities, bootCount: bootCount, model: model, keyEpoch: key.epoch),
                defaultHeartbeatInterval: defaultHeartbeatInterval, handshakeTimeout: handshakeTimeout, backoff: backoff,
                returnToPrimaryAfter: returnToPrimaryAfter),
            delivery: delivery, press: press, events: events, cancelWindow: cancelWindow,
            primaryName: LinkCause.address(primary), secondaryName: secondary.map(LinkCause.address))
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
