/// Turns the raw level of a call button into presses a person meant: debounced, held long enough, and with
/// chatter, too-short presses and a stuck button counted.
///
/// A level counts only once it has been stable for `debounce`; a press counts once the button has been down
/// for `hold` (measured from the first edge of the stable level). Released before `hold` is `tooShort`.
/// Held for `stuckAfter` is `stuck` (a button jammed by furniture must not raise an alarm every boot).
///
/// Pure: the owner feeds edges with their time and runs the timers it asks for.
public struct PressDetector: Sendable {
    public struct Configuration: Hashable, Sendable {
        public var debounce: Duration
        public var hold: Duration
        public var longPress: Duration
        public var stuckAfter: Duration
        public init(
            debounce: Duration = .milliseconds(30), hold: Duration = .milliseconds(100),
            longPress: Duration = .seconds(3), stuckAfter: Duration = .seconds(60)
        ) {
            self.debounce = debounce
            self.hold = max(hold, debounce)
            self.longPress = longPress
            self.stuckAfter = stuckAfter
        }
    }

    public enum Timer: Hashable, Sendable {
        case settle(generation: Int)
        case hold(generation: Int)
        case longPress(generation: Int)
        case stuck(generation: Int)
    }

    public enum Action: Hashable, Sendable {
        case scheduleTimer(Timer, after: Duration)
        /// Down for `hold`: a press. `at` is when it went down.
        case pressed(at: Duration)
        case longPressed(at: Duration)
        case released(heldFor: Duration)
        case tooShort(heldFor: Duration)
        case stuck(since: Duration)
    }

    public let configuration: Configuration
    /// The raw level and when it last changed.
    private var rawDown = false
    private var rawSince: Duration = .zero
    /// The debounced level and when it started (at its first edge).
    private var stableDown = false
    private var stableSince: Duration = .zero
    private var pressReported = false
    /// Settle timers: bumped by every raw edge.
    private var generation = 0
    /// Hold, long-press and stuck timers: bumped only when the debounced level changes, so chatter while
    /// held does not cancel a press.
    private var stableGeneration = 0
    private var hasEdge = false
    /// Edges that did not last `debounce`.
    public private(set) var chatter = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// The button's level changed at `at`.
    public mutating func edge(down: Bool, at: Duration) -> [Action] {
        guard down != rawDown else { return [] }
        if hasEdge, at - rawSince < configuration.debounce { chatter += 1 }
        hasEdge = true
        rawDown = down
        rawSince = at
        generation += 1
        return [.scheduleTimer(.settle(generation: generation), after: configuration.debounce)]
    }

    /// The level at start (a key already held when the device boots).
    public mutating func initialLevel(down: Bool, at: Duration) -> [Action] {
        edge(down: down, at: at)
    }

    public mutating func timerFired(_ timer: Timer, now: Duration) -> [Action] {
        switch timer {
        case .settle(let g):
            guard g == generation else { return [] }
            guard rawDown != stableDown else {
                // Bounce that came back: a hold that ended meanwhile still counts.
                if stableDown, !pressReported, now - stableSince >= configuration.hold {
                    pressReported = true
                    return [.pressed(at: stableSince)]
                }
                return []
            }
            stableDown = rawDown
            stableGeneration += 1
            let sg = stableGeneration
            if stableDown {
                stableSince = rawSince
                pressReported = false
                let held = now - stableSince
                return [
                    .scheduleTimer(.hold(generation: sg), after: max(.zero, configuration.hold - held)),
                    .scheduleTimer(.longPress(generation: sg), after: max(.zero, configuration.longPress - held)),
                    .scheduleTimer(.stuck(generation: sg), after: max(.zero, configuration.stuckAfter - held)),
                ]
            }
            let heldFor = rawSince - stableSince
            return [pressReported ? .released(heldFor: heldFor) : .tooShort(heldFor: heldFor)]
        case .hold(let g):
            // A release still settling is not a hold; if it was a bounce, the settle reports the press.
            guard g == stableGeneration, stableDown, rawDown, !pressReported else { return [] }
            pressReported = true
            return [.pressed(at: stableSince)]
        case .longPress(let g):
            guard g == stableGeneration, stableDown else { return [] }
            return [.longPressed(at: stableSince)]
        case .stuck(let g):
            guard g == stableGeneration, stableDown else { return [] }
            return [.stuck(since: stableSince)]
        }
    }
}
