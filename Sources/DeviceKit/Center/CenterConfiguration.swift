#if canImport(Glibc)
import Glibc
#endif

/// Everything a centre needs besides its keys: where to listen, where to journal, how to treat devices.
public struct CenterConfiguration: Sendable {
    public var host: String
    /// 0 lets the system choose; `CenterServer.listening()` tells which.
    public var tcpPort: Int
    public var udpPort: Int
    /// `nil`: no metrics endpoint.
    public var metricsPort: Int?
    /// Where the metrics endpoint listens: loopback unless asked, since the device port is usually public
    /// and the metrics are not for the public.
    public var metricsHost: String
    /// A metrics request must arrive whole within this time of connecting, or the connection is closed (no
    /// half-sent request holds a descriptor for long).
    public var metricsRequestTimeout: Duration
    /// Metrics connections open at once; past it a new one is closed unanswered.
    public var metricsConnectionLimit: Int
    /// The journal: an SQLite file (a restarted centre reopens it) or a PostgreSQL database that nodes share.
    public var journal: JournalLocation
    /// The SQLite journal's path (`journal`), or the PostgreSQL journal's address.
    public var journalPath: String {
        get { journal.description }
        set { journal = .sqlite(newValue) }
    }
    /// This node's name among the centre nodes that share the journal (`--node`): it owns the cases it opens
    /// and holds them by a lease in the journal (CenterJournal+Lease.swift). Default: the host's name.
    public var node: String = CenterConfiguration.hostName
    /// How long the node's lease holds after each renewal (every quarter of it): a node gone this long (killed,
    /// or cut off from the journal) has its open cases taken over by another.
    public var caseLease: Duration = .seconds(10)
    /// Whether other nodes write the journal too, so that this node reads their case updates and shows them
    /// in its events and console (CenterRuntime+Follow.swift): a PostgreSQL journal. (`--workers` of one
    /// centre share its standard output, where every worker's events appear already.)
    public var followsOtherNodes: Bool {
        if case .postgres = journal { return true }
        return false
    }

