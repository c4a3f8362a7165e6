#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// One device connection over TCP: frames cut by `FrameDecoder` go to the runtime, and the connection's
/// life — the authentication timeout, offences, eviction, a slow reader, a broken stream — is decided by its
/// `CenterConnectionMachine`; this handler feeds it and carries out its actions.
final class CenterStreamHandler: ChannelInboundHandler {
    typealias InboundIn = SealedFrame

    private let runtime: CenterRuntime
    private let authenticationTimeout: TimeAmount
    private var machine: CenterConnectionMachine
    private var context: ChannelHandlerContext?
    private var source = SourceAddress.other
    private var admitted = false
    private var timeout: Scheduled<Void>?

    init(runtime: CenterRuntime, authenticationTimeout: TimeAmount, offencesBeforeClose: Int) {
        self.runtime = runtime
        self.authenticationTimeout = authenticationTimeout
        self.machine = CenterConnectionMachine(offencesBeforeClose: offencesBeforeClose)
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

    /// NIO tells of an active channel at `handlerAdded` or at `channelActive`, whichever comes: admitted once.
    private func admit(context: ChannelHandlerContext) {
        guard !admitted else { return }
        admitted = true
        source = SourceAddress(context.channel.remoteAddress)
        run(machine.opened(runtime.streamOpened(self, channel: context.channel)))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !machine.isClosing else { return }
        let verdict = runtime.frameReceived(unwrapInboundIn(data), from: .stream(context.channel), source: source)
        run(machine.frameReceived(verdict))
    }

    /// A frame of a current session arrived on this connection (the runtime calls it once a journalled
    /// `sessionStart` opened its session).
    func sessionAuthenticated() { run(machine.sessionAuthenticated()) }

    /// The runtime needs the room: closes this connection, which is not authenticated.
    func evict() { run(machine.evicted()) }

    /// The peer does not read its answers: they would pile up in memory.
    func closeSlowReader() { run(machine.readerTooSlow()) }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? ProtocolError {
            runtime.frameRefused(error)
            run(machine.streamBroken(reason: error.category.rawValue))
        } else if (error as? IOError)?.errnoCode == ETIMEDOUT {
            run(machine.stalled())  // TCP_USER_TIMEOUT
        } else {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        run(machine.closed())
        runtime.streamClosed(context.channel)
        context.fireChannelInactive()
    }

    private func run(_ actions: [CenterConnectionMachine.Action]) {
        for action in actions {
            switch action {
            case .armTimeout(let generation):
                timeout?.cancel()
                guard let context else { return }
                let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
                timeout = context.eventLoop.scheduleTask(in: authenticationTimeout) {
                    handler.value.run(handler.value.machine.timeoutFired(generation: generation))
                }
            case .cancelTimeout:
                timeout?.cancel()
                timeout = nil
            case .close(let reason):
                runtime.connectionClosed(reason: reason)
                context?.close(promise: nil)
            }
        }
    }
}

/// The listening socket's guard: when accept(2) fails for want of descriptors or memory, accepting pauses
/// (NIO's `AcceptBackoffHandler`, which the legacy `bind` does not install: without it the loop retries
/// accept at once, forever, at a core's full speed) and the runtime frees a descriptor by closing its oldest
/// unauthenticated connection.
final class CenterAcceptGuard: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    /// How long accepting pauses after such a failure.
    static let backoff = TimeAmount.milliseconds(100)

    private let exhausted: () -> Void

    /// - Parameter exhausted: called on the loop at each such failure (the runtime's `descriptorsExhausted`).
    init(exhausted: @escaping () -> Void) {
        self.exhausted = exhausted
    }

    /// The handlers for a server channel's pipeline, in order.
    static func handlers(exhausted: @escaping () -> Void) -> [any ChannelHandler] {
        [AcceptBackoffHandler(backoffProvider: Self.backoff(after:)), CenterAcceptGuard(exhausted: exhausted)]
    }

    /// A pause for the errors that more accepting cannot cure, none for a connection aborted by its peer.
    static func backoff(after error: IOError) -> TimeAmount? {
        switch error.errnoCode {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM: backoff
        default: nil
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? IOError, Self.backoff(after: error) != nil { exhausted() }
        context.fireErrorCaught(error)
    }
}

/// The centre's UDP socket: one frame per datagram (protocol.md §2.2); answers go to the source address of
/// the device's latest authenticated frame, which the runtime keeps. Read in coalesced batches
/// (`CenterConfiguration.udpReadInterval`, `BatchedDatagramReader`) and answered through the same
/// `BatchedDatagramSocket` (`CenterRuntime.datagramSocket`).
///
/// The frames of sessions are worked on as they are read; the frames of devices without a session (session
/// starts) wait in a `SessionStartQueue`, whose doc says why, and are worked on after each read, a batch at a
/// time, before the socket is read again.
enum CenterDatagrams {
    /// The reader of the centre's UDP socket, which feeds `runtime`.
    /// - Parameters:
    ///   - readInterval: zero: `autoRead` is on and NIO reads everything.
    ///   - startsWaiting: session starts waiting at most (`CenterConfiguration.udpSessionStartsWaiting`).
    static func reader(
        runtime: CenterRuntime, socket: BatchedDatagramSocket, readInterval: Duration = .zero, readsPerTurn: Int = 4,
        startsWaiting: Int = SessionStartQueue.defaultLimit
    ) -> BatchedDatagramReader {
        let starts = SessionStartQueue(limit: startsWaiting)
        return BatchedDatagramReader(
            socket: socket, readInterval: readInterval, readsPerTurn: readsPerTurn,
            received: { datagram, peer in
                do throws(ProtocolError) {
                    let frame = try SealedFrame(datagram: datagram)
                    _ = runtime.frameReceived(frame, from: .datagram(peer), source: peer.source, startsWaiting: starts)
                } catch {
                    runtime.frameRefused(error)
                }
            },
            drained: { _ in
                for _ in 0..<starts.batch {
                    guard let start = starts.next() else { break }
                    runtime.putOffStartDue(start)
                }
                return !starts.isEmpty
            })
    }
}
