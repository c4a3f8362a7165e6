import Foundation
import NIOCore
import NIOPosix

/// The NIO shell of a `SIPUserAgent` (protocol.md §8): a UDP socket and a TCP listener on one port, TCP
/// connections in both directions (a connection a peer opened carries our messages back to it; one we need
/// is opened on demand), and the core's timers. Datagrams and stream messages are parsed here; what cannot
/// be parsed goes to the core as `malformed` (a 400 when it can be addressed), and a TCP stream that cannot
/// be framed is closed.
///
/// Bound to one event loop: every method must be called on `eventLoop` (`@unchecked Sendable` only so that
/// the loop's closures may hold it).
public final class SIPEndpoint: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Address to bind (and, unless `advertisedHost` says otherwise, to put in Via and Contact).
        public var host: String
        /// 0: the system picks one port free for both TCP and UDP.
        public var port: Int
        /// The address peers reach us at, when it is not `host` (binding 0.0.0.0).
        public var advertisedHost: String?
        /// TCP connections held at once (ours and peers'); the oldest one is closed beyond it.
        public var maximumConnections: Int
        /// A TCP connection holding part of a message that is not whole within this is closed (garbage, or a
        /// peer that stalls: either would hold the connection and its buffer for ever).
        public var incompleteMessageTimeout: Duration

        public init(
            host: String = "127.0.0.1", port: Int = 0, advertisedHost: String? = nil, maximumConnections: Int = 1_024,
            incompleteMessageTimeout: Duration = .seconds(10)
        ) {
            self.host = host
            self.port = port
            self.advertisedHost = advertisedHost
            self.maximumConnections = maximumConnections
            self.incompleteMessageTimeout = incompleteMessageTimeout
        }
    }

    /// What went through the endpoint, for metrics and tests.
    public struct Counters: Hashable, Sendable {
        public var received = 0
        public var sent = 0
        public var malformed = 0
        public var sendFailures = 0
    }

    public let eventLoop: any EventLoop
    /// The port bound for both UDP and TCP.
    public private(set) var port = 0
    public private(set) var counters = Counters()
    private var core: SIPUserAgent!
    private var datagram: (any Channel)?
    private var listener: (any Channel)?
    private var connections: [SocketAddress: any Channel] = [:]
    private var connecting: [SocketAddress: [SIPMessage]] = [:]
    private var timers: [SIPUserAgent.Timer: Scheduled<Void>] = [:]
    private let onEvent: (SIPUserAgent.Event) -> Void
    private let maximumConnections: Int
    fileprivate let incompleteMessageTimeout: Duration
    private var stopped = false

    private init(eventLoop: any EventLoop, configuration: Configuration, onEvent: @escaping (SIPUserAgent.Event) -> Void) {
        self.eventLoop = eventLoop
        self.maximumConnections = configuration.maximumConnections
        self.incompleteMessageTimeout = configuration.incompleteMessageTimeout
        self.onEvent = onEvent
    }

    /// Binds UDP and TCP on `configuration.port` and starts a user agent there; `userAgent` gets the bound
    /// port as its contact port when it says 0. `onEvent` is called on `loop`.
    public static func start(
        _ configuration: Configuration, userAgent: SIPUserAgent.Configuration, on loop: any EventLoop,
        onEvent: @escaping (SIPUserAgent.Event) -> Void
    ) async throws -> SIPEndpoint {
        let endpoint = SIPEndpoint(eventLoop: loop, configuration: configuration, onEvent: onEvent)
        var attempt = 0
        while true {
            attempt += 1
            let stream = try await endpoint.bindStream(host: configuration.host, port: configuration.port)
            let port = stream.localAddress?.port ?? 0
            do {
                let datagram = try await endpoint.bindDatagram(host: configuration.host, port: port)
                try await loop.submit {
                    endpoint.listener = stream
                    endpoint.datagram = datagram
                    endpoint.port = port
                    var userAgent = userAgent
                    if userAgent.contactPort == 0 { userAgent.contactPort = port }
                    if userAgent.contactHost.isEmpty { userAgent.contactHost = configuration.advertisedHost ?? configuration.host }
                    endpoint.core = SIPUserAgent(configuration: userAgent)
                }.get()
                return endpoint
            } catch {
                try? await stream.close()
                if configuration.port == 0, (error as? IOError)?.errnoCode == EADDRINUSE, attempt < 32 { continue }
                throw error
            }
        }
    }

    /// Waits until our requests have their final answers (the 200 to our last BYE), at most `grace`, then
    /// stops: closing a TCP connection with an answer unread would reset it, and the peer sees an error.
    public func stop(grace: Duration) -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        let deadline = NIODeadline.now() + TimeAmount(grace)
        let done = eventLoop.makePromise(of: Void.self)
        func check() {
            if stopped || !core.awaitsAnswers || NIODeadline.now() >= deadline {
                stop()
                done.succeed()
            } else {
                eventLoop.scheduleTask(in: .milliseconds(20)) { check() }
            }
        }
        check()
        return done.futureResult
    }

    /// The local address the system would send from to reach `address` (the routing table's choice: a UDP
    /// socket connected to it, which sends nothing): what a user agent on every address (0.0.0.0) advertises.
    public static func localAddress(towards address: SocketAddress) -> String? { localSendingAddress(towards: address) }


    /// Closes every socket and cancels the timers (no BYE is sent: hang calls up first).
    public func stop() {
        eventLoop.preconditionInEventLoop()
        guard !stopped else { return }
        stopped = true
        for timer in timers.values { timer.cancel() }
        timers.removeAll()
        datagram?.close(promise: nil)
        listener?.close(promise: nil)
        for channel in connections.values { channel.close(promise: nil) }
        connections.removeAll()
    }

    // MARK: The application's calls (on the loop)

    public func register() { run { $0.register() } }
    public func unregister() { run { $0.unregister() } }

    public func call(to uri: SIPURI, target: SIPTarget, offer: [UInt8]) -> SIPCallHandle {
        eventLoop.preconditionInEventLoop()
        let (handle, actions) = core.call(to: uri, target: target, offer: offer)
        perform(actions)
        return handle
    }

    public func ring(_ call: SIPCallHandle) { run { $0.ring(call) } }
    public func answer(_ call: SIPCallHandle, with sdp: [UInt8]) { run { $0.answer(call, with: sdp) } }
    public func reject(_ call: SIPCallHandle, statusCode: Int) { run { $0.reject(call, statusCode: statusCode) } }
    public func hangUp(_ call: SIPCallHandle) { run { $0.hangUp(call) } }
    public var callCount: Int { core.callCount }
    /// The address a call's messages go to and come from (an incoming call's: its INVITE's source).
    public func flow(of call: SIPCallHandle) -> SIPTarget? { core.flow(of: call) }
    /// The address to put in our SDP (`c=`): the one peers reach us at.
    public var mediaHost: String { core.configuration.contactHost }

    private func run(_ body: (inout SIPUserAgent) -> [SIPUserAgent.Action]) {
        eventLoop.preconditionInEventLoop()
        guard !stopped else { return }
        perform(body(&core))
    }

    // MARK: Carrying out the core's actions

    private func perform(_ actions: [SIPUserAgent.Action]) {
        for action in actions {
            switch action {
            case .send(let message, let target):
                send(message, to: target)
            case .schedule(let timer, let after):
                timers[timer]?.cancel()
                timers[timer] = eventLoop.scheduleTask(in: TimeAmount(after)) { [weak self] in
                    guard let self, !self.stopped else { return }
                    self.timers[timer] = nil
                    self.perform(self.core.timerFired(timer))
                }
            case .cancel(let timer):
                timers.removeValue(forKey: timer)?.cancel()
            case .event(let event):
                onEvent(event)
            }
        }
    }

    private func send(_ message: SIPMessage, to target: SIPTarget) {
        guard !stopped else { return }
        let bytes = message.serialized()
        switch target.transport {
        case .udp:
            guard let datagram else { return }
            var buffer = datagram.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            counters.sent += 1
            datagram.writeAndFlush(AddressedEnvelope(remoteAddress: target.address, data: buffer), promise: nil)
        case .tcp:
            if let channel = connections[target.address] {
                write(bytes, on: channel)
            } else if connecting[target.address] != nil {
                connecting[target.address]?.append(message)
            } else {
                connecting[target.address] = [message]
                connect(to: target.address)
            }
        }
    }

    private func write(_ bytes: [UInt8], on channel: any Channel) {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        counters.sent += 1
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func connect(to address: SocketAddress) {
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .channelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let self else { return }
                    try channel.pipeline.syncOperations.addHandler(SIPStreamHandler(endpoint: self, peer: address))
                }
            }
            .connect(to: address)
            .hop(to: eventLoop)
            .whenComplete { [weak self] result in
                guard let self else { return }
                let waiting = self.connecting.removeValue(forKey: address) ?? []
                switch result {
                case .success(let channel):
                    guard !self.stopped else { channel.close(promise: nil); return }
                    self.adopt(channel, peer: address)
                    for message in waiting { self.write(message.serialized(), on: channel) }
                case .failure:
                    self.counters.sendFailures += waiting.count
                    self.perform(self.core.transportFailed(SIPTarget(.tcp, address)))
                }
            }
    }

    private func adopt(_ channel: any Channel, peer: SocketAddress) {
        if connections.count >= maximumConnections, let (oldest, victim) = connections.first {
            connections[oldest] = nil
            victim.close(promise: nil)
        }
        connections[peer] = channel
    }

    // MARK: What arrives (on the loop)

    fileprivate func received(_ bytes: [UInt8], from target: SIPTarget) {
        // The sockets are bound before the user agent is made (its contact needs the bound port): whatever
        // arrives in between is dropped, as if lost, rather than given to a user agent that is not there.
        guard !stopped, core != nil else { return }
        counters.received += 1
        do {
            let message = try SIPMessage(parsing: bytes)
            perform(core.received(message, from: target))
        } catch {
            counters.malformed += 1
            perform(core.malformed(bytes, error: error, from: target))
        }
    }

    fileprivate func streamOpened(_ channel: any Channel, peer: SocketAddress) {
        guard !stopped else { channel.close(promise: nil); return }
        adopt(channel, peer: peer)
    }

    fileprivate func streamClosed(_ channel: any Channel, peer: SocketAddress, failed: Bool) {
        if let known = connections[peer], known === channel { connections[peer] = nil }
        if failed, core != nil { perform(core.transportFailed(SIPTarget(.tcp, peer))) }
    }

    fileprivate func streamUnframeable(_ error: SIPParseError, peer: SocketAddress) {
        counters.malformed += 1
        onEvent(.refused("closed the TCP connection from \(peer): \(error)"))
    }

    // MARK: Binding

    private func bindStream(host: String, port: Int) async throws -> any Channel {
        try await ServerBootstrap(group: eventLoop)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let self, let peer = channel.remoteAddress else { return }
                    try channel.pipeline.syncOperations.addHandler(SIPStreamHandler(endpoint: self, peer: peer))
                }
            }
            .bind(host: host, port: port).get()
    }

    private func bindDatagram(host: String, port: Int) async throws -> any Channel {
        try await DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            // A datagram longer than a SIP message may be is seen as such rather than cut.
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { [weak self] channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let self else { return }
                    try channel.pipeline.syncOperations.addHandler(SIPDatagramHandler(endpoint: self))
                }
            }
            .bind(host: host, port: port).get()
    }
}

