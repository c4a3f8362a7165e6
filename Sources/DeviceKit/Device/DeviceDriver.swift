import NIOCore
import NIOPosix

/// The one NIO driver of `DeviceMachine`, for every place a device runs: the firmware in a home
/// (`DeviceRuntime`) and each device of a load run (`SimulatedDevice`).
///
/// The driver is this protocol's extension: it feeds the machine events with the time and carries out its
/// actions — connections with their generations, frames out and in, timers, the call media — the same way
/// for both. What differs between the two is the small environment a conforming class supplies:
///
/// | requirement                     | firmware (`DeviceRuntime`)            | load run (`SimulatedDevice`)          |
/// |---------------------------------|---------------------------------------|---------------------------------------|
/// | `now()`, `schedule`             | `CLOCK_MONOTONIC` since start, wall; the loop's timers | the shard's clock and timer wheel |
/// | `reserveCounters`, `store`, `remove` | the counter file and durable outbox | in memory                          |
/// | `transport`, `address(_:)`      | its own TCP connection or UDP socket  | its own TCP connection, or the shard's shared UDP socket (`sendDatagram`) |
/// | `indicate`, `observe`           | LEDs, logs, the observation stream    | the run's counters and latencies      |
/// | `mediaSetup`, `mediaEvent`      | the configured media, video if able   | voice only; the first voice measured  |
/// | `sipMediaHeard`, the SIP line (`startSIPLine`) | `[voice] sip`, logs         | `--sip-call`; its port per device     |
///
/// The conforming class keeps the driver's state in `driver` and touches it on `eventLoop` only: every
/// entry point below asserts it (`preconditionInEventLoop`). Timers and closures the driver schedules hold
/// the class strongly, as a channel handler does; `stop()` makes every later one a no-op.
protocol DeviceDriver: AnyObject, Sendable {
    /// The driver's state: the machine, the connection, the call media. Only the driver mutates it.
    var driver: DeviceDriverState { get set }
    var eventLoop: any EventLoop { get }

    /// The time now, on the machine's two clocks.
    func now() -> ClockReading
    /// Calls `timerFired(timer)` on the loop after `after` (a load run also looks at the timer to know when a
    /// reconnection was meant to begin).
    func schedule(_ timer: DeviceMachine.Timer, after: Duration)
    /// How frames reach the centre, and where it is on each path.
    var transport: DeviceDriverTransport { get }
    func address(_ path: LinkMachine.Path) -> SocketAddress
    /// For `.sharedUDP`: sends a sealed frame on the shared socket to the centre on `path`.
    func sendDatagram(_ buffer: ByteBuffer, to path: LinkMachine.Path)
    /// Keeps frame counters up to `limit` reserved on storage that survives a restart (or in memory).
    func reserveCounters(_ limit: UInt64) throws
    /// Stores what the machine composed under the next message id, and returns the message.
    func store(_ draft: DeviceMachine.Draft) throws -> Message
    func remove(id: UInt32) throws
    func indicate(_ state: IndicatorState)
    /// Everything the machine reports, in order.
    func observe(_ observation: DeviceObservation.Kind)
    /// A call's media: the name in its RTCP reports, its parameters, and whether to offer video.
    var mediaSetup: DeviceMediaSetup { get }
    /// A call's media event the machine does not need (the first voice heard, the peer leaving).
    func mediaEvent(_ event: MediaLink.Event, callID: UInt32)
    /// The SIP call's first voice from the centre (`[voice] sip`).
    func sipMediaHeard()
}

/// What the driver keeps for a device, whatever its environment.
struct DeviceDriverState {
    var machine: DeviceMachine
    /// The connection of the machine's current generation: a TCP stream or the device's own UDP socket;
    /// `nil` on the shard's shared socket.
    var connection: (any Channel)?
    /// The generation of the latest connection the machine asked for (frames from the shared socket).
    var generation = 0
    var stopped = false
    /// The media links of calls, by call id.
    var mediaLinks: [UInt32: MediaLink] = [:]
    /// With `[voice] sip`, once its phone is started (`startSIPLine`).
    var sip: DeviceSIPLine?

    init(machine: DeviceMachine) { self.machine = machine }
}

enum DeviceDriverTransport: Equatable {
    /// A connection of its own (TCP), optionally from a chosen source address.
    case tcp(connectTimeout: Duration, source: SocketAddress?)
    /// A UDP socket of its own.
    case udp
    /// A socket shared with other devices, always open; its frames come in through `received(_:)`.
    case sharedUDP
}

struct DeviceMediaSetup {
    var cname: String
    var parameters: MediaLink.Parameters
    var video: Bool
}

extension DeviceDriver {
    // MARK: Running the machine

    /// Feeds one event to the machine, with the time, and carries out its actions.
    func feed(_ event: (inout DeviceMachine, ClockReading) -> [DeviceMachine.Action]) {
        eventLoop.preconditionInEventLoop()
        let actions = event(&driver.machine, now())
        for action in actions { perform(action) }
    }

