/// Every message of protocol v1, one case each (protocol.md §4).
///
/// Reliable messages carry an `id` that the receiver echoes in `ack`/`nak`. A device draws its ids from one
/// counter kept on durable storage, so an alarm id is unique for the life of the device and a retransmitted
/// alarm keeps its id: that is how the centre dispatches it once.
public enum Message: Hashable, Sendable {
    // Device → centre
    case sessionStart(SessionStart)
    case heartbeat(Heartbeat)
    case alarm(Alarm)
    case alarmCancel(AlarmCancel)
    case event(DeviceEvent)
    case diagnosticsReport(DiagnosticsReport)
    // Centre → device
    case sessionAccept(SessionAccept)
    case heartbeatAck(HeartbeatAck)
    case caseUpdate(CaseUpdate)
    case configPush(ConfigPush)
    case diagnosticsRequest(DiagnosticsRequest)
    // Both ways
    case ack(Ack)
    case nak(Nak)
    case callOffer(CallOffer)
    case callAnswer(CallAnswer)
    case callEnd(CallEnd)

    /// The type byte, first byte of the body.
    public enum Kind: UInt8, Sendable, CaseIterable, Codable {
        case sessionStart = 0x01
        case heartbeat = 0x02
        case alarm = 0x03
        case alarmCancel = 0x04
        case event = 0x05
        case diagnosticsReport = 0x06
        case sessionAccept = 0x41
        case heartbeatAck = 0x42
        case caseUpdate = 0x43
        case configPush = 0x44
        case diagnosticsRequest = 0x45
        case ack = 0x80
        case nak = 0x81
        case callOffer = 0x90
        case callAnswer = 0x91
        case callEnd = 0x92

        /// The directions this message may travel.
        public var directions: Set<Wire.Direction> {
            Set([Wire.Direction.up, .down].filter(travels))
        }

        /// Whether this message may travel `direction` (`directions`, without making a set: every frame opened
        /// asks).
        public func travels(_ direction: Wire.Direction) -> Bool {
            switch rawValue {
            case ..<0x40: direction == .up
            case ..<0x80: direction == .down
            default: true
            }
        }

        public var name: String {
            switch self {
            case .sessionStart: "sessionStart"
            case .heartbeat: "heartbeat"
            case .alarm: "alarm"
            case .alarmCancel: "alarmCancel"
            case .event: "event"
            case .diagnosticsReport: "diagnosticsReport"
            case .sessionAccept: "sessionAccept"
            case .heartbeatAck: "heartbeatAck"
            case .caseUpdate: "caseUpdate"
            case .configPush: "configPush"
            case .diagnosticsRequest: "diagnosticsRequest"
            case .ack: "ack"
            case .nak: "nak"
            case .callOffer: "callOffer"
            case .callAnswer: "callAnswer"
            case .callEnd: "callEnd"
            }
        }
    }

    public var kind: Kind {
        switch self {
        case .sessionStart: .sessionStart
        case .heartbeat: .heartbeat
        case .alarm: .alarm
        case .alarmCancel: .alarmCancel
        case .event: .event
        case .diagnosticsReport: .diagnosticsReport
        case .sessionAccept: .sessionAccept
        case .heartbeatAck: .heartbeatAck
        case .caseUpdate: .caseUpdate
        case .configPush: .configPush
        case .diagnosticsRequest: .diagnosticsRequest
        case .ack: .ack
        case .nak: .nak
        case .callOffer: .callOffer
        case .callAnswer: .callAnswer
        case .callEnd: .callEnd
        }
    }

    /// The id the receiver must acknowledge, or `nil` for messages that are not acknowledged.
    public var reliableID: UInt32? {
        switch self {
        case .alarm(let m): m.id
        case .alarmCancel(let m): m.id
        case .event(let m): m.id
        case .diagnosticsReport(let m): m.id
        case .caseUpdate(let m): m.id
        case .configPush(let m): m.id
        case .diagnosticsRequest(let m): m.id
        case .callOffer(let m): m.id
        case .callAnswer(let m): m.id
        case .callEnd(let m): m.id
        case .sessionStart, .heartbeat, .sessionAccept, .heartbeatAck, .ack, .nak: nil
        }
    }
}

