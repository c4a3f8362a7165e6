/// The life of dispatch cases: received → operator engaged → closed, moved by an operator at the console or
/// by the auto-answer policy used for tests and load (pure: timers are actions and events).
///
/// States only move forward (protocol.md §4.7). Every transition is journalled and sent to the device as a
/// reliable `caseUpdate` by the owner.
public struct CasePolicy: Sendable {
    /// When the automatic operator answers; `nil` leaves it to a person.
    public struct Configuration: Hashable, Sendable {
        public var autoEngageAfter: Duration?
        public var autoCloseAfter: Duration?

        public init(autoEngageAfter: Duration? = nil, autoCloseAfter: Duration? = nil) {
            self.autoEngageAfter = autoEngageAfter
            self.autoCloseAfter = autoCloseAfter
        }
    }

    /// A case the centre is handling.
    public struct Case: Hashable, Sendable {
        public var id: Int64
        public var device: UInt32
        public var alarmID: UInt32
        public var state: CaseState
        /// When the centre opened it (received its alarm), milliseconds since the Unix epoch; 0 if unknown.
        public var openedAt: WireTime

        public init(id: Int64, device: UInt32, alarmID: UInt32, state: CaseState, openedAt: WireTime = 0) {
            self.id = id
            self.device = device
            self.alarmID = alarmID
            self.state = state
            self.openedAt = openedAt
        }
    }

    public enum Timer: Hashable, Sendable {
        case engage(Int64)
        case close(Int64)
    }

    public enum Action: Equatable, Sendable {
        /// Journal the case's new state and send it to the device.
        case transition(Case)
        /// Report `timerFired(timer)` after `after`.
        case scheduleTimer(Timer, after: Duration)
    }

    public let configuration: Configuration
    private var open: [Int64: Case] = [:]

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Open cases, oldest first.
    public var openCases: [Case] { open.values.sorted { $0.id < $1.id } }

    /// A case was opened (in state `received`, already journalled and sent).
    public mutating func caseOpened(_ opened: Case) -> [Action] {
        open[opened.id] = opened
        guard opened.state == .received, let after = configuration.autoEngageAfter else { return [] }
        return [.scheduleTimer(.engage(opened.id), after: after)]
    }

    /// A case still open in the journal from a previous run: listed again. An automatic operator (tests and
    /// load runs) takes up where it was: it engages a case still `received` and closes an engaged one, each
    /// after its delay from now, as operators carry on after a restart; a human operator sees it in the list.
    public mutating func restore(_ restored: Case) -> [Action] {
        open[restored.id] = restored
        switch restored.state {
        case .received: return configuration.autoEngageAfter.map { [.scheduleTimer(.engage(restored.id), after: $0)] } ?? []
        case .operatorEngaged, .helpDispatched: return configuration.autoCloseAfter.map { [.scheduleTimer(.close(restored.id), after: $0)] } ?? []
        default: return []
        }
    }

    /// The case was closed elsewhere (the person withdrew the alarm; the journal closed it).
    public mutating func forget(_ id: Int64) {
        open[id] = nil
    }

    /// An operator takes the case.
    public mutating func engage(_ id: Int64) -> [Action] {
        guard var current = open[id], current.state.rawValue < CaseState.operatorEngaged.rawValue else { return [] }
        current.state = .operatorEngaged
        open[id] = current
        var actions: [Action] = [.transition(current)]
        if let after = configuration.autoCloseAfter { actions.append(.scheduleTimer(.close(id), after: after)) }
        return actions
    }

    /// The operator sent help (an ambulance, a neighbour, a social worker): only a case an operator has taken.
    public mutating func dispatch(_ id: Int64) -> [Action] {
        guard var current = open[id], current.state == .operatorEngaged else { return [] }
        current.state = .helpDispatched
        open[id] = current
        return [.transition(current)]
    }

    /// The case is over: by the operator, or because the person withdrew the alarm.
    public mutating func close(_ id: Int64) -> [Action] {
        guard var current = open.removeValue(forKey: id) else { return [] }
        current.state = .closed
        return [.transition(current)]
    }

    public mutating func timerFired(_ timer: Timer) -> [Action] {
        switch timer {
        case .engage(let id): engage(id)
        case .close(let id): close(id)
        }
    }

    /// Whether case `id` is open (received, engaged or help dispatched).
    public func isOpen(_ id: Int64) -> Bool { open[id] != nil }

    /// Open case `id`, if it is open.
    public func openCase(_ id: Int64) -> Case? { open[id] }

    /// The open case of `device`'s alarm `alarmID`, if any.
    public func caseID(device: UInt32, alarmID: UInt32) -> Int64? {
        open.values.first { $0.device == device && $0.alarmID == alarmID }?.id
    }
}
