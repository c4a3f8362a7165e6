import Prometheus

/// The centre's counters and gauges, registered in a `PrometheusCollectorRegistry` the caller owns, so that
/// tests and several centres in one process never share global state.
final class CenterMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let framesReceived: Prometheus.Counter
    private let refusedByCategory: [ProtocolError.Category: Prometheus.Counter]
    private let droppedByReason: [CenterSession.Drop: Prometheus.Counter]
    let unknownDevice: Prometheus.Counter
    /// Frames under ids without a key at hand, dropped before derivation: their source's forgeries ran over
    /// `--forged-frame-rate` (ForgeryBudget).
    let sourceLimited: Prometheus.Counter
    let keyDerivations: Prometheus.Counter
    let keyCacheEntries: Gauge
    let eventsDropped: Prometheus.Counter
    let connectionsOpen: Gauge
    let acceptBackoffs: Prometheus.Counter
    /// Answers not sent because the peer's socket would not take them (its reader is too slow).
    let framesUnsent: Prometheus.Counter
    let metricsRequestsRefused: Prometheus.Counter
    let alarmsRecorded: Prometheus.Counter
    let alarmsDuplicate: Prometheus.Counter
    /// Reliable messages that reused an id for other content (protocol.md §4.7).
    let idConflicts: Prometheus.Counter
    /// Devices moved to a later key epoch (protocol.md §3.4).
    let keyEpochsChanged: Prometheus.Counter
    let messagesRecorded: Prometheus.Counter
    let journalFailures: Prometheus.Counter
    let journalBatches: Prometheus.Counter
    let journalBatchedWrites: Prometheus.Counter
    /// How long each journal transaction took on the writer thread, its fsync included.
    let journalCommitDuration: DurationHistogram
    let sessionsOpened: Prometheus.Counter
    let sessionsActive: Gauge
    let devicesOnline: Gauge
    let acksSent: Prometheus.Counter
    let naksSent: Prometheus.Counter
    let caseUpdatesSent: Prometheus.Counter
    let retransmissions: Prometheus.Counter
    let connectionsAccepted: Prometheus.Counter
    private let closedByReason: [String: Prometheus.Counter]
    let callsOffered: Prometheus.Counter
    let callsStarted: Prometheus.Counter
    let callsActive: Gauge
    let callsWaiting: Gauge
    private let callsEndedByReason: [UInt8: Prometheus.Counter]
    /// From an alarm's arrival to its `ack` (journalled first, group commit included), new alarms only.
    let alarmAckDuration: DurationHistogram
    let mediaPacketsReceived: Prometheus.Counter
    let mediaPacketsLost: Prometheus.Counter
    private let mediaRefusedByReason: [String: Prometheus.Counter]

    /// Why the centre closes a TCP connection.
    static let closeReasons = [
        "authTimeout", "oversized", "malformed", "unsupported", "offences", "evicted", "connectionLimit", "backpressure",
    ]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        framesReceived = registry.makeCounter(descriptor: .init(metricName: "center_frames_received_total", unitName: "", helpText: "Frames received, TCP and UDP."))
        var refused: [ProtocolError.Category: Prometheus.Counter] = [:]
        for category in ProtocolError.Category.allCases {
            refused[category] = registry.makeCounter(descriptor: .init(metricName: "center_frames_refused_total", unitName: "", helpText: "Frames refused, by category of protocol.md §6."), labels: [("category", category.rawValue)])
        }
        refusedByCategory = refused
        var dropped: [CenterSession.Drop: Prometheus.Counter] = [:]
        for reason in CenterSession.Drop.allCases {
            dropped[reason] = registry.makeCounter(descriptor: .init(metricName: "center_frames_dropped_total", unitName: "", helpText: "Frames not acted on: the device over its rate, too many sessions, a source over its forgery budget."), labels: [("reason", reason.rawValue)])
        }
        droppedByReason = dropped
        sourceLimited = registry.makeCounter(descriptor: .init(metricName: "center_frames_dropped_total", unitName: "", helpText: "Frames not acted on: the device over its rate, too many sessions, a source over its forgery budget."), labels: [("reason", "sourceLimited")])
        keyDerivations = registry.makeCounter(descriptor: .init(metricName: "center_key_derivations_total", unitName: "", helpText: "Device keys derived from the registry (HKDF), for frames under ids without a key at hand."))
        keyCacheEntries = registry.makeGauge(descriptor: .init(metricName: "center_key_cache_entries", unitName: "", helpText: "Derived device keys kept for devices without a session (bounded by the cache's capacity)."))
        eventsDropped = registry.makeCounter(descriptor: .init(metricName: "center_events_dropped_total", unitName: "", helpText: "Events an observer (--json, --console) did not keep up with and lost."))
        connectionsOpen = registry.makeGauge(descriptor: .init(metricName: "center_connections_open", unitName: "", helpText: "TCP device connections open."))
        acceptBackoffs = registry.makeCounter(descriptor: .init(metricName: "center_accept_backoffs_total", unitName: "", helpText: "Times accepting TCP connections paused because descriptors (or memory) ran out."))
        framesUnsent = registry.makeCounter(descriptor: .init(metricName: "center_frames_unsent_total", unitName: "", helpText: "Answers dropped because the peer's socket would not take them."))
        metricsRequestsRefused = registry.makeCounter(descriptor: .init(metricName: "center_metrics_requests_refused_total", unitName: "", helpText: "Metrics connections closed unanswered: too slow, or too many at once."))
        unknownDevice = registry.makeCounter(descriptor: .init(metricName: "center_frames_unknown_device_total", unitName: "", helpText: "Frames for a device id the centre does not serve."))
        alarmsRecorded = registry.makeCounter(descriptor: .init(metricName: "center_alarms_recorded_total", unitName: "", helpText: "Alarms durably recorded, once each."))
        alarmsDuplicate = registry.makeCounter(descriptor: .init(metricName: "center_alarms_duplicate_total", unitName: "", helpText: "Retransmitted or duplicated alarms: acknowledged again, not recorded."))
        idConflicts = registry.makeCounter(descriptor: .init(metricName: "center_id_conflicts_total", unitName: "", helpText: "Reliable messages that reused an id for other content: alarms dispatched as cases of their own, others refused."))
        keyEpochsChanged = registry.makeCounter(descriptor: .init(metricName: "center_key_epochs_changed_total", unitName: "", helpText: "Devices that moved to a later key epoch (re-provisioned); their old keys are retired."))
        messagesRecorded = registry.makeCounter(descriptor: .init(metricName: "center_messages_recorded_total", unitName: "", helpText: "Reliable messages durably recorded, alarms included."))
        journalFailures = registry.makeCounter(descriptor: .init(metricName: "center_journal_failures_total", unitName: "", helpText: "Journal writes that failed."))
        journalBatches = registry.makeCounter(descriptor: .init(metricName: "center_journal_batches_total", unitName: "", helpText: "Journal transactions (group commits), one fsync each."))
        journalBatchedWrites = registry.makeCounter(descriptor: .init(metricName: "center_journal_batched_writes_total", unitName: "", helpText: "Writes committed in journal batches; divided by the batches, the mean batch size."))
        journalCommitDuration = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "center_journal_commit_seconds", unitName: "",
                helpText: "Journal transactions (group commits) by how long they took, fsync included."),
            buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000].map { Duration.milliseconds($0) })
        alarmAckDuration = registry.makeDurationHistogram(
            descriptor: .init(
                metricName: "center_alarm_ack_seconds", unitName: "",
                helpText: "New alarms by the time from their arrival to their ack (recorded in the journal first, group commit included)."),
            buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000].map { Duration.milliseconds($0) })
        // Which build serves, as the official clients' *_build_info: a constant 1 with the version and commit as labels.
        registry.makeGauge(
            descriptor: .init(metricName: "center_build_info", unitName: "", helpText: "The devicesim build serving: its version and git commit (\"unknown\" unless stamped by make)."),
            labels: [("version", BuildStamp.version), ("commit", BuildStamp.commit)]
        ).set(Int64(1))
        sessionsOpened = registry.makeCounter(descriptor: .init(metricName: "center_sessions_opened_total", unitName: "", helpText: "Sessions accepted."))
        sessionsActive = registry.makeGauge(descriptor: .init(metricName: "center_sessions_active", unitName: "", helpText: "Devices with a current session."))
        devicesOnline = registry.makeGauge(descriptor: .init(metricName: "center_devices_online", unitName: "", helpText: "Devices under supervision and online."))
        acksSent = registry.makeCounter(descriptor: .init(metricName: "center_acks_sent_total", unitName: "", helpText: "Acks sent, each after a durable record."))
        naksSent = registry.makeCounter(descriptor: .init(metricName: "center_naks_sent_total", unitName: "", helpText: "Naks sent."))
        caseUpdatesSent = registry.makeCounter(descriptor: .init(metricName: "center_case_updates_sent_total", unitName: "", helpText: "Case update frames sent, retransmissions included."))
        retransmissions = registry.makeCounter(descriptor: .init(metricName: "center_retransmissions_total", unitName: "", helpText: "Reliable down messages sent again."))
        connectionsAccepted = registry.makeCounter(descriptor: .init(metricName: "center_connections_accepted_total", unitName: "", helpText: "TCP connections accepted."))
        var closed: [String: Prometheus.Counter] = [:]
        for reason in Self.closeReasons {
            closed[reason] = registry.makeCounter(descriptor: .init(metricName: "center_connections_closed_total", unitName: "", helpText: "TCP connections the centre closed, by why."), labels: [("reason", reason)])
        }
        closedByReason = closed
        callsOffered = registry.makeCounter(descriptor: .init(metricName: "center_calls_offered_total", unitName: "", helpText: "Calls offered to devices (protocol.md §4.8)."))
        callsStarted = registry.makeCounter(descriptor: .init(metricName: "center_calls_started_total", unitName: "", helpText: "Calls answered: media both ways."))
        callsActive = registry.makeGauge(descriptor: .init(metricName: "center_calls_active", unitName: "", helpText: "Calls offered or in progress."))
        callsWaiting = registry.makeGauge(
            descriptor: .init(metricName: "center_calls_waiting", unitName: "", helpText: "Engaged cases waiting for their call (--engage-call-rate)."))
        var ended: [UInt8: Prometheus.Counter] = [:]
        for (code, name) in CallEndReason.names {
            ended[code] = registry.makeCounter(descriptor: .init(metricName: "center_calls_ended_total", unitName: "", helpText: "Calls ended, by callEnd reason."), labels: [("reason", name)])
        }
        callsEndedByReason = ended
        mediaPacketsReceived = registry.makeCounter(descriptor: .init(metricName: "center_media_packets_received_total", unitName: "", helpText: "RTP packets received in calls (RFC 3550 received, voice and video), counted each second while a call lasts."))
        mediaPacketsLost = registry.makeCounter(descriptor: .init(metricName: "center_media_packets_lost_total", unitName: "", helpText: "RTP packets lost in calls (RFC 3550 cumulative lost, voice and video), counted each second while a call lasts."))
        var refusedMedia: [String: Prometheus.Counter] = [:]
        for reason in ["malformed", "forged", "replayed", "unknownSource"] {
            refusedMedia[reason] = registry.makeCounter(descriptor: .init(metricName: "center_media_packets_refused_total", unitName: "", helpText: "Datagrams on media ports refused in calls, by why, counted each second while a call lasts."), labels: [("reason", reason)])
        }
        mediaRefusedByReason = refusedMedia
    }

    /// A call ended: count it, and what of its media numbers was not counted yet.
    func callEnded(_ reason: CallEndReason, _ statistics: MediaStatistics?, counted: inout MediaCounted) {
        callsEndedByReason[reason.rawValue]?.increment()
        if let statistics { countMedia(statistics, counted: &counted) }
    }

    /// Adds what a call's media numbers grew by since `counted`, during the call (each second) and at its end,
    /// so that the counters move while calls last, not only when they end. A number that went down (RFC 3550's
    /// cumulative loss falls when late packets arrive) is not taken back: counters only rise.
    func countMedia(_ s: MediaStatistics, counted: inout MediaCounted) {
        func add(_ counter: Prometheus.Counter?, _ value: Int64, _ already: inout Int64) {
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

    /// The text the metrics endpoint serves: the centre's metrics, then the process's (`process_*`).
    func render() -> [UInt8] {
        var text = registry.emitToBuffer()
        if let process = ProcessMetrics.read() { text += Array(process.text.utf8) }
        return text
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
