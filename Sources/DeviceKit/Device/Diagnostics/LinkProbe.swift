import Foundation
import NIOCore
import NIOPosix

/// `diag link`: does this device reach its centre, and is it accepted there? Opens its own connection,
/// sends `sessionStart` sealed with the device's key and a counter from its own reservation file, waits for
/// `sessionAccept`, then times `heartbeat` → `heartbeatAck` round trips and compares clocks.
///
/// It seals with the device's real counter, so the caller must hold the `StateDirectoryLock`: the device's
/// daemon must not run at the same time.
///
/// A device that reports over SIA DC-09 (`dc09`) is probed the DC-09 way: `NULL` supervision frames under its
/// account, each `ACK`ed by a receiver that knows it; a `NAK` (an unknown account, a wrong key, or a clock
/// outside the receiver's window) or a `DUH` is the finding.
public struct LinkProbe: Sendable {
    public struct Report: Sendable, Encodable {
        public var address: String
        public var transport: String
        /// TCP connect time; zero over UDP (no handshake).
        public var connectMilliseconds: Double
        /// `sessionStart` sent → `sessionAccept` opened.
        public var sessionMilliseconds: Double
        public var roundTripMilliseconds: [Double]
        /// The device's clock minus the centre's, corrected by half the round trip; positive: device ahead.
        public var clockSkewMilliseconds: Int64
        public var heartbeatIntervalSeconds: UInt16
        /// Over DC-09: the account the `NULL`s went under (the "session" is the first `NULL`'s round trip, and
        /// the clock is within the receiver's window, or it would have answered `NAK`).
        public var dc09Account: String? = nil
    }

    public enum Failure: Error, Sendable, CustomStringConvertible {
        case unreachable(String, String)
        case noAnswer(String, stage: String)
        case closed(String, stage: String)
        case notAccepted(String)
        /// A DC-09 receiver answered `NAK` or `DUH`: why, in words.
        case refusedByReceiver(String)
        case local(String)

        public var description: String {
            switch self {
            case let .unreachable(address, why):
                "cannot reach the centre at \(address): \(why). Check centre.primary in device.toml, the network cable or Wi-Fi, and that the centre is running."
            case let .noAnswer(address, stage):
                "the centre at \(address) did not answer the \(stage) in time: a firewall may drop the traffic, or the network is very slow."
            case let .closed(address, stage):
                "the centre at \(address) closed the connection during the \(stage): it does not accept this device (unknown device id or wrong key: provision it again), or it is overloaded."
            case let .notAccepted(why):
                "the centre answered, but not with a session: \(why)"
            case let .refusedByReceiver(why):
                "the DC-09 receiver answered, but refused: \(why)"
            case let .local(why): why
            }
        }
    }

    public let key: DeviceKey
    public let address: SocketAddress
    /// The address as the configuration writes it, for messages.
    public let label: String
    public let transport: Transport
    public let counterStore: any CounterStore
    public let bootCount: UInt32
    public let timeout: Duration
    /// Probe over DC-09 with this framing (the device's `[center] protocol = "dc09"`), telling
    /// `supervisionSeconds` as the interval; `nil`: our protocol.
    public var dc09: (framing: DC09FrameSession.Configuration, supervisionSeconds: UInt16)?

    public init(key: DeviceKey, address: SocketAddress, label: String? = nil, transport: Transport,
                counterStore: any CounterStore, bootCount: UInt32, timeout: Duration = .seconds(5)) {
        self.key = key
        self.address = address
        self.label = label ?? "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        self.transport = transport
        self.counterStore = counterStore
        self.bootCount = bootCount
        self.timeout = timeout
    }