    private func perform(_ action: DeviceMachine.Action) {
        switch action {
        case .connect(let path, let generation):
            driver.generation = generation
            connect(path, generation: generation)
        case .disconnect:
            driver.connection?.close(promise: nil)
            driver.connection = nil
        case .transmit(let buffer, let path):
            switch transport {
            case .sharedUDP: sendDatagram(buffer, to: path)
            case .udp: driver.connection?.writeAndFlush(AddressedEnvelope(remoteAddress: address(path), data: buffer), promise: nil)
            case .tcp: driver.connection?.writeAndFlush(buffer, promise: nil)
            }
        case .reserveCounters(let limit):
            do {
                try reserveCounters(limit)
                feed { $0.countersReserved(limit, now: $1) }
            } catch {
                feed { $0.counterStoreFailed("\(error)", now: $1) }
            }
        case .store(let draft):
            let message: Message
            do {
                message = try store(draft)
            } catch {
                return feed { $0.storeFailed(draft, error: "\(error)", now: $1) }
            }
            feed { $0.stored(message, now: $1) }
        case .remove(let id):
            do { try remove(id: id) } catch { observe(.fault("cannot remove message \(id) from the outbox: \(error)")) }
        case .schedule(let timer, let after):
            schedule(timer, after: after)
        case .indicate(let state):
            indicate(state)
        case .observe(let kind):
            observe(kind)
        case .bindMedia(let offer):
            bindMedia(offer)
        case .startMedia(let callID, let local, let remote):
            startMedia(callID, local: local, remote: remote)
        case .stopMedia(let callID, let reason):
            let statistics = driver.mediaLinks.removeValue(forKey: callID)?.stop(reason: reason.description)
            feed { $0.mediaStopped(callID: callID, statistics: statistics, now: $1) }
        case .placeSIPCall:
            placeSIPCall()
        case .hangUpSIPCall:
            hangUpSIPCall()
        }
    }

    /// A timer the machine asked for (`schedule`) is due.
    func timerFired(_ timer: DeviceMachine.Timer) {
        guard !driver.stopped else { return }
        feed { $0.timerFired(timer, now: $1) }
    }

    /// Stops the machine: no timer, frame or connection is acted on after this. Returns the connection,
    /// which the caller closes (and may await).
    func stopDriver() -> (any Channel)? {
        eventLoop.preconditionInEventLoop()
        guard !driver.stopped else { return nil }
        feed { $0.stop(now: $1) }
        driver.stopped = true
        defer { driver.connection = nil }
        return driver.connection
    }

    // MARK: Network

