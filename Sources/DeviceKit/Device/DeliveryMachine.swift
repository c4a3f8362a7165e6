import DequeModule

/// Reliable delivery of the outbox to the centre: send, wait for `ack`, retransmit with backoff, in order.
///
/// Holds the ids of what waits (loaded from the durable outbox at start, then every new item) and what is in
/// flight. Alarms and cancels go before routine events, oldest first. At most `window` messages are in flight.
/// A retransmission sends the same message (same id); the runtime seals it with a new counter.
/// The retransmission timeout is `RetransmitBackoff`'s, as the centre's: max(1 s, 3 × RTT), doubling up to
/// 30 s, ±20 % (protocol.md §4.7) — except for alarms and cancels, whose timeout does not grow beyond
/// `urgentMaximumTimeout` (1 s): at 20 % loss each way a third of the tries fail, and a doubling wait put the
/// slowest alarms half a minute behind. A centre that answers "later" (`nak busy`) still spreads them out.
///
/// Pure: no clock, no I/O; randomness from a seeded generator.
public struct DeliveryMachine: Sendable {
    public enum Timer: Hashable, Sendable {
        case retransmit(id: UInt32, generation: Int)
    }

    public enum Action: Hashable, Sendable {
        case send(Message)
        case scheduleTimer(Timer, after: Duration)
        /// The centre has it: delete it from the durable outbox.
        case remove(id: UInt32)
        /// The centre stored this message (an alarm: "delivered").
        case delivered(Message)
        /// The centre refused it for good; it was removed. Shown as a fault, logged.
        case refused(Message, NakReason)
    }

    public struct Configuration: Hashable, Sendable {
        public var window: Int
        public var initialTimeout: Duration
        public var maximumTimeout: Duration
        /// The longest wait between tries of an alarm or a cancel that got no answer (never below the first).
        public var urgentMaximumTimeout: Duration
        public init(
            window: Int = 8, initialTimeout: Duration = .seconds(1), maximumTimeout: Duration = .seconds(30),
            urgentMaximumTimeout: Duration = .seconds(1)
        ) {
            self.window = window
            self.initialTimeout = initialTimeout
            self.maximumTimeout = maximumTimeout
            self.urgentMaximumTimeout = urgentMaximumTimeout
        }
    }

    private struct InFlight: Hashable, Sendable {
        var message: Message
        var attempts: Int
        var generation: Int
        /// Answered with "later" (a `NAK` busy, a DC-09 `DUH`): not awaiting an answer until it goes again.
        var deferred = false
    }

    /// Held by reference: every device of a load run shares it (`Shared`).
    private let settings: Shared<Configuration>
    public var configuration: Configuration { settings.value }
    private var urgent = Deque<Message>()
    private var routine = Deque<Message>()
    private var inFlight: [UInt32: InFlight] = [:]
    /// Order in which in-flight messages were first sent, so a lost link requeues them in order.
    private var inFlightOrder: [UInt32] = []
    private var generation = 0
    private var random: SplitMix64
    /// Smoothed round-trip time, from heartbeats.
    private var roundTrip: Duration?
    private var isLinkUp = false

    public init(configuration: Configuration = Configuration(), seed: UInt64) {
        self.init(settings: Shared(configuration), seed: seed)
    }

    /// A machine whose configuration is shared with others.
    public init(settings: Shared<Configuration>, seed: UInt64) {
        self.settings = settings
        self.random = SplitMix64(seed: seed)
    }

    public var waiting: Int { urgent.count + routine.count + inFlight.count }
    /// The message in flight when it is the only one (a DC-09 answer without a sequence is about it).
    public var onlyInFlight: UInt32? { inFlightOrder.count == 1 ? inFlightOrder.first : nil }
    public var isBusy: Bool { waiting > 0 }
    /// Whether a message waits for the centre's answer: one on the wire, or one queued to go. A message the
    /// centre answered "later" is not (`tryAgainLater`), so that a link is not taken for dead meanwhile.
    public var isAwaitingAnswer: Bool { !urgent.isEmpty || !routine.isEmpty || inFlight.values.contains { !$0.deferred } }
    /// Whether an alarm or a cancel waits for its answer, queued or on the wire: the link reconnects within the
    /// backoff's first second meanwhile (`LinkMachine.urgentChanged`).
    public var isUrgentWaiting: Bool { !urgent.isEmpty || inFlight.values.contains { $0.message.outboxPriority == 0 } }

    /// Messages found in the durable outbox at start, in the outbox's order.
    public mutating func loaded(_ messages: [Message]) -> [Action] {
        for m in messages { queue(m) }
        return sendMore()
    }

    /// A new message is on durable storage.
    public mutating func enqueued(_ message: Message) -> [Action] {
        queue(message)
        return sendMore()
    }

    public mutating func linkUp() -> [Action] {
        isLinkUp = true
        return sendMore()
    }