/// One datagram, one message.
private final class SIPDatagramHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let endpoint: SIPEndpoint

    init(endpoint: SIPEndpoint) { self.endpoint = endpoint }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = Self.unwrapInboundIn(data)
        endpoint.received(Array(envelope.data.readableBytesView), from: SIPTarget(.udp, envelope.remoteAddress))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors of earlier datagrams concern one peer, not the socket.
    }
}

/// A TCP connection, ours or a peer's: cut into messages by `SIPStreamFramer`; closed when it cannot be.
private final class SIPStreamHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let endpoint: SIPEndpoint
    private let peer: SocketAddress
    private var framer = SIPStreamFramer()
    private var failed = false
    /// Closes the connection when a message begun stays incomplete (`incompleteMessageTimeout`).
    private var stall: Scheduled<Void>?

    init(endpoint: SIPEndpoint, peer: SocketAddress) {
        self.endpoint = endpoint
        self.peer = peer
    }

    func channelActive(context: ChannelHandlerContext) {
        endpoint.streamOpened(context.channel, peer: peer)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        framer.append(buffer.readableBytesView)
        let pings = framer.pingsSeen
        do {
            while let message = try framer.next() {
                endpoint.received(message, from: SIPTarget(.tcp, peer))
            }
        } catch {
            endpoint.streamUnframeable(error, peer: peer)
            failed = true
            context.close(promise: nil)
            return
        }
        if framer.partialBytes == 0 {
            stall?.cancel()
            stall = nil
        } else if stall == nil {
            let channel = context.channel
            let endpoint = endpoint
            let peer = peer
            stall = context.eventLoop.scheduleTask(in: TimeAmount(endpoint.incompleteMessageTimeout)) {
                endpoint.streamUnframeable(SIPParseError.incompleteMessage, peer: peer)
                channel.close(promise: nil)
            }
        }
        if framer.pingsSeen > pings {
            // RFC 5626 §3.5.1: a double-CRLF ping is answered with a single-CRLF pong.
            var pong = context.channel.allocator.buffer(capacity: 2)
            pong.writeBytes([0x0D, 0x0A])
            context.writeAndFlush(NIOAny(pong), promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failed = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stall?.cancel()
        endpoint.streamClosed(context.channel, peer: peer, failed: failed)
        context.fireChannelInactive()
    }
}

/// `SIPEndpoint.localAddress(towards:)`, outside the class, whose `connect(to:)` would shadow the system call.
private func localSendingAddress(towards address: SocketAddress) -> String? {
    let family = address.protocol == .inet6 ? AF_INET6 : AF_INET
    let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    let connected = address.withSockAddr { pointer, length in connect(fd, pointer, socklen_t(length)) }
    guard connected == 0 else { return nil }
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let named = withUnsafeMutablePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { return nil }
    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    let written: UnsafePointer<CChar>? = withUnsafePointer(to: &storage) { pointer in
        if family == AF_INET6 {
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                withUnsafePointer(to: address.pointee.sin6_addr) { inet_ntop(AF_INET6, $0, &text, socklen_t(text.count)) }
            }
        } else {
            pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                withUnsafePointer(to: address.pointee.sin_addr) { inet_ntop(AF_INET, $0, &text, socklen_t(text.count)) }
            }
        }
    }
    guard written != nil else { return nil }
    return String(cString: text)
}
