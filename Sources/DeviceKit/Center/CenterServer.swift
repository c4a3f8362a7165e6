#if canImport(Glibc)
import Glibc
#endif
import Logging
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Synchronization

/// The reference dispatch centre as a service: `run()` opens the journal, binds TCP, UDP and (optionally)
/// the metrics endpoint, and serves until cancelled or shut down gracefully.
///
/// ```swift
/// let centre = CenterServer(configuration: .init(tcpPort: 0, udpPort: 0, journalPath: path), registry: keys, logger: logger)
/// let events = centre.events()
/// let task = Task { try await centre.run() }
/// let ports = try await centre.listening()   // the ports the system chose
/// ...
/// task.cancel()                              // or graceful shutdown through a ServiceGroup
/// ```
/// One instance runs once; to restart on the same journal, make a new one with the same configuration.
///
/// With `CenterConfiguration.reusePort`, several instances (in one process or in several) listen on the same
/// port and share one journal; each serves the devices the kernel hands it, and its cases, console, events
/// and metrics cover those alone. Open the journal once before starting them together (its schema is created
/// by the first opener).
public final class CenterServer: Service, Sendable {
    public let configuration: CenterConfiguration
    private let registry: DeviceRegistry
    private let logger: Logger
    private let metrics: CenterMetrics
    private let exposition: MetricsExposition
    private let group: any EventLoopGroup
    private let hub: CenterEventHub
    private let state = Mutex(State())

    private struct State: ~Copyable {
        var ports: CenterPorts?
        var failure: (any Error)?
        var ended = false
        var waiters: [CheckedContinuation<CenterPorts, any Error>] = []
        var runtime: NIOLoopBound<CenterRuntime>?
        var journal: (journal: CenterJournal, pool: NIOThreadPool)?
    }

    private let attachments: [any CenterAttachment]
    /// Whether the journal takes writes: `/ready` on the metrics port answers 503 while it does not.
    public let journalHealth = JournalHealth()

