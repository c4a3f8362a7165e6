/// What a receiver knows about one RTP source, computed exactly as RFC 3550 prescribes: sequence validation
/// and the extended highest sequence number (§A.1), expected and lost packets and the fraction lost per
/// report interval (§6.4.1, §A.3), interarrival jitter (§6.4.1, §A.8).
///
/// Besides the RFC's numbers it counts what a voice link cares about: packets that arrived out of order,
/// late packets (those that would miss a fixed playout buffer of `playoutDelay`), duplicates, and
/// malformed datagrams (counted by the owner through `malformedReceived()`, then dropped).
///
/// As the RFC says, `received` includes late and duplicated packets, so `cumulativeLost` can go below zero.
/// Pure: arrival times come in as arguments, in the stream's timestamp units.
public struct ReceiverStatistics: Sendable {
    /// RFC 3550 §A.1's constants.
    public static let maximumDropout: UInt32 = 3000
    public static let maximumMisorder: UInt32 = 100
    public static let minimumSequential = 2
    static let sequenceModulus: UInt32 = 1 << 16

    public let clockRate: UInt32
    /// A packet whose transit exceeds the smallest transit seen by more than this is late.
    public let playoutDelay: UInt32

    // §A.1 source state.
    private var started = false
    private var maxSeq: UInt16 = 0
    private var cycles: UInt32 = 0
    private var baseSeq: UInt32 = 0
    private var badSeq: UInt32 = sequenceModulus + 1
    private var probation = 0
    private var receivedCount: UInt32 = 0
    private var expectedPrior: UInt32 = 0
    private var receivedPrior: UInt32 = 0
    // §A.8.
    private var transit: Int64?
    private var minimumTransit: Int64?
    public private(set) var jitter: Double = 0
    // Extended sequence numbers seen lately, for duplicate detection: slot `ext % 512` holds `ext`.
    private var recent = [UInt64](repeating: .max, count: 512)

    public private(set) var outOfOrder: UInt64 = 0
    public private(set) var late: UInt64 = 0
    public private(set) var duplicates: UInt64 = 0
    public private(set) var malformed: UInt64 = 0
    /// Packets refused by sequence validation: probation, or a jump the RFC treats as a possible restart.
    public private(set) var invalid: UInt64 = 0
    public private(set) var octets: UInt64 = 0

    /// - Parameters:
    ///   - clockRate: 8000 for PCMU, 90000 for video.
    ///   - playoutDelay: the jitter buffer a receiver would use; 60 ms by default.
    public init(clockRate: UInt32, playoutDelay: Duration = .milliseconds(60)) {
        self.clockRate = clockRate
        self.playoutDelay = UInt32(clamping: playoutDelay.milliseconds * Int64(clockRate) / 1000)
    }

    /// An arrival instant in timestamp units of this stream's clock, for `received(…arrival:)`.
    public func arrivalUnits(_ instant: Duration) -> UInt32 {
        let (seconds, attoseconds) = instant.components
        let units = seconds &* Int64(clockRate) &+ attoseconds / (1_000_000_000_000_000_000 / Int64(clockRate))
        return UInt32(truncatingIfNeeded: units)
    }

    /// What became of one packet.
    public enum Verdict: Hashable, Sendable {
        /// Counted (possibly also as out of order, late or duplicate).
        case accepted
        /// Held back by sequence validation (probation, or a large jump); not counted as received.
        case invalid
    }

    /// A valid RTP packet of this source arrived.
    /// - Parameter arrival: the arrival time in timestamp units (`arrivalUnits`), any origin.
    @discardableResult
    public mutating func received(sequence: UInt16, timestamp: UInt32, arrival: UInt32, payloadBytes: Int = 0) -> Verdict {
        if !started {
            // A new source: RFC 3550 §A.1 `init_seq(seq); max_seq = seq - 1; probation = MIN_SEQUENTIAL`.
            started = true
            initSequence(sequence)
            maxSeq = sequence &- 1
            probation = Self.minimumSequential
        }
        var reordered = false
        let udelta = UInt32(sequence &- maxSeq)
        if probation > 0 {
            if sequence == maxSeq &+ 1 {
                probation -= 1
                maxSeq = sequence
                if probation == 0 {
                    initSequence(sequence)
                    receivedCount &+= 1
                    return counted(sequence: sequence, timestamp: timestamp, arrival: arrival, bytes: payloadBytes, reordered: false)
                }
            } else {
                probation = Self.minimumSequential - 1
                maxSeq = sequence
            }
            invalid += 1
            return .invalid
        } else if udelta < Self.maximumDropout {
            if sequence < maxSeq { cycles &+= Self.sequenceModulus }  // wrapped
            maxSeq = sequence
        } else if udelta <= Self.sequenceModulus - Self.maximumMisorder {
            // A very large jump.
            if UInt32(sequence) == badSeq {
                // Two sequential packets: the source restarted; start over without probation.
                initSequence(sequence)
            } else {
                badSeq = (UInt32(sequence) + 1) & (Self.sequenceModulus - 1)
                invalid += 1
                return .invalid
            }
        } else {
            reordered = true  // duplicate or reordered
        }
        receivedCount &+= 1
        return counted(sequence: sequence, timestamp: timestamp, arrival: arrival, bytes: payloadBytes, reordered: reordered)
    }

