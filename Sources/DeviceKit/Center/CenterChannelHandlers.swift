#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// One device connection over TCP: frames cut by `FrameDecoder` go to the runtime; the connection is closed
/// when the stream breaks (bad version or length: there is no resynchronisation, protocol.md §2.2), when no
/// frame of a current session arrives within the authentication timeout (a replayed frame of an old session
/// is no such frame, §3.4), after repeated refused frames, when the runtime evicts it to make room for
/// another (`ConnectionTable`), or when its peer stops reading its answers.
final class CenterStreamHandler: ChannelInboundHandler {
    typealias InboundIn = SealedFrame

    private let runtime: CenterRuntime
    private let authenticationTimeout: TimeAmount
    private let offencesBeforeClose: Int
    private var context: ChannelHandlerContext?
    private var source = SourceAddress.other
    private var admitted = false
    private var authenticated = false
    private var offences = 0
    private var closing = false
    private var timeout: Scheduled<Void>?
    /// Whether the timeout was restarted for a `sessionStart` that the journal is storing.
    private var extendedForSessionStart = false

    init(runtime: CenterRuntime, authenticationTimeout: TimeAmount, offencesBeforeClose: Int) {
        self.runtime = runtime
        self.authenticationTimeout = authenticationTimeout
        self.offencesBeforeClose = offencesBeforeClose
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
        switch runtime.streamOpened(self, channel: context.channel) {
        case .refused:
            close(context: context, reason: "connectionLimit")
        case .admitted:
            armTimeout(context: context)
        }
    }

    private func armTimeout(context: ChannelHandlerContext) {
        timeout?.cancel()
        let loopBoundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: authenticationTimeout) {
            guard !handler.value.authenticated else { return }
            handler.value.close(context: loopBoundContext.value, reason: "authTimeout")
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let frame = unwrapInboundIn(data)
        switch runtime.frameReceived(frame, from: .stream(context.channel), source: source) {
        case .authenticated:
            sessionAuthenticated()
        case .pending:
            // A sessionStart being stored: the runtime calls sessionAuthenticated() once its session opens. A
            // journal that takes long (a batch's fsync, another worker's transaction) must not cost the
            // device its connection, so the timeout starts again, once: a replayed sessionStart wins nothing
            // by it, since the journal refuses it and this process then knows its anchor.
            if !extendedForSessionStart {
                extendedForSessionStart = true
                armTimeout(context: context)
            }
        case .refused:
            offences += 1
            if offences >= offencesBeforeClose { close(context: context, reason: "offences") }
        }
    }

    /// A frame of a current session arrived on this connection: the authentication timeout is off.
    func sessionAuthenticated() {
        authenticated = true
        timeout?.cancel()
    }

    /// The runtime needs the room: closes this connection, which is not authenticated.
    func evict() {
        guard let context else { return }
        close(context: context, reason: "evicted")
    }

    /// The peer does not read its answers: they would pile up in memory.
    func closeSlowReader() {
        guard let context else { return }
        close(context: context, reason: "backpressure")
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? ProtocolError {
            runtime.frameRefused(error)
            close(context: context, reason: error.category.rawValue)
        } else {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeout?.cancel()
        runtime.streamClosed(context.channel)
        context.fireChannelInactive()
    }

    private func close(context: ChannelHandlerContext, reason: String) {
        guard !closing else { return }
        closing = true
        timeout?.cancel()
        runtime.connectionClosed(reason: reason)
        context.close(promise: nil)
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
/// the device's latest authenticated frame, which the runtime keeps.
final class CenterDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let runtime: CenterRuntime

    init(runtime: CenterRuntime) {
        self.runtime = runtime
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        do throws(ProtocolError) {
            let frame = try SealedFrame(datagram: envelope.data)
            _ = runtime.frameReceived(frame, from: .datagram(envelope.remoteAddress), source: SourceAddress(envelope.remoteAddress))
        } catch {
            runtime.frameRefused(error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket reports ICMP errors of earlier sends here; they concern one peer, not the socket.
    }
}
