import Testing

@testable import DeviceKit

/// `PressDetector`'s verdicts against a model that knows only the edges' timestamps, over random edge
/// sequences fed with random timer lateness, order, repetition and loss.
///
/// The model (the rules of `PressDetector`'s doc comment, computed over whole intervals): a raw level counts
/// when it lasted `debounce`; the stable level changes at the first edge of each counting level that differs
/// from it; a stable down period of `hold` or more is exactly one press, a shorter one is too short.
@Suite struct PressDetectorPropertyTests {
    /// `make test` runs at least 100,000 cases (the issue's figure).
    static let cases = 100_000

    struct Verdicts: Equatable, CustomStringConvertible {
        /// `.pressed`, `.released`, `.tooShort` in order.
        var periods: [PressDetector.Action] = []
        var longPresses: [Duration] = []
        var stuck: [Duration] = []
        var glitches: [Duration] = []
        var bounces: [PressDetector.Action] = []

        var description: String {
            "periods \(periods), long \(longPresses), stuck \(stuck), glitches \(glitches), bounces \(bounces)"
        }

        mutating func record(_ action: PressDetector.Action) {
            switch action {
            case .wakeUp: break
            case .pressed, .released, .tooShort: periods.append(action)
            case .longPressed(let at): longPresses.append(at)
            case .stuck(let since): stuck.append(since)
            case .glitch(let lasted): glitches.append(lasted)
            case .bounce: bounces.append(action)
            }
        }
    }

    /// The verdicts of edges `(down, at)` (in time order) once everything up to `end` is known.
    static func model(_ edges: [(down: Bool, at: Duration)], end: Duration, _ c: PressDetector.Configuration) -> Verdicts {
        var v = Verdicts()
        // Repeated levels are not edges.
        var levels: [(down: Bool, at: Duration)] = []
        for edge in edges where levels.last?.down != edge.down { levels.append(edge) }
        if levels.first?.down == false { levels.removeFirst() }  // the level it starts with
        var stable = false
        var since = Duration.zero
        func closePeriod(at end: Duration) -> [PressDetector.Action] {
            let held = end - since
            var actions: [PressDetector.Action] = []
            if held >= c.longPress { v.longPresses.append(since) }
            if held >= c.stuckAfter { v.stuck.append(since) }
            actions += held >= c.hold ? [.pressed(at: since), .released(heldFor: held)] : [.tooShort(heldFor: held)]
            return actions
        }
        for (index, level) in levels.enumerated() {
            let isLast = index == levels.count - 1
            let lasted = (isLast ? end : levels[index + 1].at) - level.at
            guard lasted >= c.debounce else {
                if !isLast {
                    if level.down, !stable { v.glitches.append(lasted) } else { v.bounces.append(.bounce(down: level.down, lasted: lasted)) }
                }
                continue
            }
            guard level.down != stable else { continue }
            if level.down {
                since = level.at
            } else {
                v.periods += closePeriod(at: level.at)
            }
            stable = level.down
        }
        if stable, let last = levels.last {
            let known = (last.down ? end : last.at) - since
            if known >= c.hold { v.periods.append(.pressed(at: since)) }
            if known >= c.longPress { v.longPresses.append(since) }
            if known >= c.stuckAfter { v.stuck.append(since) }
        }
        return v
    }

    /// Feeds the edges to a detector, answering its wake-ups late, early-before-later, twice or never, in
    /// any order allowed by causality (a wake-up for `t` only after every edge before `t`), then says the
    /// clock reached `end`.
    static func detector(
        _ edges: [(down: Bool, at: Duration)], end: Duration, _ c: PressDetector.Configuration, _ random: inout SplitMix64
    ) -> (Verdicts, PressDetector) {
        var d = PressDetector(configuration: c)
        var v = Verdicts()
        var pending: [Duration] = []
        func run(_ actions: [PressDetector.Action]) {
            for action in actions {
                if case .wakeUp(let at) = action {
                    if random.nextUnit() < 0.05 { continue }  // lost
                    pending.append(at)
                    if random.nextUnit() < 0.05 { pending.append(at) }  // fired twice
                }
                v.record(action)
            }
        }
        var next = 0
        while next < edges.count || !pending.isEmpty {
            let nextEdge = next < edges.count ? edges[next].at : nil
            // Wake-ups that may fire now: every edge before them has been fed.
            let ready = pending.indices.filter { i in pending[i] <= end && (nextEdge.map { pending[i] <= $0 } ?? true) }
            if let edgeAt = nextEdge, ready.isEmpty || random.nextUnit() < 0.5 {
                run(next == 0 && random.nextUnit() < 0.5 ? d.initialLevel(down: edges[next].down, at: edgeAt) : d.edge(down: edges[next].down, at: edgeAt))
                next += 1
            } else if !ready.isEmpty {
                let i = ready[Int(random.next() % UInt64(ready.count))]
                let at = pending.remove(at: i)
                run(d.timeReached(at))
            } else {
                pending.removeAll()  // only wake-ups past the end remain
            }
        }
        run(d.timeReached(end))
        return (v, d)
    }

