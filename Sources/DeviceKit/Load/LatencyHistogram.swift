import Histogram

/// A latency distribution in microseconds, an HdrHistogram with three significant digits, that encodes to
/// JSON without loss so that the histograms of several shards add up exactly.
///
/// The JSON form lists every non-empty bucket as `[value, count]`, `value` being the highest value the
/// bucket holds: re-recording it lands in the same bucket, so decode(encode(h)) == h and merging decoded
/// shards gives the histogram that one process measuring everything would have.
public struct LatencyHistogram: Sendable {
    /// 1 µs resolution floor; grows beyond the initial hour by itself when a value needs it.
    static let lowest: UInt64 = 1
    static let initialHighest: UInt64 = 3_600_000_000
    /// Values above this (about 35 years in µs) are refused on decoding: nobody measured them.
    static let largestAccepted: UInt64 = 1 << 50

    private(set) var histogram: Histogram<UInt64>

    public init() { self.init(initialHighest: Self.initialHighest) }

    /// A histogram that starts small (16 KB for values up to 2 ms) and grows as values need: for the
    /// per-second histograms and for decoding, of which a run has hundreds. Same layout, so it adds exactly.
    static func compact() -> LatencyHistogram { LatencyHistogram(initialHighest: 2_048) }

    private init(initialHighest: UInt64) {
        histogram = Histogram(lowestDiscernibleValue: Self.lowest, highestTrackableValue: initialHighest, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
    }

    public mutating func record(_ latency: Duration) {
        let microseconds = Swift.max(0, latency.nanoseconds / 1_000)
        histogram.record(UInt64(Swift.min(Int64(Self.largestAccepted), microseconds)))
    }

    public mutating func add(_ other: LatencyHistogram) {
        // Same layout by construction (lowest value and digits are fixed), so the package's merge is exact.
        histogram.add(other.histogram)
    }

    public mutating func reset() { histogram.reset() }

    public var count: UInt64 { histogram.totalCount }

    /// The value at `percentile` (0...100), or zero when empty.
    public func value(atPercentile percentile: Double) -> Duration {
        count == 0 ? .zero : .microseconds(Int64(histogram.valueAtPercentile(percentile)))
    }

    public var min: Duration { count == 0 ? .zero : .microseconds(Int64(histogram.min)) }

    public var max: Duration { count == 0 ? .zero : .microseconds(Int64(histogram.maxRecorded)) }

    /// Every non-empty bucket, ascending, as `[value in µs, count]`. A bucket stands for all the values it
    /// holds, so any of them re-records it exactly; the first and last entries carry the exact smallest and
    /// largest values measured (the top percentiles are clamped to them), splitting a lone bucket in two.
    public var buckets: [[UInt64]] {
        var result: [[UInt64]] = []
        for item in histogram.recordedValues() { result.append([item.value, item.count]) }
        guard !result.isEmpty else { return result }
        if result.count == 1, result[0][1] > 1 {
            result = [[histogram.min, 1], [histogram.maxRecorded, result[0][1] - 1]]
        } else {
            result[0][0] = histogram.min
            result[result.count - 1][0] = histogram.maxRecorded
        }
        return result
    }
}

extension LatencyHistogram: Equatable {
    public static func == (a: LatencyHistogram, b: LatencyHistogram) -> Bool {
        a.histogram.recordedValues().map { [$0.value, $0.count] } == b.histogram.recordedValues().map { [$0.value, $0.count] }
            && a.histogram.min == b.histogram.min && a.histogram.maxRecorded == b.histogram.maxRecorded
    }
}

extension LatencyHistogram: Codable {
    private enum CodingKeys: String, CodingKey { case unit, significantDigits, count, percentiles, buckets }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("us", forKey: .unit)
        try container.encode(3, forKey: .significantDigits)
        try container.encode(count, forKey: .count)
        // For people and dashboards; the buckets are what merging reads.
        var table: [String: Int64] = [:]
        for (name, percentile) in LatencyHistogram.reportedPercentiles {
            table[name] = value(atPercentile: percentile).nanoseconds / 1_000
        }
        table["max"] = max.nanoseconds / 1_000
        try container.encode(table, forKey: .percentiles)
        try container.encode(buckets, forKey: .buckets)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let unit = try container.decode(String.self, forKey: .unit)
        let digits = try container.decode(Int.self, forKey: .significantDigits)
        guard unit == "us", digits == 3 else {
            throw DecodingError.dataCorruptedError(
                forKey: .unit, in: container,
                debugDescription: "histograms must be in µs with 3 significant digits (written by devicesim load), got \(unit) with \(digits)")
        }
        self.init(initialHighest: 2_048)
        for bucket in try container.decode([[UInt64]].self, forKey: .buckets) {
            guard bucket.count == 2, bucket[0] <= Self.largestAccepted, bucket[1] <= Self.largestAccepted,
                histogram.totalCount <= Self.largestAccepted
            else {
                throw DecodingError.dataCorruptedError(
                    forKey: .buckets, in: container,
                    debugDescription: "a bucket must be [value in µs, count], both below 2^50")
            }
            histogram.record(bucket[0], count: bucket[1])
        }
    }

    /// The percentiles every table and JSON file shows, by name.
    public static let reportedPercentiles: [(String, Double)] = [
        ("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("p99.99", 99.99),
    ]
}
