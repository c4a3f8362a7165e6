import Metrics

/// The centre's counters, gauges and timers, recorded through swift-metrics into the factory the centre is
/// given: `CenterServer` gives swift-prometheus's, over the registry its endpoint serves. Always a factory
/// passed in, never the global `MetricsSystem`, so that tests and several centres in one process each count
/// their own (the `devicesim center` process bootstraps the global one with the same factory).
final class CenterMetrics: Sendable {
    /// Each family's help text by name, for the endpoint's `# HELP` lines: swift-metrics has no place for a
    /// help text, and swift-prometheus's factory registers every family without one (`MetricsExposition`).
    let help: [String: String]
    let framesReceived: Counter
    private let refusedByCategory: [ProtocolError.Category: Counter]
    private let droppedByReason: [CenterSession.Drop: Counter]
    let unknownDevice: Counter
    /// Frames under ids without a key at hand, dropped before derivation: their source's forgeries ran over
    /// `--forged-frame-rate` (ForgeryBudget).
    let sourceLimited: Counter
    /// Frames of devices without a session (session starts) dropped unread while the UDP socket was behind.
    let framesShed: Counter
    let keyDerivations: Counter
    let keyCacheEntries: Meter
    let eventsDropped: Counter
    let connectionsOpen: Meter
    let acceptBackoffs: Counter
    /// Answers not sent because the peer's socket would not take them (its reader is too slow).
    let framesUnsent: Counter
    let metricsRequestsRefused: Counter
    /// The operators' web console: logins by outcome, actions by kind, streams open (docs/console.md).
    let consoleLogins: [String: Counter]
    let consoleActions: [String: Counter]
    let consoleStreams: Meter
    let alarmsRecorded: Counter
    let alarmsDuplicate: Counter
    /// Reliable messages that reused an id for other content (protocol.md §4.7).
    let idConflicts: Counter
    /// Devices moved to a later key epoch (protocol.md §3.4).
    let keyEpochsChanged: Counter
    let messagesRecorded: Counter
    let journalFailures: Counter
    /// 1 while the journal takes writes, 0 from a failed batch until a write or a probe succeeds.
    let journalUp: Meter
    let nodeNameShared: Counter
    let journalBatches: Counter
    let journalBatchedWrites: Counter
    /// How long each journal transaction took on the writer thread, its fsync included.
    let journalCommitDuration: Timer
    let sessionsOpened: Counter
    let sessionsActive: Meter
    /// `sessionStart`s answered `nak busy` at the session limit.
    let sessionsTurnedAway: Counter
    /// The session limit itself, so that a dashboard can show how full the centre is.
    let sessionsLimit: Meter
    let devicesOnline: Meter
    let acksSent: Counter
    let naksSent: Counter
    let caseUpdatesSent: Counter
    let retransmissions: Counter
    let connectionsAccepted: Counter
    private let closedByReason: [String: Counter]
    let callsOffered: Counter
    let callsStarted: Counter
    let callsActive: Meter
    let operatorCallsPlaced: Counter
    let operatorCallsAnswered: Counter
    let operatorCallsNotAnswered: Counter
    let operatorCallsBridged: Meter
    let callsWaiting: Meter
    private let callsEndedByReason: [UInt8: Counter]
    /// From an alarm's arrival to its `ack` (journalled first, group commit included), new alarms only.
    let alarmAckDuration: Timer
    let mediaPacketsReceived: Counter
    let mediaPacketsLost: Counter
    private let mediaRefusedByReason: [String: Counter]
    /// DC-09 frames by the answer sent (`none`: dropped or not durable) and why (CenterMetrics+DC09 below).
    private let dc09Frames: [String: Counter]
    /// DC-09 events journalled, once each (retransmissions not counted).
    let dc09EventsRecorded: Counter
    /// The DC-09 gateway's (`--forward`), by receiver.
    let dc09Forward: DC09ForwardMetrics

    /// Why the centre closes a TCP connection.
    static let closeReasons = [
        "authTimeout", "oversized", "malformed", "unsupported", "offences", "evicted", "connectionLimit", "backpressure",
        "stalled", "idle",
    ]

