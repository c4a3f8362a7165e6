import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix

/// Runs `DC09ForwardMachine` for the centre (`--forward`): reads the journal's queue on the journal's thread
/// pool, deletes acknowledged rows through a `JournalBatcher` (group commit), holds one TCP connection (its
/// answers cut by `DC09FrameSplitter`) or one connected UDP socket to the receiver in use, and runs the
/// machine's timers on the loop. It logs a receiver going down and coming back (once per outage, at warning
/// and notice) and counts per receiver.
///
/// Several processes share a journal (`--workers`, or centre nodes on PostgreSQL): each queues the events it
/// records, but only the holder of the journal's lease `dc09-forwarder` sends. Every process tries to take or
/// renew it every `leaseRenewal` (1 s) for `leaseDuration` (5 s, on the journal's clock), so another takes over
/// within 5 s of its holder's end (at once after a clean stop, which gives it up). A holder that cannot renew
/// for `leaseDuration` × 0.6, or finds it taken, stops sending before its lease can lapse: never two senders.
/// Rows read back after a gap in their ids (another node's transaction committed later) are sent too.
///
/// Bound to `loop`: every method runs there (asserted).
final class DC09Forwarder {
    private let loop: any EventLoop
    private let journal: CenterJournal
    private let pool: NIOThreadPool
    private let batcher: JournalBatcher
    private let metrics: DC09ForwardMetrics
    private let logger: Logger
    private var machine: DC09ForwardMachine
    private let pollInterval: Duration
    /// This process as the lease's holder: the centre's node and a number of this run's own (two processes
    /// given the same `--node` by mistake still never both send).
    private let node: String
    private var holding = false
    /// Counts the times the lease was taken: what a read begun under an earlier holding returns is dropped.
    private var term = 0
    private static let epoch = ContinuousClock.now
    private var renewing = false
    private var lastRenewed: ContinuousClock.Instant?
    private var leaseTask: RepeatedTask?
    private var toldOtherHolds = false
    private var cursor = FollowCursor(last: 0)
    static let leaseName = "dc09-forwarder"
    static let leaseDuration = Duration.seconds(5)
    static let leaseRenewal = TimeAmount.seconds(1)
    /// Open links by id: a connection that completes after the machine moved on is closed by its id, never
    /// mistaken for the current one.
    private var channels: [UInt64: (channel: any Channel, datagram: Bool)] = [:]
    private var timers: [DC09ForwardMachine.Timer: Scheduled<Void>] = [:]
    private var repeated: RepeatedTask?
    private var depth = 0
    private var stopped = false

    init(
        loop: any EventLoop, journal: CenterJournal, pool: NIOThreadPool, targets: [DC09ForwardTarget],
        parameters: DC09ForwardMachine.Parameters, pollInterval: Duration = .milliseconds(500), metrics: CenterMetrics, logger: Logger,
        node: String = CenterConfiguration.hostName
    ) {
        self.node = node + "#" + String(UInt32.random(in: .min ... .max), radix: 16)
        self.loop = loop
        self.journal = journal
        self.pool = pool
        self.batcher = JournalBatcher(loop: loop, journal: journal, pool: pool, metrics: metrics, batchLimit: 512)
        self.metrics = metrics.dc09Forward
        self.logger = logger
        self.pollInterval = pollInterval
        machine = DC09ForwardMachine(receivers: targets, parameters: parameters, seed: UInt64.random(in: .min ... .max))
    }

