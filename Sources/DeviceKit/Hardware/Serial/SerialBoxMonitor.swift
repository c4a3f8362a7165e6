/// Turns what a serial button box sends, and its silences, into `ButtonEvent`s.
///
/// Pure: time comes in as `now:`; `SerialButtonSource` owns the port and the clock and feeds this machine.
///
/// - The first `P` or `R` after the port opens reports `.present(initiallyDown:)` (the box sends its state at
///   power-up); later ones report `.level(down:)` when the level changed.
/// - Any valid line (`P`, `R`, `H`, `B<n>`, `T`) proves the box alive. After `heartbeatTimeout` without one
///   (three missed heartbeats), the box is reported `.missing` once.
/// - After such a silence, the first valid line brings it back: with the level it sends, or with the level
///   it had before the silence (the port stayed open, so the box kept its state and sends only changes).
/// - When the port is lost, the box is `.missing` once; after the port reopens, it is `.present` on the first
///   `P` or `R` (a level from before the loss cannot be trusted: the box was likely powered off with it).
struct SerialBoxMonitor: Sendable {
    private enum State: Sendable {
        /// The port is not open; `reported` once `.missing` went out.
        case closed(reported: Bool)
        /// The port is open but no `P` or `R` came yet; `reported` when the box is already reported missing.
        case awaitingLevel(lastLine: ContinuousClock.Instant?, reported: Bool)
        /// The box is present and its button is `down` or up.
        case present(down: Bool, lastLine: ContinuousClock.Instant)
        /// The box fell silent with its button `down` or up, and was reported missing.
        case silent(down: Bool)
    }

    private var state: State = .closed(reported: false)
    let heartbeatTimeout: Duration

    init(heartbeatTimeout: Duration = .seconds(30)) {
        self.heartbeatTimeout = heartbeatTimeout
    }

    /// What `.missing` says after a silence.
    var silenceReason: String {
        "the serial button box sent nothing for \(heartbeatTimeout.plainWords): check its cable and power"
    }

    /// The port could not be opened, or was lost; `reason` says why in plain words.
    mutating func portUnavailable(reason: String) -> [ButtonEvent] {
        switch state {
        case .closed(reported: true), .awaitingLevel(_, reported: true), .silent:
            state = .closed(reported: true)
            return []
        case .closed(reported: false), .awaitingLevel(_, reported: false), .present:
            state = .closed(reported: true)
            return [.missing(reason: reason)]
        }
    }

    /// The port is open; the heartbeat clock starts now.
    mutating func portOpened(now: ContinuousClock.Instant) -> [ButtonEvent] {
        switch state {
        case .closed(let reported):
            // A box reported missing needs no second report if it stays silent: no deadline then.
            state = .awaitingLevel(lastLine: reported ? nil : now, reported: reported)
        case .awaitingLevel(_, let reported):
            state = .awaitingLevel(lastLine: reported ? nil : now, reported: reported)
        case .present:
            state = .awaitingLevel(lastLine: now, reported: false)
        case .silent:
            state = .awaitingLevel(lastLine: nil, reported: true)
        }
        return []
    }

    /// Messages decoded from the port.
    mutating func received(_ messages: [SerialBoxMessage], now: ContinuousClock.Instant) -> [ButtonEvent] {
        var events: [ButtonEvent] = []
        for message in messages {
            let level: Bool? = switch message {
            case .pressed: true
            case .released: false
            case .heartbeat, .battery, .tamper: nil
            }
            switch state {
            case .closed:
                // Bytes only arrive on an open port; nothing to report.
                break
            case .awaitingLevel(_, let reported):
                if let level {
                    events.append(.present(initiallyDown: level))
                    state = .present(down: level, lastLine: now)
                } else {
                    // Alive, level unknown: a box reported missing stays so until it sends P or R.
                    state = .awaitingLevel(lastLine: reported ? nil : now, reported: reported)
                }
            case .present(let down, _):
                if let level, level != down { events.append(.level(down: level)) }
                state = .present(down: level ?? down, lastLine: now)
            case .silent(let down):
                let known = level ?? down
                events.append(.present(initiallyDown: known))
                state = .present(down: known, lastLine: now)
            }
        }
        return events
    }

    /// The clock moved on; reports `.missing` when the box has been silent too long.
    mutating func tick(now: ContinuousClock.Instant) -> [ButtonEvent] {
        switch state {
        case .awaitingLevel(.some(let lastLine), reported: false) where now - lastLine >= heartbeatTimeout:
            state = .awaitingLevel(lastLine: nil, reported: true)
            return [.missing(reason: silenceReason)]
        case .present(let down, let lastLine) where now - lastLine >= heartbeatTimeout:
            state = .silent(down: down)
            return [.missing(reason: silenceReason)]
        case .closed, .awaitingLevel, .present, .silent:
            return []
        }
    }

    /// When `tick` next has something to decide, if ever.
    var deadline: ContinuousClock.Instant? {
        switch state {
        case .awaitingLevel(let lastLine, reported: false): lastLine.map { $0 + heartbeatTimeout }
        case .present(_, let lastLine): lastLine + heartbeatTimeout
        case .closed, .awaitingLevel, .silent: nil
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
