/// The device's link to its centre: connect, open a session, keep it alive, notice when it dies, come back.
///
/// ```
///            start                connected              sessionAccept
///  idle ──────────────► connecting ─────────► handshaking ───────────► established
///                         │  ▲                    │                       │
///        connectFailed /  │  │ reconnect timer    │ timeout / closed      │ closed / silent for
///        2 failures flip  ▼  │ (full jitter)      ▼                       ▼ 2.5 heartbeat intervals,
///        the path ───► waiting ◄──────────────────┴───────────────────────┘ then 5 probes unanswered
/// ```
/// Unanswered: while reliable messages wait for their ack, a centre that sends nothing authentic for
/// `unansweredAfter` (10 s) is taken as gone sooner than after two and a half heartbeat intervals: a UDP session
/// the centre lost in a restart, or a NAT mapping that expired, would otherwise hold an alarm for up to a
/// minute (protocol.md §4.7).
///
/// Probes: silence alone is not taken for a dead link, since on a lossy path (a mobile link losing a datagram
/// in five) two heartbeats or their answers are lost in a row often. A link found silent is first probed, as
/// BFD and TCP keepalive do: a heartbeat every `probeInterval` for `probes` intervals; any authentic answer keeps the
/// session, and only a link that answers none of them is given up. A session costs a handshake that the same
/// loss can kill, so keeping one is worth a few seconds.
///
/// Handshake: a `sessionStart` whose answer does not come within `handshakeRetransmitAfter` is sent again (a
/// new counter, so a new anchor; the accept of an earlier one is stale, §3.4), after 1 s, then 2 s, …, until
/// `handshakeTimeout`: one lost datagram no longer costs a whole timeout and a backoff.
///
/// Dual path: after two consecutive failures on one centre the next attempt goes to the other (when a
/// secondary is configured); after one, when the centre answered the `sessionStart` `nak busy` (it is full),
/// or left a reliable message unanswered until the session was given up (`unanswered`). Established on the secondary, the device probes the primary every
/// `returnToPrimaryAfter` while nothing is in flight, and stays on the primary when that works.
///
/// Backoff: a failed attempt is followed by a delay drawn from a window that doubles with each failure in a row
/// (`Backoff`: 1 s, 2 s, 4 s … 60 s, full jitter), so that a fleet that lost its centre does not return in step.
/// While an alarm or a cancel waits (`urgentChanged`) the window stays at its first second, and one raised
/// during a longer wait cuts it short to a new draw from that second: a person's call waits for a session, not
/// for a minute of backoff earned before it (at 20 % loss each way a doubled window put one alarm of a loss run
/// 21.8 s behind). After a `nak busy` (the centre is full) the window grows as always.
///
/// Without a handshake (`Configuration.handshake` false: a device reporting over SIA DC-09, docs/dc09.md) the
/// link is established once the transport is open, at the configured interval; `sendHeartbeat` is then the
/// protocol's supervision message, and any answer from the receiver (`answerHeard`) is what keeps it alive.
///
/// Pure: time comes in as `now` (monotonic, since the runtime started), randomness from a seeded generator.
public struct LinkMachine: Sendable {
    public enum Path: String, Hashable, Sendable { case primary, secondary }

    public enum Timer: Hashable, Sendable {
        case reconnect(generation: Int)
        case handshakeTimeout(generation: Int)
        /// Sends `sessionStart` again while the handshake waits (`attempt` from 1).
        case handshakeRetry(generation: Int, attempt: Int)
        case heartbeat(generation: Int)
        case deadLink(generation: Int)
        case returnToPrimary(generation: Int)
        /// Checks whether the centre answered anything since reliable messages began to wait (`epoch`).
        case unanswered(generation: Int, epoch: Int)
    }

    public enum Action: Hashable, Sendable {
        case connect(Path)
        case disconnect
        case send(Message)
        /// Send a heartbeat with the device's live status and battery.
        case sendHeartbeat
        case scheduleTimer(Timer, after: Duration)
        /// The session is open: send what waits, with the centre's settings (`nil` without a handshake).
        case sessionEstablished(Path, SessionAccept?)
        /// The session ended: what was in flight goes back to waiting.
        case sessionLost(reason: LinkLossReason)
        /// An attempt to open a session on `Path` failed before it opened (`LinkHealth` counts them).
        case attemptFailed(Path, LinkLossReason)
    }