/// Milliseconds since 1970-01-01T00:00:00Z, carried in 48 bits (until the year 10889).
public typealias WireTime = UInt64

// MARK: Device → centre

/// Opens a session; its frame counter becomes the session's anchor (protocol.md §3.4).
public struct SessionStart: Hashable, Sendable, Encodable {
    public var firmware: FirmwareVersion
    public var capabilities: Capabilities
    /// Incremented on durable storage at every boot.
    public var bootCount: UInt32
    /// Extension 0x01, optional: the hardware model, UTF-8, at most 32 bytes.
    public var model: String?
    /// Extension 0x02, optional: the key epoch the frame is sealed under (protocol.md §3.2), absent for 0.
    /// The header carries its low 3 bits so the centre picks the key before opening the frame; this is the
    /// whole, authenticated value.
    public var keyEpoch: UInt16?

    public init(firmware: FirmwareVersion, capabilities: Capabilities, bootCount: UInt32, model: String? = nil, keyEpoch: UInt16? = nil) {
        self.firmware = firmware
        self.capabilities = capabilities
        self.bootCount = bootCount
        self.model = model
        self.keyEpoch = keyEpoch == 0 ? nil : keyEpoch
    }
}

public struct FirmwareVersion: Hashable, Sendable, Encodable, CustomStringConvertible {
    public var major: UInt8, minor: UInt8, patch: UInt8
    public init(_ major: UInt8, _ minor: UInt8, _ patch: UInt8) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }
    public var description: String { "\(major).\(minor).\(patch)" }
}

/// What a device can do, a 16-bit set.
public struct Capabilities: OptionSet, Hashable, Sendable, Encodable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let button = Capabilities(rawValue: 1 << 0)
    public static let pendant = Capabilities(rawValue: 1 << 1)
    public static let voice = Capabilities(rawValue: 1 << 2)
    public static let video = Capabilities(rawValue: 1 << 3)
    public static let mainsSensing = Capabilities(rawValue: 1 << 4)
    public static let battery = Capabilities(rawValue: 1 << 5)
    public static let indicators = Capabilities(rawValue: 1 << 6)
    public static let cancelInput = Capabilities(rawValue: 1 << 7)
}

/// "I am alive", at the interval the centre set. Not acknowledged; answered by `heartbeatAck`.
public struct Heartbeat: Hashable, Sendable, Encodable {
    public var status: DeviceStatus
    /// Percent 0...100, or 255 when unknown.
    public var battery: UInt8
    public init(status: DeviceStatus, battery: UInt8) {
        self.status = status
        self.battery = battery
    }
}

/// The device's condition in one byte.
public struct DeviceStatus: OptionSet, Hashable, Sendable, Encodable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let mainsPresent = DeviceStatus(rawValue: 1 << 0)
    public static let batteryLow = DeviceStatus(rawValue: 1 << 1)
    public static let buttonPresent = DeviceStatus(rawValue: 1 << 2)
    public static let tamper = DeviceStatus(rawValue: 1 << 3)
    /// Items wait in the outbox.
    public static let backlog = DeviceStatus(rawValue: 1 << 4)
    /// An alarm is open.
    public static let alarmActive = DeviceStatus(rawValue: 1 << 5)
}

/// A call for help. Reliable.
public struct Alarm: Hashable, Sendable, Encodable {
    /// Unique for the life of the device; kept across retransmissions.
    public var id: UInt32
    public var kind: AlarmKind
    public var triggeredAt: WireTime
    /// Percent 0...100, or 255 when unknown.
    public var battery: UInt8
    public var flags: AlarmFlags
    /// Extension 0x01, optional: presses seen while this alarm was open.
    public var pressCount: UInt16?
    /// Extension 0x02, optional: how long the button was held, in milliseconds.
    public var holdMilliseconds: UInt16?

    public init(
        id: UInt32, kind: AlarmKind, triggeredAt: WireTime, battery: UInt8, flags: AlarmFlags,
        pressCount: UInt16? = nil, holdMilliseconds: UInt16? = nil
    ) {
        self.id = id
        self.kind = kind
        self.triggeredAt = triggeredAt
        self.battery = battery
        self.flags = flags
        self.pressCount = pressCount
        self.holdMilliseconds = holdMilliseconds
    }
}

