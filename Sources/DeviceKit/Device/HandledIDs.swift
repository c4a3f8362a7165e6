import DequeModule

/// The ids of the peer's reliable messages already handled, so that a retransmission is acknowledged again
/// but applied once (protocol.md §4.7, "Once only"). The device and the load tester's devices keep the same.
///
/// Remembers the latest `capacity` ids: a retransmission comes within seconds, long before as many newer
/// messages. Pure.
public struct HandledIDs: Sendable {
    public let capacity: Int
    private var seen: Set<UInt32> = []
    private var order: Deque<UInt32> = []

    public init(capacity: Int = 1024) {
        self.capacity = capacity
    }

    /// True the first time `id` is seen; false for a retransmission.
    public mutating func firstTime(_ id: UInt32) -> Bool {
        guard seen.insert(id).inserted else { return false }
        order.append(id)
        if order.count > capacity, let oldest = order.popFirst() { seen.remove(oldest) }
        return true
    }
}
