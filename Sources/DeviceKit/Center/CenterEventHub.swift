import Synchronization

/// Hands every `CenterEvent` to each of any number of observers, each with its own `AsyncStream`.
///
/// Each observer's buffer holds at most `limit` events: an observer that does not keep up (a `--json` pipe
/// to a slow reader, a console) loses the newest events, never the centre's memory. What it lost is counted
/// (`dropped`, for the metrics) and told to it as `eventsDropped(count:)` as soon as its buffer has room again
/// (at the next event, or the next `reportDrops()`).
final class CenterEventHub: Sendable {
    private struct Observer {
        var continuation: AsyncStream<CenterEvent>.Continuation
        /// Events lost since the observer was last told.
        var untold = 0
    }

    private struct Observers: ~Copyable {
        var next = 0
        var observers: [Int: Observer] = [:]
        var finished = false
    }

    let limit: Int
    private let observers = Mutex(Observers())
    private let onDrop: @Sendable (Int) -> Void

    /// - Parameters:
    ///   - limit: events buffered per observer.
    ///   - onDrop: told how many events an observer just lost (called with the hub's lock held: keep it cheap).
    init(limit: Int, onDrop: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.limit = max(1, limit)
        self.onDrop = onDrop
    }

    func stream() -> AsyncStream<CenterEvent> {
        let (stream, continuation) = AsyncStream<CenterEvent>.makeStream(bufferingPolicy: .bufferingOldest(limit))
        let id: Int? = observers.withLock { observers in
            guard !observers.finished else { return nil }
            let id = observers.next
            observers.next += 1
            observers.observers[id] = Observer(continuation: continuation)
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.observers.withLock { $0.observers.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: CenterEvent) {
        observers.withLock { observers in
            for id in observers.observers.keys {
                guard var observer = observers.observers[id] else { continue }
                Self.tellDrops(&observer)
                if observer.untold == 0 {
                    if case .dropped = observer.continuation.yield(event) { Self.lost(1, by: &observer, onDrop) }
                } else {
                    Self.lost(1, by: &observer, onDrop)
                }
                observers.observers[id] = observer
            }
        }
    }

    /// Tells each observer that lost events how many, if it has room now (called once a second).
    func reportDrops() {
        observers.withLock { observers in
            for id in observers.observers.keys {
                guard var observer = observers.observers[id], observer.untold > 0 else { continue }
                Self.tellDrops(&observer)
                observers.observers[id] = observer
            }
        }
    }

    /// Ends every stream: the centre stopped.
    func finish() {
        let continuations = observers.withLock { observers in
            observers.finished = true
            defer { observers.observers = [:] }
            return observers.observers.values.map(\.continuation)
        }
        for continuation in continuations { continuation.finish() }
    }

    private static func tellDrops(_ observer: inout Observer) {
        guard observer.untold > 0 else { return }
        if case .enqueued = observer.continuation.yield(.eventsDropped(count: observer.untold)) { observer.untold = 0 }
    }

    private static func lost(_ count: Int, by observer: inout Observer, _ onDrop: @Sendable (Int) -> Void) {
        observer.untold += count
        onDrop(count)
    }
}
