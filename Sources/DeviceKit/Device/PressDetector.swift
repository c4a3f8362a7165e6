/// Turns the raw level of a call button into the presses a person meant, judged from the edges' timestamps
/// alone: when the owner's timers fire, early, late or in any order, changes when a verdict is given, never
/// which.
///
/// The rules (`PressDetectorPropertyTests` checks them against a model that knows only the timestamps):
/// - A raw level *counts* once it has lasted `debounce`: until the next edge, or for the current level until
///   the instant the owner says has passed. A shorter level is a bounce: reported once (`.glitch` for a press
///   too brief to count, `.bounce` for any other) and otherwise ignored, so the stable level goes on through it.
/// - A stable down period starts at the edge that began its first counting down level and ends at the edge
///   that began the first counting up level after it.
/// - A period that lasts `hold` or longer is exactly one press: `.pressed(at: start)` as soon as it is known
///   to have lasted `hold`, `.released(heldFor:)` when it ends. A shorter one ends as `.tooShort(heldFor:)`.
/// - `longPress` and `stuckAfter` are reported once per period, the same way. A stuck button raises one
///   alarm (its press) and one fault, not an alarm per boot or per minute.
///
/// Time: the owner feeds edges in order with their timestamps (`edge(down:at:)`) and, when its clock passes
/// an instant asked for with `.wakeUp(at:)`, calls `timeReached(_:)` with that instant. `timeReached(t)`
/// promises only that every edge before `t` has been fed; a wake-up that comes late, twice, or after a later
/// edge is harmless. Pure: no clock, no timers of its own.
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

    public enum Action: Hashable, Sendable {
        /// Call `timeReached(at)` once the clock has passed `at`: something may become decidable then.
        case wakeUp(at: Duration)
        /// Down for `hold`: a press. `at` is when it went down.
        case pressed(at: Duration)
        case longPressed(at: Duration)
        case released(heldFor: Duration)
        case tooShort(heldFor: Duration)
        case stuck(since: Duration)
        /// The button went down and came up again within `debounce`: a press too brief to count at all
        /// (a HID report with press and release together, an ACPI button's microseconds).
        case glitch(lasted: Duration)
        /// Any other level shorter than `debounce` (contact chatter), ignored.
        case bounce(down: Bool, lasted: Duration)
    }

    /// Held by reference: every device of a load run shares it (`Shared`).
    private let settings: Shared<Configuration>
    public var configuration: Configuration { settings.value }
    // Stored properties: the 16- and 8-byte ones first, the flags last, to waste little on alignment (a load
    // run holds a million of these).
    /// When the raw level began (its edge).
    private var rawSince: Duration = .zero
    /// When the debounced level began (its edge).
    private var stableSince: Duration = .zero
    /// Every edge before this instant has been fed.
    private var knownUntil: Duration = .zero
    /// Wake-ups asked for and not yet passed, so the same instant is not asked for twice.
    private var pendingWakeUps: Set<Duration> = []
    /// Presses too brief to count (`.glitch`).
    public private(set) var glitches = 0
    /// Other levels shorter than `debounce` (`.bounce`).
    public private(set) var bounces = 0
    /// Edges fed with a timestamp before an earlier edge or an instant already reached; taken as happening
    /// at that instant (a driver that feeds out of order).
    public private(set) var edgesOutOfOrder = 0
    /// The raw level.
    private var rawDown = false
    private var hasEdge = false
    /// The debounced level.
    private var stableDown = false
    private var pressReported = false
    private var longPressReported = false
    private var stuckReported = false

    public init(configuration: Configuration = Configuration()) {
        self.init(settings: Shared(configuration))
    }

    /// A machine whose configuration is shared with others.
    public init(settings: Shared<Configuration>) {
        self.settings = settings
    }

    /// The button's level changed at `at`.
    public mutating func edge(down: Bool, at: Duration) -> [Action] {
        var at = at
        if hasEdge, at < knownUntil {
            edgesOutOfOrder += 1
            at = knownUntil
        }
        var actions = advance(to: at)
        // Not an edge: the level it already has (a release first is the level it starts with).
        guard down != rawDown else { return actions + wakeUpIfNeeded() }
        if hasEdge, at - rawSince < configuration.debounce {
            let lasted = at - rawSince
            if rawDown, !stableDown {
                glitches += 1
                actions.append(.glitch(lasted: lasted))
            } else {
                bounces += 1
                actions.append(.bounce(down: rawDown, lasted: lasted))
            }
        }
        hasEdge = true
        rawDown = down
        rawSince = at
        knownUntil = at
        actions += decide(upTo: at)
        return actions + wakeUpIfNeeded()
    }

    /// The level at start (a key already held when the device boots): an edge at `at`.
    public mutating func initialLevel(down: Bool, at: Duration) -> [Action] {
        edge(down: down, at: at)
    }

    /// The clock has passed `instant`, and every edge before it has been fed.
    public mutating func timeReached(_ instant: Duration) -> [Action] {
        advance(to: instant) + wakeUpIfNeeded()
    }

    // MARK: Deciding

    private mutating func advance(to instant: Duration) -> [Action] {
        guard hasEdge, instant > knownUntil else { return [] }
        knownUntil = instant
        return decide(upTo: instant)
    }

    /// What the timestamps up to `now` decide.
    private mutating func decide(upTo now: Duration) -> [Action] {
        var actions: [Action] = []
        if rawDown != stableDown, now - rawSince >= configuration.debounce {
            if rawDown {
                stableDown = true
                stableSince = rawSince
                pressReported = false
                longPressReported = false
                stuckReported = false
            } else {
                let heldFor = rawSince - stableSince
                actions += reportDuration(heldFor)
                stableDown = false
                actions.append(heldFor >= configuration.hold ? .released(heldFor: heldFor) : .tooShort(heldFor: heldFor))
            }
        }
        if stableDown {
            // A release still settling may yet be a bounce: the period is known to last until it.
            actions += reportDuration((rawDown ? now : rawSince) - stableSince)
        }
        return actions
    }

    /// A wake-up for the next instant worth deciding at, unless one is already asked for.
    private mutating func wakeUpIfNeeded() -> [Action] {
        pendingWakeUps = pendingWakeUps.filter { $0 > knownUntil }
        guard let next = nextDeadline(), pendingWakeUps.insert(next).inserted else { return [] }
        return [.wakeUp(at: next)]
    }

    /// The press, long press and stuck verdicts a down period known to have lasted `known` has earned.
    private mutating func reportDuration(_ known: Duration) -> [Action] {
        var actions: [Action] = []
        if !pressReported, known >= configuration.hold {
            pressReported = true
            actions.append(.pressed(at: stableSince))
        }
        if !longPressReported, known >= configuration.longPress {
            longPressReported = true
            actions.append(.longPressed(at: stableSince))
        }
        if !stuckReported, known >= configuration.stuckAfter {
            stuckReported = true
            actions.append(.stuck(since: stableSince))
        }
        return actions
    }

    /// The earliest instant at which a verdict may fall due without another edge.
    private func nextDeadline() -> Duration? {
        if rawDown != stableDown { return rawSince + configuration.debounce }
        guard stableDown else { return nil }
        return [
            pressReported ? nil : stableSince + configuration.hold,
            longPressReported ? nil : stableSince + configuration.longPress,
            stuckReported ? nil : stableSince + configuration.stuckAfter,
        ].compactMap { $0 }.min()
    }
}