    /// Whether `owner` is this node or, under `--workers`, another worker of the same centre (`NAME/I`): its
    /// events are on this process group's standard output already.
    public func isSameCentre(_ owner: String?) -> Bool {
        guard let owner else { return false }
        if owner == node { return true }
        guard let slash = node.firstIndex(of: "/") else { return false }
        return owner.hasPrefix(node[...slash])
    }
    public var session: CenterSession.Parameters
    /// A device silent for longer is reported offline (and its session ended).
    public var offlineAfter: Duration
    /// A TCP connection that sends nothing authentic for this long is closed.
    public var authenticationTimeout: Duration
    /// Sessions this process holds at once; past it a device's `sessionStart` is answered `nak busy` (it tries
    /// its secondary centre). `devicesim center` sizes it to memory (`sessionLimit`).
    public var maximumSessions: Int
    /// TCP device connections held at once (see `ConnectionTable`): past it a new connection takes the place of
    /// the oldest one not yet authenticated, or is closed if all are. Keep it below the open-file limit, so
    /// that the journal, the metrics endpoint and calls' media ports always find a descriptor.
    public var maximumConnections: Int
    /// Connections from one source address not yet authenticated; past it the address's oldest is closed.
    public var unauthenticatedPerAddress: Int
    /// Frames a second, per source address, under device ids without a key at hand that may come to nothing
    /// (forged, stale, dropped; a burst of four times as many); past it, such frames are dropped before any
    /// key derivation (`ForgeryBudget`).
    public var forgedFrameRate: Double
    /// Source addresses whose forgery budget is remembered (the least recently seen are forgotten first).
    public var forgerySources: Int
    /// Bytes queued for one TCP connection whose peer does not read, in the socket's send buffer (SO_SNDBUF,
    /// which the kernel doubles) and again in the centre; past it the connection is closed.
    public var connectionWriteBufferLimit: Int
    /// A TCP connection whose answers stay unacknowledged this long is closed by the kernel
    /// (TCP_USER_TIMEOUT, RFC 5482; zero-window probing counts): a device gone without a word, or a connection
    /// wedged both ways (a peer that neither reads nor takes the centre's segments). `nil`: `offlineAfter`, as
    /// long as a device may be silent. Without it Linux retries for about 15 minutes (tcp_retries2).
    public var connectionStallTimeout: Duration?
    /// Events buffered for each observer (`--json`, `--console`); an observer that falls behind loses the
    /// newest and is told how many (`CenterEvent.eventsDropped`).
    public var eventBufferLimit: Int
    /// How often refused frames are reported, as one `CenterEvent.refused(reason:count:)` per reason.
    public var refusalReportInterval: Duration
    /// Refused frames after which a TCP connection is closed as suspicious (protocol.md §3.4).
    public var offencesBeforeClose: Int
    public var cases: CasePolicy.Configuration
    /// Offer a call to the device when an operator engages its case (protocol.md §4.8).
    public var callOnEngage: Bool
    /// The most calls a second the centre places on engagement (a burst of as many); the others wait their
    /// turn, and one whose case closes meanwhile is not placed. Setting up a call binds two UDP ports on the
    /// centre's loop: unpaced, a storm's 2,000 engagements a second starved the loop, alarms waited seconds
    /// for their `ack` and their retransmissions added to the load.
    public var engageCallRate: Double
    /// The centre's side of calls: silence timeout, RTCP interval, signal, video.
    public var media: MediaLink.Parameters
    /// The most journal writes (alarms, events, anchors, …) committed in one transaction, with one fsync.
    /// Writes that arrive while a batch is being written go in the next (group commit); 1 writes each alone.
    /// 2048: with 512, 60,000 devices opening sessions at 30,000 a second (two writes each) filled every batch
    /// and queued the rest; set-up p99 was 205–469 ms against 66–146 ms (docs/benchmarks.md).
    public var journalBatchLimit: Int
    /// Device keys kept after their derivation from the registry (two HKDFs each with a fleet master key) for
    /// devices without a session (a session holds its own): about 235 bytes each. Least recently used go first.
    public var deviceKeyCacheLimit: Int
    /// SO_RCVBUF and SO_SNDBUF of the UDP socket, in bytes: room for a burst of datagrams (a ramp, an alarm
    /// storm) while the loop is busy. The kernel caps it at net.core.rmem_max / wmem_max unless privileged.
    public var udpBufferSize: Int
    /// Datagrams read per readiness event of the UDP socket, in one recvmmsg call.
    public var udpMessagesPerRead: Int
    /// How long the UDP socket's reads wait after a read that emptied it (read coalescing, as network cards
    /// coalesce interrupts): datagrams that arrive meanwhile are read together, one wake-up of the loop for
    /// many rather than one each; a read that found more than one read takes goes on at once. A fleet's
    /// heartbeats arrive spread evenly and seldom queue, so without it the loop sleeps and wakes for nearly
    /// every datagram, the larger part of its CPU. Zero: read at once.
    public var udpReadInterval: Duration
    /// UDP session starts waiting behind the frames of sessions at most (`SessionStartQueue`); past it they are
    /// shed and their devices ask again. 8,192 are about 140 ms of work, short of a device's 1 s retry.
    public var udpSessionStartsWaiting = SessionStartQueue.defaultLimit
    /// Bind the TCP and UDP sockets with SO_REUSEPORT, so that several centres (worker processes, or
    /// instances in one process) listen on the same port and the kernel spreads connections and UDP 4-tuples
    /// over them. They must share one journal: it is what keeps anchors rising and alarms recorded once.
    public var reusePort: Bool
    /// The DC-09 receiver's port and accounts (DC09Port.swift); `nil`: no DC-09 port.
    public var dc09: DC09PortConfiguration?
    /// DC-09 receivers every case event is forwarded to (`--forward`): the primary, then its backup; none: no
    /// forwarding. (DC09Forwarder.swift)
    public var forward: [DC09ForwardTarget]
    /// The operators' SIP phones (`--operator`): an engaged case rings one, then its home is called and the two
    /// are bridged (protocol.md §8). Nil: the centre calls homes itself, as before.
    public var operators: OperatorPhones?
    public var forwardParameters: DC09ForwardMachine.Parameters

