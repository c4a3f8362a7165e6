/// One alarm's life on the device, from the press to the closed case, and what the person sees meanwhile.
///
/// ```
///  idle ──press──► storing ──stored──► sending ──ack──► delivered ──operatorEngaged──► helpComing
///   ▲                 │                  │  │                                            │
///   │            storeFailed:            │  └─cancel (within the window)──► idle          │
///   │            fault, retry            │                                               │
///   └────────────────────────────── caseUpdate(closed) ◄─────────────────────────────────┘
/// ```
/// The alarm is sent at once; the cancel window (10 s by default, as telecare hubs use) lets the person
/// withdraw it, and the centre is told with `alarmCancel`. A press while an alarm is open does not open a
/// second case: it is reported as `event(pressDuringAlarm)`. The indicator shows "sending" only once the
/// alarm is on durable storage, so "registered" never lies.
///
/// Pure: time comes in as `now`; the owner stores, sends and drives the indicators.
public struct AlarmMachine: Sendable {
    public enum Timer: Hashable, Sendable {
        case retryStore(generation: Int)
        /// Over DC-09: the cancel window of a delivered alarm ended; the device's part is done.
        case handedOver(generation: Int)
    }

    public enum Action: Hashable, Sendable {
        /// Store a new alarm durably (the outbox draws its id), then call `stored`.
        case storeAlarm(kind: AlarmKind, pressedAt: Duration, holdMilliseconds: UInt16?)
        /// Store a cancel of `alarmID` durably; the outbox sends it.
        case storeCancel(alarmID: UInt32)
        /// Store a device event durably; the outbox sends it.
        case storeEvent(DeviceEventKind, value: UInt32)
        case setIndicator(IndicatorState)
        case scheduleTimer(Timer, after: Duration)
        /// A step of the story, for logs, the demo and the console.
        case story(AlarmStory)
    }

    private enum State: Hashable, Sendable {
        case idle
        case storing(kind: AlarmKind, pressedAt: Duration, hold: UInt16?)
        case open(alarm: Alarm, phase: Phase, pressedAt: Duration)
    }

    private enum Phase: Hashable, Sendable {
        case sending, delivered, helpComing, speaking
    }

    public var cancelWindow: Duration
    private var state: State = .idle
    private var generation = 0
    private var repeatedPresses: UInt16 = 0
    /// The case state shown, so a late or reordered update never moves it back.
    private var caseState: CaseState?

    public init(cancelWindow: Duration = .seconds(10)) {
        self.cancelWindow = cancelWindow
    }

    /// The open alarm, if any.
    public var openAlarm: Alarm? {
        if case .open(let alarm, _, _) = state { return alarm }
        return nil
    }

    public var isIdle: Bool {
        if case .idle = state { return true }
        return false
    }

    /// The button was pressed (debounced and held long enough).
    public mutating func pressed(kind: AlarmKind, at: Duration, heldFor: Duration? = nil) -> [Action] {
        switch state {
        case .idle:
            let hold = heldFor.map { UInt16(clamping: $0.milliseconds) }
            state = .storing(kind: kind, pressedAt: at, hold: hold)
            caseState = nil
            repeatedPresses = 0
            return [.story(.pressed(kind)), .storeAlarm(kind: kind, pressedAt: at, holdMilliseconds: hold)]
        case .storing:
            return []  // the same call for help, not yet stored: nothing more to tell anyone
        case .open(let alarm, _, _):
            repeatedPresses &+= 1
            return [.story(.pressedAgain(alarmID: alarm.id)), .storeEvent(.pressDuringAlarm, value: alarm.id)]
        }
    }

    /// The alarm is on durable storage with its id.
    public mutating func stored(_ alarm: Alarm) -> [Action] {
        guard case .storing(_, let pressedAt, _) = state else {
            return impossibleTransition("AlarmMachine.stored(\(alarm.id)) without a storeAlarm in progress (\(state))")
        }
        state = .open(alarm: alarm, phase: .sending, pressedAt: pressedAt)
        generation += 1
        return [.story(.stored(alarmID: alarm.id)), .setIndicator(.sending)]
    }

    /// Storing failed: show the fault and try again shortly; the press is not forgotten.
    public mutating func storeFailed() -> [Action] {
        guard case .storing = state else {
            return impossibleTransition("AlarmMachine.storeFailed without a storeAlarm in progress (\(state))")
        }
        generation += 1
        return [.setIndicator(.fault), .scheduleTimer(.retryStore(generation: generation), after: .seconds(1))]
    }

