import NIOCore

/// One device connection over TCP: frames cut by `FrameDecoder` go to the runtime; the connection is closed
/// when the stream breaks (bad version or length: there is no resynchronisation, protocol.md §2.2), when
/// nothing authentic arrives within the authentication timeout, or after repeated refused frames.
final class CenterStreamHandler: ChannelInboundHandler {
    typealias InboundIn = SealedFrame

    private let runtime: CenterRuntime
    private let authenticationTimeout: TimeAmount
    private let offencesBeforeClose: Int
    private var authenticated = false
    private var offences = 0
    private var closing = false
    private var timeout: Scheduled<Void>?

    init(runtime: CenterRuntime, authenticationTimeout: TimeAmount, offencesBeforeClose: Int) {
        self.runtime = runtime
        self.authenticationTimeout = authenticationTimeout
        self.offencesBeforeClose = offencesBeforeClose
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armTimeout(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armTimeout(context: context)
        context.fireChannelActive()
    }

    private func armTimeout(context: ChannelHandlerContext) {
        guard timeout == nil else { return }
        runtime.connectionAccepted()
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
        if runtime.frameReceived(frame, from: .stream(context.channel)) {
            authenticated = true
            timeout?.cancel()
        } else {
            offences += 1
            if offences >= offencesBeforeClose { close(context: context, reason: "offences") }
        }
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
            _ = runtime.frameReceived(frame, from: .datagram(envelope.remoteAddress))
        } catch {
            runtime.frameRefused(error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket reports ICMP errors of earlier sends here; they concern one peer, not the socket.
    }
}