extension PressDetector.Configuration {
    /// A verdict in plain words with the setting that decided it, for logs, `diag analyze` and `selftest`;
    /// `nil` for `.wakeUp`.
    public func explain(_ action: PressDetector.Action) -> String? {
        switch action {
        case .wakeUp: nil
        case .pressed: "held for alarm.hold_ms = \(hold.milliseconds) ms: an alarm"
        case .longPressed: "held for alarm.long_press_ms = \(longPress.milliseconds) ms: a long press"
        case .released(let heldFor): "released after \(heldFor.readable)"
        case .tooShort(let heldFor):
            "a press of \(heldFor.readable) was shorter than alarm.hold_ms = \(hold.milliseconds) ms: no alarm"
        case .stuck: "held for alarm.stuck_after_s = \(stuckAfter.milliseconds / 1000) s: the button is stuck"
        case .glitch(let lasted):
            "a press of \(lasted.readable) was shorter than alarm.debounce_ms = \(debounce.milliseconds) ms and was ignored as a bounce"
        case .bounce(let down, let lasted):
            "a bounce (\(down ? "down" : "up") for \(lasted.readable)) shorter than alarm.debounce_ms = \(debounce.milliseconds) ms was ignored"
        }
    }
}

extension Duration {
    /// `103 ms`, `0.019 ms`, `94 s`, `20 min`: as precise as a person needs.
    var readable: String {
        let micro = microseconds
        if micro == 0 { return "0 ms" }
        if micro < 1000 {
            let digits = String(micro)
            return "0.\(String(repeating: "0", count: 3 - digits.count))\(digits) ms"
        }
        if micro < 10_000_000 { return "\(micro / 1000) ms" }
        let seconds = micro / 1_000_000
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        return "\(seconds / 3600) h \(seconds / 60 % 60) min"
    }
}
