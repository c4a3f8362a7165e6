/// The device's voice with a centre whose voice is SIP (`[voice] sip`, docs/sip.md "A home that calls out
/// over SIP"): when to call the centre, when to try again, when to hang up, and which calls to answer.
///
/// ```
///  idle ──alarmAcknowledged──► calling(1) ──answered──► talking ──ended──► idle
///   ▲                            │  ▲                      ▲
///   │     failed, refused, busy: │  │ retry timer          │ incoming call from the centre's host
///   │     attempts left ────► waiting(n+1)                 │ while an alarm is open, or within the
///   └──── none left: gaveUp ◄────┘                         │ callback window after the last one
///  case closed / cancelled: hang up (calling, talking), forget the retry (waiting)
/// ```
/// A call answered and then ended (by the operator or by the device) is not placed again: the centre calls
/// back if it needs to. A busy centre (486, 600) is tried at most `maximumBusyAttempts` times; a declined
/// call (603) and a challenge the device has no password for (401, 407) are not tried again. Incoming calls
/// from anyone but the centre, and the centre's calls with no alarm open nor recently ended, are refused
/// with 603 Decline, as protocol.md §4.8 declines calls without an alarm: nobody listens in unasked. A
/// second call while one is up is refused with 486 Busy Here.
///
/// Pure: time comes in as `now` (monotonic); the owner places and ends the calls (`SIPPhone`).
public struct SIPVoiceMachine: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// Calls placed for one alarm at most, the first included.
        public var maximumAttempts: Int
        /// Of which at most this many to a busy centre.
        public var maximumBusyAttempts: Int
        /// The wait before the second attempt, doubled before each later one.
        public var retryAfter: Duration
        /// The centre's calls are answered this long after the last alarm ended or the last call did.
        public var callbackWindow: Duration

        public init(maximumAttempts: Int = 3, maximumBusyAttempts: Int = 2, retryAfter: Duration = .seconds(5), callbackWindow: Duration = .seconds(300)) {
            self.maximumAttempts = maximumAttempts
            self.maximumBusyAttempts = maximumBusyAttempts
            self.retryAfter = retryAfter
            self.callbackWindow = callbackWindow
        }
    }

    public enum Timer: Hashable, Sendable {
        case retry(generation: Int)
    }

    /// How a call ended, as far as trying again is concerned.
    public enum Outcome: Hashable, Sendable {
        /// It was answered, then hung up by either side.
        case ended
        case busy(statusCode: Int)
        /// Declined (603), or a challenge without credentials (401, 407): trying again would not help.
        case final(statusCode: Int)
        /// Refused otherwise, unanswered, or the network failed.
        case failed

        public init(_ end: SIPUserAgent.CallEnd, answered: Bool) {
            if answered { self = .ended; return }
            switch end {
            case .refused(let code, _) where code == 486 || code == 600: self = .busy(statusCode: code)
            case .refused(let code, _) where code == 603 || code == 401 || code == 407: self = .final(statusCode: code)
            case .refused, .timedOut, .failed, .hungUp, .byPeer, .cancelledByCaller, .noAcknowledgement: self = .failed
            }
        }
    }

    public enum Action: Hashable, Sendable {
        /// Call the centre about `alarmID`; report `answered`, then `ended`.
        case place(alarmID: UInt32, attempt: Int)
        /// Hang up (or cancel) the call that is up; its `ended` still comes.
        case hangUp
        case scheduleTimer(Timer, after: Duration)
        /// The call failed; attempt `attempt` follows after `after`.
        case retrying(alarmID: UInt32, attempt: Int, after: Duration)
        /// No attempt is left (or none would help): the alarm has no voice call.
        case gaveUp(alarmID: UInt32, attempts: Int)
    }

    private enum State: Hashable, Sendable {
        case idle
        case calling(alarmID: UInt32, attempt: Int, busy: Int)
        case talking
        case waiting(alarmID: UInt32, attempt: Int, busy: Int)
    }

    public var configuration: Configuration
    private var state: State = .idle
    /// The alarm acknowledged and not yet closed, cancelled or handed over.
    private var alarmID: UInt32?
    /// The alarm whose call is placed and tried again: until its case closes or it is cancelled (over DC-09
    /// past its hand-over: no case will close there).
    private var callsFor: UInt32?
    /// When the last alarm ended or the last call did: the callback window counts from there.
    private var lastActivity: Duration?
    private var generation = 0

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Whether a SIP call is being placed or is up (our protocol's call offers are declined meanwhile).
    public var isBusy: Bool {
        switch state {
        case .calling, .talking: true
        case .idle, .waiting: false
        }
    }

    /// The centre acknowledged the alarm: call it, unless a call is already up (the centre called first).
    public mutating func alarmAcknowledged(_ alarmID: UInt32) -> [Action] {
        self.alarmID = alarmID
        callsFor = alarmID
        switch state {
        case .idle:
            state = .calling(alarmID: alarmID, attempt: 1, busy: 0)
            return [.place(alarmID: alarmID, attempt: 1)]
        case .waiting:
            generation += 1  // a new alarm starts its own attempts
            state = .calling(alarmID: alarmID, attempt: 1, busy: 0)
            return [.place(alarmID: alarmID, attempt: 1)]
        case .calling, .talking:
            return []
        }
    }

    /// The alarm's case closed or the person cancelled it (`hangUp`), or, over DC-09, the device's part of
    /// it ended (not `hangUp`: no case will close, the call goes on and its retries too).
    public mutating func alarmEnded(_ alarmID: UInt32, hangUp: Bool, now: Duration) -> [Action] {
        if self.alarmID == alarmID {
            self.alarmID = nil
            lastActivity = now
        }
        guard hangUp, callsFor == alarmID else { return [] }
        callsFor = nil
        switch state {
        case .calling, .talking:
            return [.hangUp]
        case .waiting:
            generation += 1
            state = .idle
            return []
        case .idle:
            return []
        }
    }

    /// The call placed was answered.
    public mutating func answered() -> [Action] {
        guard case .calling = state else { return [] }  // an answer after our hang-up crossed it
        state = .talking
        return []
    }

    /// The call that was up ended.
    public mutating func ended(_ outcome: Outcome, now: Duration) -> [Action] {
        lastActivity = now
        switch state {
        case .idle, .waiting:
            return impossibleTransition("SIPVoiceMachine.ended without a call up (\(state))")
        case .talking:
            state = .idle
            return []
        case .calling(let alarm, let attempt, var busy):
            state = .idle
            guard callsFor == alarm else { return [] }  // closed or cancelled meanwhile: no retry
            if case .busy = outcome { busy += 1 }
            let again: Bool
            switch outcome {
            case .ended, .final: again = false
            case .busy: again = busy < configuration.maximumBusyAttempts
            case .failed: again = true
            }
            guard again, attempt < configuration.maximumAttempts else { return [.gaveUp(alarmID: alarm, attempts: attempt)] }
            generation += 1
            let after = configuration.retryAfter * (1 << min(attempt - 1, 10))
            state = .waiting(alarmID: alarm, attempt: attempt + 1, busy: busy)
            return [.retrying(alarmID: alarm, attempt: attempt + 1, after: after), .scheduleTimer(.retry(generation: generation), after: after)]
        }
    }

    public mutating func timerFired(_ timer: Timer) -> [Action] {
        guard case .retry(let g) = timer, g == generation, case .waiting(let alarm, let attempt, let busy) = state else { return [] }
        state = .calling(alarmID: alarm, attempt: attempt, busy: busy)
        return [.place(alarmID: alarm, attempt: attempt)]
    }

    /// A call came in, `fromCentre` if from the configured centre's host: nil to answer it (it is then the
    /// call that is up), or the status to refuse it with.
    public mutating func incoming(fromCentre: Bool, now: Duration) -> Int? {
        guard fromCentre else { return 603 }
        switch state {
        case .calling, .talking: return 486
        case .idle, .waiting: break
        }
        let recent = lastActivity.map { now - $0 <= configuration.callbackWindow } ?? false
        guard alarmID != nil || recent else { return 603 }
        if case .waiting = state { generation += 1 }  // the centre called: no need to call it
        state = .talking
        return nil
    }

    /// The driver stops: hang up what is up.
    public mutating func stop() -> [Action] {
        defer {
            state = .idle
            generation += 1
        }
        return isBusy ? [.hangUp] : []
    }
}