    /// - Parameters:
    ///   - metrics: the swift-metrics factory the centre records with, whose registry the metrics endpoint
    ///     and `metricsText()` serve. By default one over a registry of the centre's own; `devicesim center`
    ///     passes the factory it bootstrapped `MetricsSystem` with. The centre sets its timers' buckets.
    ///   - eventLoopGroup: the centre runs on one loop of it.
    public init(
        configuration: CenterConfiguration, registry: DeviceRegistry, logger: Logger,
        metrics: PrometheusMetricsFactory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry()),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        attachments: [any CenterAttachment] = []
    ) {
        self.attachments = attachments
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
        var factory = metrics
        factory.durationHistogramBuckets.merge(CenterMetrics.timerBuckets) { _, centre in centre }
        let centreMetrics = CenterMetrics(factory: factory)
        self.metrics = centreMetrics
        self.exposition = MetricsExposition(registry: metrics.registry, help: centreMetrics.help)
        self.group = eventLoopGroup
        self.hub = CenterEventHub(limit: configuration.eventBufferLimit) { centreMetrics.eventsDropped.increment(by: Int64($0)) }
    }

    /// Everything the centre observes from now on, until it stops. Each call makes a new, independent stream.
    public func events() -> AsyncStream<CenterEvent> { hub.stream() }

    /// The same events, each with the wall-clock time it happened (the `--json` stream's `"at"`).
    public func timedEvents() -> AsyncStream<TimedCenterEvent> { hub.timedStream() }

    /// The bound ports, once the centre listens; throws if it failed to start or already stopped.
    public func listening() async throws -> CenterPorts {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<CenterPorts, any Error>? = state.withLock { state in
                if let ports = state.ports { return .success(ports) }
                if let failure = state.failure { return .failure(failure) }
                if state.ended { return .failure(CenterStopped()) }
                state.waiters.append(continuation)
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// The metrics in the Prometheus text format, as the endpoint serves them.
    public func metricsText() -> String { String(decoding: exposition.render(), as: UTF8.self) }

    // MARK: Operator

    /// Cases not closed, oldest first.
    public func openCases() async throws -> [CasePolicy.Case] {
        try await onRuntime { $0.openCases }
    }

    /// Cases not closed, oldest first, with their devices' online state and calls (the console's `list`); with
    /// other nodes on the journal, theirs too (their devices shown offline here, without calls).
    public func caseOverviews() async throws -> [CaseOverview] {
        let own = try await onRuntime { $0.caseOverviews }
        guard configuration.followsOtherNodes else { return own }
        let mine = Set(own.map(\.case.id))
        let others = try await withJournal { try $0.openCases() }.filter { !mine.contains($0.id) }
        return (own + others.map { CaseOverview(case: $0, deviceOnline: false, call: .none) }).sorted { $0.case.id < $1.case.id }
    }

    /// The node that works open case `id` when another node does; `nil` when this one does, or it is not open.
    public func otherNode(working id: Int64) async throws -> String? {
        guard configuration.followsOtherNodes else { return nil }
        let node = configuration.node
        return try await withJournal { journal in try journal.openCaseOwner(id).flatMap { $0 == node ? nil : $0 } }
    }

    /// An operator takes case `id`; false if there is no such open case or it is already taken.
    @discardableResult
    public func engage(case id: Int64) async throws -> Bool {
        try await onRuntime { $0.engage(id) }
    }

    /// The operator of case `id` sent help; false if there is no such case taken by an operator.
    @discardableResult
    public func dispatch(case id: Int64) async throws -> Bool {
        try await onRuntime { $0.dispatch(id) }
    }

    /// Open case `id` as it is now, or `nil` if it is not open.
    public func openCase(_ id: Int64) async throws -> CasePolicy.Case? {
        try await onRuntime { $0.cases.openCase(id) }
    }

    /// What the centre knows of each of `devices` now.
    public func deviceSnapshots(_ devices: [UInt32]) async throws -> [DeviceSnapshot] {
        try await onRuntime { runtime in devices.map { runtime.snapshot($0) } }
    }

    /// Devices online now, and devices supervised since the centre started.
    public func deviceCounts() async throws -> (online: Int, supervised: Int) {
        try await onRuntime { ($0.supervision.onlineCount, $0.supervision.supervisedCount) }
    }

    /// Every device this centre has supervised since it started, and what it knows of each.
    public func deviceSnapshots() async throws -> [DeviceSnapshot] {
        try await onRuntime { $0.snapshots }
    }

    /// Counts a login to the operators' web console: `accepted`, `refused` or `limited`.
    public func countConsoleLogin(_ outcome: String) { metrics.consoleLogins[outcome]?.increment() }

    /// Counts an operator's action on a case through the web console (`take`, `call`, `hangup`, `dispatch`, `close`).
    public func countConsoleAction(_ action: String) { metrics.consoleActions[action]?.increment() }

    /// How many web consoles receive the live queue now.
    public func setConsoleStreams(_ count: Int) { metrics.consoleStreams.set(Int64(count)) }

    /// Runs `body` with the centre's journal on its thread pool (the journal blocks), while the centre runs:
    /// for the parts that read and write beside the devices' path (the operators' console).
    public func withJournal<T: Sendable>(_ body: @escaping @Sendable (CenterJournal) throws -> T) async throws -> T {
        guard let (journal, pool) = state.withLock({ $0.journal }) else { throw CenterStopped() }
        return try await pool.runIfActive { try body(journal) }
    }

    /// An operator closes case `id`; false if there is no such open case.
    @discardableResult
    public func close(case id: Int64) async throws -> Bool {
        try await onRuntime { $0.close(id) }
    }

    /// Offers a call to `device` about its open case's alarm, if it has one (else alarm 0, which a device
    /// declines unless an alarm is open), replacing a call in progress: to re-establish a dropped call.
    /// Returns the call id, or `nil` for an unknown device.
    @discardableResult
    public func call(device: UInt32) async throws -> UInt32? {
        try await onRuntime { runtime in
            let alarmID = runtime.openCases.last { $0.device == device }?.alarmID ?? 0
            return runtime.offerCall(device: device, alarmID: alarmID)
        }
    }

    /// Calls the home of open case `id` (console `call N`); `nil` if there is no such open case. With operator
    /// phones (`--operator`), a phone is rung first, unless one is on the line already: then 0 (no home call
    /// yet; the bridge places it once the operator answers).
    @discardableResult
    public func call(case id: Int64) async throws -> UInt32? {
        try await onRuntime { runtime in
            guard let open = runtime.openCases.first(where: { $0.id == id }) else { return nil }
            if let bridge = runtime.bridge { return bridge.connect(open) ?? 0 }
            return runtime.offerCall(device: open.device, alarmID: open.alarmID)
        }
    }

    /// Ends `device`'s call (`callEnd` hangUp), and its operator's phone call; false if it has neither.
    @discardableResult
    public func hangUp(device: UInt32) async throws -> Bool {
        try await onRuntime { runtime in
            let home = runtime.endCall(device: device)
            let phone = runtime.bridge?.hangUp(device: device) ?? false
            return home || phone
        }
    }

    /// The media numbers of `device`'s call in progress, for the console and the load tool.
    public func callStatistics(device: UInt32) async throws -> MediaStatistics? {
        try await onRuntime { $0.callStatistics(device: device) }
    }

    /// How many devices' session machines the centre holds (a machine that holds nothing is not kept).
    func sessionMachinesHeld() async throws -> Int {
        try await onRuntime { $0.sessions.count }
    }

    private func onRuntime<T: Sendable>(_ body: @escaping @Sendable (CenterRuntime) -> T) async throws -> T {
        guard let runtime = state.withLock({ $0.runtime }) else { throw CenterStopped() }
        return try await runtime.eventLoop.submit { body(runtime.value) }.get()
    }

    // MARK: Service

    public func run() async throws {
        do {
            try await serve()
        } catch {
            let waiters = state.withLock { state in
                state.failure = error
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume(throwing: error) }
            hub.finish()
            throw error
        }
    }

    private func serve() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { pool.shutdownGracefully { _ in } }
        let location = configuration.journal
        // A configuration made in code, not by `devicesim center`'s checked options: refused, not trapped on.
        guard configuration.forward.count <= 2 else { throw DC09ForwardURLError(reason: .tooMany) }
        let forwards = !configuration.forward.isEmpty
        let (node, lease) = (configuration.node, configuration.caseLease)
        let (journal, restored) = try await pool.runIfActive {
            let journal = try CenterJournal(location, forwardsDC09: forwards, node: node)
            // This node's cases left by its previous run, those of no node, and those of nodes whose lease lapsed.
            let renewal = try journal.renewLease(for: lease, reclaimingOwn: true)
            let restored = CenterRuntime.Restored(
                anchors: try journal.storedAnchors(), openCases: renewal.claimed, undelivered: renewal.undelivered,
                supervised: renewal.supervised)
            return (journal, restored)
        }
        let loop = group.next()
        let (configuration, registry, metrics, exposition, hub, logger, journalHealth) = (
            self.configuration, self.registry, self.metrics, self.exposition, self.hub, self.logger, self.journalHealth
        )
        let runtime = try await loop.submit {
            NIOLoopBound(
                CenterRuntime(
                    loop: loop, configuration: configuration, registry: registry, journal: journal, pool: pool,
                    metrics: metrics, hub: hub, logger: logger, restored: restored, journalHealth: journalHealth),
                eventLoop: loop)
        }.get()

        var channels: [any Channel] = []
        var dc09: (receiver: NIOLoopBound<DC09Receiver>, channels: [any Channel])?
        do {
            let (stream, datagram) = try await bindDevicePorts(on: loop, runtime: runtime)
            channels += [stream, datagram]
            await enlargeBuffers(of: datagram)
            if let port = configuration.dc09 {
                let receiver = try await loop.submit {
                    NIOLoopBound(DC09Receiver(runtime: runtime.value, configuration: port), eventLoop: loop)
                }.get()
                let (host, writeLimit) = (configuration.host, configuration.connectionWriteBufferLimit)
                let pair = try await bindPair(tcpPort: port.port, udpPort: port.port, listeners: (.dc09TCP, .dc09UDP)) { port in
                    try await DC09Receiver.bindStream(host: host, port: port, on: loop, receiver: receiver, writeLimit: writeLimit)
                } datagram: { port in
                    try await DC09Receiver.bindDatagram(host: host, port: port, on: loop, receiver: receiver)
                }
                dc09 = (receiver, [pair.0, pair.1])
            }
            if let metricsPort = configuration.metricsPort {
                do {
                    channels.append(
                        try await MetricsHTTPServer.bind(
                            host: configuration.metricsHost, port: metricsPort, on: loop,
                            limits: .init(requestTimeout: configuration.metricsRequestTimeout, connections: configuration.metricsConnectionLimit),
                            refused: { metrics.metricsRequestsRefused.increment() },
                            ready: { [journalHealth] in journalHealth.failure.map { "the journal cannot be written: \($0)" } }
                        ) {
                            exposition.render()
                        })
                } catch {
                    throw CenterBindError(listener: .metrics, host: configuration.metricsHost, port: metricsPort, error)
                }
            }
            try await loop.submit {
                runtime.value.start()
                if forwards {
                    let forwarder = DC09Forwarder(
                        loop: loop, journal: journal, pool: pool, targets: configuration.forward,
                        parameters: configuration.forwardParameters, metrics: metrics, logger: logger, node: configuration.node)
                    runtime.value.forwarder = forwarder
                    runtime.value.messageRecorded = { forwarder.rowsQueued() }
                    forwarder.start()
                }
            }.get()
        } catch {
            for channel in channels + (dc09?.channels ?? []) { try? await channel.close() }
            try? await loop.submit { runtime.value.stop() }.get()
            try? await pool.runIfActive(eventLoop: loop) { try journal.close() }.get()
            throw error
        }

        var sipPort: Int?
        if let operators = configuration.operators {
            do {
                sipPort = try await startOperatorBridge(operators, runtime: runtime, on: loop)
            } catch {
                for channel in channels + (dc09?.channels ?? []) { try? await channel.close() }
                try? await loop.submit { runtime.value.stop() }.get()
                try? await pool.runIfActive(eventLoop: loop) { try journal.close() }.get()
                throw CenterBindError(listener: .sip, host: operators.endpoint.host, port: operators.endpoint.port, error)
            }
        }
        // Attachments (the web console) use the runtime and the journal from their start on.
        state.withLock { state in
            state.runtime = runtime
            state.journal = (journal, pool)
        }
        var webPort: Int?
        var started: [any CenterAttachment] = []
        do {
            for attachment in attachments {
                webPort = try await attachment.start(self)
                started.append(attachment)
            }
        } catch {
            for attachment in started { await attachment.stop() }
            for channel in channels + (dc09?.channels ?? []) { try? await channel.close() }
            try? await loop.submit { runtime.value.stop() }.get()
            try? await pool.runIfActive(eventLoop: loop) { try journal.close() }.get()
            state.withLock { state in
                state.runtime = nil
                state.journal = nil
            }
            throw error
        }
        let ports = CenterPorts(
            tcp: channels[0].localAddress?.port ?? 0, udp: channels[1].localAddress?.port ?? 0,
            metrics: channels.count > 2 ? channels[2].localAddress?.port : nil, dc09: dc09?.channels[0].localAddress?.port,
            sip: sipPort, web: webPort)
        let waiters = state.withLock { state in
            state.ports = ports
            state.runtime = runtime
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: ports) }
        hub.emit(.listening(ports))
        logger.debug("centre listening", metadata: ["tcp": "\(ports.tcp)", "udp": "\(ports.udp)"])

        // Serve until graceful shutdown or cancellation; either way, stop the same way.
        try? await gracefulShutdown()

        for attachment in started.reversed() { await attachment.stop() }
        for channel in channels + (dc09?.channels ?? []) { try? await channel.close() }
        try? await loop.submit {
            runtime.value.stop()
            dc09?.receiver.value.stop()
        }.get()
        // Journal writes already queued finish before the file is closed.
        // The future form, not the async one: this task is usually cancelled by now, and the file must close.
        do {
            try await pool.runIfActive(eventLoop: loop) { try journal.close() }.get()
        } catch {
            logger.debug("journal did not close cleanly", metadata: ["reason": "\(error)"])
        }
        state.withLock { state in
            state.ended = true
            state.ports = nil
            state.runtime = nil
            state.journal = nil
        }
        hub.finish()
        logger.debug("centre stopped")
    }

    /// Binds TCP and UDP for devices. With port 0 for both, the system picks a free TCP port and UDP takes the
    /// same one (one port for both, as devices expect); should UDP find it taken, both try again.
    private func bindDevicePorts(on loop: any EventLoop, runtime: NIOLoopBound<CenterRuntime>) async throws -> (any Channel, any Channel) {
        try await bindPair(tcpPort: configuration.tcpPort, udpPort: configuration.udpPort, listeners: (.tcp, .udp)) { port in
            try await self.bindStream(on: loop, runtime: runtime, port: port)
        } datagram: { port in
            try await self.bindDatagram(on: loop, runtime: runtime, port: port)
        }
    }

    /// Starts the SIP user agent of the operators' phones and the bridge that uses it; returns its port.
    private func startOperatorBridge(_ operators: OperatorPhones, runtime: NIOLoopBound<CenterRuntime>, on loop: any EventLoop) async throws -> Int {
        let bridge = try await loop.submit {
            let bridge = OperatorBridge(runtime: runtime.value, phones: operators)
            runtime.value.bridge = bridge
            return NIOLoopBound(bridge, eventLoop: loop)
        }.get()
        let userAgent = SIPUserAgent.Configuration(
            identity: operators.identity, contactHost: operators.endpoint.advertisedHost ?? operators.endpoint.host, contactPort: 0,
            credentials: operators.credentials, registrar: operators.registrar?.uri, registrarTarget: operators.registrar?.target,
            outboundProxy: operators.registrar?.target, userAgent: "devicesim-centre/\(BuildStamp.version)")
        var options = SIPPhone.Options(srtp: operators.srtp, cname: "centre@\(operators.endpoint.advertisedHost ?? operators.endpoint.host)")
        options.media.relay = true
        options.media.silenceTimeout = configuration.media.silenceTimeout
        let phone = try await SIPPhone.start(operators.endpoint, userAgent: userAgent, options: options, on: loop) { event in
            bridge.value.phoneEvent(event)
        }
        return try await loop.submit {
            bridge.value.attach(phone)
            return phone.endpoint.port
        }.get()
    }

    /// Binds a TCP and a UDP socket: with port 0 for both, the system picks a free TCP port and UDP takes the
    /// same one; should UDP find it taken, both try again.
    private func bindPair(
        tcpPort: Int, udpPort: Int, listeners: (CenterBindError.Listener, CenterBindError.Listener),
        stream bindStream: (Int) async throws -> any Channel, datagram bindDatagram: (Int) async throws -> any Channel
    ) async throws -> (any Channel, any Channel) {
        let host = configuration.host
        let samePort = tcpPort == 0 && udpPort == 0
        var attempt = 0
        while true {
            attempt += 1
            let stream: any Channel
            do { stream = try await bindStream(tcpPort) } catch {
                throw CenterBindError(listener: listeners.0, host: host, port: tcpPort, error)
            }
            let udpPort = samePort ? (stream.localAddress?.port ?? 0) : udpPort
            do {
                return (stream, try await bindDatagram(udpPort))
            } catch {
                try? await stream.close()
                let taken = (error as? IOError)?.errnoCode == EADDRINUSE
                if samePort && taken && attempt < 32 { continue }
                throw CenterBindError(listener: listeners.1, host: host, port: udpPort, error)
            }
        }
    }

    private func bindStream(on loop: any EventLoop, runtime: NIOLoopBound<CenterRuntime>, port: Int) async throws -> any Channel {
        let timeout = TimeAmount(configuration.authenticationTimeout)
        let offences = configuration.offencesBeforeClose
        let writeLimit = configuration.connectionWriteBufferLimit
        let stall = configuration.connectionStallTimeout ?? configuration.offlineAfter
        return try await ServerBootstrap(group: loop)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let centre = runtime.value
                    try channel.pipeline.syncOperations.addHandlers(CenterAcceptGuard.handlers { centre.descriptorsExhausted() })
                }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(Self.reusePortOption, value: configuration.reusePort ? 1 : 0)
            // A ramp or a town's devices returning connect thousands a second: NIO's default of 128 pending
            // connections overflows and the kernel drops SYNs, which devices see as timeouts and retry,
            // adding load. The kernel caps it at net.core.somaxconn.
            .serverChannelOption(.backlog, value: 4096)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            // Answers to a peer that does not read fill the socket's send buffer (fixed: the kernel would grow
            // it up to tcp_wmem's maximum, 4 MiB, for each connection), then queue in NIO; the runtime closes
            // the connection once they pass the high mark (`Channel.isWritable`).
            .childChannelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(clamping: writeLimit))
            .childChannelOption(.writeBufferWaterMark, value: .init(low: writeLimit / 2, high: writeLimit))
            .childChannelOption(Self.userTimeoutOption, value: SocketOptionValue(clamping: max(1, Int((stall / .milliseconds(1)).rounded(.up)))))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        ByteToMessageHandler(FrameDecoder()),
                        CenterStreamHandler(runtime: runtime.value, authenticationTimeout: timeout, offencesBeforeClose: offences))
                }
            }
            .bind(host: configuration.host, port: port).get()
    }

    private func bindDatagram(on loop: any EventLoop, runtime: NIOLoopBound<CenterRuntime>, port: Int) async throws -> any Channel {
        // Room for each datagram a little over the largest frame, so an oversized one is seen as such; the
        // buffer is shared by the datagrams of one recvmmsg call, in equal slots.
        let slot = Wire.maximumFrameLength + 512
        let vector = configuration.udpMessagesPerRead
        let buffer = configuration.udpBufferSize
        let interval = configuration.udpReadInterval
        let startsWaiting = configuration.udpSessionStartsWaiting
        // The socket is ours, so that the frames' path reads and writes it in batches without NIO's
        // per-datagram envelopes (BatchedDatagramSocket); NIO's channel owns and closes it.
        let descriptor = try BatchedDatagramSocket.bound(host: configuration.host, port: port, reusePort: configuration.reusePort)
        return try await DatagramBootstrap(group: loop)
            // A ramp or an alarm storm arrives faster than the loop reads for a while: the kernel holds it.
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(clamping: buffer))
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(clamping: buffer))
            .channelOption(.datagramVectorReadMessageCount, value: vector)
            .channelOption(.maxMessagesPerRead, value: UInt(Self.datagramReadsPerTurn))
            // Reads are asked for by the handler, coalesced over `udpReadInterval`.
            .channelOption(.autoRead, value: configuration.udpReadInterval == .zero)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slot * vector))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Answers waiting for room in a full send buffer are dropped past the buffer's size again
                    // (UDP may lose them anyway).
                    let socket = BatchedDatagramSocket(descriptor: descriptor, slot: slot, batch: vector, queueLimit: buffer)
                    runtime.value.datagramSocket = socket
                    try channel.pipeline.syncOperations.addHandler(CenterDatagrams.reader(
                        runtime: runtime.value, socket: socket, readInterval: interval, readsPerTurn: Self.datagramDrainReads,
                        startsWaiting: startsWaiting))
                }
            }
            .withBoundSocket(descriptor).get()
    }
}

