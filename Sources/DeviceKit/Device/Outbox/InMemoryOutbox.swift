import Synchronization

/// An outbox in memory, for the load tester and tests: the same ordering as `SQLiteOutbox`, no durability.
///
/// Never used by `devicesim run`: a real device must survive a power cut.
public final class InMemoryOutbox: Outbox {
    private struct State {
        var nextID: UInt32 = 1
        var items: [(order: Int, message: Message)] = []
        var order = 0
    }

    private let state = Mutex(State())

    public init() {}

    public func enqueue(_ build: @Sendable (UInt32) -> Message) throws(OutboxError) -> Message {
        state.withLock { s in
            let message = build(s.nextID)
            s.nextID &+= 1
            s.order += 1
            s.items.append((s.order, message))
            return message
        }
    }

    public func pending(limit: Int) throws(OutboxError) -> [Message] {
        state.withLock { s in
            s.items.sorted { ($0.message.outboxPriority, $0.order) < ($1.message.outboxPriority, $1.order) }
                .prefix(limit).map(\.message)
        }
    }

    public func remove(id: UInt32) throws(OutboxError) {
        state.withLock { s in s.items.removeAll { $0.message.reliableID == id } }
    }

    public func count() throws(OutboxError) -> Int {
        state.withLock { $0.items.count }
    }
}

/// A counter reservation in memory, for the load tester: its simulated devices never reboot.
public final class InMemoryCounterStore: CounterStore {
    private let limit = Mutex<UInt64>(0)
    public init(limit: UInt64 = 0) { self.limit.withLock { $0 = limit } }
    public func load() throws -> UInt64 { limit.withLock { $0 } }
    public func store(_ limit: UInt64) throws { self.limit.withLock { $0 = limit } }
}