public struct AlarmKind: WireCode {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let button = AlarmKind(rawValue: 1)
    public static let pendant = AlarmKind(rawValue: 2)
    /// A test alarm: recorded and acknowledged, never dispatched.
    public static let test = AlarmKind(rawValue: 3)
    public static let fall = AlarmKind(rawValue: 4)
    public static let inactivity = AlarmKind(rawValue: 5)
    public static let names: [UInt8: String] = [1: "button", 2: "pendant", 3: "test", 4: "fall", 5: "inactivity"]
}

public struct AlarmFlags: OptionSet, Hashable, Sendable, Encodable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `triggeredAt` is corrected to the centre's clock; without it, it is the device's own clock.
    public static let clockSynchronised = AlarmFlags(rawValue: 1 << 0)
    /// The device ran on battery when the alarm was raised.
    public static let onBattery = AlarmFlags(rawValue: 1 << 1)
    /// The alarm was stored before a restart and is sent after it.
    public static let recoveredAfterRestart = AlarmFlags(rawValue: 1 << 2)
}

/// Withdraws an alarm within the cancel window. Reliable.
public struct AlarmCancel: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var alarmID: UInt32
    public var cancelledAt: WireTime
    public init(id: UInt32, alarmID: UInt32, cancelledAt: WireTime) {
        self.id = id
        self.alarmID = alarmID
        self.cancelledAt = cancelledAt
    }
}

/// Something about the device's health or power. Reliable.
public struct DeviceEvent: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var kind: DeviceEventKind
    public var at: WireTime
    /// Meaning depends on `kind` (protocol.md §4.5): battery percent, alarm id, restart reason.
    public var value: UInt32
    public init(id: UInt32, kind: DeviceEventKind, at: WireTime, value: UInt32) {
        self.id = id
        self.kind = kind
        self.at = at
        self.value = value
    }
}

public struct DeviceEventKind: WireCode {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let lowBattery = DeviceEventKind(rawValue: 1)
    public static let mainsLost = DeviceEventKind(rawValue: 2)
    public static let mainsRestored = DeviceEventKind(rawValue: 3)
    public static let buttonMissing = DeviceEventKind(rawValue: 4)
    public static let buttonRestored = DeviceEventKind(rawValue: 5)
    public static let tamper = DeviceEventKind(rawValue: 6)
    public static let restart = DeviceEventKind(rawValue: 7)
    /// The button was pressed again while an alarm was open; `value` is that alarm's id.
    public static let pressDuringAlarm = DeviceEventKind(rawValue: 8)
    public static let batteryOK = DeviceEventKind(rawValue: 9)
    public static let names: [UInt8: String] = [1: "lowBattery", 2: "mainsLost", 3: "mainsRestored", 4: "buttonMissing", 5: "buttonRestored", 6: "tamper", 7: "restart", 8: "pressDuringAlarm", 9: "batteryOK"]
}

/// The answer to `diagnosticsRequest`. Reliable. Every field is an optional extension.
public struct DiagnosticsReport: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var requestID: UInt32
    public var battery: UInt8?  // ext 0x01
    public var mainsPresent: Bool?  // ext 0x02
    public var buttonPresent: Bool?  // ext 0x03
    public var uptimeSeconds: UInt32?  // ext 0x04
    public var outboxPending: UInt16?  // ext 0x05
    public var storageWritable: Bool?  // ext 0x06
    public var note: String?  // ext 0x07, UTF-8, at most 200 bytes

    public init(
        id: UInt32, requestID: UInt32, battery: UInt8? = nil, mainsPresent: Bool? = nil,
        buttonPresent: Bool? = nil, uptimeSeconds: UInt32? = nil, outboxPending: UInt16? = nil,
        storageWritable: Bool? = nil, note: String? = nil
    ) {
        self.id = id
        self.requestID = requestID
        self.battery = battery
        self.mainsPresent = mainsPresent
        self.buttonPresent = buttonPresent
        self.uptimeSeconds = uptimeSeconds
        self.outboxPending = outboxPending
        self.storageWritable = storageWritable
        self.note = note
    }
}