    /// What the DC-09 port answers, and why: `DC09Receiving.Reason`s, and the port's own.
    static let dc09Answers: [(answer: String, reason: String)] = [
        ("ACK", "recorded"), ("ACK", "retransmission"), ("ACK", "supervision"), ("NAK", "malformed"), ("NAK", "unknownAccount"),
        ("NAK", "undecryptable"), ("NAK", "outsideWindow"), ("DUH", "unsupported"), ("DUH", "clearFromKeyedAccount"),
        ("none", "journalFailed"), ("none", "rateLimited"), ("none", "overlong"),
    ]

    /// The timers' histogram buckets (upper bounds), for a backend that keeps histograms: swift-prometheus
    /// takes them per timer label (`PrometheusMetricsFactory.durationHistogramBuckets`) and writes seconds.
    static let timerBuckets: [String: [Duration]] = [
        "center_journal_commit_seconds": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000].map { .milliseconds($0) },
        "center_alarm_ack_seconds": [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].map { .milliseconds($0) },
    ]

    init(factory: any MetricsFactory) {
        var make = Families(factory: factory)
        framesReceived = make.counter("center_frames_received_total", "Frames received, TCP and UDP.")
        refusedByCategory = make.counters(
            "center_frames_refused_total", "Frames refused, by category of protocol.md §6.", label: "category",
            ProtocolError.Category.allCases) { $0.rawValue }
        let dropped = "Frames not acted on: the device over its rate, too many sessions, a source over its forgery budget."
        droppedByReason = make.counters("center_frames_dropped_total", dropped, label: "reason", CenterSession.Drop.allCases) { $0.rawValue }
        sourceLimited = make.counter("center_frames_dropped_total", dropped, [("reason", "sourceLimited")])
        framesShed = make.counter("center_frames_dropped_total", dropped, [("reason", "shed")])
        keyDerivations = make.counter(
            "center_key_derivations_total", "Device keys derived from the registry (HKDF), for frames under ids without a key at hand.")
        keyCacheEntries = make.gauge(
            "center_key_cache_entries", "Derived device keys kept for devices without a session (bounded by the cache's capacity).")
        eventsDropped = make.counter("center_events_dropped_total", "Events an observer (--json, --console) did not keep up with and lost.")
        connectionsOpen = make.gauge("center_connections_open", "TCP device connections open.")
        acceptBackoffs = make.counter(
            "center_accept_backoffs_total", "Times accepting TCP connections paused because descriptors (or memory) ran out.")
        framesUnsent = make.counter("center_frames_unsent_total", "Answers dropped because the peer's socket would not take them.")
        metricsRequestsRefused = make.counter(
            "center_metrics_requests_refused_total", "Metrics connections closed unanswered: too slow, or too many at once.")
        consoleLogins = make.counters(
            "center_console_logins_total", "Logins to the operators' web console: accepted, refused (wrong name or password, or a disabled account), limited (too many attempts).",
            label: "outcome", ["accepted", "refused", "limited"]) { $0 }
        consoleActions = make.counters(
            "center_console_actions_total", "What operators did to cases through the web console.", label: "action",
            ["take", "call", "hangup", "dispatch", "close"]) { $0 }
        consoleStreams = make.gauge("center_console_streams", "Web consoles receiving the live queue now.")
        unknownDevice = make.counter("center_frames_unknown_device_total", "Frames for a device id the centre does not serve.")
        alarmsRecorded = make.counter("center_alarms_recorded_total", "Alarms durably recorded, once each.")
        alarmsDuplicate = make.counter(
            "center_alarms_duplicate_total", "Retransmitted or duplicated alarms: acknowledged again, not recorded.")
        idConflicts = make.counter(
            "center_id_conflicts_total",
            "Reliable messages that reused an id for other content: alarms dispatched as cases of their own, others refused.")
        keyEpochsChanged = make.counter(
            "center_key_epochs_changed_total", "Devices that moved to a later key epoch (re-provisioned); their old keys are retired.")
        messagesRecorded = make.counter("center_messages_recorded_total", "Reliable messages durably recorded, alarms included.")
        journalFailures = make.counter("center_journal_failures_total", "Journal writes that failed.")
        journalUp = make.gauge("center_journal_up", "1 while the journal takes writes; 0 while it cannot (alarms are answered nak busy).")
        nodeNameShared = make.counter(
            "center_node_name_shared_total",
            "Lease renewals that found another process renewing under this node's --node name (two nodes would work the same cases).")
        journalBatches = make.counter("center_journal_batches_total", "Journal transactions (group commits), one fsync each.")
        journalBatchedWrites = make.counter(
            "center_journal_batched_writes_total", "Writes committed in journal batches; divided by the batches, the mean batch size.")
        journalCommitDuration = make.timer(
            "center_journal_commit_seconds", "Journal transactions (group commits) by how long they took, fsync included.")
        alarmAckDuration = make.timer(
            "center_alarm_ack_seconds",
            "New alarms by the time from their arrival to their ack (recorded in the journal first, group commit included).")
        // Which build serves, as the official clients' *_build_info: a constant 1 with the version and commit as labels.
        make.gauge(
            "center_build_info", "The devicesim build serving: its version and git commit (\"unknown\" unless stamped by make).",
            [("version", BuildStamp.version), ("commit", BuildStamp.commit)]
        ).set(1)
        sessionsOpened = make.counter("center_sessions_opened_total", "Sessions accepted.")
        sessionsActive = make.gauge("center_sessions_active", "Devices with a current session.")
        sessionsTurnedAway = make.counter(
            "center_sessions_turned_away_total", "Session starts answered nak busy because the centre was at its session limit.")
        sessionsLimit = make.gauge("center_sessions_limit", "The most sessions this process holds (--max-sessions, divided among --workers).")
        devicesOnline = make.gauge("center_devices_online", "Devices under supervision and online.")
        acksSent = make.counter("center_acks_sent_total", "Acks sent, each after a durable record.")
        naksSent = make.counter("center_naks_sent_total", "Naks sent.")
        caseUpdatesSent = make.counter("center_case_updates_sent_total", "Case update frames sent, retransmissions included.")
        retransmissions = make.counter("center_retransmissions_total", "Reliable down messages sent again.")
        connectionsAccepted = make.counter("center_connections_accepted_total", "TCP connections accepted.")
        closedByReason = make.counters(
            "center_connections_closed_total", "TCP connections the centre closed, by why.", label: "reason", Self.closeReasons) { $0 }
        callsOffered = make.counter("center_calls_offered_total", "Calls offered to devices (protocol.md §4.8).")
        callsStarted = make.counter("center_calls_started_total", "Calls answered: media both ways.")
        callsActive = make.gauge("center_calls_active", "Calls offered or in progress.")
        operatorCallsPlaced = make.counter("center_operator_calls_placed_total", "SIP calls placed to operator phones (--operator).")
        operatorCallsAnswered = make.counter("center_operator_calls_answered_total", "SIP calls to operator phones that were answered.")
        operatorCallsNotAnswered = make.counter(
            "center_operator_calls_not_answered_total", "SIP calls to operator phones refused, busy, unanswered or failed.")
        operatorCallsBridged = make.gauge("center_operator_calls_bridged", "Operator phones bridged to a home now.")
        callsWaiting = make.gauge("center_calls_waiting", "Engaged cases waiting for their call (--engage-call-rate).")
        let names = CallEndReason.names
        callsEndedByReason = make.counters(
            "center_calls_ended_total", "Calls ended, by callEnd reason.", label: "reason", names.keys) { names[$0] ?? "\($0)" }
        mediaPacketsReceived = make.counter(
            "center_media_packets_received_total",
            "RTP packets received in calls (RFC 3550 received, voice and video), counted each second while a call lasts.")
        mediaPacketsLost = make.counter(
            "center_media_packets_lost_total",
            "RTP packets lost in calls (RFC 3550 cumulative lost, voice and video), counted each second while a call lasts.")
        mediaRefusedByReason = make.counters(
            "center_media_packets_refused_total",
            "Datagrams on media ports refused in calls, by why, counted each second while a call lasts.", label: "reason",
            ["malformed", "forged", "replayed", "unknownSource"]) { $0 }
        var dc09: [String: Counter] = [:]
        for (answer, reason) in Self.dc09Answers {
            dc09[answer + " " + reason] = make.counter(
                "center_dc09_frames_total", "DC-09 frames by the answer sent (none: dropped, or not durable) and why.",
                [("answer", answer), ("reason", reason)])
        }
        dc09Frames = dc09
        dc09EventsRecorded = make.counter("center_dc09_events_recorded_total", "DC-09 events durably recorded, once each.")
        dc09Forward = DC09ForwardMetrics(&make)
        help = make.help
    }

    func dc09Frame(answer: String, reason: String) { dc09Frames[answer + " " + reason]?.increment() }

    /// A call ended: count it, and what of its media numbers was not counted yet.
    func callEnded(_ reason: CallEndReason, _ statistics: MediaStatistics?, counted: inout MediaCounted) {
        callsEndedByReason[reason.rawValue]?.increment()
        if let statistics { countMedia(statistics, counted: &counted) }
    }

    /// Adds what a call's media numbers grew by since `counted`, during the call (each second) and at its end,
    /// so that the counters move while calls last, not only when they end. A number that went down (RFC 3550's
    /// cumulative loss falls when late packets arrive) is not taken back: counters only rise.
    func countMedia(_ s: MediaStatistics, counted: inout MediaCounted) {
        func add(_ counter: Counter?, _ value: Int64, _ already: inout Int64) {
            guard value > already else { return }
            counter?.increment(by: value - already)
            already = value
        }
        add(mediaPacketsReceived, Int64(s.audio.received) + Int64(s.video.received), &counted.received)
        add(mediaPacketsLost, Int64(max(0, s.audio.cumulativeLost)) + Int64(max(0, s.video.cumulativeLost)), &counted.lost)
        for (reason, count) in [("malformed", s.malformed), ("forged", s.authenticationFailures), ("replayed", s.replayed), ("unknownSource", s.unknownSource)] {
            add(mediaRefusedByReason[reason], Int64(clamping: count), &counted.refused[reason, default: 0])
        }
    }

    func refused(_ category: ProtocolError.Category) { refusedByCategory[category]?.increment() }
    func dropped(_ reason: CenterSession.Drop) { droppedByReason[reason]?.increment() }
    func connectionClosed(_ reason: String) { closedByReason[reason]?.increment() }
}

