import NIOCore

/// The plaintext body of a frame: a type byte, fixed fields, then extensions (protocol.md §4).
extension Message {
    /// Appends the body to `buffer`.
    ///
    /// Throws when a value cannot be represented (a time beyond 48 bits, an address that is neither IPv4 nor
    /// IPv6, key material of the wrong length, text too long), so nothing unreadable is ever sent.
    public func encodeBody(into buffer: inout ByteBuffer) throws(ProtocolError) {
        try validate()
        buffer.writeInteger(kind.rawValue)
        var ext = ExtensionWriter(buffer: buffer)
        buffer = ByteBuffer()  // `ext` owns the bytes while fields are written
        switch self {
        case .sessionStart(let m):
            ext.buffer.writeInteger(m.firmware.major)
            ext.buffer.writeInteger(m.firmware.minor)
            ext.buffer.writeInteger(m.firmware.patch)
            ext.buffer.writeInteger(m.capabilities.rawValue)
            ext.buffer.writeInteger(m.bootCount)
            ext.text(0x01, m.model)
            ext.u16(0x02, m.keyEpoch)
        case .heartbeat(let m):
            ext.buffer.writeInteger(m.status.rawValue)
            ext.buffer.writeInteger(m.battery)
        case .alarm(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.kind.rawValue)
            ext.buffer.writeUInt48(m.triggeredAt)
            ext.buffer.writeInteger(m.battery)
            ext.buffer.writeInteger(m.flags.rawValue)
            ext.u16(0x01, m.pressCount)
            ext.u16(0x02, m.holdMilliseconds)
        case .alarmCancel(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.alarmID)
            ext.buffer.writeUInt48(m.cancelledAt)
        case .event(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.kind.rawValue)
            ext.buffer.writeUInt48(m.at)
            ext.buffer.writeInteger(m.value)
        case .diagnosticsReport(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.requestID)
            ext.u8(0x01, m.battery)
            ext.bool(0x02, m.mainsPresent)
            ext.bool(0x03, m.buttonPresent)
            ext.u32(0x04, m.uptimeSeconds)
            ext.u16(0x05, m.outboxPending)
            ext.bool(0x06, m.storageWritable)
            ext.text(0x07, m.note)
        case .sessionAccept(let m):
            ext.buffer.writeUInt48(m.centreTime)
            ext.buffer.writeInteger(m.heartbeatIntervalSeconds)
            ext.settings(m.settings)
        case .heartbeatAck(let m):
            ext.buffer.writeUInt48(m.echoedCounter)
            ext.buffer.writeUInt48(m.centreTime)
        case .caseUpdate(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.alarmID)
            ext.buffer.writeInteger(m.state.rawValue)
            ext.buffer.writeUInt48(m.at)
        case .configPush(let m):
            ext.buffer.writeInteger(m.id)
            ext.settings(m.settings)
        case .diagnosticsRequest(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.checks.rawValue)
        case .ack(let m):
            ext.buffer.writeInteger(m.id)
        case .nak(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.reason.rawValue)
            ext.buffer.writeUInt48(m.senderTime)
        case .callOffer(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.callID)
            ext.buffer.writeInteger(m.alarmID)
            ext.buffer.writeMedia(m.media)
        case .callAnswer(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.callID)
            ext.buffer.writeMedia(m.media)
        case .callEnd(let m):
            ext.buffer.writeInteger(m.id)
            ext.buffer.writeInteger(m.callID)
            ext.buffer.writeInteger(m.reason.rawValue)
        }
        buffer = ext.buffer
    }