    func start() {
        loop.preconditionInEventLoop()
        let bound = NIOLoopBound(self, eventLoop: loop)
        leaseTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.leaseRenewal) { _ in bound.value.tendLease() }
    }

    /// Takes or renews the forwarder's lease on the journal's thread; sends while it holds it.
    private func tendLease() {
        guard !stopped else { return }
        // A renewal that hangs (behind a long batch on the journal's thread, or a server slow to answer) must not
        // let this process send past its lease: it stops before the lease can lapse, whether or not one is in flight.
        if holding, let last = lastRenewed, ContinuousClock.now - last > Self.leaseDuration * 0.6 {
            lose("the lease was not renewed in time")
        }
        guard !renewing else { return }
        renewing = true
        let (journal, node) = (self.journal, self.node)
        // The lease runs from the journal's clock at the renewal, which is after this instant: counted from here,
        // this process never thinks it holds the lease longer than it does.
        let asked = ContinuousClock.now
        pool.runIfActive(eventLoop: loop) {
            try journal.holdLease(Self.leaseName, holder: node, for: Self.leaseDuration)
        }.assumeIsolated().whenComplete { result in
            self.renewing = false
            guard !self.stopped else { return }
            switch result {
            case .success(true):
                self.lastRenewed = asked
                if !self.holding { self.begin() }
            case .success(false):
                if self.holding {
                    self.lose("another centre process holds the lease now")
                } else if !self.toldOtherHolds {
                    self.toldOtherHolds = true
                    self.logger.notice("another centre process sharing the journal forwards to the DC-09 receivers; this one takes over if it ends")
                }
            case .failure(let error):
                if self.holding, let last = self.lastRenewed, ContinuousClock.now - last > Self.leaseDuration * 0.6 {
                    self.lose("the lease could not be renewed: \(error)")
                }
            }
        }
    }

    /// The lease is held: starts sending.
    private func begin() {
        holding = true
        term += 1
        toldOtherHolds = false
        metrics.sending.set(Int64(1))
        for index in machine.receivers.indices { metrics.up(index)?.set(Int64(1)) }
        for target in machine.receivers {
            logger.notice("forwarding case events over DC-09", metadata: ["receiver": "\(target.description)"])
        }
        run(machine.start())
        let bound = NIOLoopBound(self, eventLoop: loop)
        let poll = TimeAmount(pollInterval)
        repeated = loop.scheduleRepeatedTask(initialDelay: poll, delay: poll) { _ in
            bound.value.rowsQueued()
            bound.value.countQueue()
        }
    }

    /// The lease is lost (or about to lapse): stops sending at once, so that the next holder is the only sender;
    /// what was in flight stays queued and is sent again, as after a restart.
    private func lose(_ reason: String) {
        logger.warning("stopped forwarding to the DC-09 receivers: another centre process takes over", metadata: ["reason": "\(reason)"])
        holding = false
        metrics.sending.set(Int64(0))
        repeated?.cancel()
        repeated = nil
        for task in timers.values { task.cancel() }
        timers = [:]
        for open in channels.values { open.channel.close(promise: nil) }
        channels = [:]
        machine = DC09ForwardMachine(receivers: machine.receivers, parameters: machine.parameters, seed: UInt64.random(in: .min ... .max))
        cursor = FollowCursor(last: 0)
    }

    /// The queue's depth gauge, from the journal: rows beyond those loaded, and other processes' rows, count.
    private func countQueue() {
        let journal = self.journal
        pool.runIfActive(eventLoop: loop) { try journal.forwardQueueDepth() }.assumeIsolated().whenSuccess { depth in
            self.depth = depth
            self.metrics.queueDepth.set(Int64(depth))
        }
    }

    func stop() {
        loop.preconditionInEventLoop()
        stopped = true
        repeated?.cancel()
        for task in timers.values { task.cancel() }
        timers = [:]
        leaseTask?.cancel()
        batcher.stop()
        for open in channels.values { open.channel.close(promise: nil) }
        channels = [:]
        if holding {
            // Given up, so that another process takes over at once rather than when it lapses.
            holding = false
            let (journal, node) = (self.journal, self.node)
            _ = pool.runIfActive(eventLoop: loop) { try journal.releaseLease(Self.leaseName, holder: node) }
        }
    }

    /// The journal recorded new events (this process's, or found by the poll: another process's).
    func rowsQueued() {
        guard !stopped, holding else { return }
        run(machine.rowsQueued())
    }

    private var wall: UInt64 { UInt64(max(0, Date().timeIntervalSince1970 * 1_000)) }

    private func run(_ actions: [DC09ForwardMachine.Action]) {
        guard !stopped else { return }
        for action in actions {
            switch action {
            case .loadRows(let after, let limit):
                load(after: after, limit: limit)
            case .connect(let receiver, let link):
                connect(machine.receivers[receiver], link: link)
            case .close(let link):
                channels.removeValue(forKey: link)?.channel.close(promise: nil)
            case .send(let bytes, _, let link):
                guard let open = channels[link] else { continue }
                let buffer = open.channel.allocator.buffer(bytes: bytes)
                if open.datagram, let remote = open.channel.remoteAddress {
                    open.channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buffer), promise: nil)
                } else {
                    open.channel.writeAndFlush(buffer, promise: nil)
                }
            case .remove(let row):
                depth = max(0, depth - 1)
                metrics.queueDepth.set(Int64(depth))
                batcher.write(.forwarded(rows: [row])) { [logger] result in
                    // The row stays queued: sent again (same sequence) after a restart, as DC-09 retransmits.
                    if case .failure(let error) = result {
                        logger.debug("could not remove a forwarded event from the queue", metadata: ["row": "\(row)", "reason": "\(error)"])
                    }
                }
            case .scheduleTimer(let timer, let after):
                let bound = NIOLoopBound(self, eventLoop: loop)
                timers[timer] = loop.scheduleTask(in: TimeAmount(after)) {
                    let forwarder = bound.value
                    forwarder.timers[timer] = nil
                    forwarder.run(forwarder.machine.timerFired(timer, wall: forwarder.wall))
                }
            case .report(let report):
                self.report(report)
            }
        }
    }

    private func load(after: Int64, limit: Int) {
        let (journal, gaps) = (self.journal, cursor.openGaps)
        let term = self.term
        pool.runIfActive(eventLoop: loop) { try journal.forwardQueue(after: after, orAmong: gaps, limit: limit) }
            .assumeIsolated().whenComplete { result in
                // A read begun before the lease was lost is not the present machine's.
                guard !self.stopped, self.holding, self.term == term else { return }
                switch result {
                case .success(let (rows, depth)):
                    self.depth = depth
                    self.metrics.queueDepth.set(Int64(depth))
                    let fresh = self.cursor.read(rows.map(\.id), now: ContinuousClock.now - Self.epoch)
                    let late = fresh.filter { $0 <= after }
                    self.run(self.machine.rowsLoaded(rows.filter { fresh.contains($0.id) }, limit: limit, wall: self.wall, late: late))
                case .failure(let error):
                    self.logger.debug("could not read the DC-09 forwarding queue", metadata: ["reason": "\(error)"])
                    self.run(self.machine.rowsLoadFailed())
                }
            }
    }

    private func connect(_ target: DC09ForwardTarget, link: UInt64) {
        let bound = NIOLoopBound(self, eventLoop: loop)
        let future: EventLoopFuture<any Channel>
        switch target.transport {
        case .tcp:
            future = ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DC09StreamAnswerHandler(forwarder: bound, link: link))
                    }
                }
                .connect(host: target.host, port: target.port)
        case .udp:
            future = DatagramBootstrap(group: loop)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DC09DatagramAnswerHandler(forwarder: bound, link: link))
                    }
                }
                .connect(host: target.host, port: target.port)
        }
        future.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard !self.stopped else {
                    channel.close(promise: nil)
                    return
                }
                self.channels[link] = (channel, target.transport == .udp)
                self.run(self.machine.connected(link: link, wall: self.wall))
            case .failure(let error):
                self.run(self.machine.linkFailed(link: link, reason: "\(error)"))
            }
        }
    }

    fileprivate func answer(_ bytes: [UInt8], link: UInt64) {
        run(machine.answer(bytes, link: link, wall: wall))
    }

    fileprivate func linkClosed(_ link: UInt64, reason: String) {
        channels[link] = nil
        run(machine.linkFailed(link: link, reason: reason))
    }

    private func report(_ report: DC09ForwardMachine.Report) {
        func name(_ receiver: Int) -> Logger.MetadataValue {
            "\(receiver == 0 ? "primary" : "backup") \(machine.receivers[receiver].description)"
        }
        switch report {
        case .receiverDown(let receiver, let reason):
            metrics.up(receiver)?.set(Int64(0))
            logger.warning("DC-09 receiver down; its events stay queued", metadata: ["receiver": name(receiver), "reason": "\(reason)"])
        case .receiverUp(let receiver):
            metrics.up(receiver)?.set(Int64(1))
            logger.notice("DC-09 receiver back", metadata: ["receiver": name(receiver)])
        case .failover(let from, let to):
            logger.notice("DC-09 forwarding moves to another receiver", metadata: ["from": name(from), "to": name(to)])
        case .acknowledged(let receiver, _):
            metrics.forwarded[receiver].increment()
        case .retransmitted(let receiver, let row):
            metrics.retransmitted[receiver].increment()
            logger.debug("DC-09 frame sent again", metadata: ["receiver": name(receiver), "row": "\(row)"])
        case .refused(let receiver, let row, let offset):
            metrics.naks[receiver].increment()
            logger.debug("DC-09 NAK: sent again", metadata: ["receiver": name(receiver), "row": "\(row.map(String.init) ?? "?")", "clock.offset": "\(offset)"])
        case .notUnderstood(let receiver, let row, let data):
            metrics.duhs[receiver].increment()
            logger.warning(
                "DC-09 receiver does not take an event (DUH): kept, sent again after the longest backoff",
                metadata: ["receiver": name(receiver), "row": "\(row.map(String.init) ?? "?")", "data": "\(data)"])
        case .unreadable(let receiver, let error):
            logger.debug("unreadable DC-09 answer", metadata: ["receiver": name(receiver), "reason": "\(error)"])
        case .unmatched(let receiver, let id, let sequence):
            logger.debug("DC-09 answer to no frame in flight", metadata: ["receiver": name(receiver), "answer": "\(id.rawValue) \(sequence)"])
        case .unencodable(let row, let error):
            logger.error("a queued event cannot be written as a DC-09 frame: kept", metadata: ["row": "\(row)", "reason": "\(error)"])
        }
    }
}