// MARK: Centre → device

/// The centre's answer to `sessionStart`: its clock and the device's settings.
public struct SessionAccept: Hashable, Sendable, Encodable {
    public var centreTime: WireTime
    public var heartbeatIntervalSeconds: UInt16
    public var settings: Settings
    public init(centreTime: WireTime, heartbeatIntervalSeconds: UInt16, settings: Settings = Settings()) {
        self.centreTime = centreTime
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.settings = settings
    }
}

/// Device settings the centre may set. Every field is an optional extension; absent means unchanged.
public struct Settings: Hashable, Sendable, Encodable {
    public var cancelWindowMilliseconds: UInt32?  // ext 0x01
    public var holdMilliseconds: UInt16?  // ext 0x02
    public var debounceMilliseconds: UInt16?  // ext 0x03
    public var mainsLostMaximumDelaySeconds: UInt16?  // ext 0x04
    public var heartbeatIntervalSeconds: UInt16?  // ext 0x05
    public var secondaryCentre: Endpoint?  // ext 0x06

    public init(
        cancelWindowMilliseconds: UInt32? = nil, holdMilliseconds: UInt16? = nil,
        debounceMilliseconds: UInt16? = nil, mainsLostMaximumDelaySeconds: UInt16? = nil,
        heartbeatIntervalSeconds: UInt16? = nil, secondaryCentre: Endpoint? = nil
    ) {
        self.cancelWindowMilliseconds = cancelWindowMilliseconds
        self.holdMilliseconds = holdMilliseconds
        self.debounceMilliseconds = debounceMilliseconds
        self.mainsLostMaximumDelaySeconds = mainsLostMaximumDelaySeconds
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.secondaryCentre = secondaryCentre
    }
}

/// An IPv4 or IPv6 address and a port, as 1 + 4/16 + 2 bytes on the wire.
public struct Endpoint: Hashable, Sendable, Encodable, CustomStringConvertible {
    /// 4 bytes for IPv4, 16 for IPv6.
    public var address: [UInt8]
    public var port: UInt16
    public init(address: [UInt8], port: UInt16) {
        self.address = address
        self.port = port
    }
    public var description: String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") + ":\(port)" }
        let groups = stride(from: 0, to: address.count, by: 2).map {
            String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16)
        }
        return "[" + groups.joined(separator: ":") + "]:\(port)"
    }
}

/// Answers a heartbeat: echoes its counter (round-trip time) and gives the centre's clock.
public struct HeartbeatAck: Hashable, Sendable, Encodable {
    public var echoedCounter: UInt64
    public var centreTime: WireTime
    public init(echoedCounter: UInt64, centreTime: WireTime) {
        self.echoedCounter = echoedCounter
        self.centreTime = centreTime
    }
}

/// What the centre is doing about an alarm. Reliable.
public struct CaseUpdate: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var alarmID: UInt32
    public var state: CaseState
    public var at: WireTime
    public init(id: UInt32, alarmID: UInt32, state: CaseState, at: WireTime) {
        self.id = id
        self.alarmID = alarmID
        self.state = state
        self.at = at
    }
}

public struct CaseState: WireCode {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let received = CaseState(rawValue: 1)
    public static let operatorEngaged = CaseState(rawValue: 2)
    public static let helpDispatched = CaseState(rawValue: 3)
    public static let closed = CaseState(rawValue: 4)
    public static let names: [UInt8: String] = [1: "received", 2: "operatorEngaged", 3: "helpDispatched", 4: "closed"]
}

/// New settings, effective on receipt. Reliable.
public struct ConfigPush: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var settings: Settings
    public init(id: UInt32, settings: Settings) {
        self.id = id
        self.settings = settings
    }
}

/// Asks the device for a `diagnosticsReport`. Reliable.
public struct DiagnosticsRequest: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var checks: DiagnosticChecks
    public init(id: UInt32, checks: DiagnosticChecks) {
        self.id = id
        self.checks = checks
    }
}

