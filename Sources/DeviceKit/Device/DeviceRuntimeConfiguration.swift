import NIOCore

/// Everything a `DeviceRuntime` needs to know, already validated (the TOML file is parsed elsewhere).
public struct DeviceRuntimeConfiguration: Sendable {
    /// The transport of device.toml's `centre.transport`.
    public typealias Transport = DeviceKit.Transport

    /// Fault injection for the crash tests: what the runtime does to itself, and when.
    public enum FaultInjection: String, Sendable, Hashable {
        /// kill -9 itself after the alarm is on durable storage and before it is sent.
        case crashAfterStoringAlarm = "crash-after-storing-alarm"
    }

    public static let defaultConnectTimeout = Duration.seconds(5)

    public var key: DeviceKey
    public var primary: SocketAddress
    public var secondary: SocketAddress?
    public var transport: Transport
    public var firmware: FirmwareVersion
    public var capabilities: Capabilities
    public var model: String?
    public var bootCount: UInt32
    public var press: PressDetector.Configuration
    public var cancelWindow: Duration
    public var defaultHeartbeatInterval: Duration
    public var handshakeTimeout: Duration
    public var connectTimeout: Duration
    public var backoff: Backoff
    public var returnToPrimaryAfter: Duration
    public var delivery: DeliveryMachine.Configuration
    public var events: DeviceEventMachine.Configuration
    public var faultInjection: FaultInjection?
    /// The voice link: silence timeout, RTCP interval, signal, video (protocol.md §4.8).
    public var media: MediaLink.Parameters
    /// Report over SIA DC-09 (`[center] protocol = "dc09"`) with this framing and a `NULL` supervision
    /// frame every `supervision`; `nil`: our protocol.
    public var dc09: (framing: DC09FrameSession.Configuration, supervision: Duration)?
    /// `[voice] sip`: the centre's voice is SIP; the device calls it and answers its calls back
    /// (`DeviceRuntime.startSIP`); `nil`: our protocol's calls only.
    public var sip: DeviceSIPSettings?

    public init(
        key: DeviceKey, primary: SocketAddress, secondary: SocketAddress? = nil, transport: Transport = .tcp,
        bootCount: UInt32 = 1, firmware: FirmwareVersion = DeviceRuntimeConfiguration.firmwareVersion,
        capabilities: Capabilities = [.button, .mainsSensing, .battery, .indicators, .cancelInput], model: String? = nil,
        press: PressDetector.Configuration = .init(), cancelWindow: Duration = .seconds(10),
        defaultHeartbeatInterval: Duration = .seconds(30), handshakeTimeout: Duration = .seconds(5),
        connectTimeout: Duration = Self.defaultConnectTimeout, backoff: Backoff = Backoff(), returnToPrimaryAfter: Duration = .seconds(300),
        delivery: DeliveryMachine.Configuration = .init(), events: DeviceEventMachine.Configuration = .init(),
        faultInjection: FaultInjection? = nil, media: MediaLink.Parameters = MediaLink.Parameters()
    ) {
        self.key = key
        self.primary = primary
        self.secondary = secondary
        self.transport = transport
        self.bootCount = bootCount
        self.firmware = firmware
        self.capabilities = capabilities
        self.model = model
        self.press = press
        self.cancelWindow = cancelWindow
        self.defaultHeartbeatInterval = defaultHeartbeatInterval
        self.handshakeTimeout = handshakeTimeout
        self.connectTimeout = connectTimeout
        self.backoff = backoff
        self.returnToPrimaryAfter = returnToPrimaryAfter
        self.delivery = delivery
        self.events = events
        self.faultInjection = faultInjection
        self.media = media
    }

    /// This build's firmware version, sent in `sessionStart`.
    public static let firmwareVersion = FirmwareVersion(0, 3, 0)
}

/// One thing that happened on the device, with the time since the runtime started.
public struct DeviceObservation: Sendable {
    public var at: Duration
    public var kind: Kind

    public enum Kind: Equatable, Sendable {
        case story(AlarmStory)
        /// What the press detector made of the button (`PressDetector.Configuration.explain` words it).
        case button(PressDetector.Action)
        case indicator(IndicatorState)
        case connected(LinkMachine.Path)
        case sessionEstablished(LinkMachine.Path)
        case sessionLost(LinkLossReason)
        /// The centre cannot be reached (`LinkHealth`): the fault indicator is on.
        case linkDown(centre: String, cause: String)
        /// A session is open again after `after` without one.
        case linkRestored(centre: String, after: Duration)
        /// A reminder while the link stays down, with the messages waiting in the outbox.
        case linkStillDown(centre: String, for: Duration, cause: String, waiting: Int)
        case delivered(Message)
        case heartbeatRoundTrip(Duration)
        case refused(ProtocolError)
        case recovered(count: Int)
        case fault(String)
        /// The centre called and the device answered by itself; media flows both ways.
        case callStarted(callID: UInt32, alarmID: UInt32)
        /// The call ended (`byCentre`: the centre's `callEnd`; otherwise this device ended it), with the
        /// media numbers of this side.
        case callEnded(callID: UInt32, reason: CallEndReason, byCentre: Bool, statistics: MediaStatistics?)
        /// The centre offered a call (a new offer, not a retransmission), and whether it was declined.
        case callOffered(callID: UInt32, alarmID: UInt32, declined: Bool)
        /// An attempt to open a session failed, and why in words.
        case attemptFailed(cause: String)
        /// The centre answered a reliable message with `nak`.
        case nakReceived(Nak)
        /// A heartbeat went out; a reliable message went out (first, or again).
        case heartbeatSent
        case reliableSent(Message)
        /// A new case update from the centre (not a retransmission).
        case caseUpdateReceived(CaseUpdate)
        /// Over DC-09: the receiver refused a frame (`NAK`; its time, when it gave one, corrected the
        /// clock), `message` the one it refused when known.
        case dc09Refused(message: UInt32?, receiverTime: DC09Timestamp?)
        /// Over DC-09: the receiver does not take message `message` as it is (`DUH`); it stays in the outbox.
        case dc09NotUnderstood(message: UInt32?)
        /// Over DC-09: an answer that is not DC-09, or answers nothing in flight.
        case dc09Unreadable(String)
        /// Over DC-09: a message the protocol does not carry, removed from the outbox unsent.
        case notReported(Message)
        /// `[voice] sip`: the device called the centre about `alarmID` (`attempt` from 1).
        case sipCallPlaced(alarmID: UInt32, attempt: Int)
        /// A SIP call is up: ours answered after `setupTime` (INVITE → 200), or the centre's answered.
        case sipCallAnswered(incoming: Bool, setupTime: Duration?)
        /// A SIP call ended (answered or not), with its set-up time and RTP numbers.
        case sipCallEnded(SIPPhone.CallReport)
        /// The call failed; attempt `attempt` follows after `after`.
        case sipCallRetrying(alarmID: UInt32, attempt: Int, after: Duration)
        /// No attempt is left for the alarm's call (or none would help).
        case sipCallGaveUp(alarmID: UInt32, attempts: Int)
        /// An incoming SIP call was refused: not from the centre, no alarm open nor recent, or a call is up.
        case sipCallRefused(from: String, statusCode: Int)
    }
}

/// Where the up-frame counter's reservation lives: a `CounterReservationFile` on the device, memory in load.
public protocol CounterStore: Sendable {
    func load() throws -> UInt64
    func store(_ limit: UInt64) throws
}

extension CounterReservationFile: CounterStore {}