    /// A datagram that was not a valid RTP packet (or failed SRTP authentication) arrived for this stream.
    public mutating func malformedReceived() {
        malformed += 1
    }

    private mutating func initSequence(_ sequence: UInt16) {
        baseSeq = UInt32(sequence)
        maxSeq = sequence
        badSeq = Self.sequenceModulus + 1
        cycles = 0
        receivedCount = 0
        receivedPrior = 0
        expectedPrior = 0
        recent = [UInt64](repeating: .max, count: recent.count)
    }

    private mutating func counted(sequence: UInt16, timestamp: UInt32, arrival: UInt32, bytes: Int, reordered: Bool) -> Verdict {
        octets += UInt64(max(0, bytes))
        // The extended number of this packet: a reordered one from before the last wrap belongs to the previous cycle.
        var extended = UInt64(cycles) + UInt64(sequence)
        if reordered {
            if sequence > maxSeq, cycles >= Self.sequenceModulus { extended -= UInt64(Self.sequenceModulus) }
            let isDuplicate = recent[Int(extended % UInt64(recent.count))] == extended
            if isDuplicate { duplicates += 1 } else { outOfOrder += 1 }
        } else if recent[Int(extended % UInt64(recent.count))] == extended {
            duplicates += 1  // a repeat of the highest packet
        }
        recent[Int(extended % UInt64(recent.count))] = extended

        // RFC 3550 §A.8: transit = arrival - timestamp; D = transit - previous transit; J += (|D| - J) / 16.
        let currentTransit = Int64(Int32(bitPattern: arrival &- timestamp))
        if let previous = transit {
            let d = abs(currentTransit - previous)
            jitter += (Double(d) - jitter) / 16
        }
        transit = currentTransit
        if let minimum = minimumTransit, currentTransit - minimum > Int64(playoutDelay) {
            late += 1
        }
        minimumTransit = min(minimumTransit ?? currentTransit, currentTransit)
        return .accepted
    }

    // MARK: The numbers (RFC 3550 §6.4.1, §A.3)

    /// The highest sequence number received, extended with the count of wraps (§A.1).
    public var extendedHighestSequence: UInt32 { cycles &+ UInt32(maxSeq) }

    /// Packets expected: extended highest − base + 1 (§A.3).
    public var expected: UInt32 {
        guard started, probation == 0 else { return 0 }
        return extendedHighestSequence &- baseSeq &+ 1
    }

    /// Packets counted as received, including late and duplicated ones.
    public var received: UInt32 { receivedCount }

    /// Expected minus received, clamped to the 24-bit signed field of a report block.
    public var cumulativeLost: Int32 {
        let lost = Int64(expected) - Int64(receivedCount)
        return Int32(max(-0x80_0000, min(0x7F_FFFF, lost)))
    }

    /// The jitter as a report block carries it: timestamp units, rounded down.
    public var reportedJitter: UInt32 { UInt32(min(jitter, Double(UInt32.max))) }

    /// The jitter in milliseconds.
    public var jitterMilliseconds: Double { jitter * 1000 / Double(clockRate) }

    /// The fraction lost since the previous call, in 1/256 (§A.3), and the start of a new interval.
    /// Call once per report sent.
    public mutating func closeInterval() -> UInt8 {
        let expectedNow = expected
        let expectedInterval = expectedNow &- expectedPrior
        expectedPrior = expectedNow
        let receivedInterval = receivedCount &- receivedPrior
        receivedPrior = receivedCount
        let lostInterval = Int64(expectedInterval) - Int64(receivedInterval)
        guard expectedInterval != 0, lostInterval > 0 else { return 0 }
        return UInt8(clamping: (lostInterval << 8) / Int64(expectedInterval))
    }

    /// A copy of the numbers, for events, reports and the load tool.
    public var snapshot: StreamStatistics {
        StreamStatistics(
            expected: expected, received: receivedCount, cumulativeLost: cumulativeLost,
            extendedHighestSequence: extendedHighestSequence, jitter: jitter, jitterMilliseconds: jitterMilliseconds,
            outOfOrder: outOfOrder, late: late, duplicates: duplicates, malformed: malformed, invalid: invalid, octets: octets)
    }
}

/// One received stream's numbers at one moment (see `ReceiverStatistics`).
public struct StreamStatistics: Hashable, Sendable, Codable {
    public var expected: UInt32
    public var received: UInt32
    public var cumulativeLost: Int32
    public var extendedHighestSequence: UInt32
    /// Interarrival jitter in timestamp units (RFC 3550 §6.4.1), and in milliseconds.
    public var jitter: Double
    public var jitterMilliseconds: Double
    public var outOfOrder: UInt64
    public var late: UInt64
    public var duplicates: UInt64
    public var malformed: UInt64
    public var invalid: UInt64
    public var octets: UInt64

    public static let empty = StreamStatistics(
        expected: 0, received: 0, cumulativeLost: 0, extendedHighestSequence: 0, jitter: 0, jitterMilliseconds: 0,
        outOfOrder: 0, late: 0, duplicates: 0, malformed: 0, invalid: 0, octets: 0)

    /// Lost as a share of expected, 0…1 (0 when nothing was expected).
    public var lossRatio: Double { expected == 0 ? 0 : max(0, Double(cumulativeLost)) / Double(expected) }
}