    /// The person asked to withdraw the alarm (the cancel input).
    public mutating func cancelRequested(now: Duration) -> [Action] {
        guard case .open(let alarm, _, let pressedAt) = state else { return [] }
        guard now - pressedAt <= cancelWindow, caseState == nil || caseState == .received else {
            return [.story(.cancelRefused(alarmID: alarm.id))]
        }
        state = .idle
        generation += 1
        return [.story(.cancelled(alarmID: alarm.id)), .storeCancel(alarmID: alarm.id), .setIndicator(.idle)]
    }

    /// The centre acknowledged the alarm: it is stored there.
    public mutating func delivered(alarmID: UInt32) -> [Action] {
        guard case .open(let alarm, .sending, let pressedAt) = state, alarm.id == alarmID else { return [] }
        state = .open(alarm: alarm, phase: .delivered, pressedAt: pressedAt)
        return [.story(.delivered(alarmID: alarmID)), .setIndicator(.delivered)]
    }

    /// The receiving centre acknowledged the alarm over a protocol that tells no case's progress (SIA DC-09):
    /// the ACK is the end of the device's part. The alarm stays open until its cancel window ends (the person
    /// may still withdraw it), then the device is idle: a later press is a new alarm, not a repeated one.
    public mutating func deliveredWithoutCase(alarmID: UInt32, now: Duration) -> [Action] {
        let actions = delivered(alarmID: alarmID)
        guard !actions.isEmpty, case .open(_, _, let pressedAt) = state else { return actions }
        generation += 1
        return actions + [.scheduleTimer(.handedOver(generation: generation), after: max(.zero, pressedAt + cancelWindow - now))]
    }

    public mutating func caseUpdated(_ update: CaseUpdate) -> [Action] {
        guard case .open(let alarm, let phase, let pressedAt) = state, alarm.id == update.alarmID else { return [] }
        if let shown = caseState, update.state.rawValue <= shown.rawValue, update.state.isKnown { return [] }
        caseState = update.state
        switch update.state {
        case .operatorEngaged, .helpDispatched:
            let next: Phase = phase == .speaking ? .speaking : .helpComing
            state = .open(alarm: alarm, phase: next, pressedAt: pressedAt)
            return [.story(.caseUpdated(alarmID: alarm.id, update.state))] + (next == phase ? [] : [.setIndicator(.helpComing)])
        case .closed:
            state = .idle
            return [.story(.closed(alarmID: alarm.id)), .setIndicator(.idle)]
        default:
            // `received`, or a state added in a later version: noted, nothing changes for the person.
            return [.story(.caseUpdated(alarmID: alarm.id, update.state))]
        }
    }

    /// The voice link opened or closed; the case stays open either way. Without an open alarm (a call after its
    /// DC-09 hand-over, or the centre calling back over SIP) the indicator still shows the call while it lasts.
    public mutating func callChanged(active: Bool) -> [Action] {
        guard case .open(let alarm, let phase, let pressedAt) = state else { return [.setIndicator(active ? .speaking : .idle)] }
        let next: Phase = active ? .speaking : (caseState == nil || caseState == .received ? .delivered : .helpComing)
        guard next != phase else { return [] }
        state = .open(alarm: alarm, phase: next, pressedAt: pressedAt)
        let indicator: IndicatorState = next == .speaking ? .speaking : (next == .delivered ? .delivered : .helpComing)
        return [.setIndicator(indicator)]
    }

    public mutating func timerFired(_ timer: Timer) -> [Action] {
        switch timer {
        case .retryStore(let g):
            guard g == generation, case .storing(let kind, let pressedAt, let hold) = state else { return [] }
            return [.storeAlarm(kind: kind, pressedAt: pressedAt, holdMilliseconds: hold)]
        case .handedOver(let g):
            // A SIP call placed after the ACK may be up (`speaking`): the alarm is handed over all the same (a
            // new press must be a new alarm), the indicator shows the call until it ends (`callChanged`).
            guard g == generation, case .open(let alarm, let phase, _) = state, phase == .delivered || phase == .speaking else { return [] }
            state = .idle
            return [.story(.closed(alarmID: alarm.id))] + (phase == .speaking ? [] : [.setIndicator(.idle)])
        }
    }
}

/// The steps of an alarm, as an operator and the person at home would tell it.
public enum AlarmStory: Hashable, Sendable {
    case pressed(AlarmKind)
    case stored(alarmID: UInt32)
    case delivered(alarmID: UInt32)
    case caseUpdated(alarmID: UInt32, CaseState)
    case closed(alarmID: UInt32)
    case cancelled(alarmID: UInt32)
    case cancelRefused(alarmID: UInt32)
    case pressedAgain(alarmID: UInt32)
}
