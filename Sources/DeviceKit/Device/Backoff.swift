/// Exponential backoff with full jitter, and the seeded generator that makes it reproducible.
///
/// Full jitter (a uniform delay in `0...min(cap, base × 2^attempt)`) spreads a crowd best: 10,000 devices
/// that lost their centre at the same moment come back spread over the whole window, not in one second.
public struct Backoff: Hashable, Sendable {
    public var base: Duration
    public var cap: Duration
    /// The smallest delay, so a failing path is never hammered in a tight loop.
    public var floor: Duration

    public init(base: Duration = .seconds(1), cap: Duration = .seconds(60), floor: Duration = .milliseconds(50)) {
        self.base = base
        self.cap = cap
        self.floor = floor
    }

    /// The upper end of the window for `attempt` (0 for the first retry).
    public func window(attempt: Int) -> Duration {
        let doublings = min(attempt, 30)
        var window = base
        for _ in 0..<doublings where window < cap { window = window * 2 }
        return min(window, cap)
    }

    /// A delay drawn uniformly from the window of `attempt`.
    public func delay(attempt: Int, using random: inout SplitMix64) -> Duration {
        let window = window(attempt: attempt)
        return max(floor, window * random.nextUnit())
    }
}

/// How long a reliable message waits for its acknowledgement before it is sent again (protocol.md §4.7), at
/// both ends — the device's `DeliveryMachine` and the centre's `CenterSession`: the first wait is `initial`
/// (or three round trips, when that is longer), each retry doubles it up to `maximum`, and every wait is
/// spread ±20 % so that devices that lost the centre together, or the centre's messages to them, do not
/// come back in step.
public struct RetransmitBackoff: Hashable, Sendable {
    public var initial: Duration
    public var maximum: Duration

    public init(initial: Duration = .seconds(1), maximum: Duration = .seconds(30)) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The wait before the next attempt after `retries` retransmissions (0: after the first send). Never
    /// below the first wait, even when `maximum` is (three round trips longer than the cap).
    public func wait(retries: Int, roundTrip: Duration? = nil, using random: inout SplitMix64) -> Duration {
        let first = max(initial, (roundTrip ?? .zero) * 3)
        var base = first
        for _ in 0..<min(retries, 16) where base < maximum { base = base * 2 }
        return max(first, min(base, maximum)) * (0.8 + 0.4 * random.nextUnit())
    }
}

/// A small, fast, seedable random generator (SplitMix64), so pure state machines stay deterministic in tests.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform value in `0..<1`.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
