import DequeModule
import Logging
import NIOCore
import NIOPosix

/// The centre's DC-09 port (`devicesim center --dc09-port PORT --dc09-accounts FILE`): TCP and UDP on one port.
public struct DC09PortConfiguration: Sendable {
    /// 0 lets the system choose (one port free for both TCP and UDP); `CenterServer.listening()` tells which.
    public var port: Int
    public var accounts: DC09Accounts
    /// Timestamps accepted around the centre's clock; others are answered `NAK` with its time.
    public var window: DC09TimeWindow
    /// How long after an event the same frame (type, sequence, line, account, data) is a retransmission of it
    /// rather than a new event: DC-09 sequence numbers wrap after 9999 (docs/dc09.md, "The same event twice").
    public var retransmissionWindow: Duration
    /// A TCP connection that sends no frame for this long is closed (panels that keep a connection open send
    /// `NULL` supervision more often than that).
    public var idleTimeout: Duration
    /// TCP connections held at once, and from one source address before a frame of a known account was taken
    /// on them (`ConnectionTable`, a table of the port's own: past either, the oldest such connection is
    /// closed). `nil`: the centre's own limits (`--max-connections`, `--max-unauthenticated-per-address`).
    public var maximumConnections: Int?
    public var unacceptedPerAddress: Int?
    /// Frames a second per source address (bursts of `burst`), checked before any decryption; over it a frame
    /// is dropped unanswered and the transmitter sends it again. Source addresses tracked: `sources`.
    public var frameRate: Double
    public var burst: Double
    public var sources: Int
    /// Frames of one TCP connection waiting for their answers (the journal) before the centre stops reading it.
    public var framesInFlight: Int

    public init(
        port: Int, accounts: DC09Accounts, window: DC09TimeWindow = .init(), retransmissionWindow: Duration = .seconds(600),
        idleTimeout: Duration = .seconds(120), maximumConnections: Int? = nil, unacceptedPerAddress: Int? = nil,
        frameRate: Double = 100, burst: Double = 200, sources: Int = 65_536, framesInFlight: Int = 1_024
    ) {
        self.port = port
        self.accounts = accounts
        self.window = window
        self.retransmissionWindow = retransmissionWindow
        self.idleTimeout = idleTimeout
        self.maximumConnections = maximumConnections
        self.unacceptedPerAddress = unacceptedPerAddress
        self.frameRate = max(frameRate, 0.001)
        self.burst = max(1, burst)
        self.sources = max(2, sources)
        self.framesInFlight = max(1, framesInFlight)
    }
}

/// The DC-09 receiver of the centre: each frame is decided by `DC09Receiving`; an event becomes our message
/// for the account's device and goes through the runtime's journal write and case flow (`CenterRuntime.record`),
/// and its `ACK` is sent only once the journal holds it. Defences as on our own port: a connection table, an
/// idle timeout, a rate per source address before any decryption, frames bounded by `DC09FrameSplitter`.
///
/// Bound to the runtime's loop, on which all its channels live.
final class DC09Receiver {
    /// What became of one frame, for the connection it came on.
    enum Verdict { case accepted, refused }

    let runtime: CenterRuntime
    let configuration: DC09PortConfiguration
    private let receiving: DC09Receiving
    private var table: ConnectionTable
    private var streams: [UInt64: DC09StreamHandler] = [:]
    private var nextStreamID: UInt64 = 0
    private var rates: BoundedCache<SourceAddress, TokenBucket>
    private var random = SystemRandomNumberGenerator()
    private let startedAt = ContinuousClock.now
    var datagramChannel: (any Channel)?

    init(runtime: CenterRuntime, configuration: DC09PortConfiguration) {
        self.runtime = runtime
        self.configuration = configuration
        self.receiving = configuration.accounts.receiving(window: configuration.window)
        self.table = ConnectionTable(
            limits: .init(
                total: configuration.maximumConnections ?? runtime.configuration.maximumConnections,
                unauthenticatedPerAddress: configuration.unacceptedPerAddress ?? runtime.configuration.unauthenticatedPerAddress))
        self.rates = BoundedCache(capacity: configuration.sources)
    }

    private var metrics: CenterMetrics { runtime.metrics }
    private var logger: Logger { runtime.logger }

    /// Closes every DC-09 connection (the centre stops).
    func stop() {
        for handler in streams.values { handler.close(reason: nil) }
    }

    // MARK: Frames