    /// A gap between edges, drawn to land near the thresholds as often as far from them.
    static func gap(_ c: PressDetector.Configuration, _ random: inout SplitMix64) -> Duration {
        func uniform(_ upper: Duration) -> Duration { .nanoseconds(Int64(random.nextUnit() * Double(upper.nanoseconds))) }
        let nanosecond = Duration.nanoseconds(1)
        switch random.next() % 10 {
        case 0, 1, 2: return uniform(c.debounce * 2)
        case 3, 4, 5: return uniform(c.hold * 2)
        case 6: return [.zero, c.debounce, c.debounce - nanosecond, c.hold, c.hold - nanosecond, c.hold + nanosecond,
                        c.hold - c.debounce, c.longPress][Int(random.next() % 8)]
        case 7: return uniform(c.longPress * 2)
        case 8: return uniform(c.stuckAfter + c.stuckAfter / 2)
        default: return uniform(.microseconds(50))
        }
    }

    @Test func verdictsDependOnlyOnTheEdgesTimestamps() {
        var random = SplitMix64(seed: 0x5EED_B077_0000_0011)
        var failures = 0
        for index in 0..<Self.cases {
            let debounce = Duration.milliseconds(Int64(random.next() % 50))
            let c = PressDetector.Configuration(
                debounce: debounce, hold: debounce + .milliseconds(Int64(random.next() % 150)),
                longPress: .milliseconds(400), stuckAfter: .milliseconds(1200))
            var at = Duration.milliseconds(Int64(random.next() % 1000)) - .milliseconds(500)
            var down = random.next() % 2 == 0
            var edges: [(down: Bool, at: Duration)] = []
            for _ in 0..<Int(random.next() % 14) {
                edges.append((down, at))
                if random.next() % 8 != 0 { down.toggle() }  // sometimes a repeated level
                at += max(.zero, Self.gap(c, &random))  // edges come in time order
            }
            let end = (edges.last?.at ?? .zero) + [.zero, max(.zero, Self.gap(c, &random)), c.stuckAfter * 2][Int(random.next() % 3)]
            let expected = Self.model(edges, end: end, c)
            let (got, detector) = Self.detector(edges, end: end, c, &random)
            if got != expected {
                failures += 1
                if failures <= 3 {
                    Issue.record("case \(index): edges \(edges.map { "\($0.down ? "↓" : "↑")\($0.at)" }), end \(end), \(c)\n expected \(expected)\n got      \(got)")
                }
            }
            #expect(detector.edgesOutOfOrder == 0, "the driver fed edges in order")
        }
        #expect(failures == 0)
    }

    /// The model itself, on cases worked by hand, so the property test does not check the detector against
    /// a copy of its own mistakes.
    @Test func theModelGivesTheVerdictsWorkedByHand() {
        let c = PressDetector.Configuration(debounce: .milliseconds(30), hold: .milliseconds(100), longPress: .seconds(3), stuckAfter: .seconds(60))
        func ms(_ v: Int) -> Duration { .milliseconds(v) }
        // A 103 ms press: one press.
        #expect(Self.model([(true, .zero), (false, ms(103))], end: .seconds(1), c).periods == [.pressed(at: .zero), .released(heldFor: ms(103))])
        // A 99 ms press: too short.
        #expect(Self.model([(true, .zero), (false, ms(99))], end: .seconds(1), c).periods == [.tooShort(heldFor: ms(99))])
        // Chatter at the start and a bounce in the middle: one press from the last down edge before it settled.
        let chatter = Self.model([(true, .zero), (false, ms(2)), (true, ms(4)), (false, ms(60)), (true, ms(65)), (false, ms(200))], end: .seconds(1), c)
        #expect(chatter.periods == [.pressed(at: ms(4)), .released(heldFor: ms(196))])
        #expect(chatter.glitches == [ms(2)])
        #expect(chatter.bounces == [.bounce(down: false, lasted: ms(2)), .bounce(down: false, lasted: ms(5))])
        // A release 10 ms before the end is not yet known: the press is, from its first 100 ms.
        #expect(Self.model([(true, .zero), (false, ms(150))], end: ms(160), c).periods == [.pressed(at: .zero)])
        // A 0 ms HID report: a glitch, no press.
        let hid = Self.model([(true, ms(5)), (false, ms(5))], end: .seconds(1), c)
        #expect(hid.periods.isEmpty)
        #expect(hid.glitches == [.zero])
    }
}