/// The media numbers of one call already added to the counters.
struct MediaCounted {
    var received: Int64 = 0
    var lost: Int64 = 0
    var refused: [String: Int64] = [:]
}

/// Makes a centre's metrics with one factory and keeps each family's help text.
struct Families {
    let factory: any MetricsFactory
    var help: [String: String] = [:]

    mutating func counter(_ name: String, _ help: String, _ dimensions: [(String, String)] = []) -> Counter {
        self.help[name] = help
        return Counter(label: name, dimensions: dimensions, factory: factory)
    }

    /// One counter per key, each with `label` set to the key's name: every series exists from the start, at 0.
    mutating func counters<Key: Hashable>(
        _ name: String, _ help: String, label: String, _ keys: some Sequence<Key>, named: (Key) -> String
    ) -> [Key: Counter] {
        var counters: [Key: Counter] = [:]
        for key in keys { counters[key] = counter(name, help, [(label, named(key))]) }
        return counters
    }

    /// A value that goes up and down, set from time to time (a Prometheus gauge).
    mutating func gauge(_ name: String, _ help: String, _ dimensions: [(String, String)] = []) -> Meter {
        self.help[name] = help
        return Meter(label: name, dimensions: dimensions, factory: factory)
    }

    /// Durations (a Prometheus histogram in seconds, with the buckets of `CenterMetrics.timerBuckets`).
    mutating func timer(_ name: String, _ help: String) -> Timer {
        self.help[name] = help
        return Timer(label: name, factory: factory)
    }
}
