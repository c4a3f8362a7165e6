import Foundation
import Testing

@testable import DeviceKit

/// What the metrics endpoint serves is an interface: dashboards, alerts, `tools/attack_client.py` and
/// `tools/load_bench.py` read it by name. A real centre's scrape (here a `devicesim center` process, in
/// `CenterServerTests` one in this process) is held to the list below: every family's name, type, labels,
/// help and histogram buckets, so that a rename cannot slip through.
@Suite struct CenterMetricsTests {
    /// Every family the endpoint serves: its type and the label sets of its samples (`[]`: one unlabelled
    /// sample). Histograms list their buckets in `buckets`.
    static let families: [String: (type: String, labels: Set<String>)] = [
        "center_accept_backoffs_total": ("counter", [""]),
        "center_acks_sent_total": ("counter", [""]),
        "center_alarm_ack_seconds": ("histogram", [""]),
        "center_alarms_duplicate_total": ("counter", [""]),
        "center_alarms_recorded_total": ("counter", [""]),
        "center_build_info": ("gauge", [#"version="\#(BuildStamp.version)",commit="\#(BuildStamp.commit)""#]),
        "center_calls_active": ("gauge", [""]),
        "center_calls_ended_total": (
            "counter", [#"reason="declined""#, #"reason="hangUp""#, #"reason="failed""#, #"reason="mediaSilent""#]
        ),
        "center_calls_offered_total": ("counter", [""]),
        "center_calls_started_total": ("counter", [""]),
        "center_calls_waiting": ("gauge", [""]),
        "center_operator_calls_answered_total": ("counter", [""]),
        "center_operator_calls_bridged": ("gauge", [""]),
        "center_operator_calls_not_answered_total": ("counter", [""]),
        "center_operator_calls_placed_total": ("counter", [""]),
        "center_case_updates_sent_total": ("counter", [""]),
        "center_connections_accepted_total": ("counter", [""]),
        "center_connections_closed_total": (
            "counter",
            Set(["authTimeout", "oversized", "malformed", "unsupported", "offences", "evicted", "connectionLimit", "backpressure", "stalled", "idle"]
                .map { #"reason="\#($0)""# })
        ),
        "center_connections_open": ("gauge", [""]),
        "center_console_actions_total": ("counter", Set(["take", "call", "hangup", "dispatch", "close"].map { #"action="\#($0)""# })),
        "center_console_logins_total": ("counter", Set(["accepted", "refused", "limited"].map { #"outcome="\#($0)""# })),
        "center_console_streams": ("gauge", [""]),
        "center_dc09_events_recorded_total": ("counter", [""]),
        "center_dc09_frames_total": (
            "counter",
            Set([("ACK", "recorded"), ("ACK", "retransmission"), ("ACK", "supervision"), ("NAK", "malformed"), ("NAK", "unknownAccount"),
                 ("NAK", "undecryptable"), ("NAK", "outsideWindow"), ("DUH", "unsupported"), ("DUH", "clearFromKeyedAccount"),
                 ("none", "journalFailed"), ("none", "rateLimited"), ("none", "overlong")].map { #"answer="\#($0.0)",reason="\#($0.1)""# })
        ),
        "center_dc09_forward_answers_total": (
            "counter",
            Set(["primary", "backup"].flatMap { r in ["NAK", "DUH"].map { #"receiver="\#(r)",answer="\#($0)""# } })
        ),
        "center_dc09_forward_queue_depth": ("gauge", [""]),
        "center_dc09_forwarding": ("gauge", [""]),
        "center_dc09_forward_retransmissions_total": ("counter", [#"receiver="primary""#, #"receiver="backup""#]),
        "center_dc09_forwarded_total": ("counter", [#"receiver="primary""#, #"receiver="backup""#]),
        "center_dc09_receiver_up": ("gauge", [#"receiver="primary""#, #"receiver="backup""#]),
        "center_devices_online": ("gauge", [""]),
        "center_events_dropped_total": ("counter", [""]),
        "center_frames_dropped_total": (
            "counter", [#"reason="tooManySessions""#, #"reason="sourceLimited""#, #"reason="shed""#, #"reason="rateLimited""#]
        ),
        "center_frames_received_total": ("counter", [""]),
        "center_frames_refused_total": (
            "counter",
            Set(["stale", "replayed", "unsupported", "malformed", "forged", "oversized"].map { #"category="\#($0)""# })
        ),
        "center_frames_unknown_device_total": ("counter", [""]),
        "center_frames_unsent_total": ("counter", [""]),
        "center_id_conflicts_total": ("counter", [""]),
        "center_journal_batched_writes_total": ("counter", [""]),
        "center_journal_batches_total": ("counter", [""]),
        "center_journal_commit_seconds": ("histogram", [""]),
        "center_journal_failures_total": ("counter", [""]),
        "center_journal_up": ("gauge", [""]),
        "center_node_name_shared_total": ("counter", [""]),
        "center_key_cache_entries": ("gauge", [""]),
        "center_key_derivations_total": ("counter", [""]),
        "center_key_epochs_changed_total": ("counter", [""]),
        "center_media_packets_lost_total": ("counter", [""]),
        "center_media_packets_received_total": ("counter", [""]),
        "center_media_packets_refused_total": (
            "counter", Set(["malformed", "forged", "replayed", "unknownSource"].map { #"reason="\#($0)""# })
        ),
        "center_messages_recorded_total": ("counter", [""]),
        "center_metrics_requests_refused_total": ("counter", [""]),
        "center_naks_sent_total": ("counter", [""]),
        "center_retransmissions_total": ("counter", [""]),
        "center_sessions_active": ("gauge", [""]),
        "center_sessions_limit": ("gauge", [""]),
        "center_sessions_opened_total": ("counter", [""]),
        "center_sessions_turned_away_total": ("counter", [""]),
        "process_cpu_seconds_total": ("counter", [""]),
        "process_max_fds": ("gauge", [""]),
        "process_open_fds": ("gauge", [""]),
        "process_resident_memory_bytes": ("gauge", [""]),
        "process_start_time_seconds": ("gauge", [""]),
        "process_virtual_memory_bytes": ("gauge", [""]),
    ]

    /// Each histogram's upper bounds in seconds (`le`), as the endpoint writes them.
    static let buckets: [String: [String]] = [
        "center_journal_commit_seconds": ["0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1.0", "2.0", "+Inf"],
        "center_alarm_ack_seconds": ["0.001", "0.002", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1.0", "2.0", "5.0", "+Inf"],
    ]

    /// One scrape, read as the Prometheus text format: each family's type and help, each sample's labels.
    struct Scrape {
        var types: [String: String] = [:]
        var help: [String: String] = [:]
        /// Family → label sets of its samples (histograms: of `_count`, without `le`).
        var labels: [String: Set<String>] = [:]
        /// Histogram → its `le` values in the order served.
        var buckets: [String: [String]] = [:]
        /// Sample lines whose family has no `# TYPE`.
        var strays: [String] = []

        init(_ text: String) {
            for line in text.split(separator: "\n").map(String.init) {
                if line.hasPrefix("# TYPE ") {
                    let fields = line.dropFirst("# TYPE ".count).split(separator: " ")
                    if fields.count == 2 { types[String(fields[0])] = String(fields[1]) }
                } else if line.hasPrefix("# HELP ") {
                    let rest = line.dropFirst("# HELP ".count)
                    let name = rest.prefix { $0 != " " }
                    help[String(name)] = String(rest.dropFirst(name.count + 1))
                } else if !line.hasPrefix("#") {
                    let series = line.prefix { $0 != " " }
                    let name = String(series.prefix { $0 != "{" })
                    let labels = series.count > name.count ? String(series.dropFirst(name.count + 1).dropLast()) : ""
                    func histogram(_ suffix: String) -> String? {
                        let family = String(name.dropLast(suffix.count))
                        return name.hasSuffix(suffix) && types[family] == "histogram" ? family : nil
                    }
                    if let family = histogram("_bucket") {
                        let le = labels.components(separatedBy: "le=\"").last?.prefix { $0 != "\"" } ?? ""
                        buckets[family, default: []].append(String(le))
                    } else if let family = histogram("_count") {
                        self.labels[family, default: []].insert(labels)
                    } else if histogram("_sum") == nil {
                        guard types[name] != nil else {
                            strays.append(line)
                            continue
                        }
                        self.labels[name, default: []].insert(labels)
                    }
                }
            }
        }
    }

    /// `devicesim center` records through the factory it bootstrapped `MetricsSystem` with: the same families.
    @Test func theCenterCommandServesTheSameFamilies() async throws {
        let directory = try makeTemporaryDirectory("metrics")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let log = directory + "/center.out"
        let centre = try ChildProcess.launch(
            ["center", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--journal", directory + "/c.sqlite"],
            environment: ["DEVICEKIT_MASTER_KEY": ChildProcess.masterHex], output: log)
        defer { if centre.isRunning { centre.terminate() } }
        var port = 0
        try await eventually("the centre listens") {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let first = text.split(separator: "\n").first.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            port = first?["metrics"] as? Int ?? 0
            return port > 0
        }
        let response = try await httpGet(port: port, path: "/metrics")
        centre.terminate()
        try await ChildProcess.exit(centre, within: .seconds(60))
        let body = try #require(response.components(separatedBy: "\r\n\r\n").dropFirst().first)
        Self.check(Scrape(body), commit: BuildStamp.commit(ofExecutable: ChildProcess.devicesim))
    }

    /// `scrape` against `families` and `buckets`, its build info naming `commit` (the stamp beside the
    /// executable that served it).
    static func check(_ scrape: Scrape, commit: String = BuildStamp.commit, sourceLocation: SourceLocation = #_sourceLocation) {
        var families = Self.families
        families["center_build_info"] = ("gauge", [#"version="\#(BuildStamp.version)",commit="\#(commit)""#])
        #expect(scrape.strays == [], sourceLocation: sourceLocation)
        #expect(scrape.types.keys.sorted() == families.keys.sorted(), sourceLocation: sourceLocation)
        for (name, expected) in families {
            #expect(scrape.types[name] == expected.type, "\(name)", sourceLocation: sourceLocation)
            #expect(scrape.labels[name] == expected.labels, "\(name)", sourceLocation: sourceLocation)
            #expect(scrape.help[name]?.isEmpty == false, "\(name) has no help text", sourceLocation: sourceLocation)
        }
        #expect(scrape.buckets == buckets, sourceLocation: sourceLocation)
        // The help a reader of the endpoint sees, word for word, for one family of each kind.
        #expect(scrape.help["center_alarm_ack_seconds"] == "New alarms by the time from their arrival to their ack (recorded in the journal first, group commit included).", sourceLocation: sourceLocation)
        #expect(scrape.help["center_frames_refused_total"] == "Frames refused, by category of protocol.md §6.", sourceLocation: sourceLocation)
        #expect(scrape.help["center_build_info"] == #"The devicesim build serving: its version and git commit ("unknown" unless stamped by make)."#, sourceLocation: sourceLocation)
        #expect(scrape.help["process_open_fds"] == "Number of open file descriptors.", sourceLocation: sourceLocation)
    }

    /// Every `center_*` and `process_*` name that README.md, protocol.md or docs/ mention is served.
    @Test func everyMetricTheDocumentsNameIsServed() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardized
        var documents = ["README.md", "protocol.md"].map { root.appendingPathComponent($0) }
        if let walker = FileManager.default.enumerator(at: root.appendingPathComponent("docs"), includingPropertiesForKeys: nil) {
            for case let url as URL in walker where url.pathExtension == "md" { documents.append(url) }
        }
        var named: [String: String] = [:]
        let pattern = try NSRegularExpression(pattern: #"\b(center|process)_[a-z][a-z_]*[a-z]\b"#)
        for document in documents {
            let text = try String(contentsOf: document, encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                guard let range = Range(match.range, in: text) else { continue }
                var name = String(text[range])
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
                named[name] = document.lastPathComponent
            }
        }
        #expect(named.count >= 20, "the documents name the metrics")
        for (name, document) in named.sorted(by: { $0.key < $1.key }) {
            #expect(Self.families[name] != nil, "\(document) names \(name), which the endpoint does not serve")
        }
    }
}

/// The `# HELP` lines the endpoint adds to what swift-prometheus writes for families made through swift-metrics.
@Suite struct MetricsExpositionTests {
    static func adding(_ help: [String: String], to text: String) -> String {
        String(decoding: MetricsExposition.addingHelp(help, to: Array(text.utf8)), as: UTF8.self)
    }

    @Test func eachNamedFamilyGetsItsHelpLineBeforeItsType() {
        let text = "# TYPE a_total counter\na_total 1\n# TYPE b gauge\nb 2.0\n"
        #expect(Self.adding(["a_total": "As counted."], to: text) == "# HELP a_total As counted.\n" + text)
    }

    @Test func aBackslashAndALineFeedInHelpAreEscapedAsTheFormatSays() {
        #expect(Self.adding(["a": #"one\two"# + "\nthree"], to: "# TYPE a gauge\na 1.0\n")
            == #"# HELP a one\\two\nthree"# + "\n# TYPE a gauge\na 1.0\n")
    }

    @Test func aFamilyWithHelpAlreadyAndTextWithoutAFinalLineFeedAreLeftAsTheyAre() {
        let text = "# HELP a Its own.\n# TYPE a gauge\na 1.0"
        #expect(Self.adding(["a": "Another."], to: text) == text)
        #expect(Self.adding([:], to: "") == "")
        #expect(Self.adding(["a": "A."], to: "") == "")
    }
}
