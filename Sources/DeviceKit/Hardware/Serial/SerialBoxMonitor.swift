/// Turns what a serial button box sends, and its silences, into `ButtonEvent`s, as §5 of
/// hardware/serial-box-protocol.md says the device uses the protocol.
///
/// Pure: time comes in as `now:`; `SerialButtonSource` owns the port and the clock and feeds this machine.
///
/// - **Present**: at the first valid message (`P`, `R`, `H`, `B<n>`, `T`) after the port opened or after the
///   box went missing: `.present(initiallyDown:)`, down if that message was `P`, else up until a `P` comes.
///   Later `P` and `R` report `.level(down:)` when the level changes (they are states, not key strokes).
/// - **Heartbeat**: a timer of `heartbeatTimeout` (30 s, three heartbeat periods) starts when the port opens
///   or the box comes back, and restarts at every `H`; other messages do not restart it.
/// - **Missing**: when the timer runs out, `.missing` once; the button then counts as released, and the box is
///   present again at its next valid message. A port that cannot be opened or is lost is `.missing` once too;
///   after it reopens, the box is present at its first valid message.
struct SerialBoxMonitor: Sendable {
    private enum State: Sendable {
        /// The port is not open; `reported` once `.missing` went out.
        case closed(reported: Bool)
        /// The port is open and no valid message came yet. While the box is not reported missing, the timer
        /// started at `since` (the opening); once it is, no timer runs: only a message can change anything.
        case awaitingMessage(since: ContinuousClock.Instant, reported: Bool)
        /// The box is present with its button `down` or up; `timer` is when the heartbeat timer last started.
        case present(down: Bool, timer: ContinuousClock.Instant)
    }

    private var state: State = .closed(reported: false)
    let heartbeatTimeout: Duration

    init(heartbeatTimeout: Duration = .seconds(30)) {
        self.heartbeatTimeout = heartbeatTimeout
    }

    /// What `.missing` says when the heartbeat timer runs out.
    var silenceReason: String {
        "no heartbeat from the serial button box for \(heartbeatTimeout.plainWords): check its cable and power"
    }

    /// The port could not be opened, or was lost; `reason` says why in plain words.
    mutating func portUnavailable(reason: String) -> [ButtonEvent] {
        switch state {
        case .closed(reported: true), .awaitingMessage(_, reported: true):
            state = .closed(reported: true)
            return []
        case .closed(reported: false), .awaitingMessage(_, reported: false), .present:
            state = .closed(reported: true)
            return [.missing(reason: reason)]
        }
    }

    /// The port is open; the heartbeat timer starts now.
    mutating func portOpened(now: ContinuousClock.Instant) -> [ButtonEvent] {
        switch state {
        case .closed(let reported), .awaitingMessage(_, let reported):
            state = .awaitingMessage(since: now, reported: reported)
        case .present:
            state = .awaitingMessage(since: now, reported: false)
        }
        return []
    }

    /// Messages decoded from the port.
    mutating func received(_ messages: [SerialBoxMessage], now: ContinuousClock.Instant) -> [ButtonEvent] {
        var events: [ButtonEvent] = []
        for message in messages {
            switch state {
            case .closed:
                // Bytes only arrive on an open port; nothing to report.
                break
            case .awaitingMessage(let since, let reported):
                let down = message == .pressed
                events.append(.present(initiallyDown: down))
                // Back from missing: a fresh timer. First message after opening: the opening's timer runs on.
                state = .present(down: down, timer: message == .heartbeat || reported ? now : since)
            case .present(let down, let timer):
                switch message {
                case .pressed, .released:
                    let level = message == .pressed
                    if level != down { events.append(.level(down: level)) }
                    state = .present(down: level, timer: timer)
                case .heartbeat:
                    state = .present(down: down, timer: now)
                case .tamper:
                    events.append(.tamper)
                case .battery:
                    break  // the box's own battery: shown by diag serial, not the device's battery
                }
            }
        }
        return events
    }

    /// The clock moved on; reports `.missing` when the heartbeat timer has run out.
    mutating func tick(now: ContinuousClock.Instant) -> [ButtonEvent] {
        switch state {
        case .awaitingMessage(let since, reported: false) where now - since >= heartbeatTimeout:
            state = .awaitingMessage(since: since, reported: true)
            return [.missing(reason: silenceReason)]
        case .present(_, let timer) where now - timer >= heartbeatTimeout:
            state = .awaitingMessage(since: timer, reported: true)
            return [.missing(reason: silenceReason)]
        case .closed, .awaitingMessage, .present:
            return []
        }
    }

    /// When `tick` next has something to decide, if ever.
    var deadline: ContinuousClock.Instant? {
        switch state {
        case .awaitingMessage(let since, reported: false): since + heartbeatTimeout
        case .present(_, let timer): timer + heartbeatTimeout
        case .closed, .awaitingMessage: nil
        }
    }
}

extension Duration {
    /// "30 s", "1.5 s" or "300 ms", for messages a person reads.
    var plainWords: String {
        let milliseconds = self.milliseconds
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000) s" }
        if milliseconds < 1000 { return "\(milliseconds) ms" }
        return "\(Double(milliseconds) / 1000) s"
    }
}