    public func run(heartbeats: Int = 5) async throws(Failure) -> Report {
        if let dc09 { return try await runDC09(dc09.framing, supervisionSeconds: dc09.supervisionSeconds, frames: heartbeats) }
        let where_ = label
        let limit: UInt64
        do { limit = try counterStore.load() } catch { throw .local("cannot read the frame counter: \(error)") }
        var session = DeviceFrameSession(key: key, storedCounterLimit: limit)
        let clock = ContinuousClock()
        let connectStart = clock.now
        let link: ProbeLink<SealedFrame>
        do {
            link = try await ProbeLink.ours(address: address, transport: transport, timeout: timeout)
        } catch {
            throw .unreachable(where_, Self.plain(error))
        }
        defer { link.close() }
        let connected = clock.now - connectStart

        func send(_ message: Message) throws(Failure) {
            var buffer = ByteBuffer()
            while true {
                let result: DeviceFrameSession.SealResult
                do { result = try session.seal(message, into: &buffer) } catch { throw .local("cannot seal a frame: \(error)") }
                switch result {
                case .sealed: link.send(buffer); return
                case .reserveCounters(let limit):
                    do { try counterStore.store(limit) } catch { throw .local("cannot store the frame counter: \(error)") }
                    session.counterReservationStored(limit)
                }
            }
        }
        /// The next message the session accepts, skipping frames it refuses.
        func receive(_ stage: String) async throws(Failure) -> Message {
            let deadline = clock.now + timeout
            while true {
                let frame: SealedFrame?
                do { frame = try await link.receive(until: deadline) } catch { throw .noAnswer(where_, stage: stage) }
                guard let frame else { throw .closed(where_, stage: stage) }
                if let message = try? session.open(frame) { return message }
            }
        }

        let start = SessionStart(
            firmware: DeviceRuntimeConfiguration.firmwareVersion, capabilities: [.button], bootCount: bootCount, model: "diag link")
        let sentAt = clock.now
        let sentWall = wallClockMilliseconds()
        try send(.sessionStart(start))
        let accept: SessionAccept
        switch try await receive("session set-up") {
        case .sessionAccept(let a): accept = a
        case .nak(let nak): throw .notAccepted("a nak (\(nak.reason))")
        case let other: throw .notAccepted("a \(other.kind.name)")
        }
        let sessionTime = clock.now - sentAt
        var skew = Int64(sentWall) + sessionTime.milliseconds / 2 - Int64(accept.centreTime)
        var rtts: [Double] = []
        for _ in 0..<max(0, heartbeats) {
            let beat = clock.now
            let beatWall = wallClockMilliseconds()
            try send(.heartbeat(Heartbeat(status: [.mainsPresent, .buttonPresent], battery: 255)))
            while true {
                if case .heartbeatAck(let ack) = try await receive("heartbeat") {
                    let rtt = clock.now - beat
                    rtts.append(Double(rtt.microseconds) / 1000)
                    skew = Int64(beatWall) + rtt.milliseconds / 2 - Int64(ack.centreTime)
                    break
                }
            }
        }
        return Report(
            address: where_, transport: transport.rawValue,
            connectMilliseconds: transport == .tcp ? Double(connected.microseconds) / 1000 : 0,
            sessionMilliseconds: Double(sessionTime.microseconds) / 1000, roundTripMilliseconds: rtts,
            clockSkewMilliseconds: skew, heartbeatIntervalSeconds: accept.heartbeatIntervalSeconds)
    }

    /// `frames` `NULL`s, one after the other, each waiting for its answer.
    private func runDC09(_ framing: DC09FrameSession.Configuration, supervisionSeconds: UInt16, frames: Int) async throws(Failure) -> Report {
        var session = DC09FrameSession(configuration: framing)
        var random = SystemRandomNumberGenerator()
        let clock = ContinuousClock()
        let connectStart = clock.now
        let link: ProbeLink<[UInt8]>
        do {
            link = try await ProbeLink.dc09(address: address, transport: transport, timeout: timeout)
        } catch {
            throw .unreachable(label, Self.plain(error))
        }
        defer { link.close() }
        let connected = clock.now - connectStart
        let stage = "DC-09 NULL supervision"
        var rtts: [Double] = []
        for _ in 0..<max(1, frames) {
            let sent = clock.now
            let null: [UInt8]
            do { null = try session.supervision(wall: wallClockMilliseconds(), random: &random) } catch {
                throw .local("cannot write a DC-09 NULL frame: \(error)")
            }
            link.send(ByteBuffer(bytes: null))
            let deadline = clock.now + timeout
            waiting: while true {
                let bytes: [UInt8]?
                do { bytes = try await link.receive(until: deadline) } catch { throw .noAnswer(label, stage: stage) }
                guard let bytes else { throw .closed(label, stage: stage) }
                switch session.answer(bytes, wall: wallClockMilliseconds()) {
                case .supervisionAnswered:
                    rtts.append(Double((clock.now - sent).microseconds) / 1000)
                    break waiting
                case .refused(_, let time):
                    let clocks = time.map { "; its clock said \($0), ours \(DC09Timestamp(milliseconds: wallClockMilliseconds()))" } ?? ""
                    throw .refusedByReceiver(
                        "NAK: it does not know account \(framing.account), the account's key there differs from dc09_key, or this device's clock is outside its window (set NTP: timedatectl)\(clocks)")
                case .notUnderstood:
                    throw .refusedByReceiver("DUH: it does not take NULL supervision from account \(framing.account) as sent (check the account, receiver and line numbers, and whether it wants encryption)")
                case .unreadable(let error):
                    throw .refusedByReceiver("its answer is not DC-09 (\(error)): is this the receiver's DC-09 port?")
                case .acknowledged, .unmatched:
                    continue  // an answer to something else
                }
            }
        }
        return Report(
            address: label, transport: transport.rawValue,
            connectMilliseconds: transport == .tcp ? Double(connected.microseconds) / 1000 : 0,
            sessionMilliseconds: rtts.first ?? 0, roundTripMilliseconds: rtts, clockSkewMilliseconds: 0,
            heartbeatIntervalSeconds: supervisionSeconds, dc09Account: framing.account)
    }

    static func plain(_ error: any Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: return "connection refused (nothing listens on that port: the centre is down or the port is wrong)"
            case ENETUNREACH, EHOSTUNREACH: return "no route to it (no network, or a wrong address)"
            default: return "\(io)"
            }
        }
        if error is ChannelError { return "no answer within the connect timeout (a firewall, or the host is down)" }
        return "\(error)"
    }
}