    public struct Configuration: Hashable, Sendable {
        public var hasSecondary: Bool
        public var sessionStart: SessionStart
        public var defaultHeartbeatInterval: Duration
        public var handshakeTimeout: Duration
        public var backoff: Backoff
        public var returnToPrimaryAfter: Duration
        public var failuresBeforeSwitchingPath: Int
        /// With reliable messages waiting, nothing authentic from the centre for this long ends the session.
        /// Longer than a slow journal commit (the centre acks after its fsync) and the first retransmissions.
        public var unansweredAfter: Duration
        /// Whether a session is opened with `sessionStart` (our protocol); without (DC-09) the link is up
        /// once the transport is, and heartbeats go at `defaultHeartbeatInterval`.
        public var handshake: Bool
        /// A link found silent is probed this many times, `probeInterval` apart, before it is given up.
        public var probes: Int
        public var probeInterval: Duration
        /// The first wait for a `sessionStart`'s answer before it is sent again; each next wait doubles.
        public var handshakeRetransmitAfter: Duration

        public init(
            hasSecondary: Bool, sessionStart: SessionStart, defaultHeartbeatInterval: Duration = .seconds(30),
            handshakeTimeout: Duration = .seconds(5), backoff: Backoff = Backoff(),
            returnToPrimaryAfter: Duration = .seconds(300), failuresBeforeSwitchingPath: Int = 2,
            unansweredAfter: Duration = .seconds(10), handshake: Bool = true, probes: Int = 5,
            probeInterval: Duration = .seconds(1), handshakeRetransmitAfter: Duration = .seconds(1)
        ) {
            self.handshake = handshake
            self.probes = probes
            self.probeInterval = probeInterval
            self.handshakeRetransmitAfter = handshakeRetransmitAfter
            self.hasSecondary = hasSecondary
            self.sessionStart = sessionStart
            self.defaultHeartbeatInterval = defaultHeartbeatInterval
            self.handshakeTimeout = handshakeTimeout
            self.backoff = backoff
            self.returnToPrimaryAfter = returnToPrimaryAfter
            self.failuresBeforeSwitchingPath = failuresBeforeSwitchingPath
            self.unansweredAfter = unansweredAfter
        }
    }

    private enum State: Hashable, Sendable {
        case idle
        case connecting(Path)
        case handshaking(Path)
        case established(Path, heartbeatInterval: Duration, lastHeard: Duration)
        case waiting(next: Path)
        case stopped
    }

    /// Held by reference: every device of a load run shares it (`Shared`).
    private let settings: Shared<Configuration>
    public var configuration: Configuration { settings.value }
    // Stored properties in this order to waste little on alignment (a load run holds a million).
    private var generation = 0
    /// Consecutive failures since the last established session, for the backoff.
    private var failures = 0
    /// Consecutive failures on the current path, for switching paths.
    private var failuresOnPath = 0
    private var random: SplitMix64
    /// Since when (in the current session) reliable messages have waited, and which wait it is.
    private var busySince: Duration = .zero
    private var busyEpoch = 0
    private var state: State = .idle
    /// Whether reliable messages are in flight: the device does not leave a working path then.
    private var busy = false
    /// Whether an alarm or a cancel waits: reconnecting keeps the backoff's first window then.
    private var urgent = false
    /// Whether the last attempt was turned away (`nak busy`): the backoff grows even with an alarm waiting.
    private var turnedAway = false

    public init(configuration: Configuration, seed: UInt64) {
        self.init(settings: Shared(configuration), seed: seed)
    }

    /// A machine whose configuration is shared with others.
    public init(settings: Shared<Configuration>, seed: UInt64) {
        self.settings = settings
        self.random = SplitMix64(seed: seed)
    }

    /// The heartbeat interval of the established session.
    public var heartbeatInterval: Duration? {
        if case .established(_, let interval, _) = state { return interval }
        return nil
    }

    /// Where the link is, for indicators, logs and `diag`.
    public var status: LinkStatus {
        switch state {
        case .idle, .stopped: .down
        case .connecting(let p), .handshaking(let p): .connecting(p)
        case .established(let p, _, _): .up(p)
        case .waiting: .down
        }
    }

    public mutating func start() -> [Action] {
        guard case .idle = state else { return impossibleTransition("LinkMachine.start in \(state): it starts once") }
        state = .connecting(.primary)
        return [.connect(.primary)]
    }

    public mutating func stop() -> [Action] {
        let wasConnected: Bool
        switch state {
        case .connecting, .handshaking, .established: wasConnected = true
        case .idle, .waiting, .stopped: wasConnected = false
        }
        state = .stopped
        generation += 1
        return wasConnected ? [.disconnect] : []
    }

    /// The transport is open (TCP connected, or UDP socket ready): open a session (or, without a
    /// handshake, the link is up).
    public mutating func connected(now: Duration = .zero) -> [Action] {
        guard case .connecting(let path) = state else { return [] }
        guard configuration.handshake else { return establish(path, accept: nil, now: now) }
        state = .handshaking(path)
        generation += 1
        return [
            .send(.sessionStart(configuration.sessionStart)),
            .scheduleTimer(.handshakeTimeout(generation: generation), after: configuration.handshakeTimeout),
            .scheduleTimer(.handshakeRetry(generation: generation, attempt: 1), after: configuration.handshakeRetransmitAfter),
        ]
    }

