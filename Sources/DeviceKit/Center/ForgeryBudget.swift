/// Per source address, how many frames under device ids without a key at hand may fail to authenticate
/// (protocol.md §3.4): each costs a key derivation first (two HKDFs with a fleet master key, where every id is
/// valid), so a forger cycling through ids would otherwise buy the centre's time at 7 µs a frame. Checked
/// before any derivation; charged only for a frame that then neither authenticated nor opened a session
/// (forged, stale, dropped), so that a town's devices handshaking through one NAT address cost nothing
/// from it. Pure; memory is bounded (`BoundedCache`).
struct ForgeryBudget {
    let rate: Double
    let burst: Double
    private var buckets: BoundedCache<SourceAddress, TokenBucket>

    init(rate: Double, burst: Double, sources: Int) {
        self.rate = rate
        self.burst = burst
        self.buckets = BoundedCache(capacity: sources)
    }

    /// Whether a frame from `source` may cost a key derivation now.
    mutating func allows(_ source: SourceAddress, now: Duration) -> Bool {
        guard var bucket = buckets.value(for: source) else { return true }
        let allowed = bucket.hasToken(now: now)
        buckets.insert(bucket, for: source)
        return allowed
    }

    /// A frame from `source` cost a derivation and did not authenticate.
    mutating func charge(_ source: SourceAddress, now: Duration) {
        var bucket = buckets.value(for: source) ?? TokenBucket(rate: rate, burst: burst)
        _ = bucket.take(now: now)
        buckets.insert(bucket, for: source)
    }

    /// Sources tracked now.
    var sources: Int { buckets.count }
}
