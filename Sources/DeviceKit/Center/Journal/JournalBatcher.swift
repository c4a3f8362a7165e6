import DequeModule
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The centre's journal writes with group commit: they run on a one-thread pool (in order, off the loop) and
/// report back on the loop; while one batch is being written, the writes that arrive queue up and go
/// together in the next transaction (at most `batchLimit`), so one fsync serves many alarms. Each write's
/// `then` runs on the loop only after its own batch committed or failed — so an `ack`, a `nak busy` or a
/// `sessionAccept` is never sent for what is not durable.
///
/// What devices and operators wait on goes first: a batch takes the messages (alarms, cancels), case updates,
/// DC-09 events and forwards queued, in order, before the session anchors and supervision reports, in order.
/// A fleet reconnecting (two of those a session, 60,000 writes a second) would otherwise queue its alarms
/// behind the backlog. Only those two kinds wait longer, and neither is read by the writes that pass them: a
/// device's messages come in a session whose anchor committed before its `sessionAccept` was sent, and
/// supervision is presence only. Messages and case updates keep their order, which the cases depend on.
///
/// A journal that cannot be written (a full disk, a PostgreSQL server gone) is the centre's own alarm: at the
/// first failed batch it says so in the log at error level (then once a minute while it lasts), sets
/// `center_journal_up` to 0 and `health` to not writable (the HTTP port's `/ready` answers 503), and probes the
/// journal every `probeInterval` with an empty transaction, so that it recovers by itself when the journal
/// does, also while no device writes; the first batch or probe that commits says so and sets all back.
/// Meanwhile every write fails whole and is answered `nak busy`: the devices keep their alarms and send them
/// again.
///
/// Bound to `loop` like the runtime that owns it: every method is called there (asserted).
final class JournalBatcher {
    typealias Completion = (Result<CenterJournal.WriteOutcome, any Error>) -> Void

    private let loop: any EventLoop
    private let journal: CenterJournal
    private let pool: NIOThreadPool
    private let metrics: CenterMetrics
    private let batchLimit: Int
    /// Writes waiting for the next batch (the first that others wait on, then anchors and supervision), and
    /// whether a batch is on the writer thread now.
    private var queue = Deque<(write: CenterJournal.Write, then: Completion)>()
    private var background = Deque<(write: CenterJournal.Write, then: Completion)>()
    private var busy = false
    private var stopped = false
    private let health: JournalHealth
    private let logger: Logger
    private let probeInterval: TimeAmount
    /// Since when, and how many batches failed in a row; nil while the journal takes writes.
    private var failing: (since: ContinuousClock.Instant, batches: Int)?
    private var failureLog = CountedLog()
    private var probe: Scheduled<Void>?

    init(
        loop: any EventLoop, journal: CenterJournal, pool: NIOThreadPool, metrics: CenterMetrics, batchLimit: Int,
        health: JournalHealth = JournalHealth(), logger: Logger = Logger(label: "devicekit.journal"),
        probeInterval: TimeAmount = .seconds(2)
    ) {
        self.loop = loop
        self.journal = journal
        self.pool = pool
        self.metrics = metrics
        self.batchLimit = max(1, batchLimit)
        self.health = health
        self.logger = logger
        self.probeInterval = probeInterval
        metrics.journalUp.set(Int64(1))
    }

