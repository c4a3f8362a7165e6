import DequeModule

/// Which TCP connections the centre holds, and which to let go when there are too many (pure: ids in,
/// decisions out; the owner closes the connections).
///
/// A connection is *unauthenticated* until a frame of a current session arrives on it (protocol.md §3.4).
/// Limits: at most `total` connections, and at most `unauthenticatedPerAddress` unauthenticated ones from one
/// source address. A connection over either limit takes the place of the oldest unauthenticated one (of its
/// address, or of all), so that a peer who opens connections and never authenticates cannot keep a device
/// out: it only ever pushes out its own older connections, and a device's handshake takes milliseconds.
/// Authenticated connections are never evicted; when all `total` are, a new connection is refused.
struct ConnectionTable {
    struct Limits: Hashable, Sendable {
        var total: Int
        var unauthenticatedPerAddress: Int

        init(total: Int, unauthenticatedPerAddress: Int) {
            self.total = max(1, total)
            self.unauthenticatedPerAddress = max(1, unauthenticatedPerAddress)
        }
    }

    enum Decision: Equatable, Sendable {
        /// Keep the new connection; close these (oldest unauthenticated first) to make room.
        case admit(evicting: [UInt64])
        /// Close the new connection at once: every held connection is authenticated.
        case refuse
    }

    private(set) var limits: Limits
    /// Every open connection and its source address.
    private var open: [UInt64: SourceAddress] = [:]
    /// Unauthenticated connections, oldest first; ids no longer unauthenticated are skipped lazily.
    private var unauthenticatedOrder = Deque<UInt64>()
    private var unauthenticated: Set<UInt64> = []
    private var unauthenticatedByAddress: [SourceAddress: Deque<UInt64>] = [:]

    init(limits: Limits) {
        self.limits = limits
    }

    var count: Int { open.count }
    var unauthenticatedCount: Int { unauthenticated.count }

    /// Connection `id` (ids rise with time) from `address` was accepted.
    mutating func opened(_ id: UInt64, from address: SourceAddress) -> Decision {
        var evicting: [UInt64] = []
        if unauthenticatedByAddress[address].map({ $0.count >= limits.unauthenticatedPerAddress }) ?? false,
            let oldest = oldestUnauthenticated(of: address)
        {
            evicting.append(oldest)
            closed(oldest)
        }
        if open.count >= limits.total {
            guard let oldest = oldestUnauthenticated() else { return evicting.isEmpty ? .refuse : .admit(evicting: evicting) }
            evicting.append(oldest)
            closed(oldest)
        }
        open[id] = address
        unauthenticated.insert(id)
        unauthenticatedOrder.append(id)
        unauthenticatedByAddress[address, default: []].append(id)
        return .admit(evicting: evicting)
    }

    /// A frame of a current session arrived on connection `id`: it is never evicted from now on.
    mutating func authenticated(_ id: UInt64) {
        guard unauthenticated.remove(id) != nil, let address = open[id] else { return }
        unauthenticatedByAddress[address]?.removeAll { $0 == id }
        if unauthenticatedByAddress[address]?.isEmpty ?? false { unauthenticatedByAddress[address] = nil }
        trimOrder()
    }

    /// Connection `id` is closed (by either side, or evicted).
    mutating func closed(_ id: UInt64) {
        authenticated(id)
        open[id] = nil
    }

    /// The process ran out of descriptors with `count` connections open: the total limit was set too high for
    /// the open-file limit. It becomes `count - spare`, and the oldest unauthenticated connections over it are
    /// returned to close, so that accepting goes on by evicting instead of failing.
    mutating func descriptorsExhausted(spare: Int) -> [UInt64] {
        limits.total = max(1, min(limits.total, count - spare))
        var evicting: [UInt64] = []
        while open.count > limits.total, let oldest = oldestUnauthenticated() {
            evicting.append(oldest)
            closed(oldest)
        }
        return evicting
    }

    /// The oldest unauthenticated connection.
    mutating func oldestUnauthenticated() -> UInt64? {
        trimOrder()
        return unauthenticatedOrder.first
    }

    private func oldestUnauthenticated(of address: SourceAddress) -> UInt64? {
        unauthenticatedByAddress[address]?.first
    }

    private mutating func trimOrder() {
        while let first = unauthenticatedOrder.first, !unauthenticated.contains(first) { unauthenticatedOrder.removeFirst() }
    }
}