/// Hands the receiver's answers on a TCP connection to the forwarder, cut into frames.
private final class DC09StreamAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let forwarder: NIOLoopBound<DC09Forwarder>
    private let link: UInt64
    private var splitter = DC09FrameSplitter()

    init(forwarder: NIOLoopBound<DC09Forwarder>, link: UInt64) {
        self.forwarder = forwarder
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        for piece in splitter.feed(unwrapInboundIn(data).readableBytesView) {
            if case .frame(let frame) = piece { forwarder.value.answer(frame, link: link) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        forwarder.value.linkClosed(link, reason: "the connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Hands the receiver's answers on a connected UDP socket to the forwarder, a datagram each.
private final class DC09DatagramAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private let forwarder: NIOLoopBound<DC09Forwarder>
    private let link: UInt64

    init(forwarder: NIOLoopBound<DC09Forwarder>, link: UInt64) {
        self.forwarder = forwarder
        self.link = link
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        forwarder.value.answer(Array(unwrapInboundIn(data).data.readableBytesView), link: link)
    }

    func channelInactive(context: ChannelHandlerContext) {
        forwarder.value.linkClosed(link, reason: "the socket closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // The receiver's ICMP "port unreachable" comes here: the answer timeout counts it as a failure.
    }
}

/// The gateway's metrics, per receiver (`receiver="primary"` or `"backup"`), from the start at 0.
struct DC09ForwardMetrics: Sendable {
    /// 1 in the process that sends (under `--workers`, one); the others only queue, and their receiver
    /// gauges and counters stay at 0.
    let sending: Meter
    let receiverUp: [Meter]
    let queueDepth: Meter
    let forwarded: [Counter]
    let retransmitted: [Counter]
    let naks: [Counter]
    let duhs: [Counter]

    init(_ make: inout Families) {
        let receivers = ["primary", "backup"]
        sending = make.gauge(
            "center_dc09_forwarding", "1 if this centre process sends the DC-09 queue (--forward; with --workers, one of them), else 0.")
        receiverUp = receivers.map {
            make.gauge(
                "center_dc09_receiver_up",
                "DC-09 receivers (--forward) up (1) or down (0), in the process that sends: down from a failure to its next answer.",
                [("receiver", $0)])
        }
        queueDepth = make.gauge("center_dc09_forward_queue_depth", "Case events queued in the journal for the DC-09 receivers, not yet acknowledged.")
        forwarded = receivers.map {
            make.counter("center_dc09_forwarded_total", "Case events a DC-09 receiver acknowledged (ACK).", [("receiver", $0)])
        }
        retransmitted = receivers.map {
            make.counter("center_dc09_forward_retransmissions_total", "DC-09 frames sent again after no answer in time.", [("receiver", $0)])
        }
        naks = receivers.map {
            make.counter("center_dc09_forward_answers_total", "NAK and DUH answers from DC-09 receivers.", [("receiver", $0), ("answer", "NAK")])
        }
        duhs = receivers.map {
            make.counter("center_dc09_forward_answers_total", "NAK and DUH answers from DC-09 receivers.", [("receiver", $0), ("answer", "DUH")])
        }
    }

    func up(_ receiver: Int) -> Meter? { receiverUp.indices.contains(receiver) ? receiverUp[receiver] : nil }
}