public struct DiagnosticChecks: OptionSet, Hashable, Sendable, Encodable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let power = DiagnosticChecks(rawValue: 1 << 0)
    public static let button = DiagnosticChecks(rawValue: 1 << 1)
    public static let storage = DiagnosticChecks(rawValue: 1 << 2)
    public static let link = DiagnosticChecks(rawValue: 1 << 3)
    /// Blink the indicators so a person on site sees them work.
    public static let blinkIndicators = DiagnosticChecks(rawValue: 1 << 4)
}

// MARK: Both ways

/// "I have your message `id`, durably." Never sent before the message is stored.
public struct Ack: Hashable, Sendable, Encodable {
    public var id: UInt32
    public init(id: UInt32) { self.id = id }
}

/// "I refuse your message `id`, because…", with the sender's clock for correction.
public struct Nak: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var reason: NakReason
    public var senderTime: WireTime
    public init(id: UInt32, reason: NakReason, senderTime: WireTime) {
        self.id = id
        self.reason = reason
        self.senderTime = senderTime
    }
}

public struct NakReason: WireCode {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The body decoded but makes no sense (for example a cancel of an alarm never sent).
    public static let invalid = NakReason(rawValue: 1)
    /// A critical extension or a message kind the receiver does not support.
    public static let unsupported = NakReason(rawValue: 2)
    /// Too many messages: retry after backoff.
    public static let rateLimited = NakReason(rawValue: 3)
    /// The receiver cannot store it now (storage failure): retry after backoff.
    public static let busy = NakReason(rawValue: 4)
    /// The referenced alarm or call is unknown.
    public static let unknownReference = NakReason(rawValue: 5)
    public static let names: [UInt8: String] = [1: "invalid", 2: "unsupported", 3: "rateLimited", 4: "busy", 5: "unknownReference"]
}

/// Media parameters of one side of a call (protocol.md §4.8).
public struct MediaDescription: Hashable, Sendable, Encodable {
    /// Where this side receives RTP; RTCP on port + 1.
    public var endpoint: Endpoint
    /// RTP payload type of the audio, 0 = PCMU (G.711 µ-law).
    public var audioPayloadType: UInt8
    public var ssrc: UInt32
    /// SRTP master key (16 bytes) and salt (14 bytes) this side sends with.
    public var keyMaterial: [UInt8]
    /// RTP payload type of the video stub stream, or 0 when there is no video.
    public var videoPayloadType: UInt8

    public init(endpoint: Endpoint, audioPayloadType: UInt8, ssrc: UInt32, keyMaterial: [UInt8], videoPayloadType: UInt8) {
        self.endpoint = endpoint
        self.audioPayloadType = audioPayloadType
        self.ssrc = ssrc
        self.keyMaterial = keyMaterial
        self.videoPayloadType = videoPayloadType
    }

    public static let keyMaterialLength = 30
}

/// Opens a voice (and optionally video) link. Reliable.
public struct CallOffer: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var callID: UInt32
    /// The alarm this call belongs to, or 0.
    public var alarmID: UInt32
    public var media: MediaDescription
    public init(id: UInt32, callID: UInt32, alarmID: UInt32, media: MediaDescription) {
        self.id = id
        self.callID = callID
        self.alarmID = alarmID
        self.media = media
    }
}

/// Accepts a call with the answerer's media parameters. Reliable.
public struct CallAnswer: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var callID: UInt32
    public var media: MediaDescription
    public init(id: UInt32, callID: UInt32, media: MediaDescription) {
        self.id = id
        self.callID = callID
        self.media = media
    }
}

/// Ends a call, from either side. Reliable. The alarm's case stays open.
public struct CallEnd: Hashable, Sendable, Encodable {
    public var id: UInt32
    public var callID: UInt32
    public var reason: CallEndReason
    public init(id: UInt32, callID: UInt32, reason: CallEndReason) {
        self.id = id
        self.callID = callID
        self.reason = reason
    }
}

public struct CallEndReason: WireCode {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let hangUp = CallEndReason(rawValue: 1)
    public static let mediaSilent = CallEndReason(rawValue: 2)
    public static let failed = CallEndReason(rawValue: 3)
    public static let declined = CallEndReason(rawValue: 4)
    public static let names: [UInt8: String] = [1: "hangUp", 2: "mediaSilent", 3: "failed", 4: "declined"]
}
