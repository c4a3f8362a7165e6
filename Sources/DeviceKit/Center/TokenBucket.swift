/// A rate limit: `rate` events a second on average, bursts of up to `burst` (a token bucket).
///
/// Pure: time comes in as a monotonic `now`, so a test can step it.
public struct TokenBucket: Hashable, Sendable {
    public let rate: Double
    public let burst: Double
    private var tokens: Double
    private var updated: Duration?

    public init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        self.tokens = burst
    }

    /// Takes one token if there is one; `false` means the event is over the limit.
    public mutating func take(now: Duration) -> Bool {
        guard hasToken(now: now) else { return false }
        tokens -= 1
        return true
    }

    /// Whether a token is there, without taking it: for a limit charged only after the fact.
    public mutating func hasToken(now: Duration) -> Bool {
        if let updated, now > updated {
            let elapsed = Double((now - updated).components.seconds)
                + Double((now - updated).components.attoseconds) / 1e18
            tokens = min(burst, tokens + elapsed * rate)
        }
        if updated.map({ now > $0 }) ?? true { updated = now }
        return tokens >= 1
    }

    /// Whether the bucket is full again at `now` (it restricts nothing: it may be forgotten).
    public mutating func isFull(now: Duration) -> Bool {
        _ = hasToken(now: now)
        return tokens >= burst
    }
}