extension CenterServer {
    /// recvmmsg calls per turn of the loop on the UDP socket, when NIO reads it (on a wake-up).
    fileprivate static let datagramReadsPerTurn = 4
    /// recvmmsg calls per drain of the UDP socket at most, when the reader drains it itself: up to 512
    /// datagrams. Reading is cheap next to working on a session start, so a drain that has put-off starts
    /// to work on after it reads the socket empty first: alarms wait in neither the kernel's buffer nor its drops.
    fileprivate static let datagramDrainReads = 16

    /// SO_REUSEPORT, which NIO does not name: set before bind on every socket that shares the port.
    fileprivate static var reusePortOption: ChannelOptions.Types.SocketOption {
        ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_REUSEPORT))
    }

    /// TCP_USER_TIMEOUT, in milliseconds.
    fileprivate static var userTimeoutOption: ChannelOptions.Types.SocketOption {
        ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_USER_TIMEOUT))
    }

    /// SO_RCVBUF and SO_SNDBUF are capped by net.core.rmem_max/wmem_max; a centre with CAP_NET_ADMIN may go
    /// past that with the FORCE variants. Without the capability the capped size stays, which is no error.
    fileprivate func enlargeBuffers(of channel: any Channel) async {
        #if os(Linux)
        let size = SocketOptionValue(clamping: configuration.udpBufferSize)
        for name in [SO_RCVBUFFORCE, SO_SNDBUFFORCE] {
            let option = ChannelOptions.Types.SocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(name))
            _ = try? await channel.setOption(option, value: size).get()
        }
        #endif
        let received = try? await channel.getOption(.socketOption(.so_rcvbuf)).get()
        logger.debug("UDP receive buffer", metadata: ["bytes": "\(received.map(String.init) ?? "unknown")"])
    }
}

