import Synchronization

/// Hands every `CenterEvent` to each of any number of observers, each with its own `AsyncStream`.
final class CenterEventHub: Sendable {
    private struct Observers: ~Copyable {
        var next = 0
        var continuations: [Int: AsyncStream<CenterEvent>.Continuation] = [:]
        var finished = false
    }

    private let observers = Mutex(Observers())

    func stream() -> AsyncStream<CenterEvent> {
        let (stream, continuation) = AsyncStream<CenterEvent>.makeStream()
        let id: Int? = observers.withLock { observers in
            guard !observers.finished else { return nil }
            let id = observers.next
            observers.next += 1
            observers.continuations[id] = continuation
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.observers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func emit(_ event: CenterEvent) {
        let continuations = observers.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield(event) }
    }

    /// Ends every stream: the centre stopped.
    func finish() {
        let continuations = observers.withLock { observers in
            observers.finished = true
            defer { observers.continuations = [:] }
            return Array(observers.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}