    private func connect(_ path: LinkMachine.Path, generation: Int) {
        guard !driver.stopped else { return }
        let future: EventLoopFuture<any Channel>
        switch transport {
        case .sharedUDP:
            // The shared socket is always open: "connected" at once.
            return feed { $0.connected(generation: generation, now: $1) }
        case .tcp(let connectTimeout, let source):
            var bootstrap = ClientBootstrap(group: eventLoop)
            if let source {
                // Set before bind: the port is then chosen at connect, per destination, not reserved by bind.
                bootstrap = bootstrap.channelOption(
                    ChannelOptions.Types.SocketOption(level: .ip, name: SourceAddresses.bindAddressNoPort), value: 1
                ).bind(to: source)
            }
            future = bootstrap
                .connectTimeout(TimeAmount(connectTimeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { [self, dc09 = driver.machine.reportsOverDC09] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if dc09 {
                            try channel.pipeline.syncOperations.addHandler(InboundDC09Answers<Self, ByteBuffer>(device: self, generation: generation, stream: true) { $0 })
                        } else {
                            try channel.pipeline.syncOperations.addHandlers(
                                ByteToMessageHandler(FrameDecoder()),
                                InboundFrames<Self, SealedFrame>(device: self, generation: generation) { $0 })
                        }
                    }
                }
                .connect(to: address(path))
        case .udp:
            future = DatagramBootstrap(group: eventLoop)
                .channelInitializer { [self, dc09 = driver.machine.reportsOverDC09] channel in
                    channel.eventLoop.makeCompletedFuture {
                        if dc09 {
                            try channel.pipeline.syncOperations.addHandler(
                                InboundDC09Answers<Self, AddressedEnvelope<ByteBuffer>>(device: self, generation: generation, stream: false) { $0.data })
                        } else {
                            try channel.pipeline.syncOperations.addHandler(
                                InboundFrames<Self, AddressedEnvelope<ByteBuffer>>(device: self, generation: generation) {
                                    try? SealedFrame(datagram: $0.data)
                                })
                        }
                    }
                }
                .bind(host: address(path).protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
        }
        future.whenComplete { [self] result in
            switch result {
            case .success(let channel):
                // An earlier attempt's connection, come too late: not ours any more.
                guard driver.machine.isCurrentConnection(generation) else { return channel.close(promise: nil) }
                driver.connection = channel
                feed { $0.connected(generation: generation, now: $1) }
            case .failure(let error):
                feed { $0.connectFailed(generation: generation, cause: LinkCause.connectFailed(error), now: $1) }
            }
        }
    }

    /// A frame for this device: from its connection of `generation`, or (without one) from the shared socket.
    func received(_ frame: SealedFrame, generation: Int? = nil) {
        guard !driver.stopped else { return }
        let generation = generation ?? driver.generation
        feed { $0.frameReceived(frame, generation: generation, now: $1) }
    }

    /// A DC-09 answer (one frame) from the connection of `generation`.
    func receivedDC09(_ frame: [UInt8], generation: Int) {
        guard !driver.stopped else { return }
        feed { $0.dc09AnswerReceived(frame, generation: generation, now: $1) }
    }

    /// The connection of `generation` closed (or, on the shared socket, the session was dropped).
    func connectionClosed(generation: Int) {
        guard !driver.stopped, driver.machine.isCurrentConnection(generation) else { return }
        driver.connection = nil
        feed { $0.closed(generation: generation, now: $1) }
    }

    /// Cuts the link as a network fault would: closes the connection (noticed as a reset would be), or on
    /// the shared socket loses the session.
    func cutLink() {
        if let connection = driver.connection {
            connection.close(promise: nil)
        } else if transport == .sharedUDP {
            connectionClosed(generation: driver.generation)
        }
    }

    // MARK: Call media (protocol.md §4.8)

    private var controlPeer: SocketAddress { driver.connection?.remoteAddress ?? address(.primary) }

    private func bindMedia(_ offer: CallOffer) {
        let callID = offer.callID
        CallMedia.bind(
            for: offer, controlPeer: controlPeer, localAddress: driver.connection?.localAddress, video: mediaSetup.video,
            on: eventLoop
        ).whenComplete { [self] result in
            switch result {
            case .success(let (link, local)):
                guard !driver.stopped else { _ = link.stop(reason: "stopped"); return }
                driver.mediaLinks[callID] = link
                feed { $0.mediaBound(callID: callID, local: local, now: $1) }
            case .failure(let error):
                feed { $0.mediaFailed(callID: callID, reason: "cannot set up its media: \(error)", now: $1) }
            }
        }
    }

    private func startMedia(_ callID: UInt32, local: MediaDescription, remote: MediaDescription) {
        guard let link = driver.mediaLinks[callID] else {
            return feed { $0.mediaFailed(callID: callID, reason: "its media ports are gone", now: $1) }
        }
        let setup = mediaSetup
        do {
            try CallMedia.start(
                link, local: local, remote: remote, controlPeer: controlPeer, cname: setup.cname, parameters: setup.parameters
            ) { [weak self] event in
                guard let self, !self.driver.stopped else { return }
                if case .silent(let quiet) = event {
                    self.feed { $0.mediaSilent(callID: callID, quiet: quiet, now: $1) }
                } else {
                    self.mediaEvent(event, callID: callID)
                }
            }
        } catch {
            feed { $0.mediaFailed(callID: callID, reason: "cannot start the media: \(error)", now: $1) }
        }
    }

    /// Hangs up the call in progress; false without one.
    func hangUpCall() -> Bool {
        var hungUp = false
        feed { machine, now in
            let actions = machine.hangUp(now: now)
            hungUp = !actions.isEmpty
            return actions
        }
        return hungUp
    }

    /// The media link of the call in progress.
    var currentMediaLink: MediaLink? { driver.machine.callID.flatMap { driver.mediaLinks[$0] } }
}

/// Receives a driven device's frames from a TCP stream (already cut by `FrameDecoder`) or its UDP socket.
final class InboundFrames<Device: DeviceDriver, InboundIn>: ChannelInboundHandler {
    private let device: Device
    private let generation: Int
    private let frame: (InboundIn) -> SealedFrame?

    init(device: Device, generation: Int, frame: @escaping (InboundIn) -> SealedFrame?) {
        self.device = device
        self.generation = generation
        self.frame = frame
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let frame = frame(unwrapInboundIn(data)) else { return }
        device.received(frame, generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        device.connectionClosed(generation: generation)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)  // a TCP stream with a bad frame cannot be resynchronised
    }
}

/// Receives a DC-09 device's answers: from a TCP stream, cut into frames by `DC09FrameSplitter` (several may
/// come in one read, one across reads; what lies between frames is skipped), or one a datagram.
final class InboundDC09Answers<Device: DeviceDriver, InboundIn>: ChannelInboundHandler {
    private let device: Device
    private let generation: Int
    private var splitter: DC09FrameSplitter?

    private let bytes: (InboundIn) -> ByteBuffer

    /// `stream`: a TCP stream to cut into frames; otherwise each item is one frame.
    init(device: Device, generation: Int, stream: Bool, bytes: @escaping (InboundIn) -> ByteBuffer) {
        self.device = device
        self.generation = generation
        self.splitter = stream ? DC09FrameSplitter() : nil
        self.bytes = bytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = bytes(unwrapInboundIn(data))
        guard var splitter else { return device.receivedDC09(Array(bytes.readableBytesView), generation: generation) }
        self.splitter = nil  // not copied while it is fed
        let pieces = splitter.feed(bytes.readableBytesView)
        self.splitter = splitter
        for piece in pieces {
            if case .frame(let frame) = piece { device.receivedDC09(frame, generation: generation) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        device.connectionClosed(generation: generation)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
