import NIOCore

/// Conversions of `Duration` used across the library: one place, so every part rounds the same way.
extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }

    /// Whole microseconds, rounded down.
    public var microseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000 + atto / 1_000_000_000_000
    }

    /// Whole nanoseconds, rounded down.
    public var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }

    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}

extension Duration {
    /// `CLOCK_MONOTONIC` now: the clock of evdev timestamps (`EVIOCSCLOCKID`), NIO's deadlines and every
    /// process on the machine.
    public static var monotonicNow: Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds)) }
}

extension TimeAmount {
    /// NIO's time amount for a `Duration`, for scheduling on an event loop.
    init(_ duration: Duration) {
        self = .nanoseconds(duration.nanoseconds)
    }
}