    public init(
        host: String = "0.0.0.0", tcpPort: Int = 7700, udpPort: Int = 7700, metricsPort: Int? = nil,
        metricsHost: String = "127.0.0.1", metricsRequestTimeout: Duration = .seconds(5), metricsConnectionLimit: Int = 16,
        journalPath: String, session: CenterSession.Parameters = CenterSession.Parameters(),
        offlineAfter: Duration? = nil, authenticationTimeout: Duration = .seconds(5), maximumSessions: Int = 100_000,
        maximumConnections: Int? = nil, unauthenticatedPerAddress: Int = 256, forgedFrameRate: Double = 50,
        forgerySources: Int = 65_536, connectionWriteBufferLimit: Int = 256 << 10, eventBufferLimit: Int = 4_096,
        refusalReportInterval: Duration = .seconds(1),
        offencesBeforeClose: Int = 16, cases: CasePolicy.Configuration = CasePolicy.Configuration(),
        callOnEngage: Bool = true, engageCallRate: Double = 50, media: MediaLink.Parameters = MediaLink.Parameters(),
        journalBatchLimit: Int = 2048, deviceKeyCacheLimit: Int = 20_000, udpBufferSize: Int = 8 << 20,
        udpMessagesPerRead: Int = 32, udpReadInterval: Duration = .milliseconds(1), reusePort: Bool = false, dc09: DC09PortConfiguration? = nil, forward: [DC09ForwardTarget] = [],
        forwardParameters: DC09ForwardMachine.Parameters = .init()
    ) {
        self.host = host
        self.tcpPort = tcpPort
        self.udpPort = udpPort
        self.metricsPort = metricsPort
        self.metricsHost = metricsHost
        self.metricsRequestTimeout = metricsRequestTimeout
        self.metricsConnectionLimit = max(1, metricsConnectionLimit)
        self.journal = .sqlite(journalPath)
        self.session = session
        // 2.5 heartbeat intervals: one lost heartbeat is not an outage, two in a row are worth a look.
        self.offlineAfter = offlineAfter ?? .milliseconds(Int(session.heartbeatIntervalSeconds) * 2_500)
        self.authenticationTimeout = authenticationTimeout
        self.maximumSessions = maximumSessions
        self.maximumConnections = max(1, maximumConnections ?? Self.connectionLimit(openFiles: OpenFileLimit.current))
        self.unauthenticatedPerAddress = max(1, unauthenticatedPerAddress)
        self.forgedFrameRate = max(forgedFrameRate, 0.001)
        self.forgerySources = max(2, forgerySources)
        self.connectionWriteBufferLimit = max(4_096, connectionWriteBufferLimit)
        self.eventBufferLimit = max(1, eventBufferLimit)
        self.refusalReportInterval = refusalReportInterval
        self.offencesBeforeClose = offencesBeforeClose
        self.cases = cases
        self.callOnEngage = callOnEngage
        self.engageCallRate = max(engageCallRate, 0.001)
        self.media = media
        self.journalBatchLimit = max(1, journalBatchLimit)
        self.deviceKeyCacheLimit = max(1, deviceKeyCacheLimit)
        self.udpBufferSize = udpBufferSize
        self.udpMessagesPerRead = max(1, udpMessagesPerRead)
        self.udpReadInterval = max(.zero, udpReadInterval)
        self.reusePort = reusePort
        self.dc09 = dc09
        self.forward = forward
        self.forwardParameters = forwardParameters
    }
}

extension CenterConfiguration {
    /// The default connection limit for a process that may open `openFiles` files: a quarter of them, at most
    /// 1,024, stay free for the journal, the metrics endpoint, calls' media ports (two per call) and the
    /// UDP socket.
    public static func connectionLimit(openFiles: Int) -> Int {
        max(16, openFiles - min(1_024, openFiles / 4))
    }
}

/// The process's soft limit of open files (RLIMIT_NOFILE).
enum OpenFileLimit {
    static var current: Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1_024 }
        // RLIM_INFINITY is all ones, which Swift cannot import as a constant of rlim_t: clamped, it is a big limit.
        return min(Int(clamping: limit.rlim_cur), 1 << 20)
    }
}

extension CenterConfiguration {
    /// What the centre budgets a session: its state, keys, anchor and table entries with room (measured:
    /// 1,574 B resident a device at 1,000,000 UDP devices, docs/benchmarks.md). A TCP session costs more (6.1 kB
    /// resident at 100,000, and the kernel's socket), but TCP connections are held to `--max-connections`,
    /// which the open-file limit bounds: their extra cost is bounded by it, not by this budget.
    public static let bytesPerSession = 4 * 1024

    /// The centre's session limit sized to its memory: half of it (the physical memory, or the cgroup's limit
    /// when lower, as in a container) at `bytesPerSession` each, divided among `workers` processes, each of
    /// which holds its share. At least 1,000 a process.
    public static func sessionLimit(physicalMemory: UInt64, cgroupLimit: UInt64?, workers: Int) -> Int {
        let memory = min(physicalMemory, cgroupLimit ?? .max)
        let total = Int(min(memory / 2 / UInt64(bytesPerSession), UInt64(Int.max)))
        return max(1_000, total / max(1, workers))
    }

    /// The cgroup (v2) memory limit of this process, if one is set: `memory.max` of its cgroup.
    public static func cgroupMemoryLimit() -> UInt64? {
        guard let membership = KernelFile.text("/proc/self/cgroup"),
            let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        let path = "/sys/fs/cgroup" + line.dropFirst(3).trimmingCharacters(in: .whitespaces) + "/memory.max"
        guard let text = KernelFile.text(path) else { return nil }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines))  // "max": none
    }
}

extension CenterConfiguration {
    /// The host's name (`gethostname`), or `centre` when it has none.
    public static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "centre" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "centre" : name
    }
}
