import NIOCore

/// Reads a `BatchedDatagramSocket` in coalesced batches, on the loop of the NIO channel that owns its
/// descriptor (the centre's UDP port, the load tool's shared sockets).
///
/// With `readInterval` above zero the channel's `autoRead` must be off: NIO reads only when this side found
/// the socket empty, to wake the loop when a datagram comes. After that wake-up (or any read) the reader
/// drains the socket itself `readInterval` later (`recvmmsg` into the socket's one receive buffer, nothing
/// allocated a datagram), so the datagrams that arrived meanwhile are read in one wake-up of the loop; a
/// drain that took `readsPerTurn` full batches may have left more queued and drains again in the next turn;
/// a drain that found nothing hands the socket back to NIO to wait. Idle, nothing is scheduled.
///
/// With `readInterval` zero, `autoRead` is on and NIO reads everything; the reader only passes it on.
///
/// Every datagram goes to `received` with its sender, in the order read; after each read or drain,
/// `drained` is told how many datagrams it took (`fullRead` or more: the socket may hold more), and says
/// whether its owner has work left from them (the centre's put-off session starts): then the reader drains
/// again in the loop's next turn, whatever it read, so that the work goes on between reads.
final class BatchedDatagramReader: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let socket: BatchedDatagramSocket
    private let readInterval: TimeAmount?
    private let readsPerTurn: Int
    private let received: (ByteBuffer, DatagramPeer) -> Void
    private let drained: (Int) -> Bool
    private var readThisTurn = 0
    /// A drain for the owner's work left is scheduled (with `autoRead`, NIO may read again before it runs).
    private var workDrainScheduled = false

    /// - Parameter readsPerTurn: `recvmmsg` calls one drain makes at most.
    init(
        socket: BatchedDatagramSocket, readInterval: Duration, readsPerTurn: Int,
        received: @escaping (ByteBuffer, DatagramPeer) -> Void, drained: @escaping (Int) -> Bool = { _ in false }
    ) {
        self.socket = socket
        self.readInterval = readInterval == .zero ? nil : TimeAmount(readInterval)
        self.readsPerTurn = max(1, readsPerTurn)
        self.received = received
        self.drained = drained
    }

    /// The datagrams a drain takes at most.
    var fullRead: Int { readsPerTurn * socket.batch }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if readInterval != nil { context.read() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        socket.closed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard let peer = DatagramPeer(envelope.remoteAddress) else { return }
        readThisTurn += 1
        received(envelope.data, peer)
    }

    /// NIO read (after a wake-up, or always with `autoRead`): the next drain is this reader's own.
    func channelReadComplete(context: ChannelHandlerContext) {
        context.fireChannelReadComplete()
        let read = readThisTurn
        readThisTurn = 0
        afterReading(read, context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket reports ICMP errors of earlier sends here; they concern one peer, not the socket.
        // NIO ends that read without `channelReadComplete`: the next read is asked for here, or none would be.
        readThisTurn = 0
        guard let readInterval else { return }
        schedule(in: readInterval, context: context)
    }

    /// Reads what the socket holds, up to `fullRead` datagrams, and says when to read next.
    private func drain(context: ChannelHandlerContext) {
        guard socket.isOpen else { return }
        var read = 0
        for _ in 0..<readsPerTurn {
            // A failure (an ICMP error of an earlier send, reported on the socket) reads nothing: the socket
            // goes back to NIO, which reads it again and reports the error in `errorCaught`.
            guard case .datagrams(let count) = socket.receive(received) else { break }
            read += count
            if count < socket.batch { break }
        }
        afterReading(read, context: context)
    }

    private func afterReading(_ read: Int, context: ChannelHandlerContext) {
        if drained(read) {
            guard !workDrainScheduled else { return }
            workDrainScheduled = true
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                bound.value.0.workDrainScheduled = false
                bound.value.0.drain(context: bound.value.1)
            }
            return
        }
        guard let readInterval else { return }
        if read == 0 {
            context.read()
        } else {
            schedule(in: read >= fullRead ? .zero : readInterval, context: context)
        }
    }

    private func schedule(in delay: TimeAmount, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if delay == .zero {
            context.eventLoop.execute { bound.value.0.drain(context: bound.value.1) }
        } else {
            context.eventLoop.scheduleTask(in: delay) { bound.value.0.drain(context: bound.value.1) }
        }
    }
}
