import Foundation
import NIOCore
import NIOPosix

/// `diag link`: does this device reach its centre, and is it accepted there? Opens its own connection,
/// sends `sessionStart` sealed with the device's key and a counter from its own reservation file, waits for
/// `sessionAccept`, then times `heartbeat` → `heartbeatAck` round trips and compares clocks.
///
/// It seals with the device's real counter, so the caller must hold the `StateDirectoryLock`: the device's
/// daemon must not run at the same time.
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
    }

    public enum Failure: Error, Sendable, CustomStringConvertible {
        case unreachable(String, String)
        case noAnswer(String, stage: String)
        case closed(String, stage: String)
        case notAccepted(String)
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
        let where_ = label
        let limit: UInt64
        do { limit = try counterStore.load() } catch { throw .local("cannot read the frame counter: \(error)") }
        var session = DeviceFrameSession(key: key, storedCounterLimit: limit)
        let clock = ContinuousClock()
        let connectStart = clock.now
        let link: ProbeLink
        do {
            link = try await ProbeLink.open(address: address, transport: transport, timeout: timeout)
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

/// The probe's connection: TCP through `FrameDecoder`, or a UDP socket; frames in, bytes out.
private final class ProbeLink {
    private let channel: any Channel
    private var iterator: AsyncThrowingStream<SealedFrame, any Error>.AsyncIterator
    /// The centre, for UDP; `nil` for TCP (the connection knows it).
    private let datagramPeer: SocketAddress?
    private let continuation: AsyncThrowingStream<SealedFrame, any Error>.Continuation

    private init(
        channel: any Channel, inbound: AsyncThrowingStream<SealedFrame, any Error>,
        continuation: AsyncThrowingStream<SealedFrame, any Error>.Continuation, datagramPeer: SocketAddress?
    ) {
        self.channel = channel
        self.continuation = continuation
        self.iterator = inbound.makeAsyncIterator()
        self.datagramPeer = datagramPeer
    }

    static func open(address: SocketAddress, transport: Transport, timeout: Duration) async throws -> ProbeLink {
        let (stream, continuation) = AsyncThrowingStream<SealedFrame, any Error>.makeStream()
        let group = MultiThreadedEventLoopGroup.singleton
        let channel: any Channel
        switch transport {
        case .tcp:
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(TimeAmount(timeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(FrameDecoder()), Collect<SealedFrame>(continuation) { $0 })
                    }
                }
                .connect(to: address).get()
        case .udp:
            channel = try await DatagramBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            Collect<AddressedEnvelope<ByteBuffer>>(continuation) { try? SealedFrame(datagram: $0.data) })
                    }
                }
                .bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get()
        }
        return ProbeLink(channel: channel, inbound: stream, continuation: continuation, datagramPeer: transport == .udp ? address : nil)
    }

    func send(_ bytes: ByteBuffer) {
        if let datagramPeer {
            channel.writeAndFlush(AddressedEnvelope(remoteAddress: datagramPeer, data: bytes), promise: nil)
        } else {
            channel.writeAndFlush(bytes, promise: nil)
        }
    }

    /// The next frame, `nil` when the connection closed; throws `Timeout` at the deadline, which also ends
    /// the stream (the probe gives up then).
    func receive(until deadline: ContinuousClock.Instant) async throws -> SealedFrame? {
        let continuation = self.continuation
        let timer = Task {
            try await Task.sleep(until: deadline)
            continuation.finish(throwing: Timeout())
        }
        defer { timer.cancel() }
        return try await iterator.next()
    }

    struct Timeout: Error {}

    func close() { channel.close(promise: nil) }
}

/// Passes each inbound item, made into a frame, to the stream; ends it when the channel closes.
private final class Collect<In>: ChannelInboundHandler {
    typealias InboundIn = In
    private let continuation: AsyncThrowingStream<SealedFrame, any Error>.Continuation
    private let frame: (In) -> SealedFrame?

    init(_ continuation: AsyncThrowingStream<SealedFrame, any Error>.Continuation, frame: @escaping (In) -> SealedFrame?) {
        self.continuation = continuation
        self.frame = frame
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let frame = frame(unwrapInboundIn(data)) { continuation.yield(frame) }
    }

    func channelInactive(context: ChannelHandlerContext) { continuation.finish() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
