import ArgumentParser
import CenterConsole
import DeviceKit
import Foundation
import Logging
import NIOCore
import Metrics
import Prometheus
import ServiceLifecycle

/// `devicesim center [serve]`: the reference dispatch centre, the peer of devices, load tests and diagnostics;
/// the default subcommand of `devicesim center` (CenterCommandGroup).
struct CenterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the reference dispatch centre: receive alarms over TCP and UDP, journal them, answer devices.",
        discussion: """
            Durations take a unit (250ms, 1.5s, 2min); a plain number keeps each option's old unit (milliseconds \
            for --auto-engage-after, seconds for the others).

            \(ExitStatus.help(
                [.noInput, .noHost, .unavailable, .software, .cannotCreate, .noPermission, .configuration],
                [.noInput: "the key file, the master key file or the DC-09 accounts file is missing or unreadable",
                 .unavailable: "a port is already in use, or the PostgreSQL journal's server cannot be reached or refuses the login",
                 .software: "an internal error, or a worker (--workers) was killed (a worker that failed otherwise: its own status)",
                 .cannotCreate: "the journal cannot be created (its directory is missing)",
                 .noPermission: "a privileged port (below 1024) without root, or a journal this user may not write",
                 .configuration: "the key file, the master key or the DC-09 accounts file is invalid"]))
            """)

    @Option(help: "The host address to listen on.")
    var host = "0.0.0.0"

    @Option(parsing: .unconditional, help: "The port for both TCP and UDP, 1 to 65535 (0 lets the system choose one free for both).")
    var port = 7700

    @Option(parsing: .unconditional, help: "The TCP port, when it differs from --port.")
    var tcpPort: Int?

    @Option(parsing: .unconditional, help: "The UDP port, when it differs from --port.")
    var udpPort: Int?

    @Option(help: "A key file: TOML with one line `<device id> = \"<root key hex>\"` (or `{ key = \"<hex>\", epoch = N }`) per device under [devices].")
    var keys: String?

    /// Or the fleet master key: every device's key is derived from it.
    @OptionGroup var masterKey: MasterKeyOptions

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Also receive SIA DC-09 (SIA-DCS and Contact ID, clear or AES) on this port, TCP and UDP (0: a free one, told in the listening line); needs --dc09-accounts.",
        discussion: """
            Events of the accounts in --dc09-accounts are journalled as their devices' alarms, cancels and events, \
            open and close cases like our own, and are acknowledged (ACK) only once the journal holds them; NAK \
            for damaged frames, unknown accounts, wrong keys and timestamps outside +20/-40 s; DUH for codes the \
            table of docs/dc09.md does not have and clear frames from accounts with a key; NULL is acknowledged \
            at once and counts as the device's proof of life (for --offline-after). Its TCP connections are \
            limited by --max-connections and --max-unauthenticated-per-address (a connection is unauthenticated \
            until a frame of a known account is taken on it).
            """))
    var dc09Port: Int?

    @Option(help: "The DC-09 accounts: TOML, one [accounts.\"<3-16 hex digits>\"] table each with device = <our device id> and an optional key = \"<AES-128/192/256 key in hex>\".")
    var dc09Accounts: String?

    @Option(parsing: .unconditional, help: "DC-09 frames a second per source address (bursts of twice as many), checked before any decryption; past it frames are dropped unanswered and the transmitter sends them again.")
    var dc09Rate: Double = 100

    @Option(parsing: .unconditional, help: "Close a DC-09 TCP connection that sends no frame for this long (default 120s).", transform: DurationOption.seconds)
    var dc09IdleTimeout: DurationOption?

    @Option(help: "The journal: an SQLite file (a restarted centre reopens it), or a PostgreSQL database that centre nodes on several hosts share, postgres://USER@HOST[:PORT]/DATABASE (docs/postgres.md); its password from --journal-password-file or PGPASSWORD, never here.")
    var journal = CenterCommand.defaultJournal

    @Option(help: "A file whose first line is the PostgreSQL journal's password (else the environment's PGPASSWORD).")
    var journalPasswordFile: String?

    @Option(help: "This node's name among the centre nodes that share the journal (default: the host's name; with --workers, worker I is NAME/I). A node owns the cases it opens and holds them by a lease in the journal; give each node its own name, and the same one again when it restarts, so that it takes its cases back.")
    var node: String?

    @Option(parsing: .unconditional, help: "How long this node's lease on its open cases holds after each renewal (every quarter of it; default 10s): a node gone this long (killed, or cut off from the journal) has its open cases taken over by another node that shares the journal.", transform: DurationOption.seconds)
    var caseLease: DurationOption?

    @Option(parsing: .unconditional, help: "The heartbeat interval told to devices, in whole seconds up to 65535 (default 30s).", transform: DurationOption.seconds)
    var heartbeatInterval: DurationOption?

    /// `--heartbeat`, the load tool's old name for the same setting, accepted here too.
    @Option(name: .customLong("heartbeat"), parsing: .unconditional, help: .hidden, transform: DurationOption.seconds)
    var heartbeatAlias: DurationOption?

    @Option(parsing: .unconditional, help: "Silence after which a device is reported offline; also how long a TCP connection's answers may go unacknowledged before it is closed (default: 2.5 heartbeat intervals).", transform: DurationOption.seconds)
    var offlineAfter: DurationOption?

    @Option(parsing: .unconditional, help: "How long a TCP connection may stay without sending an authentic frame (default 5s).", transform: DurationOption.seconds)
    var authTimeout: DurationOption?

    @Option(parsing: .unconditional, help: "Frames a second each device may send on average.")
    var rate: Double = 20

    @Option(parsing: .unconditional, help: "Frames each device may send in a burst.")
    var burst: Double = 40

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "The most devices with a session at once, for the whole centre (default: sized to memory).",
        discussion: """
            Past it a device's session start is answered busy, and the device tries its secondary centre; the \
            centre says so in its log (once a minute, with the count) and counts it \
            (center_sessions_turned_away_total). The default budgets 4 KiB a session (a UDP one takes about \
            1.6 kB; TCP connections are held to --max-connections) in half the memory (the physical memory, or \
            the cgroup's limit when lower). With --workers N each worker holds a 1/N share.
            """))
    var maxSessions: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "The most TCP device connections held at once (default: the open-file limit less a quarter of it or 1,024, whichever is fewer).",
        discussion: """
            Past it a new connection takes the place of the oldest one that has not yet authenticated, or is \
            closed if every one has. When accept(2) still runs out of descriptors, accepting pauses for 100 ms, \
            the limit comes down to the connections held less 16, and the oldest unauthenticated ones over it \
            are closed.
            """))
    var maxConnections: Int?

    @Option(parsing: .unconditional, help: "The most TCP connections from one source address that have not yet authenticated; past it the address's oldest is closed.")
    var maxUnauthenticatedPerAddress = 256

    @Option(parsing: .unconditional, help: "Frames a second, per source address, under device ids without a key at hand that may come to nothing (forged, stale, dropped; bursts of 4 times as many); past it such frames are dropped before any key derivation.")
    var forgedFrameRate: Double = 50

    @Option(parsing: .unconditional, help: "Derived device keys kept for devices without a session (about 235 bytes each; the least recently used are forgotten first).")
    var keyCache = 20_000

    @Option(parsing: .unconditional, help: "When an automatic operator engages each new case, e.g. 100ms (for tests and load; a plain number is milliseconds).", transform: DurationOption.milliseconds)
    var autoEngageAfter: DurationOption?

    @Option(parsing: .unconditional, help: "How long after engagement the automatic operator closes the case, e.g. 1s (for tests and load; a plain number is seconds).", transform: DurationOption.seconds)
    var autoCloseAfter: DurationOption?

    @Flag(inversion: .prefixedNo, help: "Call the home (SRTP voice over RTP) when an operator engages its case.")
    var callOnEngage = true

    @Option(parsing: .unconditional, help: "The most calls a second placed when operators engage cases; the others wait their turn, so that a storm's calls cannot starve its alarms.")
    var engageCallRate: Double = 50

    @Option(parsing: .unconditional, help: "Silence from a home after which its call is ended as silent, at least 500ms (default 5s; the case stays open).", transform: DurationOption.seconds)
    var mediaSilence: DurationOption?

    @Flag(help: "Send no video stub stream in calls (voice only).")
    var noVideo = false

    @Option(parsing: .unconditional, help: "The most journal writes committed in one transaction and fsync (group commit); 1 writes each alone.")
    var journalBatch = 2048

    @Option(parsing: .unconditional, help: "Receive and send buffer of the UDP socket in bytes (SO_RCVBUF/SO_SNDBUF; the kernel caps it at net.core.rmem_max).")
    var udpBuffer = 8 << 20

    @Option(parsing: .unconditional, help: "After a read that emptied the UDP socket, wait this long before the next, so that datagrams are read many to a wake-up (0: read each at once; default 1ms).", transform: DurationOption.milliseconds)
    var udpReadInterval: DurationOption?

    @Option(parsing: .unconditional, help: "Serve Prometheus metrics on this port at GET /metrics (0: a free one); with --workers N, worker I on this port + I.")
    var metricsPort: Int?

    @Option(help: "The address the metrics endpoint listens on (not --host: metrics are not for the devices' network).")
    var metricsBind = "127.0.0.1"

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Serve the operators' web console on this port (0: a free one; the listening line names it). Off by default.",
        discussion: """
            Operators log in with accounts made by `devicesim center operators add` and work the live queue, \
            the devices and the journal's history in a browser (docs/console.md). A single process only (not \
            with --workers).
            """))
    var webPort: Int?

    @Option(help: "The address the web console listens on (default 127.0.0.1; put a TLS reverse proxy in front of it before serving other machines).")
    var webHost = "127.0.0.1"

    @Flag(help: "Mark the console's session cookie Secure: for a console behind a TLS reverse proxy.")
    var webSecureCookie = false

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "Worker processes that share the port (SO_REUSEPORT) and the journal; each holds the devices the kernel hands it.",
        discussion: """
            With N above 1 this process starts N workers of itself, prints one line once all listen, forwards \
            SIGINT and SIGTERM to them, and exits with an error naming a worker that dies (the others are stopped; \
            nothing is restarted). --port must not be 0. Cases, --json events and metrics are per worker (worker I \
            serves metrics on --metrics-port + I); --console needs a single process.
            """))
    var workers = 1

    /// Set by the parent of `--workers N` for each worker it starts (CenterWorkerProcesses).
    @Option(help: .hidden)
    var workerIndex: Int?

    @Flag(help: "Stop, as on SIGTERM, when standard input reaches end of file: for a program that starts the centre with a pipe as its standard input and holds the other end, so that the centre ends when that program ends, even by SIGKILL (`devicesim load --spawn-center` does).")
    var stopWithStdin = false

    @Flag(help: "Show cases and calls as they happen and read commands from standard input: 'list', 'engage N', 'close N', 'call N', 'hangup N', 'help', 'quit'. Run it in the foreground of a terminal of its own; started in the background (&), it takes commands once brought to the foreground (fg).")
    var console = false

    @Flag(help: "Print one JSON object per line for every event on standard output, each with \"at\", its time in ISO 8601 UTC (refused frames as one count per reason a second; a reader that falls behind loses events and is told how many).")
    var json = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(help: ArgumentHelp(
        "Forward every case event over SIA DC-09 to an alarm receiving centre: dc09://HOST:PORT?account=HEX&key=HEX. Give it twice for a backup receiver.",
        discussion: """
            Alarms (test alarms too), cancels and the device events of the DC-09 code table (mains, battery, \
            button missing, tamper, restart) are queued in the journal as they are recorded and leave the queue \
            only on the receiver's ACK: in order per device, across restarts and outages. Parameters: \
            account=HEX (3 to 16 hex digits; without it each device is an account of its own, its id in 8 hex \
            digits; with it the SIA-DCS data names the device as its user, id<device>), key=HEX or key-file=PATH \
            (AES-128/192/256: 16, 24 or 32 bytes), transport=tcp|udp (tcp), format=sia|cid (sia; cid needs no \
            account=), receiver=HEX and line=HEX (0), window=N frames in flight (1: many receivers read one frame \
            at a time). The first --forward is the primary, a second the backup, \
            used after 3 failures in a row and left for the primary again after 5 minutes. With --workers one \
            worker forwards (docs/dc09.md).
            """))
    var forward: [String] = []

    @Option(name: .customLong("operator"), help: ArgumentHelp(
        "An operator's SIP phone, sip:USER@HOST[:PORT][;transport=tcp]; repeat it for a pool. An engaged case rings one, then the home is called and the two are bridged.",
        discussion: """
            The centre calls a free phone of the pool over SIP (RFC 3261); when it is answered, it calls the \
            home (our protocol) and relays the voice both ways, PCMU to PCMU. A busy phone, one unanswered \
            for --operator-ring-timeout or a failed call moves on to the next; when none took it the case \
            waits (an operatorCall event says so) and the pool is tried again. Hang-up on either side ends \
            the other; the case stays open.
            """))
    var operators: [String] = []

    @Option(parsing: .unconditional, help: "The SIP port (UDP and TCP) of the operators' leg, with --operator (0: a free one, told in the listening line).")
    var sipPort = 5060

    @Option(help: "Our SIP address of record towards the operators' phones (default sip:centre@HOST).")
    var sipIdentity: String?

    @Option(help: "The address the operators' phones reach the centre at, for Via, Contact and SDP (needed when --host is 0.0.0.0 or ::; default --host).")
    var sipAdvertise: String?

    @Option(help: "Register with this SIP registrar (a PBX, Kamailio) and send the operator calls through it, e.g. sip:10.0.0.5:5060.")
    var sipRegistrar: String?

    @Option(help: "The user name for SIP digest challenges, with --sip-password-file.")
    var sipUser: String?

    @Option(help: "A file holding the SIP password (never on the command line).")
    var sipPasswordFile: String?

    @Option(help: "SRTP towards the operators' phones: off, optional (when the phone offers or accepts it) or required.")
    var sipSRTP = "optional"

    @Option(help: "The transport towards the operators' phones and the registrar: udp or tcp.")
    var sipTransport = "udp"

    @Option(parsing: .unconditional, help: "Cancel an operator phone that rings this long unanswered and try the next (default 30s).", transform: DurationOption.seconds)
    var operatorRingTimeout: DurationOption?

    func validate() throws {
        guard (keys != nil) != masterKey.isGiven() else {
            throw ValidationError("Give the device keys once: --keys FILE, or the fleet master key (--master-file FILE, $\(MasterKeyOptions.environmentVariable) or systemd credentials \(MasterKeyOptions.credentialName)).")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("Unknown --log-level '\(logLevel)': use trace, debug, info, notice, warning, error or critical.")
        }
        try PortOption.check(port, option: "--port", zeroPicksFree: true)
        try PortOption.check(tcpPort, option: "--tcp-port", zeroPicksFree: true)
        try PortOption.check(udpPort, option: "--udp-port", zeroPicksFree: true)
        try PortOption.check(metricsPort, option: "--metrics-port", zeroPicksFree: true)
        try PortOption.check(dc09Port, option: "--dc09-port", zeroPicksFree: true)
        try validateOperators()
        guard !journal.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValidationError("--journal is empty: give an SQLite file or postgres://USER@HOST[:PORT]/DATABASE (an unset variable in a unit's EnvironmentFile?).")
        }
        if let node, node.isEmpty || node.count > 128 || node.contains(where: { $0.isNewline || $0 == "/" }) {
            throw ValidationError("--node must be 1 to 128 characters, without '/' or line breaks, e.g. --node centre-a.")
        }
        if let caseLease, caseLease.duration < .seconds(1) {
            throw ValidationError("--case-lease must be at least 1s (it is renewed every quarter of it), e.g. --case-lease 10s.")
        }
        guard (dc09Port == nil) == (dc09Accounts == nil) else {
            throw ValidationError("--dc09-port and --dc09-accounts go together: give both, e.g. --dc09-port 12345 --dc09-accounts accounts.toml.")
        }
        guard dc09Rate > 0 else { throw ValidationError("--dc09-rate must be above 0, e.g. --dc09-rate 100.") }
        if let dc09IdleTimeout, dc09IdleTimeout.duration <= .zero {
            throw ValidationError("--dc09-idle-timeout must be above 0, e.g. --dc09-idle-timeout 120s.")
        }
        if workers > 1, dc09Port != nil {
            throw ValidationError("--dc09-port is served by a single process: use it without --workers.")
        }
        if heartbeatInterval != nil && heartbeatAlias != nil {
            throw ValidationError("--heartbeat is another name for --heartbeat-interval: give it once.")
        }
        let interval = try heartbeatSeconds()
        guard rate > 0, burst >= 1, (maxSessions ?? 1) > 0, interval > 0 else {
            throw ValidationError("--rate, --max-sessions and --heartbeat-interval must be above 0, --burst at least 1.")
        }
        if let authTimeout, authTimeout.duration <= .zero { throw ValidationError("--auth-timeout must be above 0, e.g. --auth-timeout 5s.") }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1, e.g. --max-connections 10000.") }
        guard maxUnauthenticatedPerAddress >= 1 else {
            throw ValidationError("--max-unauthenticated-per-address must be at least 1, e.g. --max-unauthenticated-per-address 256.")
        }
        guard forgedFrameRate > 0 else { throw ValidationError("--forged-frame-rate must be above 0, e.g. --forged-frame-rate 50.") }
        guard keyCache >= 2 else { throw ValidationError("--key-cache must be at least 2, e.g. --key-cache 20000.") }
        guard engageCallRate > 0 else { throw ValidationError("--engage-call-rate must be above 0, e.g. --engage-call-rate 50.") }
        if let offlineAfter, offlineAfter.duration <= .zero { throw ValidationError("--offline-after must be above 0, e.g. --offline-after 75s.") }
        if let mediaSilence, mediaSilence.duration < .milliseconds(500) {
            throw ValidationError("--media-silence must be at least 500ms, e.g. --media-silence 5s.")
        }
        guard journalBatch >= 1 else { throw ValidationError("--journal-batch must be at least 1, e.g. --journal-batch 2048.") }
        let location = try journalLocation()
        if let udpReadInterval, udpReadInterval.duration > .milliseconds(100) {
            throw ValidationError("--udp-read-interval \(udpReadInterval) is longer than 100ms: every answer over UDP would wait that long; e.g. --udp-read-interval 1ms, or 0 to read at once.")
        }
        guard udpBuffer >= 65_536 else { throw ValidationError("--udp-buffer is in bytes and must be at least 65536, e.g. --udp-buffer 8388608 for 8 MiB.") }
        if console && json { throw ValidationError("Use --console or --json, not both: they share standard output.") }
        if console && stopWithStdin {
            throw ValidationError("--console reads commands from standard input, where --stop-with-stdin waits for end of file: use one of them.")
        }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be from 1 to 64, e.g. --workers 6.") }
        if workers > 1 {
            guard (tcpPort ?? port) != 0, (udpPort ?? port) != 0 else {
                throw ValidationError("With --workers each worker would get a port of its own from port 0: give one, e.g. --port 7700.")
            }
            guard metricsPort != 0 else {
                throw ValidationError("With --workers, worker I serves metrics on --metrics-port + I: give a port, e.g. --metrics-port 9100.")
            }
            if let metricsPort, metricsPort + workers - 1 > 65535 {
                throw ValidationError("With --workers \(workers), workers serve metrics on ports \(metricsPort) to \(metricsPort + workers - 1), past 65535: give a lower --metrics-port.")
            }
            guard !console else {
                throw ValidationError("--console reads one standard input and sees one worker's cases: use it without --workers.")
            }
            guard webPort == nil else {
                throw ValidationError("--web-port is served by a single process, which sees its own devices only: use it without --workers.")
            }
        }
        if let workerIndex, !(0..<workers).contains(workerIndex) { throw ValidationError("--worker-index is set by --workers.") }
        if let webPort, !(0...65535).contains(webPort) { throw ValidationError("--web-port must be from 0 to 65535, e.g. --web-port 8080.") }
        guard forward.count <= 2 else { throw ValidationError(DC09ForwardURLError(reason: .tooMany).description) }
        for url in forward {
            do { _ = try DC09ForwardTarget(url: url) } catch { throw ValidationError("--forward: \(error)") }
        }
    }

    /// The `--forward` targets with their key files read.
    private func forwardTargets() throws -> [DC09ForwardTarget] {
        try forward.map { url in
            var target = try DC09ForwardTarget(url: url)
            if let path = target.keyFile {
                target.key = try DC09Key(bytes: try GivenKey.file(path, what: "the DC-09 key file").bytes(.dc09))
            }
            return target
        }
    }

    private func validateOperators() throws {
        guard !operators.isEmpty else {
            let given = sipRegistrar != nil || sipUser != nil || sipPasswordFile != nil || sipIdentity != nil || sipAdvertise != nil
            if given {
                throw ValidationError("--sip-registrar, --sip-user, --sip-password-file, --sip-identity and --sip-advertise are for --operator: give the operators' phones too.")
            }
            return
        }
        for uri in operators { _ = try SIPCommandSupport.uri(uri, what: "--operator") }
        if let sipRegistrar { _ = try SIPCommandSupport.uri(sipRegistrar, what: "--sip-registrar") }
        if let sipIdentity { _ = try SIPCommandSupport.uri(sipIdentity, what: "--sip-identity") }
        try PortOption.check(sipPort, option: "--sip-port", zeroPicksFree: true)
        guard ["off", "optional", "required"].contains(sipSRTP) else { throw ValidationError("--sip-srtp must be off, optional or required, not \(sipSRTP)") }
        guard ["udp", "tcp"].contains(sipTransport) else { throw ValidationError("--sip-transport must be udp or tcp, not \(sipTransport)") }
        if let sipAdvertise {
            guard (try? SocketAddress(ipAddress: sipAdvertise, port: 0)) != nil, !Self.isWildcard(sipAdvertise) else {
                throw ValidationError("--sip-advertise must be an IP address the phones can reach, not \(sipAdvertise)")
            }
        }
        guard (sipUser == nil) == (sipPasswordFile == nil) else { throw ValidationError("--sip-user and --sip-password-file go together") }
        guard workers <= 1 else { throw ValidationError("--operator is served by a single process: use it without --workers.") }
        guard callOnEngage else { throw ValidationError("--operator bridges the calls made on engagement: it cannot go with --no-call-on-engage.") }
        if let operatorRingTimeout, operatorRingTimeout.duration <= .zero {
            throw ValidationError("--operator-ring-timeout must be above 0, e.g. --operator-ring-timeout 20s.")
        }
    }

    static func isWildcard(_ address: String) -> Bool { address == "0.0.0.0" || address == "::" || address == "[::]" }

    /// The operators' phones, resolved; `nil` without --operator.
    private func operatorPhones() async throws -> OperatorPhones? {
        guard !operators.isEmpty else { return nil }
        let transport: SIPTarget.Transport = sipTransport == "tcp" ? .tcp : .udp
        var phones: [(uri: SIPURI, target: SIPTarget)] = []
        for text in operators {
            let uri = try SIPCommandSupport.uri(text, what: "--operator")
            phones.append((uri, try SIPCommandSupport.target(for: uri, transport: transport)))
        }
        var registrar: (uri: SIPURI, target: SIPTarget)?
        if let sipRegistrar {
            let uri = try SIPCommandSupport.uri(sipRegistrar, what: "--sip-registrar")
            registrar = (uri, try SIPCommandSupport.target(for: uri, transport: transport))
        }
        var credentials: SIPDigestCredentials?
        if let sipUser, let sipPasswordFile {
            let password = try readTextFile(sipPasswordFile, what: "the SIP password file").trimmingCharacters(in: .whitespacesAndNewlines)
            credentials = SIPDigestCredentials(username: sipUser, password: password)
        }
        // On every address (the default), the phones are told the address this host sends to them from: the
        // one its routing table picks towards the first phone (or the registrar), unless --sip-advertise says.
        let towards = registrar?.target.address ?? phones[0].target.address
        guard let advertised = sipAdvertise ?? (Self.isWildcard(host) ? SIPEndpoint.localAddress(towards: towards) : host) else {
            throw CommandFailure(.unavailable, "no local address routes to \(towards): give --sip-advertise ADDRESS, the address the operators' phones reach this centre at")
        }
        let identity = try SIPCommandSupport.uri(sipIdentity ?? "sip:centre@\(advertised)", what: "--sip-identity")
        let srtp: SRTPPolicy = sipSRTP == "off" ? .off : sipSRTP == "required" ? .required : .optional
        return OperatorPhones(
            phones: phones, endpoint: SIPEndpoint.Configuration(host: host, port: sipPort, advertisedHost: advertised), identity: identity,
            registrar: registrar, credentials: credentials, srtp: srtp, ringTimeout: operatorRingTimeout?.duration ?? .seconds(30))
    }

    /// `--heartbeat-interval` (or `--heartbeat`) in whole seconds, as the wire carries it (1 to 65535).
    /// This process's share of the centre's session limit (`--max-sessions`, or sized to memory).
    private func sessionLimit() -> Int {
        let processes = workerIndex == nil ? 1 : workers
        guard let maxSessions else {
            return CenterConfiguration.sessionLimit(
                physicalMemory: ProcessInfo.processInfo.physicalMemory, cgroupLimit: CenterConfiguration.cgroupMemoryLimit(),
                workers: processes)
        }
        return max(1, (maxSessions + processes - 1) / processes)
    }

    /// `--journal` and its password, read; the error says what is wrong without showing a password.
    func journalLocation() throws -> JournalLocation {
        do { return try JournalLocation.parse(journal, passwordFile: journalPasswordFile) } catch { throw ValidationError(error.description) }
    }

    private func heartbeatSeconds() throws -> UInt16 {
        try (heartbeatInterval ?? heartbeatAlias)?.wholeSeconds("--heartbeat-interval") ?? 30
    }

    func run() async throws {
        if workers > 1 && workerIndex == nil { return try runWorkers() }
        var logger = Logger(label: "devicesim.center")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        if let workerIndex { logger[metadataKey: "worker"] = "\(workerIndex)" }
        var configuration = CenterConfiguration(
            host: host, tcpPort: tcpPort ?? port, udpPort: udpPort ?? port, metricsPort: metricsPort.map { $0 + (workerIndex ?? 0) },
            metricsHost: metricsBind, journalPath: journal,
            session: CenterSession.Parameters(heartbeatIntervalSeconds: try heartbeatSeconds(), rate: rate, burst: burst),
            offlineAfter: offlineAfter?.duration,
            authenticationTimeout: authTimeout?.duration ?? .seconds(5), maximumSessions: sessionLimit(),
            maximumConnections: maxConnections, unauthenticatedPerAddress: maxUnauthenticatedPerAddress,
            forgedFrameRate: forgedFrameRate,
            cases: CasePolicy.Configuration(autoEngageAfter: autoEngageAfter?.duration, autoCloseAfter: autoCloseAfter?.duration),
            callOnEngage: callOnEngage, engageCallRate: engageCallRate,
            media: MediaLink.Parameters(silenceTimeout: mediaSilence?.duration ?? .seconds(5), video: !noVideo),
            journalBatchLimit: journalBatch, deviceKeyCacheLimit: keyCache, udpBufferSize: udpBuffer,
            udpReadInterval: udpReadInterval?.duration ?? .milliseconds(1), reusePort: workerIndex != nil,
            dc09: try dc09Configuration(), forward: try forwardTargets())
        configuration.journal = try journalLocation()
        let node = node ?? CenterConfiguration.hostName
        configuration.node = workerIndex.map { "\(node)/\($0)" } ?? node
        if let caseLease { configuration.caseLease = caseLease.duration }
        configuration.operators = try await operatorPhones()
        // The ecosystem's convention: the executable bootstraps swift-metrics once, with the backend whose
        // registry the metrics endpoint serves, and the centre records with that same factory.
        let metrics = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
        MetricsSystem.bootstrap(metrics)
        let web = webPort.map { port in
            ConsoleServer(configuration: ConsoleConfiguration(host: webHost, port: port, secureCookie: webSecureCookie), logger: logger)
        }
        let centre = CenterServer(
            configuration: configuration, registry: try registry(), logger: logger, metrics: metrics, attachments: web.map { [$0] } ?? [])
        // Observed only when shown: under load every session, alarm and case is an event, and a stream
        // nobody reads would still cost a task switch each.
        let timedEvents: AsyncStream<TimedCenterEvent>? = json ? centre.timedEvents() : nil
        let consoleEvents: AsyncStream<CenterEvent>? = console ? centre.events() : nil
        let services = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [centre], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        if console { ConsoleInput.start(centre: centre) }
        if workerIndex != nil || stopWithStdin {
            ParentLifeline.watch { [logger] in
                logger.notice("standard input closed: whoever started this centre is gone; stopping as on SIGTERM")
                kill(getpid(), SIGTERM)
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await services.run() }
            if !json && !console {
                // The ports as one JSON line, as --json's first: a port 0 becomes known, and whoever started
                // the centre (`devicesim load --spawn-center`) learns that it listens.
                tasks.addTask {
                    guard let ports = try? await centre.listening() else { return }
                    let at = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
                    writeLine(CenterEvent.listening(ports).json(at: at))
                }
            }
            if workerIndex != nil {
                tasks.addTask {
                    _ = try await centre.listening()
                    WorkerReadiness.sayListening()
                }
            }
            if let timedEvents {
                tasks.addTask {
                    for await event in timedEvents { writeLine(event.json) }
                }
            }
            if let consoleEvents {
                tasks.addTask {
                    for await event in consoleEvents {
                        if let line = event.consoleLine(wall: UInt64(Date().timeIntervalSince1970 * 1000)) { writeLine(line) }
                    }
                }
            }
            try await tasks.waitForAll()
        }
    }

    /// The parent of `--workers N`: it serves nothing itself.
    private func runWorkers() throws {
        // The schema is created here once, before the workers open the file together.
        try CenterJournal(try journalLocation()).close()
        let arguments = Array(CommandLine.arguments.dropFirst())
        let processes = CenterWorkerProcesses(executable: CenterWorkerProcesses.currentExecutable, count: workers) { index in
            arguments + ["--worker-index", "\(index)"]
        }
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { processes.stop(signal: number) }
            source.resume()
            return source
        }
        defer { for source in sources { source.cancel() } }
        // The workers have lifelines of their own, to this process.
        if stopWithStdin { ParentLifeline.watch { processes.stop(signal: SIGTERM) } }
        let (tcp, udp, count, json, metricsPort) = (tcpPort ?? port, udpPort ?? port, workers, json, metricsPort)
        try processes.run { pids in
            var line = "centre: \(count) workers listen on TCP port \(tcp) and UDP port \(udp) (SO_REUSEPORT), pids "
                + pids.map(String.init).joined(separator: " ")
            if let metricsPort { line += "; metrics on ports \(metricsPort)...\(metricsPort + count - 1)" }
            // Standard output carries the workers' JSON events with --json.
            (json ? FileHandle.standardError : FileHandle.standardOutput).write(Data((line + "\n").utf8))
        }
    }

    /// The DC-09 port and its accounts, read from --dc09-accounts; `nil` without --dc09-port.
    private func dc09Configuration() throws -> DC09PortConfiguration? {
        guard let dc09Port, let dc09Accounts else { return nil }
        let text = try readTextFile(dc09Accounts, what: "the DC-09 accounts file")
        let accounts: DC09Accounts
        do { accounts = try DC09Accounts(toml: text) } catch {
            throw CommandFailure(.configuration, "the DC-09 accounts file \(dc09Accounts): \(error)")
        }
        return DC09PortConfiguration(
            port: dc09Port, accounts: accounts, idleTimeout: dc09IdleTimeout?.duration ?? .seconds(120), frameRate: dc09Rate,
            burst: 2 * dc09Rate)
    }

    private func registry() throws -> DeviceRegistry {
        if let keys {
            let text = try readTextFile(keys, what: "the key file")
            do { return try DeviceRegistry(keyFile: text) } catch {
                throw CommandFailure(.configuration, "the key file \(keys): \(error.description.replacingOccurrences(of: "the key file: ", with: ""))")
            }
        }
        guard let master = try masterKey.key() else { throw ValidationError("no device keys given") }
        return DeviceRegistry(master: master)
    }
}

/// Writes one line to standard output straight to the descriptor: print + fflush(nil) would wait for the stdin
/// lock that a console thread blocked in a read may hold, and delay every event until the next command.
func writeLine(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// A worker's side of CenterWorkerProcesses besides its ParentLifeline: the "listening" line on descriptor 3.
private enum WorkerReadiness {
    static func sayListening() {
        let line = Array("listening\n".utf8)
        _ = line.withUnsafeBytes { write(CenterWorkerProcesses.readyDescriptor, $0.baseAddress, $0.count) }
        close(CenterWorkerProcesses.readyDescriptor)
    }
}