/// The centre is not running (it stopped, or never started).
/// A part of the centre served beside its device ports (the operators' web console): started once the
/// centre's runtime and journal are up, before the centre says it listens, and stopped before they close.
public protocol CenterAttachment: Sendable {
    /// Binds and starts serving; returns the port it listens on.
    func start(_ centre: CenterServer) async throws -> Int
    /// Stops serving; returns once its requests ended.
    func stop() async
}

public struct CenterStopped: Error, CustomStringConvertible {
    public var description: String { "the centre is not running" }
}

/// A port the centre could not listen on, said in words: which listener, which port, and why (in use by
/// another program, privileged, an address not of this machine, a host name that does not resolve).
public struct CenterBindError: Error, CustomStringConvertible {
    public enum Listener: String, Sendable {
        case tcp = "TCP"
        case udp = "UDP"
        case metrics = "metrics, TCP"
        case dc09TCP = "DC-09, TCP"
        case dc09UDP = "DC-09, UDP"
        case sip = "SIP, UDP and TCP"
    }

    public var listener: Listener
    public var host: String
    public var port: Int
    /// The system's error number, when the bind itself failed.
    public var errno: Int32?
    /// Whether `host` did not resolve.
    public var isUnknownHost: Bool
    private var detail: String

    public init(listener: Listener, host: String, port: Int, _ error: any Error) {
        self.listener = listener
        self.host = host
        self.port = port
        self.errno = (error as? IOError)?.errnoCode
        self.isUnknownHost = error is SocketAddressError.UnknownHost
        self.detail = "\(error)"
    }

    public var isPermission: Bool { errno == EACCES || errno == EPERM }

    public var description: String {
        if isUnknownHost {
            return "cannot listen on host '\(host)' (\(listener.rawValue)): no such host name (not in DNS or /etc/hosts); give an address of this machine, e.g. 0.0.0.0 (every address) or 127.0.0.1"
        }
        switch errno {
        case EADDRINUSE?:
            let ss = listener == .udp || listener == .dc09UDP ? "ss -lunp 'sport = :\(port)'" : "ss -ltnp 'sport = :\(port)'"
            return "port \(port) (\(listener.rawValue)) is already in use by another program (\(ss) shows which): stop it or choose another port"
        case EACCES?, EPERM?:
            return port < 1024
                ? "port \(port) (\(listener.rawValue)) is privileged: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 up"
                : "port \(port) (\(listener.rawValue)) may not be bound by this user: permission denied"
        case EADDRNOTAVAIL?:
            return "cannot listen on \(host) (\(listener.rawValue)): it is not an address of this machine; give one of its addresses, or 0.0.0.0 for all"
        default:
            return "cannot listen on \(host) port \(port) (\(listener.rawValue)): \(detail)"
        }
    }
}