/// The probe's connection: TCP through `FrameDecoder` (our frames) or `DC09FrameSplitter` (DC-09 frames), or
/// a UDP socket; frames in, bytes out.
private final class ProbeLink<Frame: Sendable> {
    private let channel: any Channel
    private var iterator: AsyncThrowingStream<Frame, any Error>.AsyncIterator
    /// The centre, for UDP; `nil` for TCP (the connection knows it).
    private let datagramPeer: SocketAddress?
    private let continuation: AsyncThrowingStream<Frame, any Error>.Continuation

    private init(
        channel: any Channel, inbound: AsyncThrowingStream<Frame, any Error>,
        continuation: AsyncThrowingStream<Frame, any Error>.Continuation, datagramPeer: SocketAddress?
    ) {
        self.channel = channel
        self.continuation = continuation
        self.iterator = inbound.makeAsyncIterator()
        self.datagramPeer = datagramPeer
    }

    /// Opens the link; `stream` and `datagram` add the handlers that make frames of a TCP stream or of a
    /// datagram and yield them.
    static func open(
        address: SocketAddress, transport: Transport, timeout: Duration,
        stream: @escaping @Sendable (ChannelPipeline.SynchronousOperations, AsyncThrowingStream<Frame, any Error>.Continuation) throws -> Void,
        datagram: @escaping @Sendable (AddressedEnvelope<ByteBuffer>) -> Frame?
    ) async throws -> ProbeLink {
        let (inbound, continuation) = AsyncThrowingStream<Frame, any Error>.makeStream()
        let group = MultiThreadedEventLoopGroup.singleton
        let channel: any Channel
        switch transport {
        case .tcp:
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(timeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try stream(channel.pipeline.syncOperations, continuation) }
                }
                .connect(to: address).get()
        case .udp:
            channel = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(Collect<AddressedEnvelope<ByteBuffer>, Frame>(continuation, frame: datagram))
                    }
                }
                .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        }
        return ProbeLink(channel: channel, inbound: inbound, continuation: continuation, datagramPeer: transport == .udp ? address : nil)
    }

    func send(_ bytes: ByteBuffer) {
        if let datagramPeer {
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: datagramPeer, data: bytes), promise: nil)
        } else {
            channel.writeAndFlush(bytes, promise: nil)
        }
    }

    /// The next frame, `nil` when the connection closed; throws `ProbeTimeout` at the deadline, which also
    /// ends the stream (the probe gives up then).
    func receive(until deadline: ContinuousClock.Instant) async throws -> Frame? {
        let continuation = self.continuation
        let timer = Task {
            try await Task.sleep(until: deadline)
            continuation.finish(throwing: ProbeTimeout())
        }
        defer { timer.cancel() }
        return try await iterator.next()
    }

    func close() { channel.close(promise: nil) }
}

private struct ProbeTimeout: Error {}

extension ProbeLink where Frame == SealedFrame {
    /// A link for our frames.
    static func ours(address: SocketAddress, transport: Transport, timeout: Duration) async throws -> ProbeLink {
        try await open(address: address, transport: transport, timeout: timeout) { pipeline, continuation in
            try pipeline.addHandlers(ByteToMessageHandler(FrameDecoder()), Collect<SealedFrame, SealedFrame>(continuation) { $0 })
        } datagram: { try? SealedFrame(datagram: $0.data) }
    }
}

extension ProbeLink where Frame == [UInt8] {
    /// A link for DC-09 frames: a TCP stream cut by `DC09FrameSplitter`, or one frame a datagram.
    static func dc09(address: SocketAddress, transport: Transport, timeout: Duration) async throws -> ProbeLink {
        try await open(address: address, transport: transport, timeout: timeout) { pipeline, continuation in
            try pipeline.addHandler(DC09Cut(continuation))
        } datagram: { Array($0.data.readableBytesView) }
    }
}

/// Passes each inbound item, made into a frame, to the stream; ends it when the channel closes.
private final class Collect<In, Frame: Sendable>: ChannelInboundHandler {
    typealias InboundIn = In
    private let continuation: AsyncThrowingStream<Frame, any Error>.Continuation
    private let frame: (In) -> Frame?

    init(_ continuation: AsyncThrowingStream<Frame, any Error>.Continuation, frame: @escaping (In) -> Frame?) {
        self.continuation = continuation
        self.frame = frame
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let frame = frame(unwrapInboundIn(data)) { continuation.yield(frame) }
    }

    func channelInactive(context: ChannelHandlerContext) { continuation.finish() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// Cuts a DC-09 TCP stream into frames for the stream; ends it when the channel closes.
private final class DC09Cut: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation
    private var splitter = DC09FrameSplitter()

    init(_ continuation: AsyncThrowingStream<[UInt8], any Error>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for case .frame(let frame) in splitter.feed(unwrapInboundIn(data).readableBytesView) { continuation.yield(frame) }
    }

    func channelInactive(context: ChannelHandlerContext) { continuation.finish() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
