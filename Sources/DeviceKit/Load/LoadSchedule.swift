/// When things are meant to happen in a load run, decided ahead of the event loop that carries them out.
///
/// Latencies are measured from these intended instants, not from when a loop got round to the work: a loop
/// that stalls for a second delays every alarm due in that second, and the measurement must show it
/// (coordinated omission, as wrk2 and HdrHistogram define it). Pure: no clock; instants are offsets from
/// the start of the run.

/// Alarms arriving as a Poisson process: exponential gaps at `rate` per second, from `start` on.
public struct PoissonArrivals: Sendable {
    public let rate: Double
    /// The intended instant of the next arrival.
    public private(set) var next: Duration
    private var random: SplitMix64

    public init(rate: Double, start: Duration, seed: UInt64) {
        self.rate = rate
        random = SplitMix64(seed: seed)
        next = start + ScriptedButtonSource.exponentialGap(perSecond: rate, &random)
    }

    /// The intended instants of every arrival due at or before `now` (all of them, however late the caller
    /// is), and advances past them.
    public mutating func due(at now: Duration) -> [Duration] {
        var instants: [Duration] = []
        while rate > 0, next <= now {
            instants.append(next)
            next += ScriptedButtonSource.exponentialGap(perSecond: rate, &random)
        }
        return instants
    }
}

/// New sessions at a steady rate: device `n` (0-based, in start order) is meant to connect at `n / rate`.
public struct RampSchedule: Hashable, Sendable {
    public let rate: Double
    public let devices: Int

    public init(rate: Double, devices: Int) {
        self.rate = rate
        self.devices = devices
    }

    public func instant(of device: Int) -> Duration { .nanoseconds(Int64((Double(device) / rate * 1e9).rounded())) }

    /// How long until the last device is meant to start.
    public var length: Duration { devices == 0 ? .zero : instant(of: devices - 1) }

    /// How many devices are due by `now`.
    public func startedBy(_ now: Duration) -> Int {
        guard now >= .zero else { return 0 }
        let due = Int((now / .seconds(1) * rate).rounded(.down)) + 1
        return min(devices, max(0, due))
    }
}

/// Which device ids one shard of a fleet runs: `--shard I/N` splits `count` ids from `first` into N
/// contiguous blocks whose sizes differ by at most one; shard I (0-based, as JOB_COMPLETION_INDEX) gets block I.
public struct FleetShard: Hashable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public static let whole = FleetShard(index: 0, count: 1)

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    /// Parses `I/N`, 0 ≤ I < N.
    public init(parsing text: String) throws(LoadError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, (0..<n).contains(i) else {
            throw LoadError("--shard '\(text)' is not I/N: write for example 0/4 for the first of four shards (I counts from 0, as JOB_COMPLETION_INDEX)")
        }
        self.init(index: i, count: n)
    }

    /// This shard's ids out of `fleet` ids starting at `first`.
    public func ids(first: UInt32, fleet: Int) -> Range<UInt64> {
        let lower = UInt64(first) + UInt64(fleet * index / count)
        let upper = UInt64(first) + UInt64(fleet * (index + 1) / count)
        return lower..<upper
    }

    public var description: String { "\(index)/\(count)" }
}

/// A bad flag, file or combination, said in plain words with what to do instead.
public struct LoadError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
