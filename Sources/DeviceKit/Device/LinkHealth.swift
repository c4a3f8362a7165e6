/// Whether the device can reach its centre, told to the person at home (the fault indicator), the technician
/// and the log: the link machine reconnects by itself, and this decides when its trouble is a fault.
///
/// - **Down** once the link machine declares a session dead (silent, or unanswered while messages waited), or
///   once `attemptsBeforeDown` attempts in a row failed without a session: at boot, the first attempts; after
///   a session closed, the attempts to reopen it, so a centre restart that takes the device back at once is
///   no fault.
/// - **Restored** at the next session, with how long the device was without one (from the end of the last
///   session, or from the start).
/// - While down, a **reminder** every `remindEvery` (10 minutes), so a log read hours later still shows it.
///
/// Pure: time comes in as `now`; causes come as plain words from the owner, who knows the socket errors.
public struct LinkHealth: Sendable {
    public struct Configuration: Hashable, Sendable {
        public var attemptsBeforeDown: Int
        public var remindEvery: Duration

        public init(attemptsBeforeDown: Int = 2, remindEvery: Duration = .seconds(600)) {
            self.attemptsBeforeDown = attemptsBeforeDown
            self.remindEvery = remindEvery
        }
    }

    public enum Timer: Hashable, Sendable {
        case reminder(generation: Int)
    }

    public enum Action: Hashable, Sendable {
        /// The centre cannot be reached: show the fault, warn with the cause.
        case down(cause: String)
        /// A session is open again after `after` without one.
        case restored(after: Duration)
        /// Still down, `for` since the last session (or the start).
        case stillDown(for: Duration, cause: String)
        case scheduleTimer(Timer, after: Duration)
    }

    /// Held by reference: every device of a load run shares it (`Shared`).
    private let settings: Shared<Configuration>
    public var configuration: Configuration { settings.value }
    public private(set) var isDown = false
    private var failures = 0
    private var cause = ""
    /// When the device was last without a session: the start, or the end of the last session.
    private var withoutSessionSince: Duration = .zero
    private var generation = 0

    public init(configuration: Configuration = Configuration()) {
        self.init(settings: Shared(configuration))
    }

    /// A machine whose configuration is shared with others.
    public init(settings: Shared<Configuration>) {
        self.settings = settings
    }

    /// The device starts, without a session.
    public mutating func started(now: Duration) {
        withoutSessionSince = now
    }

    /// An attempt to open a session failed (`cause` in plain words, e.g. "nothing listens on that port").
    public mutating func attemptFailed(cause: String, now: Duration) -> [Action] {
        failures += 1
        self.cause = cause
        guard !isDown, failures >= configuration.attemptsBeforeDown else { return [] }
        return goDown()
    }

    /// The session ended. `dead`: the link machine declared it dead (silence); otherwise it closed and the
    /// device tries again before calling it a fault.
    public mutating func sessionLost(dead: Bool, cause: String, now: Duration) -> [Action] {
        withoutSessionSince = now
        failures = 0
        self.cause = cause
        guard dead, !isDown else { return [] }
        return goDown()
    }

    /// The device cannot seal a frame at all (its counter reservation is lost): down until it is fixed.
    public mutating func cannotSeal(cause: String) -> [Action] {
        self.cause = cause
        guard !isDown else { return [] }
        return goDown()
    }

    public mutating func sessionEstablished(now: Duration) -> [Action] {
        failures = 0
        guard isDown else { return [] }
        isDown = false
        generation += 1
        return [.restored(after: now - withoutSessionSince)]
    }

    public mutating func timerFired(_ timer: Timer, now: Duration) -> [Action] {
        switch timer {
        case .reminder(let g):
            guard g == generation, isDown else { return [] }
            return [
                .stillDown(for: now - withoutSessionSince, cause: cause),
                .scheduleTimer(.reminder(generation: g), after: configuration.remindEvery),
            ]
        }
    }

    private mutating func goDown() -> [Action] {
        isDown = true
        generation += 1
        return [.down(cause: cause), .scheduleTimer(.reminder(generation: generation), after: configuration.remindEvery)]
    }
}
