import Foundation
import Synchronization

/// Hands every `CenterEvent` to each of any number of observers, each with its own `AsyncStream`.
///
/// Each observer's buffer holds at most `limit` events: an observer that does not keep up (a `--json` pipe
/// to a slow reader, a console) loses the newest events, never the centre's memory. What it lost is counted
/// (`dropped`, for the metrics) and told to it as `eventsDropped(count:)` as soon as its buffer has room again
/// (at the next event, or the next `reportDrops()`).
///
/// An observer of `timedStream()` gets each event with the wall-clock time it was emitted, read once per
/// event and only while such an observer exists.
final class CenterEventHub: Sendable {
    private enum Continuation {
        case plain(AsyncStream<CenterEvent>.Continuation)
        case timed(AsyncStream<TimedCenterEvent>.Continuation)

        func yield(_ event: CenterEvent, at wall: WireTime) -> Bool {
            switch self {
            case .plain(let continuation):
                if case .enqueued = continuation.yield(event) { return true }
            case .timed(let continuation):
                if case .enqueued = continuation.yield(TimedCenterEvent(at: wall, event: event)) { return true }
            }
            return false
        }

        func finish() {
            switch self {
            case .plain(let continuation): continuation.finish()
            case .timed(let continuation): continuation.finish()
            }
        }

        var isTimed: Bool {
            if case .timed = self { true } else { false }
        }
    }

    private struct Observer {
        var continuation: Continuation
        /// Events lost since the observer was last told.
        var untold = 0
    }

    private struct Observers: ~Copyable {
        var next = 0
        var observers: [Int: Observer] = [:]
        var timed = 0
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
        let id = add(.plain(continuation))
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return stream
    }

    /// The events with the wall-clock time each was emitted.
    func timedStream() -> AsyncStream<TimedCenterEvent> {
        let (stream, continuation) = AsyncStream<TimedCenterEvent>.makeStream(bufferingPolicy: .bufferingOldest(limit))
        let id = add(.timed(continuation))
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return stream
    }

    /// Adds an observer; `nil` (and the stream finished) once the hub has finished.
    private func add(_ continuation: Continuation) -> Int? {
        let id: Int? = observers.withLock { observers in
            guard !observers.finished else { return nil }
            let id = observers.next
            observers.next += 1
            observers.observers[id] = Observer(continuation: continuation)
            if continuation.isTimed { observers.timed += 1 }
            return id
        }
        if id == nil { continuation.finish() }
        return id
    }

    private func remove(_ id: Int?) {
        guard let id else { return }
        observers.withLock { observers in
            guard let removed = observers.observers.removeValue(forKey: id) else { return }
            if removed.continuation.isTimed { observers.timed -= 1 }
        }
    }

    func emit(_ event: CenterEvent) {
        observers.withLock { observers in
            let wall = observers.timed > 0 ? Self.wallClock() : 0
            for id in observers.observers.keys {
                guard var observer = observers.observers[id] else { continue }
                Self.tellDrops(&observer, at: wall)
                if observer.untold == 0 {
                    if !observer.continuation.yield(event, at: wall) { Self.lost(1, by: &observer, onDrop) }
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
            let wall = observers.timed > 0 ? Self.wallClock() : 0
            for id in observers.observers.keys {
                guard var observer = observers.observers[id], observer.untold > 0 else { continue }
                Self.tellDrops(&observer, at: wall)
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

    /// Milliseconds since the Unix epoch.
    private static func wallClock() -> WireTime { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    private static func tellDrops(_ observer: inout Observer, at wall: WireTime) {
        guard observer.untold > 0 else { return }
        if observer.continuation.yield(.eventsDropped(count: observer.untold), at: wall) { observer.untold = 0 }
    }

    private static func lost(_ count: Int, by observer: inout Observer, _ onDrop: @Sendable (Int) -> Void) {
        observer.untold += count
        onDrop(count)
    }
}

/// A centre event and when it happened: milliseconds since the Unix epoch, on the centre's wall clock.
public struct TimedCenterEvent: Hashable, Sendable {
    public var at: WireTime
    public var event: CenterEvent

    public init(at: WireTime, event: CenterEvent) {
        self.at = at
        self.event = event
    }

    /// The event's JSON line with `"at"`, its time in ISO 8601 UTC with milliseconds.
    public var json: String { event.json(at: at) }
}