    /// Decodes one whole body. Never traps: every malformed input throws a `ProtocolError`.
    public init(body: ByteBuffer) throws(ProtocolError) {
        var body = body
        guard let type = body.readInteger(as: UInt8.self) else {
            throw .truncatedBody(message: "frame", field: "message type")
        }
        guard let kind = Kind(rawValue: type) else { throw .unknownMessageType(type) }
        var r = BodyReader(body, message: kind)
        switch kind {
        case .sessionStart:
            let firmware = FirmwareVersion(try r.u8("firmware"), try r.u8("firmware"), try r.u8("firmware"))
            var m = SessionStart(
                firmware: firmware, capabilities: Capabilities(rawValue: try r.u16("capabilities")),
                bootCount: try r.u32("bootCount"))
            try r.extensions { (tag, v) throws(ProtocolError) in
                switch tag {
                case 0x01: m.model = try v.text("model", maximum: SessionStart.maximumModelLength)
                case 0x02: m.keyEpoch = try v.u16("keyEpoch")
                default: return false
                }
                return true
            }
            self = .sessionStart(m)
        case .heartbeat:
            let m = Heartbeat(status: DeviceStatus(rawValue: try r.u8("status")), battery: try r.battery())
            try r.extensions { _, _ in false }
            self = .heartbeat(m)
        case .alarm:
            var m = Alarm(
                id: try r.u32("id"), kind: AlarmKind(rawValue: try r.u8("kind")),
                triggeredAt: try r.u48("triggeredAt"), battery: try r.battery(),
                flags: AlarmFlags(rawValue: try r.u8("flags")))
            try r.extensions { (tag, v) throws(ProtocolError) in
                switch tag {
                case 0x01: m.pressCount = try v.u16("pressCount")
                case 0x02: m.holdMilliseconds = try v.u16("holdMilliseconds")
                default: return false
                }
                return true
            }
            self = .alarm(m)
        case .alarmCancel:
            let m = AlarmCancel(id: try r.u32("id"), alarmID: try r.u32("alarmID"), cancelledAt: try r.u48("cancelledAt"))
            try r.extensions { _, _ in false }
            self = .alarmCancel(m)
        case .event:
            let m = DeviceEvent(
                id: try r.u32("id"), kind: DeviceEventKind(rawValue: try r.u8("kind")), at: try r.u48("at"),
                value: try r.u32("value"))
            try r.extensions { _, _ in false }
            self = .event(m)
        case .diagnosticsReport:
            var m = DiagnosticsReport(id: try r.u32("id"), requestID: try r.u32("requestID"))
            try r.extensions { (tag, v) throws(ProtocolError) in
                switch tag {
                case 0x01: m.battery = try v.battery()
                case 0x02: m.mainsPresent = try v.bool("mainsPresent")
                case 0x03: m.buttonPresent = try v.bool("buttonPresent")
                case 0x04: m.uptimeSeconds = try v.u32("uptimeSeconds")
                case 0x05: m.outboxPending = try v.u16("outboxPending")
                case 0x06: m.storageWritable = try v.bool("storageWritable")
                case 0x07: m.note = try v.text("note", maximum: DiagnosticsReport.maximumNoteLength)
                default: return false
                }
                return true
            }
            self = .diagnosticsReport(m)
        case .sessionAccept:
            let time = try r.u48("centerTime")
            let interval = try r.u16("heartbeatIntervalSeconds")
            self = .sessionAccept(SessionAccept(centreTime: time, heartbeatIntervalSeconds: interval, settings: try r.settings()))
        case .heartbeatAck:
            let m = HeartbeatAck(echoedCounter: try r.u48("echoedCounter"), centreTime: try r.u48("centerTime"))
            try r.extensions { _, _ in false }
            self = .heartbeatAck(m)
        case .caseUpdate:
            let m = CaseUpdate(
                id: try r.u32("id"), alarmID: try r.u32("alarmID"), state: CaseState(rawValue: try r.u8("state")),
                at: try r.u48("at"))
            try r.extensions { _, _ in false }
            self = .caseUpdate(m)
        case .configPush:
            let id = try r.u32("id")
            self = .configPush(ConfigPush(id: id, settings: try r.settings()))
        case .diagnosticsRequest:
            let m = DiagnosticsRequest(id: try r.u32("id"), checks: DiagnosticChecks(rawValue: try r.u8("checks")))
            try r.extensions { _, _ in false }
            self = .diagnosticsRequest(m)
        case .ack:
            let m = Ack(id: try r.u32("id"))
            try r.extensions { _, _ in false }
            self = .ack(m)
        case .nak:
            let m = Nak(id: try r.u32("id"), reason: NakReason(rawValue: try r.u8("reason")), senderTime: try r.u48("senderTime"))
            try r.extensions { _, _ in false }
            self = .nak(m)
        case .callOffer:
            let m = CallOffer(id: try r.u32("id"), callID: try r.u32("callID"), alarmID: try r.u32("alarmID"), media: try r.media())
            try r.extensions { _, _ in false }
            self = .callOffer(m)
        case .callAnswer:
            let m = CallAnswer(id: try r.u32("id"), callID: try r.u32("callID"), media: try r.media())
            try r.extensions { _, _ in false }
            self = .callAnswer(m)
        case .callEnd:
            let m = CallEnd(id: try r.u32("id"), callID: try r.u32("callID"), reason: CallEndReason(rawValue: try r.u8("reason")))
            try r.extensions { _, _ in false }
            self = .callEnd(m)
        }
    }