    /// The session ended: what was in flight waits again, at the front, in its order.
    public mutating func linkDown() {
        isLinkUp = false
        generation += 1
        for id in inFlightOrder.reversed() {
            guard let f = inFlight[id] else { continue }
            if f.message.outboxPriority == 0 { urgent.prepend(f.message) } else { routine.prepend(f.message) }
        }
        inFlight = [:]
        inFlightOrder = []
    }

    public mutating func roundTripMeasured(_ rtt: Duration) {
        roundTrip = roundTrip.map { ($0 * 7 + rtt) / 8 } ?? rtt
    }

    public mutating func ackReceived(id: UInt32) -> [Action] {
        guard let f = inFlight.removeValue(forKey: id) else { return [] }  // a duplicate ack
        inFlightOrder.removeAll { $0 == id }
        return [.remove(id: id), .delivered(f.message)] + sendMore()
    }

    public mutating func nakReceived(_ nak: Nak) -> [Action] {
        guard let f = inFlight[nak.id] else { return [] }
        let final: Bool
        switch nak.reason {
        case .rateLimited, .busy: final = false
        default: final = f.message.outboxPriority != 0  // an alarm is never dropped on a centre's word
        }
        if final {
            inFlight[nak.id] = nil
            inFlightOrder.removeAll { $0 == nak.id }
            return [.remove(id: nak.id), .refused(f.message, nak.reason)] + sendMore()
        }
        // Retry later, as if the timeout had fired: keeps the backoff growing.
        return tryAgainLater(id: nak.id, longest: false)
    }

    /// Message `id` cannot be carried by the link's protocol (over DC-09: a diagnostics report, a press during
    /// an open alarm): it leaves the outbox unsent, and what waits behind it goes.
    public mutating func withdrawn(id: UInt32) -> [Action] {
        guard inFlight.removeValue(forKey: id) != nil else { return [] }
        inFlightOrder.removeAll { $0 == id }
        return [.remove(id: id)] + sendMore()
    }

    /// Sends message `id` again now, as a retransmission (a DC-09 receiver's `NAK` after the clock was
    /// corrected: the next try would be refused for the same reason otherwise).
    public mutating func sendAgainNow(id: UInt32) -> [Action] {
        guard isLinkUp, var f = inFlight[id] else { return [] }
        f.attempts += 1
        f.generation += 1
        f.deferred = false
        inFlight[id] = f
        return [.send(f.message), .scheduleTimer(.retransmit(id: id, generation: f.generation), after: timeout(for: f.message, attempts: f.attempts))]
    }

    /// Keeps message `id` and tries it again later: after the next backoff step, or after the longest wait
    /// (`maximumTimeout`) when `longest` (a DC-09 `DUH`: the receiver does not take it as it is, and may be
    /// reconfigured). Nothing is dropped.
    public mutating func tryAgainLater(id: UInt32, longest: Bool) -> [Action] {
        guard var f = inFlight[id] else { return [] }
        f.attempts += 1
        f.generation += 1
        f.deferred = true
        inFlight[id] = f
        let wait = longest ? configuration.maximumTimeout : timeout(for: nil, attempts: f.attempts)
        return [.scheduleTimer(.retransmit(id: id, generation: f.generation), after: wait)]
    }

    public mutating func timerFired(_ timer: Timer) -> [Action] {
        switch timer {
        case .retransmit(let id, let g):
            guard isLinkUp, var f = inFlight[id], f.generation == g else { return [] }
            f.attempts += 1
            f.deferred = false
            inFlight[id] = f
            return [.send(f.message), .scheduleTimer(.retransmit(id: id, generation: g), after: timeout(for: f.message, attempts: f.attempts))]
        }
    }

    private mutating func queue(_ message: Message) {
        guard let id = message.reliableID, inFlight[id] == nil,
            !urgent.contains(where: { $0.reliableID == id }), !routine.contains(where: { $0.reliableID == id })
        else { return }
        if message.outboxPriority == 0 { urgent.append(message) } else { routine.append(message) }
    }

    private mutating func sendMore() -> [Action] {
        guard isLinkUp else { return [] }
        var actions: [Action] = []
        while inFlight.count < configuration.window, let next = urgent.popFirst() ?? routine.popFirst() {
            guard let id = next.reliableID else { continue }
            generation += 1
            inFlight[id] = InFlight(message: next, attempts: 0, generation: generation)
            inFlightOrder.append(id)
            actions.append(.send(next))
            actions.append(.scheduleTimer(.retransmit(id: id, generation: generation), after: timeout(for: next, attempts: 0)))
        }
        return actions
    }

    /// The wait for an answer after `attempts` retransmissions of `message` (`nil`: after an answer "later",
    /// which always backs off in full).
    private mutating func timeout(for message: Message?, attempts: Int) -> Duration {
        let urgent = message.map { $0.outboxPriority == 0 } ?? false
        let maximum = urgent ? configuration.urgentMaximumTimeout : configuration.maximumTimeout
        return RetransmitBackoff(initial: configuration.initialTimeout, maximum: maximum)
            .wait(retries: attempts, roundTrip: roundTrip, using: &random)
    }
}
