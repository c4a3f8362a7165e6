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
    /// The centre's side of calls: silence timeout, RTCP interval, signal, video.
    public var media: MediaLink.Parameters

    public init(
        host: String = "0.0.0.0", tcpPort: Int = 7700, udpPort: Int = 7700, metricsPort: Int? = nil,
        journalPath: String, session: CenterSession.Parameters = CenterSession.Parameters(),
        offlineAfter: Duration? = nil, authenticationTimeout: Duration = .seconds(5), maximumSessions: Int = 100_000,
        offencesBeforeClose: Int = 16, cases: CasePolicy.Configuration = CasePolicy.Configuration(),
        callOnEngage: Bool = true, media: MediaLink.Parameters = MediaLink.Parameters()
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
        self.media = media
    }
}