    /// Checks that every field fits its wire representation.
    func validate() throws(ProtocolError) {
        var name: String { kind.name }
        func time(_ t: WireTime, _ field: String) throws(ProtocolError) {
            guard t <= Wire.maximumUpCounter else {
                throw .invalidField(message: name, field: field, reason: "time does not fit in 48 bits")
            }
        }
        func endpoint(_ e: Endpoint?, _ field: String) throws(ProtocolError) {
            guard let e else { return }
            guard e.address.count == 4 || e.address.count == 16 else {
                throw .invalidField(message: name, field: field, reason: "address is \(e.address.count) bytes, not 4 or 16")
            }
        }
        func media(_ m: MediaDescription) throws(ProtocolError) {
            try endpoint(m.endpoint, "media.endpoint")
            guard m.keyMaterial.count == MediaDescription.keyMaterialLength else {
                throw .invalidField(
                    message: name, field: "media.keyMaterial",
                    reason: "\(m.keyMaterial.count) bytes, not \(MediaDescription.keyMaterialLength)")
            }
        }
        func text(_ s: String?, _ field: String, _ maximum: Int) throws(ProtocolError) {
            guard let s, s.utf8.count > maximum else { return }
            throw .invalidField(message: name, field: field, reason: "longer than \(maximum) bytes")
        }
        func battery(_ b: UInt8?) throws(ProtocolError) {
            guard let b, b > 100, b != 255 else { return }
            throw .invalidField(message: name, field: "battery", reason: "\(b) is neither a percentage nor 255 (unknown)")
        }
        switch self {
        case .sessionStart(let m): try text(m.model, "model", SessionStart.maximumModelLength)
        case .heartbeat(let m): try battery(m.battery)
        case .alarm(let m):
            try time(m.triggeredAt, "triggeredAt")
            try battery(m.battery)
        case .alarmCancel(let m): try time(m.cancelledAt, "cancelledAt")
        case .event(let m): try time(m.at, "at")
        case .diagnosticsReport(let m):
            try text(m.note, "note", DiagnosticsReport.maximumNoteLength)
            try battery(m.battery)
        case .sessionAccept(let m):
            try time(m.centreTime, "centerTime")
            try endpoint(m.settings.secondaryCentre, "secondaryCenter")
        case .heartbeatAck(let m):
            try time(m.centreTime, "centerTime")
            try time(m.echoedCounter, "echoedCounter")
        case .caseUpdate(let m): try time(m.at, "at")
        case .configPush(let m): try endpoint(m.settings.secondaryCentre, "secondaryCenter")
        case .nak(let m): try time(m.senderTime, "senderTime")
        case .callOffer(let m): try media(m.media)
        case .callAnswer(let m): try media(m.media)
        case .diagnosticsRequest, .ack, .callEnd: break
        }
    }
}

extension SessionStart {
    public static let maximumModelLength = 32
}

extension DiagnosticsReport {
    public static let maximumNoteLength = 200
}

extension ExtensionWriter {
    mutating func settings(_ s: Settings) {
        u32(0x01, s.cancelWindowMilliseconds)
        u16(0x02, s.holdMilliseconds)
        u16(0x03, s.debounceMilliseconds)
        u16(0x04, s.mainsLostMaximumDelaySeconds)
        u16(0x05, s.heartbeatIntervalSeconds)
        endpoint(0x06, s.secondaryCentre)
    }
}

extension BodyReader {
    mutating func settings() throws(ProtocolError) -> Settings {
        var s = Settings()
        try extensions { (tag, v) throws(ProtocolError) in
            switch tag {
            case 0x01: s.cancelWindowMilliseconds = try v.u32("cancelWindowMilliseconds")
            case 0x02: s.holdMilliseconds = try v.u16("holdMilliseconds")
            case 0x03: s.debounceMilliseconds = try v.u16("debounceMilliseconds")
            case 0x04: s.mainsLostMaximumDelaySeconds = try v.u16("mainsLostMaximumDelaySeconds")
            case 0x05: s.heartbeatIntervalSeconds = try v.u16("heartbeatIntervalSeconds")
            case 0x06: s.secondaryCentre = try v.endpoint("secondaryCenter")
            default: return false
            }
            return true
        }
        return s
    }

    /// A battery level: 0...100 percent, or 255 for unknown.
    mutating func battery() throws(ProtocolError) -> UInt8 {
        let v = try u8("battery")
        guard v <= 100 || v == 255 else { throw invalid("battery", "\(v) is neither a percentage nor 255 (unknown)") }
        return v
    }

    mutating func media() throws(ProtocolError) -> MediaDescription {
        MediaDescription(
            endpoint: try endpoint("media.endpoint"), audioPayloadType: try u8("media.audioPayloadType"),
            ssrc: try u32("media.ssrc"), keyMaterial: try bytes(MediaDescription.keyMaterialLength, "media.keyMaterial"),
            videoPayloadType: try u8("media.videoPayloadType"))
    }
}

extension ByteBuffer {
    mutating func writeMedia(_ m: MediaDescription) {
        writeEndpoint(m.endpoint)
        writeInteger(m.audioPayloadType)
        writeInteger(m.ssrc)
        writeBytes(m.keyMaterial)
        writeInteger(m.videoPayloadType)
    }
}