    /// Queues `write` for the next batch; `then` runs on the loop once that batch committed (or failed).
    func write(_ write: CenterJournal.Write, then: @escaping Completion) {
        loop.preconditionInEventLoop()
        if write.waitsBehindOthers { background.append((write, then)) } else { queue.append((write, then)) }
        guard !busy else { return }
        busy = true
        // After the frames of this read: those that arrived together are written together.
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.commitNextBatch() }
    }

    /// Runs `body` (a read) with the journal on the writer thread, between batches; `then` runs on the loop.
    func read<T: Sendable>(_ body: @escaping @Sendable (CenterJournal) throws -> T, then: @escaping (Result<T, any Error>) -> Void) {
        loop.preconditionInEventLoop()
        pool.runIfActive(eventLoop: loop) { [journal] in try body(journal) }.assumeIsolated().whenComplete { result in
            guard !self.stopped else { return }
            then(result)
        }
    }

    /// Renews the node's case lease (CenterJournal+Lease.swift) on the writer thread, between batches; `then`
    /// runs on the loop, after the answers of every batch committed before it.
    func renewLease(for duration: Duration, reclaimingOwn: Bool = false, then: @escaping (Result<CaseLeaseRenewal, any Error>) -> Void) {
        loop.preconditionInEventLoop()
        pool.runIfActive(eventLoop: loop) { [journal] in
            try journal.renewLease(for: duration, reclaimingOwn: reclaimingOwn)
        }.assumeIsolated().whenComplete { result in
            guard !self.stopped else { return }
            // A renewal is a write too: while no device writes, it is what finds the journal gone (and back).
            switch result {
            case .success: self.committed()
            case .failure(let error): self.failed(error)
            }
            then(result)
        }
    }

    /// No batch starts after this, and no answer of one in flight is run.
    func stop() {
        loop.preconditionInEventLoop()
        stopped = true
        probe?.cancel()
    }

    /// Sends up to `batchLimit` queued writes to the writer thread as one transaction; when it is done,
    /// answers each write in order and sends the writes that queued meanwhile.
    private func commitNextBatch() {
        guard !stopped, !queue.isEmpty || !background.isEmpty else {
            busy = false
            return
        }
        var batch = Array(queue.prefix(batchLimit))
        queue.removeFirst(batch.count)
        let rest = min(background.count, batchLimit - batch.count)
        batch += background.prefix(rest)
        background.removeFirst(rest)
        let writes = batch.map(\.write)
        metrics.journalBatches.increment()
        metrics.journalBatchedWrites.increment(by: Int64(writes.count))
        pool.runIfActive(eventLoop: loop) { [journal, metrics] in
            let started = ContinuousClock.now
            defer { metrics.journalCommitDuration.record(duration: ContinuousClock.now - started) }
            return try journal.commit(writes)
        }.assumeIsolated().whenComplete { result in
            guard !self.stopped else { return }
            switch result {
            case .success(let outcomes):
                self.committed()
                for (entry, outcome) in zip(batch, outcomes) { entry.then(.success(outcome)) }
            case .failure(let error):
                // Nothing of the batch is durable: every write fails, and no message of it is acknowledged.
                self.failed(error)
                for entry in batch { entry.then(.failure(error)) }
            }
            self.commitNextBatch()
        }
    }

    // MARK: Health

    private func failed(_ error: any Error) {
        let now = ContinuousClock.now
        guard var failing else {
            failing = (now, 1)
            health.set(writable: false, reason: "\(error)")
            metrics.journalUp.set(Int64(0))
            logger.error(
                "the journal cannot be written: every alarm and message is answered nak busy (devices keep them and send them again) until it can",
                metadata: ["journal": "\(journal.location)", "reason": "\(error)"])
            _ = failureLog.count(now: now - Self.epoch)
            scheduleProbe()
            return
        }
        failing.batches += 1
        self.failing = failing
        health.set(writable: false, reason: "\(error)")
        if let count = failureLog.count(now: now - Self.epoch) {
            logger.error(
                "the journal still cannot be written",
                metadata: ["journal": "\(journal.location)", "reason": "\(error)", "failed.batches": "\(count)",
                           "since.seconds": "\((now - failing.since).components.seconds)"])
        }
    }

    private func committed() {
        guard let failing else { return }
        self.failing = nil
        probe?.cancel()
        probe = nil
        health.set(writable: true, reason: "")
        metrics.journalUp.set(Int64(1))
        let seconds = (ContinuousClock.now - failing.since).seconds
        logger.notice(
            "the journal is written again",
            metadata: ["journal": "\(journal.location)", "failed.batches": "\(failing.batches)", "after.seconds": "\(seconds)"])
    }

    /// An empty transaction on the writer thread every `probeInterval` while failing, unless a batch is on it.
    private func scheduleProbe() {
        probe?.cancel()
        let bound = NIOLoopBound(self, eventLoop: loop)
        probe = loop.scheduleTask(in: probeInterval) {
            let batcher = bound.value
            guard !batcher.stopped, batcher.failing != nil else { return }
            guard !batcher.busy else { return batcher.scheduleProbe() }
            batcher.busy = true
            batcher.pool.runIfActive(eventLoop: batcher.loop) { [journal = batcher.journal] in
                try journal.probe()
            }.assumeIsolated().whenComplete { result in
                batcher.busy = false
                guard !batcher.stopped else { return }
                switch result {
                case .success: batcher.committed()
                case .failure(let error):
                    batcher.failed(error)
                    if batcher.failing != nil { batcher.scheduleProbe() }
                }
                if !batcher.queue.isEmpty || !batcher.background.isEmpty {
                    batcher.busy = true
                    batcher.commitNextBatch()
                }
            }
        }
    }

    private static let epoch = ContinuousClock.now
}

/// Whether the centre's journal takes writes, for `/ready`: shared between the loop that writes and the HTTP
/// port that answers.
public final class JournalHealth: Sendable {
    private let state = Mutex<(writable: Bool, reason: String)>((true, ""))

    public init() {}

    /// Nil while writable; else what the last failed write said.
    public var failure: String? { state.withLock { $0.writable ? nil : $0.reason } }

    func set(writable: Bool, reason: String) { state.withLock { $0 = (writable, reason) } }
}
