/// Send times written into the voice itself, to measure the one-way delay of a path end to end — through the
/// centre's bridge, for instance, whose relay passes payloads on unchanged — with no clock of the path's own
/// (`MediaLink.Parameters.stampVoice`). Both ends read `CLOCK_MONOTONIC`, so they must run on one machine.
///
/// The first 13 bytes of a 160-byte µ-law payload: the marker `~TS!`, the send time in nanoseconds (big
/// endian), and a check byte (the XOR of the 12 before it). A measurement mode: the stamp is an audible click
/// each packet, so a call with a person on it never carries one. Pure.
public enum VoiceStamp {
    static let marker: [UInt8] = [0x7E, 0x54, 0x53, 0x21]
    public static let length = 13

    /// Overwrites the start of `payload` (at least `length` bytes) with `nanoseconds`.
    public static func write(_ nanoseconds: UInt64, into payload: inout [UInt8]) {
        guard payload.count >= length else { return }
        for (i, byte) in marker.enumerated() { payload[i] = byte }
        for i in 0 ..< 8 { payload[4 + i] = UInt8(truncatingIfNeeded: nanoseconds >> (56 - 8 * UInt64(i))) }
        payload[12] = payload[0 ..< 12].reduce(0, ^)
    }

    /// The send time a payload carries, if it carries one.
    public static func read(_ payload: [UInt8]) -> UInt64? {
        guard payload.count >= length, Array(payload[0 ..< 4]) == marker, payload[0 ..< 12].reduce(0, ^) == payload[12] else { return nil }
        return payload[4 ..< 12].reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Delays counted in buckets 5 % apart from 10 µs to about 30 s (300 buckets of 4 bytes), so that every call of
/// a thousand can keep one; percentiles are within 5 %. Pure.
public struct DelayHistogram: Hashable, Sendable {
    static let smallest = 10_000.0  // ns
    static let ratio = 1.05
    private var buckets = [UInt32](repeating: 0, count: 300)
    public private(set) var count = 0
    public private(set) var maximum: UInt64 = 0

    public init() {}

    public mutating func record(nanoseconds: UInt64) {
        let index = nanoseconds <= UInt64(Self.smallest) ? 0 : min(buckets.count - 1, Int((log(Double(nanoseconds) / Self.smallest) / log(Self.ratio)).rounded(.up)))
        buckets[index] &+= 1
        count += 1
        maximum = max(maximum, nanoseconds)
    }

    /// The delay below which `fraction` of the recorded ones fall (the bucket's upper bound), in ms.
    public func percentileMilliseconds(_ fraction: Double) -> Double? {
        guard count > 0 else { return nil }
        let wanted = max(1, Int((Double(count) * fraction).rounded(.up)))
        var seen = 0
        for (index, n) in buckets.enumerated() {
            seen += Int(n)
            if seen >= wanted { return min(Self.smallest * pow(Self.ratio, Double(index)), Double(maximum)) / 1e6 }
        }
        return Double(maximum) / 1e6
    }

    public var summary: StampedDelay? {
        guard count > 0, let p50 = percentileMilliseconds(0.5), let p99 = percentileMilliseconds(0.99) else { return nil }
        return StampedDelay(packets: count, p50Milliseconds: p50, p99Milliseconds: p99, maxMilliseconds: Double(maximum) / 1e6)
    }
}

/// The one-way delay of the stamped voice a call received (`VoiceStamp`).
public struct StampedDelay: Hashable, Sendable, Codable {
    public var packets: Int
    public var p50Milliseconds: Double
    public var p99Milliseconds: Double
    public var maxMilliseconds: Double
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
