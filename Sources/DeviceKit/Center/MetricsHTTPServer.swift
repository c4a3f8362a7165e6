import NIOCore
import NIOPosix

/// Answers `GET /metrics` with the Prometheus text format, and anything else with 404: the smallest HTTP/1.1
/// responder that a Prometheus scraper needs, one request per connection.
///
/// DeviceKit does not depend on NIOHTTP1, so the request head is read by hand, bounded to 8 KiB.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private static let maximumHeadLength = 8_192
    private let render: @Sendable () -> [UInt8]
    private var head = ByteBuffer()
    private var answered = false

    init(render: @escaping @Sendable () -> [UInt8]) {
        self.render = render
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
        if requestLine.count >= 2, requestLine[0] == "GET", requestLine[1] == "/metrics" || requestLine[1].hasPrefix("/metrics?") {
            respond(context: context, status: "200 OK", body: render())
        } else {
            respond(context: context, status: "404 Not Found", body: Array("only GET /metrics is served\n".utf8))
        }
    }

    private func respond(context: ChannelHandlerContext, status: String, body: [UInt8]) {
        answered = true
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
    static func bind(
        host: String, port: Int, on loop: any EventLoop, render: @escaping @Sendable () -> [UInt8]
    ) async throws -> any Channel {
        try await ServerBootstrap(group: loop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(render: render))
                }
            }
            .bind(host: host, port: port).get()
    }
}
