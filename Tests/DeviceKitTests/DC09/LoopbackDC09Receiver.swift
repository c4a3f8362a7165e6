import NIOCore
import NIOPosix
import Synchronization

@testable import DeviceKit

/// A DC-09 receiver on loopback for the tests of senders (the device, the load tester): `DC09Receiving`'s
/// rules on a TCP and a UDP port, every event "stored" at once. It can answer with its clock ahead of ours
/// (to draw `NAK`s) and write each TCP answer in two halves (so the sender's splitter meets split reads).
final class LoopbackDC09Receiver: Sendable {
    struct State {
        var receiving: DC09Receiving
        /// Events taken (stored, then acknowledged), in order.
        var events: [DC09Frame] = []
        /// Every answer written, by reason (`ack` for an acknowledged event).
        var answers: [String] = []
        var aheadSeconds: Int64 = 0
        var splitAnswers = false
    }

    let state: Mutex<State>
    private let channels: Mutex<[any Channel]> = Mutex([])

    init(accounts: [String: DC09Receiving.Account]) {
        state = Mutex(State(receiving: DC09Receiving(accounts: accounts)))
    }

    var events: [DC09Frame] { state.withLock { $0.events } }
    var answers: [String] { state.withLock { $0.answers } }

    /// Binds TCP and UDP on loopback; returns their ports.
    func start() async throws -> (tcp: Int, udp: Int) {
        let group = MultiThreadedEventLoopGroup.singleton
        let tcp = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(StreamHandler(receiver: self)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let udp = try await DatagramBootstrap(group: group)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DatagramHandler(receiver: self)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        channels.withLock { $0 = [tcp, udp] }
        return (tcp.localAddress?.port ?? 0, udp.localAddress?.port ?? 0)
    }

    func stop() async {
        for channel in channels.withLock({ $0 }) { try? await channel.close() }
    }

    /// The answer to one frame, as bytes.
    fileprivate func answer(_ bytes: [UInt8]) -> [UInt8] {
        state.withLock { state in
            var random = SystemRandomNumberGenerator()
            let now = DC09Timestamp(secondsSince1970: Int64(wallClockMilliseconds() / 1000) + state.aheadSeconds)
            switch state.receiving.decide(bytes, now: now) {
            case .store(let frame):
                state.events.append(frame)
                state.answers.append("ack")
                return (try? state.receiving.encoded(state.receiving.acknowledgement(of: frame, now: now), answering: frame, random: &random)) ?? []
            case .answer(let answer, let reason):
                state.answers.append(reason.rawValue)
                return (try? state.receiving.encoded(answer, answering: nil, random: &random)) ?? []
            }
        }
    }

    private final class StreamHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let receiver: LoopbackDC09Receiver
        var splitter = DC09FrameSplitter()
        init(receiver: LoopbackDC09Receiver) { self.receiver = receiver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            for piece in splitter.feed(unwrapInboundIn(data).readableBytesView) {
                guard case .frame(let frame) = piece else { continue }
                let answer = receiver.answer(frame)
                if receiver.state.withLock({ $0.splitAnswers }) {
                    let half = answer.count / 2
                    context.writeAndFlush(NIOAny(ByteBuffer(bytes: answer[..<half])), promise: nil)
                    context.writeAndFlush(NIOAny(ByteBuffer(bytes: answer[half...])), promise: nil)
                } else {
                    context.writeAndFlush(NIOAny(ByteBuffer(bytes: answer)), promise: nil)
                }
            }
        }
    }

    private final class DatagramHandler: ChannelInboundHandler {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let receiver: LoopbackDC09Receiver
        init(receiver: LoopbackDC09Receiver) { self.receiver = receiver }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            let answer = receiver.answer(Array(envelope.data.readableBytesView))
            context.writeAndFlush(NIOAny(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: ByteBuffer(bytes: answer))), promise: nil)
        }
    }
}
