/// Everything a centre needs besides its keys: where to listen, where to journal, how to treat devices.
public struct CenterConfiguration: Sendable {
    public var host: String
    /// 0 lets the system choose; `CenterServer.listening()` tells which.
    public var tcpPort: Int
    public var udpPort: Int
    /// `nil`: no metrics endpoint.
    public var metricsPort: Int?
    /// The SQLite journal; a restarted centre reopens the same file.
    public var journalPath: String
    public var session: CenterSession.Parameters
    /// A device silent for longer is reported offline (and its session ended).
    public var offlineAfter: Duration
    /// A TCP connection that sends nothing authentic for this long is closed.
    public var authenticationTimeout: Duration
    public var maximumSessions: Int
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
    public var journalBatchLimit: Int
    /// Device keys kept after their derivation from the registry (an HKDF each with a fleet master key).
    public var deviceKeyCacheLimit: Int
    /// SO_RCVBUF and SO_SNDBUF of the UDP socket, in bytes: room for a burst of datagrams (a ramp, an alarm
    /// storm) while the loop is busy. The kernel caps it at net.core.rmem_max / wmem_max unless privileged.
    public var udpBufferSize: Int
    /// Datagrams read per readiness event of the UDP socket, in one recvmmsg call.
    public var udpMessagesPerRead: Int
    /// Bind the TCP and UDP sockets with SO_REUSEPORT, so that several centres (worker processes, or
    /// instances in one process) listen on the same port and the kernel spreads connections and UDP 4-tuples
    /// over them. They must share one journal: it is what keeps anchors rising and alarms recorded once.
    public var reusePort: Bool

    public init(
        host: String = "0.0.0.0", tcpPort: Int = 7700, udpPort: Int = 7700, metricsPort: Int? = nil,
        journalPath: String, session: CenterSession.Parameters = CenterSession.Parameters(),
        offlineAfter: Duration? = nil, authenticationTimeout: Duration = .seconds(5), maximumSessions: Int = 100_000,
        offencesBeforeClose: Int = 16, cases: CasePolicy.Configuration = CasePolicy.Configuration(),
        callOnEngage: Bool = true, engageCallRate: Double = 50, media: MediaLink.Parameters = MediaLink.Parameters(),
        journalBatchLimit: Int = 512, deviceKeyCacheLimit: Int = 200_000, udpBufferSize: Int = 8 << 20,
        udpMessagesPerRead: Int = 32, reusePort: Bool = false
    ) {
        self.host = host
        self.tcpPort = tcpPort
        self.udpPort = udpPort
        self.metricsPort = metricsPort
        self.journalPath = journalPath
        self.session = session
        // 2.5 heartbeat intervals: one lost heartbeat is not an outage, two in a row are worth a look.
        self.offlineAfter = offlineAfter ?? .milliseconds(Int(session.heartbeatIntervalSeconds) * 2_500)
        self.authenticationTimeout = authenticationTimeout
        self.maximumSessions = maximumSessions
        self.offencesBeforeClose = offencesBeforeClose
        self.cases = cases
        self.callOnEngage = callOnEngage
        self.engageCallRate = max(engageCallRate, 0.001)
        self.media = media
        self.journalBatchLimit = max(1, journalBatchLimit)
        self.deviceKeyCacheLimit = max(1, deviceKeyCacheLimit)
        self.udpBufferSize = udpBufferSize
        self.udpMessagesPerRead = max(1, udpMessagesPerRead)
        self.reusePort = reusePort
    }
}