    /// One frame (TCP: cut by the splitter; UDP: a datagram) from `source`. `reply` gets the answer's bytes,
    /// or `nil` for none, at once or once the journal answered; it is called exactly once.
    func frameReceived(_ bytes: [UInt8], source: SourceAddress, reply: @escaping ([UInt8]?) -> Void) -> Verdict {
        guard !runtime.stopped else {
            reply(nil)
            return .refused
        }
        var bucket = rates.value(for: source) ?? TokenBucket(rate: configuration.frameRate, burst: configuration.burst)
        let allowed = bucket.take(now: ContinuousClock.now - startedAt)
        rates.insert(bucket, for: source)
        guard allowed else {
            counted(answer: "none", reason: "rateLimited")
            reply(nil)
            return .refused
        }
        let arrived = runtime.now
        switch receiving.decide(bytes, now: DC09Timestamp(milliseconds: arrived.wall)) {
        case .answer(let answer, let reason):
            counted(answer: answer.id.rawValue, reason: reason.rawValue)
            var verdict = Verdict.refused
            if reason == .supervision, let account = answer.account, let device = configuration.accounts.account(account)?.device {
                runtime.deviceSeen(device)
                verdict = .accepted
            } else {
                logger.debug("DC-09 frame answered \(answer.id.rawValue)", metadata: ["dc09.reason": "\(reason.rawValue)", "dc09.account": "\(answer.account ?? "-")"])
            }
            reply(encode(answer, answering: nil))
            return verdict
        case .store(let frame):
            guard let account = frame.account, let device = configuration.accounts.account(account)?.device,
                let event = CenterJournal.DC09Event(frame, receivedAt: arrived.wall)
            else {
                // Cannot happen: `decide` stores only events of known accounts with codes the table has.
                counted(answer: "DUH", reason: "unsupported")
                reply(nil)
                return .refused
            }
            let window = UInt64(clamping: min(configuration.retransmissionWindow.components.seconds, 1 << 40)) * 1000
            runtime.record(
                .dc09Event(device: device, event, at: arrived.wall, window: window), message: nil, note: nil, device: device,
                arrived: arrived
            ) { [self] answer in
                switch answer {
                case .recorded(_, let isNew):
                    counted(answer: "ACK", reason: isNew ? "recorded" : "retransmission")
                    if isNew { metrics.dc09EventsRecorded.increment() }
                    runtime.deviceSeen(device)
                    let ack = receiving.acknowledgement(of: frame, now: DC09Timestamp(milliseconds: runtime.now.wall))
                    reply(encode(ack, answering: frame))
                case .conflicted, .failed:
                    // Not durable: no ACK, so the transmitter sends it again.
                    counted(answer: "none", reason: "journalFailed")
                    logger.debug("DC-09 event not journalled: not acknowledged", metadata: ["dc09.account": "\(account)", "dc09.sequence": "\(frame.sequence)"])
                    reply(nil)
                }
            }
            return .accepted
        }
    }

    /// A frame longer than DC-09 allows arrived over TCP: dropped by the splitter.
    func overlongFrame() { counted(answer: "none", reason: "overlong") }

    private func counted(answer: String, reason: String) {
        metrics.dc09Frame(answer: answer, reason: reason)
        if answer != "ACK" { runtime.countRefusal("dc09 " + reason) }
    }

    private func encode(_ answer: DC09Frame, answering frame: DC09Frame?) -> [UInt8]? {
        do {
            return try receiving.encoded(answer, answering: frame, random: &random)
        } catch {
            // Cannot happen for the fields of a frame that decoded; logged rather than trapped if it ever does.
            logger.debug("DC-09 answer not written", metadata: ["reason": "\(error)"])
            return nil
        }
    }

    // MARK: Connections

    func streamOpened(_ handler: DC09StreamHandler, source: SourceAddress) -> UInt64? {
        metrics.connectionsAccepted.increment()
        nextStreamID += 1
        let id = nextStreamID
        switch table.opened(id, from: source) {
        case .refuse:
            runtime.connectionClosed(reason: "connectionLimit")
            return nil
        case .admit(let evicting):
            streams[id] = handler
            for old in evicting { streams[old]?.close(reason: "evicted") }
            return id
        }
    }

    /// A frame of a known account was taken on connection `id`: it is no longer evicted for room.
    func streamAccepted(_ id: UInt64) { table.authenticated(id) }

    func streamClosed(_ id: UInt64) {
        streams[id] = nil
        table.closed(id)
    }
}

