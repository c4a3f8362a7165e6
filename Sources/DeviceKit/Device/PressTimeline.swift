/// Runs a `PressDetector` over edges known in advance — a recording — in the recording's own time: every
/// wake-up is answered at exactly the instant it asks for, so one recording gives the same verdicts on every
/// run, at any speed and any CPU load. The replay backend, `diag analyze` and `diag selftest` judge
/// recordings with it; a live device drives the same detector from its event loop.
///
/// Pure: edges in, verdicts out, with the recording's timestamps.
public enum PressTimeline {
    /// One verdict (never `.wakeUp`) and the instant the detector gave it: an edge's time, or the instant
    /// it became decidable (`hold` after the press for `.pressed`).
    public struct Entry: Hashable, Sendable {
        public var at: Duration
        public var verdict: PressDetector.Action

        public init(at: Duration, verdict: PressDetector.Action) {
            self.at = at
            self.verdict = verdict
        }
    }

    /// The verdicts on `edges` (in time order; a level the button already has is not an edge) once the
    /// clock has reached `end`: what is still undecided then (a release not yet settled) gives none.
    public static func judge(
        _ edges: [ButtonEdge], configuration: PressDetector.Configuration, until end: Duration
    ) -> [Entry] {
        var detector = PressDetector(configuration: configuration)
        var wakeUps: [Duration] = []
        var entries: [Entry] = []
        func record(_ actions: [PressDetector.Action], at: Duration) {
            for action in actions {
                if case .wakeUp(let instant) = action {
                    wakeUps.append(instant)
                } else {
                    entries.append(Entry(at: at, verdict: action))
                }
            }
        }
        func wakeUntil(_ limit: Duration) {
            // Each wake-up may ask for a later one; answer them in time order up to `limit`.
            while let next = wakeUps.min(), next <= limit {
                wakeUps.removeAll { $0 == next }
                record(detector.timeReached(next), at: next)
            }
        }
        for edge in edges {
            wakeUntil(edge.at)
            record(detector.edge(down: edge.down, at: edge.at), at: edge.at)
        }
        wakeUntil(end)
        record(detector.timeReached(end), at: end)
        return entries
    }
}

/// A change of the call button's raw level and when it happened.
public struct ButtonEdge: Hashable, Sendable {
    public var down: Bool
    public var at: Duration

    public init(down: Bool, at: Duration) {
        self.down = down
        self.at = at
    }
}
