import NIOCore
import NIOPosix

/// Answers `GET /metrics` with the Prometheus text format, and the probes of an orchestrator (Kubernetes,
/// a load balancer): `GET /live` 200 while the process serves, `GET /ready` 200 while it can take alarms (its
/// journal takes writes), else 503 with the reason; anything else 404. The smallest HTTP/1.1 responder that
/// these need, one request per connection.
///
/// DeviceKit does not depend on NIOHTTP1, so the request head is read by hand, bounded to 8 KiB. The whole
/// request must arrive within `requestTimeout` of connecting, or the connection is closed unanswered: a
/// peer that sends half a request (or nothing) holds no descriptor for long.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let maximumHeadLength = 8_192
    private let render: @Sendable () -> [UInt8]
    /// Nil when ready; else why not.
    private let notReady: @Sendable () -> String?
    private let requestTimeout: TimeAmount
    private let timedOut: @Sendable () -> Void
    private var head = ByteBuffer()
    private var answered = false
    private var deadline: Scheduled<Void>?

    init(
        requestTimeout: TimeAmount, timedOut: @escaping @Sendable () -> Void = {}, ready: @escaping @Sendable () -> String? = { nil },
        render: @escaping @Sendable () -> [UInt8]
    ) {
        self.requestTimeout = requestTimeout
        self.timedOut = timedOut
        self.notReady = ready
        self.render = render
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armDeadline(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armDeadline(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    private func armDeadline(context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: requestTimeout) {
            let (handler, context) = bound.value
            guard !handler.answered else { return }
            handler.answered = true
            handler.timedOut()
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        var bytes = unwrapInboundIn(data)
        head.writeBuffer(&bytes)
        let text = String(buffer: head)
        guard text.contains("\r\n\r\n") || text.contains("\n\n") else {
            if head.readableBytes > Self.maximumHeadLength { respond(context: context, status: "431 Request Header Fields Too Large", body: []) }
            return
        }
        let requestLine = text.prefix { $0 != "\r" && $0 != "\n" }.split(separator: " ")
        let path = requestLine.count >= 2 && requestLine[0] == "GET" ? requestLine[1].prefix { $0 != "?" } : ""
        switch path {
        case "/metrics": respond(context: context, status: "200 OK", body: render())
        case "/live": respond(context: context, status: "200 OK", body: Array("live\n".utf8))
        case "/ready":
            if let reason = notReady() {
                respond(context: context, status: "503 Service Unavailable", body: Array("not ready: \(reason)\n".utf8))
            } else {
                respond(context: context, status: "200 OK", body: Array("ready\n".utf8))
            }
        default: respond(context: context, status: "404 Not Found", body: Array("served: GET /metrics, /live, /ready\n".utf8))
        }
    }

    private func respond(context: ChannelHandlerContext, status: String, body: [UInt8]) {
        answered = true
        deadline?.cancel()
        var response = context.channel.allocator.buffer(capacity: body.count + 160)
        response.writeString(
            "HTTP/1.1 \(status)\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n")
        response.writeBytes(body)
        context.writeAndFlush(wrapOutboundOut(response)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Binds the metrics responder.
enum MetricsHTTPServer {
    struct Limits: Sendable {
        /// A request must arrive whole within this time of connecting.
        var requestTimeout: Duration
        /// Connections open at once; past it a new one is closed at once.
        var connections: Int
    }

    /// - Parameter refused: called for each connection closed unanswered (too slow, or one too many).
    static func bind(
        host: String, port: Int, on loop: any EventLoop, limits: Limits, refused: @escaping @Sendable () -> Void,
        ready: @escaping @Sendable () -> String? = { nil }, render: @escaping @Sendable () -> [UInt8]
    ) async throws -> any Channel {
        let open = NIOLoopBoundBox.makeBoxSendingValue(0, as: Int.self, eventLoop: loop)
        let timeout = TimeAmount(limits.requestTimeout)
        return try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard open.value < limits.connections else {
                        refused()
                        channel.close(promise: nil)
                        return
                    }
                    open.value += 1
                    channel.closeFuture.assumeIsolated().whenComplete { _ in open.value -= 1 }
                    try channel.pipeline.syncOperations.addHandler(
                        MetricsHTTPHandler(requestTimeout: timeout, timedOut: refused, ready: ready, render: render))
                }
            }
            .bind(host: host, port: port).get()
    }
}