    /// Without a handshake: the receiver answered something (a DC-09 `ACK`, `NAK` or `DUH`), so the link lives.
    public mutating func answerHeard(now: Duration) {
        guard case .established(let path, let interval, _) = state else { return }
        state = .established(path, heartbeatInterval: interval, lastHeard: now)
    }

    public mutating func connectFailed() -> [Action] {
        guard case .connecting(let path) = state else { return [] }
        return fail(on: path, reason: .connectFailed)
    }

    /// The transport closed (the centre went away, or the network).
    public mutating func disconnected() -> [Action] {
        switch state {
        case .connecting(let path), .handshaking(let path):
            return fail(on: path, reason: .closed)
        case .established(let path, _, _):
            return [.sessionLost(reason: .closed)] + fail(on: path, reason: .closed, wasEstablished: true)
        case .idle, .waiting, .stopped:
            return []
        }
    }

    /// An authenticated message from the centre arrived.
    public mutating func messageReceived(_ message: Message, now: Duration) -> [Action] {
        switch state {
        case .handshaking(let path):
            switch message {
            case .sessionAccept(let accept):
                return establish(path, accept: accept, now: now)
            case .nak(let nak) where nak.reason == .busy:
                // Full: the other centre is tried next, without waiting for a second failure here.
                return [.disconnect] + fail(on: path, reason: .turnedAway, switchingPath: true)
            default:
                return []
            }
        case .established(let path, let interval, _):
            if case .sessionAccept = message { return [] }
            state = .established(path, heartbeatInterval: interval, lastHeard: now)
            return []
        case .idle, .connecting, .waiting, .stopped:
            return []
        }
    }

    private mutating func establish(_ path: Path, accept: SessionAccept?, now: Duration) -> [Action] {
        let interval =
            if let seconds = accept?.heartbeatIntervalSeconds, seconds > 0 { Duration.seconds(Int(seconds)) }
            else { configuration.defaultHeartbeatInterval }
        state = .established(path, heartbeatInterval: interval, lastHeard: now)
        generation += 1
        failures = 0
        failuresOnPath = 0
        var actions: [Action] = [
            .sessionEstablished(path, accept),
            .scheduleTimer(.heartbeat(generation: generation), after: interval),
            .scheduleTimer(.deadLink(generation: generation), after: Self.deadAfter(interval)),
        ]
        if busy { actions += beginWaiting(now: now) }
        if path == .secondary {
            actions.append(.scheduleTimer(.returnToPrimary(generation: generation), after: configuration.returnToPrimaryAfter))
        }
        return actions
    }

    /// Reliable messages are (or are no longer) in flight. When they begin to wait in a session, the
    /// machine watches for the centre's answer (`Configuration.unansweredAfter`).
    public mutating func busyChanged(_ busy: Bool, now: Duration) -> [Action] {
        defer { self.busy = busy }
        guard busy, !self.busy, case .established = state else { return [] }
        return beginWaiting(now: now)
    }

    /// An alarm or a cancel waits (or no longer does). One that begins to wait while the link waits out a longer
    /// backoff cuts the wait to a new draw from the backoff's first window (unless the centre was full).
    public mutating func urgentChanged(_ urgent: Bool) -> [Action] {
        defer { self.urgent = urgent }
        guard urgent, !self.urgent, !turnedAway, case .waiting = state, failures > 1 else { return [] }
        generation += 1
        return [.scheduleTimer(.reconnect(generation: generation), after: configuration.backoff.delay(attempt: 0, using: &random))]
    }

    private mutating func beginWaiting(now: Duration) -> [Action] {
        busySince = now
        busyEpoch += 1
        return [.scheduleTimer(.unanswered(generation: generation, epoch: busyEpoch), after: configuration.unansweredAfter)]
    }

    /// Silence after which an established session is taken as dead: two and a half heartbeat intervals, so
    /// that one lost heartbeat (or its answer) is not an outage — its successor's answer comes at two
    /// intervals and a round trip — while two lost in a row are (protocol.md §4.7; the centre's offline time).
    public static func deadAfter(_ interval: Duration) -> Duration { interval * 5 / 2 }

    /// How long probing lasts once a link is found silent.
    private var probeWindow: Duration { configuration.probeInterval * configuration.probes }