/// One DC-09 connection over TCP: the splitter cuts frames, each goes to the receiver, and the answers are
/// written in the order of their frames (an `ACK` waits for the journal, a `NAK` behind it waits for it).
/// Idle past `idleTimeout` (no frame), or a peer that does not read its answers: closed. Frames waiting for
/// answers are bounded: past `framesInFlight` the connection is not read until they are answered.
final class DC09StreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let receiver: DC09Receiver
    private var splitter = DC09FrameSplitter()
    private var context: ChannelHandlerContext?
    private var id: UInt64?
    private var source = SourceAddress.other
    private var admitted = false
    private var closing = false
    private var idle: Scheduled<Void>?
    /// Answers in the order of their frames: `nil` while a frame waits for its answer.
    private var answers = Deque<[UInt8]??>()
    private var firstAnswer: UInt64 = 0
    private var paused = false

    init(receiver: DC09Receiver) {
        self.receiver = receiver
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { admit(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context: context)
        context.fireChannelActive()
    }

    private func admit(context: ChannelHandlerContext) {
        guard !admitted else { return }
        admitted = true
        source = SourceAddress(context.channel.remoteAddress)
        id = receiver.streamOpened(self, source: source)
        guard id != nil else {
            closing = true
            context.close(promise: nil)
            return
        }
        armIdleTimeout()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let buffer = unwrapInboundIn(data)
        for piece in splitter.feed(buffer.readableBytesView) {
            switch piece {
            case .frame(let bytes):
                armIdleTimeout()
                let slot = firstAnswer + UInt64(answers.count)
                answers.append(nil)
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                let verdict = receiver.frameReceived(bytes, source: source) { answer in handler.value.answered(slot, answer) }
                if verdict == .accepted, let id { receiver.streamAccepted(id) }
            case .overlong:
                receiver.overlongFrame()
            case .skipped:
                break  // noise between frames, as a line-oriented peer may send
            }
        }
        if answers.count >= receiver.configuration.framesInFlight, !paused {
            paused = true
            context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
        }
    }

    /// The answer of the frame in `slot` is known: write every answer now due, in order.
    private func answered(_ slot: UInt64, _ answer: [UInt8]?) {
        guard slot >= firstAnswer, slot - firstAnswer < UInt64(answers.count) else { return }
        answers[Int(slot - firstAnswer)] = .some(answer)
        guard let context, !closing else { return }
        var wrote = false
        while let first = answers.first, let due = first {
            answers.removeFirst()
            firstAnswer += 1
            guard let due else { continue }
            // A peer that does not read would have its answers queue here without bound.
            guard context.channel.isWritable else {
                receiver.runtime.metrics.framesUnsent.increment()
                close(reason: "backpressure")
                return
            }
            context.write(wrapOutboundOut(ByteBuffer(bytes: due)), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        if paused, answers.count < receiver.configuration.framesInFlight / 2 {
            paused = false
            context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
            context.read()
        }
    }

    private func armIdleTimeout() {
        idle?.cancel()
        guard let context else { return }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        idle = context.eventLoop.scheduleTask(in: TimeAmount(receiver.configuration.idleTimeout)) {
            handler.value.close(reason: "idle")
        }
    }

    /// Closes the connection; `reason` is counted and told (nil: the centre stops).
    func close(reason: String?) {
        guard !closing else { return }
        closing = true
        idle?.cancel()
        if let reason { receiver.runtime.connectionClosed(reason: reason) }
        context?.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        close(reason: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        idle?.cancel()
        if let id { receiver.streamClosed(id) }
        id = nil
        context.fireChannelInactive()
    }
}

/// The DC-09 port's UDP socket: one frame per datagram, answered to its source address.
final class DC09DatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let receiver: DC09Receiver

    init(receiver: DC09Receiver) {
        self.receiver = receiver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let address = envelope.remoteAddress
        let channel = context.channel
        _ = receiver.frameReceived(Array(envelope.data.readableBytesView), source: SourceAddress(address)) { answer in
            guard let answer, channel.isActive else { return }
            // The socket's send buffer is full: UDP may lose an answer anyway, and the transmitter resends.
            guard channel.isWritable else { return }
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: answer)), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors of earlier answers concern one peer, not the socket.
    }
}

extension DC09Receiver {
    /// Binds the DC-09 port's TCP and UDP sockets on `loop`.
    static func bindStream(host: String, port: Int, on loop: any EventLoop, receiver: NIOLoopBound<DC09Receiver>, writeLimit: Int) async throws -> any Channel {
        try await ServerBootstrap(group: loop)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(AcceptBackoffHandler(backoffProvider: CenterAcceptGuard.backoff(after:)))
                }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(clamping: writeLimit))
            .childChannelOption(.writeBufferWaterMark, value: .init(low: writeLimit / 2, high: writeLimit))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DC09StreamHandler(receiver: receiver.value))
                }
            }
            .bind(host: host, port: port).get()
    }

    static func bindDatagram(host: String, port: Int, on loop: any EventLoop, receiver: NIOLoopBound<DC09Receiver>) async throws -> any Channel {
        try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // Room for the longest frame and a little more, so that a longer datagram is seen as such.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: DC09FrameSplitter.maximumFrameLength + 512))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DC09DatagramHandler(receiver: receiver.value))
                }
            }
            .bind(host: host, port: port).get()
    }
}
