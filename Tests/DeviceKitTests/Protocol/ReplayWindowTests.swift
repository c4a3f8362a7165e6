import PropertyBased
import Testing

@testable import DeviceKit

/// The 64-frame sliding window over counters (protocol.md §3.4, RFC 4303 §3.4.3).
@Suite struct ReplayWindowTests {
    enum Outcome: Equatable, CustomStringConvertible {
        case accepted, replayed, stale
        var description: String { "\(self == .accepted ? "accepted" : self == .replayed ? "replayed" : "stale")" }
    }

    /// Offers each counter in turn with `accept`, and returns what happened to each.
    static func run(floor: UInt64, _ counters: [UInt64]) -> [Outcome] {
        var window = ReplayWindow(floor: floor)
        return counters.map { window.offer($0) }
    }

    /// Runs a transcript of `(counter, expected outcome)` lines.
    static func transcript(floor: UInt64, _ lines: [(UInt64, Outcome)], sourceLocation: SourceLocation = #_sourceLocation) {
        var window = ReplayWindow(floor: floor)
        for (i, (counter, expected)) in lines.enumerated() {
            let outcome = window.offer(counter)
            #expect(outcome == expected, "line \(i): counter \(counter)", sourceLocation: sourceLocation)
        }
    }

    @Test func theFloorAndEverythingBelowItIsStaleAndTheNextCounterIsFresh() {
        Self.transcript(floor: 65_536, [
            (0, .stale), (1, .stale), (65_535, .stale), (65_536, .stale),
            (65_537, .accepted), (65_536, .stale), (65_537, .replayed),
        ])
        var window = ReplayWindow(floor: 65_536)
        #expect(window.floor == 65_536)
        #expect(window.highest == 65_536)
        #expect(throws: ProtocolError.stale(counter: 65_536)) { try window.check(65_536) }
        #expect(throws: ProtocolError.stale(counter: 65_536)) { try window.accept(65_536) }
        #expect(throws: Never.self) { try window.accept(65_537) }
        #expect(window.highest == 65_537)
    }

    @Test func aCounterAcceptedOnceIsReplayedEverAfterWhileInTheWindow() {
        var window = ReplayWindow(floor: 0)
        for counter in UInt64(1)...100 {
            #expect(throws: Never.self) { try window.accept(counter) }
        }
        for counter in UInt64(37)...100 {
            #expect(throws: ProtocolError.replayed(counter: counter)) { try window.check(counter) }
            #expect(throws: ProtocolError.replayed(counter: counter)) { try window.accept(counter) }
        }
        // Counters that slid out of the window are stale, not replayed.
        for counter in UInt64(1)...36 {
            #expect(throws: ProtocolError.stale(counter: counter)) { try window.check(counter) }
        }
        #expect(ProtocolError.replayed(counter: 1).category == .replayed)
        #expect(ProtocolError.stale(counter: 1).category == .stale)
    }

    @Test func sixtyThreeBelowTheHighestIsStillInTheWindowSixtyFourBelowIsStale() {
        Self.transcript(floor: 1_000, [
            (1_100, .accepted),
            (1_037, .accepted),  // 63 below
            (1_036, .stale),  // 64 below
            (1_037, .replayed),
            (1_001, .stale),
            (1_101, .accepted),  // the window slides by one: 1_037 is now 64 below
            (1_037, .stale),
            (1_038, .accepted),  // 63 below
        ])
    }

    @Test func framesReorderedWithinTheWindowAreAllAccepted() {
        // As UDP delivers them: late, early, and in reverse.
        let order: [UInt64] = [105, 101, 103, 102, 110, 104, 109, 106, 108, 107, 170, 111, 169, 140, 112]
        #expect(Self.run(floor: 100, order) == Array(repeating: .accepted, count: order.count))
        // And every one of them is then replayed, except those the window slid past (more than 63 below 170).
        var window = ReplayWindow(floor: 100)
        for c in order { _ = window.offer(c) }
        for c in order {
            #expect(window.offer(c) == (170 - c > 63 ? .stale : .replayed), "counter \(c)")
        }
    }

    @Test func aJumpOfMoreThanTheWindowForgetsEverythingBelow() {
        Self.transcript(floor: 0, [
            (1, .accepted), (2, .accepted), (3, .accepted),
            (1_000_000, .accepted),
            (3, .stale), (999_937, .accepted), (999_936, .stale), (999_999, .accepted), (1_000_000, .replayed),
            (1_000_064, .accepted),  // exactly 64 ahead: 1_000_000 is now 64 below
            (1_000_000, .stale), (1_000_001, .accepted),
        ])
    }

    @Test func checkingNeverChangesTheWindowAndRefusedAcceptsDoNotEither() {
        var window = ReplayWindow(floor: 10)
        for counter in [UInt64(11), 500, 10_000, .max] {
            #expect(throws: Never.self) { try window.check(counter) }
        }
        #expect(window == ReplayWindow(floor: 10))
        #expect(throws: Never.self) { try window.accept(20) }
        let before = window
        #expect(throws: ProtocolError.self) { try window.accept(20) }
        #expect(throws: ProtocolError.self) { try window.accept(5) }
        #expect(window == before)
    }

    @Test func theWindowWorksUpToTheLast48BitCounterAndForDownCounters() {
        let top = Wire.maximumUpCounter
        Self.transcript(floor: top - 100, [(top, .accepted), (top - 63, .accepted), (top - 64, .stale), (top, .replayed)])
        // Down counters are salt << 32 | sequence; sequence 0 (sessionAccept) must be acceptable above a floor of
        // the salt's previous value.
        let salt: UInt64 = 0x5a17_c0de << 32
        Self.transcript(floor: salt - 1, [(salt, .accepted), (salt | 1, .accepted), (salt | 3, .accepted), (salt | 2, .accepted), (salt, .replayed)])
    }

    /// The window against a model written from protocol.md §3.4: a set of accepted counters and the highest.
    @Test func theWindowBehavesLikeTheSpecifiedModelOnArbitrarySequences() async {
        let steps = zip(Gen.uint8(in: 0...9), Gen.uint64(in: 0...200), Gen.uint64(in: 0...5_000)).map { kind, small, large -> Int64 in
            // Mostly small moves around the highest, sometimes big jumps forward.
            kind == 0 ? Int64(large) : Int64(small) - 100
        }
        await propertyCheck(count: 300, input: Gen.uint64(in: 0...1_000), steps.array(of: 1...300)) { floor, moves in
            var window = ReplayWindow(floor: floor)
            var accepted = Set<UInt64>()
            var highest = floor
            for move in moves {
                let counter = UInt64(max(0, Int64(highest) + move))
                let expected: Outcome =
                    if counter <= floor || highest - min(highest, counter) > 63 { .stale }
                    else if accepted.contains(counter) { .replayed }
                    else { .accepted }
                let outcome = window.offer(counter)
                #expect(outcome == expected, "floor \(floor), highest \(highest), counter \(counter)")
                if expected == .accepted {
                    accepted.insert(counter)
                    highest = max(highest, counter)
                }
                #expect(window.highest == highest)
            }
        }
    }
}

extension ReplayWindow {
    /// `accept`, as an outcome.
    fileprivate mutating func offer(_ counter: UInt64) -> ReplayWindowTests.Outcome {
        do {
            try accept(counter)
            return .accepted
        } catch .replayed(let c) where c == counter {
            return .replayed
        } catch .stale(let c) where c == counter {
            return .stale
        } catch {
            Issue.record("unexpected \(error) for counter \(counter)")
            return .stale
        }
    }
}