    /// A check found the link `quiet` for `threshold` or longer: probe it, or, once probing has gone
    /// unanswered for `probeWindow`, give the session up.
    private mutating func probeOrGiveUp(
        _ path: Path, quiet: Duration, threshold: Duration, recheck: Timer, reason: LinkLossReason
    ) -> [Action] {
        let giveUpAt = threshold + probeWindow
        guard quiet < giveUpAt else {
            // A centre silent while an alarm or another reliable message waited (10 s and the probes): its path
            // counts as failed outright, and the next attempt goes to the other centre at once, instead of a
            // handshake timeout more on a path just found dead (a UDP device's failover, issue 18).
            return [.disconnect, .sessionLost(reason: reason)]
                + fail(on: path, reason: reason, wasEstablished: true, switchingPath: reason == .unanswered)
        }
        return [.sendHeartbeat, .scheduleTimer(recheck, after: min(configuration.probeInterval, giveUpAt - quiet))]
    }

    public mutating func timerFired(_ timer: Timer, now: Duration) -> [Action] {
        switch (timer, state) {
        case (.reconnect(let g), .waiting(let path)) where g == generation:
            state = .connecting(path)
            return [.connect(path)]
        case (.handshakeTimeout(let g), .handshaking(let path)) where g == generation:
            return [.disconnect] + fail(on: path, reason: .handshakeTimeout)
        case (.handshakeRetry(let g, let attempt), .handshaking) where g == generation:
            let next = configuration.handshakeRetransmitAfter * (1 << min(attempt, 16))
            return [
                .send(.sessionStart(configuration.sessionStart)),
                .scheduleTimer(.handshakeRetry(generation: g, attempt: attempt + 1), after: next),
            ]
        case (.heartbeat(let g), .established(_, let interval, _)) where g == generation:
            return [
                .sendHeartbeat,
                .scheduleTimer(.heartbeat(generation: g), after: interval),
            ]
        case (.deadLink(let g), .established(let path, let interval, let lastHeard)) where g == generation:
            let silent = now - lastHeard
            if silent >= Self.deadAfter(interval) {
                return probeOrGiveUp(path, quiet: silent, threshold: Self.deadAfter(interval), recheck: timer, reason: .silent)
            }
            return [.scheduleTimer(.deadLink(generation: g), after: Self.deadAfter(interval) - silent)]
        case (.unanswered(let g, let epoch), .established(let path, _, let lastHeard)) where g == generation && epoch == busyEpoch && busy:
            let quiet = now - max(lastHeard, busySince)
            if quiet >= configuration.unansweredAfter {
                return probeOrGiveUp(path, quiet: quiet, threshold: configuration.unansweredAfter, recheck: timer, reason: .unanswered)
            }
            return [.scheduleTimer(.unanswered(generation: g, epoch: epoch), after: configuration.unansweredAfter - quiet)]
        case (.returnToPrimary(let g), .established(.secondary, _, _)) where g == generation:
            if busy {
                return [.scheduleTimer(.returnToPrimary(generation: g), after: configuration.returnToPrimaryAfter)]
            }
            state = .connecting(.primary)
            generation += 1
            failuresOnPath = 0
            return [.disconnect, .sessionLost(reason: .returningToPrimary), .connect(.primary)]
        case (.reconnect, _), (.handshakeTimeout, _), (.handshakeRetry, _), (.heartbeat, _), (.deadLink, _), (.returnToPrimary, _),
            (.unanswered, _):
            return []  // a late timer of an earlier state
        }
    }

    private mutating func fail(
        on path: Path, reason: LinkLossReason, wasEstablished: Bool = false, switchingPath: Bool = false
    ) -> [Action] {
        generation += 1
        failuresOnPath = wasEstablished ? 1 : failuresOnPath + 1
        if switchingPath { failuresOnPath = max(failuresOnPath, configuration.failuresBeforeSwitchingPath) }
        var next = path
        if configuration.hasSecondary, failuresOnPath >= configuration.failuresBeforeSwitchingPath {
            next = path == .primary ? .secondary : .primary
            failuresOnPath = 0
        }
        turnedAway = reason == .turnedAway
        let delay = configuration.backoff.delay(attempt: urgent && !turnedAway ? 0 : failures, using: &random)
        failures += 1
        state = .waiting(next: next)
        return (wasEstablished ? [] : [.attemptFailed(path, reason)])
            + [.scheduleTimer(.reconnect(generation: generation), after: delay)]
    }
}

public enum LinkStatus: Hashable, Sendable {
    case down
    case connecting(LinkMachine.Path)
    case up(LinkMachine.Path)
}

public enum LinkLossReason: String, Hashable, Sendable {
    case connectFailed, closed, handshakeTimeout, silent, unanswered, returningToPrimary
    /// The centre answered the `sessionStart` with `nak busy`: it is at its session limit (protocol.md §5).
    case turnedAway
}
