import NIOCore
import NIOPosix

/// The centre's journal writes with group commit: they run on a one-thread pool (in order, off the loop) and
/// report back on the loop; while one batch is being written, the writes that arrive queue up and go
/// together in the next transaction (at most `batchLimit`), so one fsync serves many alarms. Each write's
/// `then` runs on the loop only after its own batch committed or failed — so an `ack`, a `nak busy` or a
/// `sessionAccept` is never sent for what is not durable.
///
/// Bound to `loop` like the runtime that owns it: every method is called there (asserted).
final class JournalBatcher {
    typealias Completion = (Result<CenterJournal.WriteOutcome, any Error>) -> Void

    private let loop: any EventLoop
    private let journal: CenterJournal
    private let pool: NIOThreadPool
    private let metrics: CenterMetrics
    private let batchLimit: Int
    /// Writes waiting for the next batch, and whether a batch is on the writer thread now.
    private var queue: [(write: CenterJournal.Write, then: Completion)] = []
    private var busy = false
    private var stopped = false

    init(loop: any EventLoop, journal: CenterJournal, pool: NIOThreadPool, metrics: CenterMetrics, batchLimit: Int) {
        self.loop = loop
        self.journal = journal
        self.pool = pool
        self.metrics = metrics
        self.batchLimit = max(1, batchLimit)
    }

    /// Queues `write` for the next batch; `then` runs on the loop once that batch committed (or failed).
    func write(_ write: CenterJournal.Write, then: @escaping Completion) {
        loop.preconditionInEventLoop()
        queue.append((write, then))
        guard !busy else { return }
        busy = true
        // After the frames of this read: those that arrived together are written together.
        let bound = NIOLoopBound(self, eventLoop: loop)
        loop.execute { bound.value.commitNextBatch() }
    }

    /// No batch starts after this, and no answer of one in flight is run.
    func stop() {
        loop.preconditionInEventLoop()
        stopped = true
    }

    /// Sends up to `batchLimit` queued writes to the writer thread as one transaction; when it is done,
    /// answers each write in order and sends the writes that queued meanwhile.
    private func commitNextBatch() {
        guard !stopped, !queue.isEmpty else {
            busy = false
            return
        }
        let count = min(queue.count, batchLimit)
        let batch = Array(queue.prefix(count))
        queue.removeFirst(count)
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
                for (entry, outcome) in zip(batch, outcomes) { entry.then(.success(outcome)) }
            case .failure(let error):
                // Nothing of the batch is durable: every write fails, and no message of it is acknowledged.
                for entry in batch { entry.then(.failure(error)) }
            }
            self.commitNextBatch()
        }
    }
}
