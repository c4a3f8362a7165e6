/// Refuses replayed and stale counters of one session and direction, allowing reordering within 64 frames
/// (the anti-replay window of RFC 4303 §3.4.3, as DTLS and WireGuard use it).
///
/// Counters at or below `floor` are stale: the session's anchor, or a superseded session's frames.
/// Call `check` before spending effort on a frame, and `accept` only after it authenticated.
public struct ReplayWindow: Hashable, Sendable {
    public static let width: UInt64 = 64
    /// Counters at or below this are refused as stale.
    public private(set) var floor: UInt64
    /// The highest counter accepted, or `floor` before any.
    public private(set) var highest: UInt64
    /// Bit `i` set: counter `highest - i` was accepted.
    private var seen: UInt64 = 0

    public init(floor: UInt64) {
        self.floor = floor
        self.highest = floor
    }

    /// Throws `.stale` or `.replayed` if `counter` must not be accepted.
    public func check(_ counter: UInt64) throws(ProtocolError) {
        guard counter > floor else { throw .stale(counter: counter) }
        if counter > highest { return }
        let age = highest - counter
        guard age < Self.width else { throw .stale(counter: counter) }
        if seen & (1 << age) != 0 { throw .replayed(counter: counter) }
    }

    /// Checks `counter` and records it as accepted.
    public mutating func accept(_ counter: UInt64) throws(ProtocolError) {
        try check(counter)
        if counter > highest {
            let shift = counter - highest
            seen = shift >= Self.width ? 0 : seen << shift
            seen |= 1
            highest = counter
        } else {
            seen |= 1 << (highest - counter)
        }
    }
}
