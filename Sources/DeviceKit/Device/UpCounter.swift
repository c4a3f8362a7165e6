/// Hands out up-frame counters that never repeat under one key: not across retransmissions, reconnects,
/// crashes or power cuts (protocol.md §3.3).
///
/// Counter reservation: before a counter is used, a limit above it must be on durable storage. At boot the
/// counter starts at the stored limit, so a crash skips the unused rest of a block but never reuses one.
/// Pure: the owner stores the limit and reports back.
///
/// ```
/// var counter = UpCounter(storedLimit: file.load())
/// switch try counter.take() {
/// case .counter(let c): seal with c
/// case .reserve(let limit): file.store(limit); counter.reservationStored(limit); then ask again
/// }
/// ```
public struct UpCounter: Hashable, Sendable {
    /// Counters reserved per write to storage.
    public static let block: UInt64 = 65_536

    public enum Next: Hashable, Sendable {
        /// Seal the next frame with this counter.
        case counter(UInt64)
        /// Durably store this limit, call `reservationStored`, then ask again.
        case reserve(limit: UInt64)
    }

    /// The next counter to hand out.
    public private(set) var next: UInt64
    /// Counters below this are covered by a limit on durable storage.
    public private(set) var storedLimit: UInt64

    /// - Parameter storedLimit: the limit read from durable storage, 0 on a device's first boot.
    public init(storedLimit: UInt64) {
        self.next = storedLimit
        self.storedLimit = storedLimit
    }

    public mutating func take() throws(ProtocolError) -> Next {
        guard next <= Wire.maximumUpCounter else { throw .counterExhausted }
        guard next < storedLimit else {
            return .reserve(limit: min(storedLimit + Self.block, Wire.maximumUpCounter + 1))
        }
        defer { next += 1 }
        return .counter(next)
    }

    /// The owner has durably stored `limit` (never call it before the data is on storage).
    public mutating func reservationStored(_ limit: UInt64) {
        storedLimit = max(storedLimit, limit)
    }
}
