import Foundation
import NIOCore
import NIOPosix
import Synchronization

@testable import DeviceKit

/// A small DC-09 receiver on loopback for the tests of senders (the gateway, the device, the load tool): the
/// receiver's rules are `DC09Receiving`'s (window, keys, NAK, DUH), every event it takes is kept in `stored`
/// (retransmissions too, as an ARC would see them) and acknowledged, and each answer's reason is kept in
/// `answers` (`ack` for an event taken). TCP (frames cut by `DC09FrameSplitter`) or UDP.
final class DC09TestReceiver: Sendable {
    let channel: any Channel
    let port: Int
    let stored: Collected<DC09Frame>
    let answers: Collected<String>

    /// - Parameters:
    ///   - port: 0 for a free one; the port of a receiver stopped before, to bring it back.
    ///   - accounts: the accounts it knows and their keys.
    ///   - clockAhead: seconds its clock is ahead of ours (a sender whose clock it finds outside its window gets
    ///     a `NAK` with its time).
    ///   - takes: the event codes it takes; others are answered `DUH`.
    ///   - splitAnswers: over TCP, write each answer in two halves (the sender's splitter meets split reads).
    static func start(
        transport: DC09ForwardTarget.Transport, port: Int = 0, accounts: [String: DC09Receiving.Account],
        stored: Collected<DC09Frame> = Collected(), clockAhead: Int64 = 0, splitAnswers: Bool = false,
        takes: @escaping @Sendable (DC09Frame.ID, String) -> Bool = { _, _ in true }
    ) async throws -> DC09TestReceiver {
        let receiving = DC09Receiving(accounts: accounts, takes: takes)
        let reasons = Collected<String>()
        let answers = Answers(receiving: receiving, stored: stored, reasons: reasons, clockAhead: clockAhead)
        let connections = Collected<any Channel>()
        let channel: any Channel
        switch transport {
        case .tcp:
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    connections.append(channel)
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(StreamReceiver(answers: answers, split: splitAnswers))
                    }
                }
                .bind(host: "127.0.0.1", port: port).get()
        case .udp:
            channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramReceiver(answers: answers))
                    }
                }
                .bind(host: "127.0.0.1", port: port).get()
        }
        return DC09TestReceiver(channel: channel, port: channel.localAddress?.port ?? 0, stored: stored, answers: reasons, connections: connections)
    }

    private let connections: Collected<any Channel>

    private init(channel: any Channel, port: Int, stored: Collected<DC09Frame>, answers: Collected<String>, connections: Collected<any Channel>) {
        self.channel = channel
        self.port = port
        self.stored = stored
        self.answers = answers
        self.connections = connections
    }

    /// Stops listening and closes the connections it accepted: an ARC gone down.
    func stop() async {
        try? await channel.close()
        for connection in connections.all { try? await connection.close() }
    }

}

/// What the receiver answers each frame, after keeping it if it is an event; and every answer it sent.
private struct Answers: Sendable {
    let receiving: DC09Receiving
    let stored: Collected<DC09Frame>
    let reasons: Collected<String>
    let clockAhead: Int64

    func answer(_ bytes: [UInt8]) -> [UInt8]? {
        var random = SystemRandomNumberGenerator()
        let now = DC09Timestamp(secondsSince1970: Int64(Date().timeIntervalSince1970) + clockAhead)
        switch receiving.decide(bytes, now: now) {
        case .store(let frame):
            stored.append(frame)
            reasons.append("ack")
            return try? receiving.encoded(receiving.acknowledgement(of: frame, now: now), answering: frame, random: &random)
        case .answer(let answer, let reason):
            reasons.append(reason.rawValue)
            return try? receiving.encoded(answer, answering: nil, random: &random)
        }
    }
}

/// The events of `frames` as (account, sequence, data), each once: what the ARC holds.
func distinctEvents(_ frames: [DC09Frame]) -> Set<[String]> {
    Set(frames.map { [$0.account ?? "", $0.sequence, $0.data] })
}

private final class StreamReceiver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let answers: Answers
    let split: Bool
    var splitter = DC09FrameSplitter()

    init(answers: Answers, split: Bool) {
        self.answers = answers
        self.split = split
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for case .frame(let frame) in splitter.feed(unwrapInboundIn(data).readableBytesView) {
            guard let answer = answers.answer(frame) else { continue }
            let halves = split ? [answer[..<(answer.count / 2)], answer[(answer.count / 2)...]] : [answer[...]]
            for half in halves { context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: half)), promise: nil) }
        }
    }
}

private final class DatagramReceiver: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let answers: Answers

    init(answers: Answers) { self.answers = answers }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let answer = answers.answer(Array(envelope.data.readableBytesView)) else { return }
        let buffer = context.channel.allocator.buffer(bytes: answer)
        context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: buffer)), promise: nil)
    }
}
