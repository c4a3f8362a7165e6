import Foundation

/// The JSON form of messages: one object with a `"type"` key and the message's fields beside it.
///
/// Used by `devicesim protocol decode --json`, the centre's `--json` event stream, and the test vectors of
/// protocol.md. Times are milliseconds since the Unix epoch, addresses `host:port`, key material hex.
extension Message: Encodable {
    private enum TypeKey: String, CodingKey { case type }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: TypeKey.self)
        try container.encode(kind.name, forKey: .type)
        switch self {
        case .sessionStart(let m): try m.encode(to: encoder)
        case .heartbeat(let m): try m.encode(to: encoder)
        case .alarm(let m): try m.encode(to: encoder)
        case .alarmCancel(let m): try m.encode(to: encoder)
        case .event(let m): try m.encode(to: encoder)
        case .diagnosticsReport(let m): try m.encode(to: encoder)
        case .sessionAccept(let m): try m.encode(to: encoder)
        case .heartbeatAck(let m): try m.encode(to: encoder)
        case .caseUpdate(let m): try m.encode(to: encoder)
        case .configPush(let m): try m.encode(to: encoder)
        case .diagnosticsRequest(let m): try m.encode(to: encoder)
        case .ack(let m): try m.encode(to: encoder)
        case .nak(let m): try m.encode(to: encoder)
        case .callOffer(let m): try m.encode(to: encoder)
        case .callAnswer(let m): try m.encode(to: encoder)
        case .callEnd(let m): try m.encode(to: encoder)
        }
    }

    /// One line of JSON with sorted keys: the same message always gives the same text.
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Every field is an integer, a string or a nested struct of those: encoding cannot fail.
        guard let data = try? encoder.encode(self) else { return #"{"type":"\#(kind.name)"}"# }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Endpoint {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension FirmwareVersion {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension MediaDescription {
    private enum CodingKeys: String, CodingKey {
        case endpoint, audioPayloadType, ssrc, keyMaterial, videoPayloadType
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(endpoint, forKey: .endpoint)
        try c.encode(audioPayloadType, forKey: .audioPayloadType)
        try c.encode(ssrc, forKey: .ssrc)
        try c.encode(Hex.encode(keyMaterial), forKey: .keyMaterial)
        try c.encode(videoPayloadType, forKey: .videoPayloadType)
    }
}

/// A battery of 255 is "unknown" on the wire (§4.1); in JSON it is `null`, never a percentage of 255.
private func encodeBattery<Key: CodingKey>(_ battery: UInt8, _ container: inout KeyedEncodingContainer<Key>, forKey key: Key) throws {
    if battery == 255 { try container.encodeNil(forKey: key) } else { try container.encode(battery, forKey: key) }
}

extension Heartbeat {
    private enum CodingKeys: String, CodingKey { case status, battery }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(status, forKey: .status)
        try encodeBattery(battery, &c, forKey: .battery)
    }
}

extension Alarm {
    private enum CodingKeys: String, CodingKey { case id, kind, triggeredAt, battery, flags, pressCount, holdMilliseconds }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(kind, forKey: .kind)
        try c.encode(triggeredAt, forKey: .triggeredAt)
        try encodeBattery(battery, &c, forKey: .battery)
        try c.encode(flags, forKey: .flags)
        try c.encodeIfPresent(pressCount, forKey: .pressCount)
        try c.encodeIfPresent(holdMilliseconds, forKey: .holdMilliseconds)
    }
}

extension DiagnosticsReport {
    private enum CodingKeys: String, CodingKey {
        case id, requestID, battery, mainsPresent, buttonPresent, uptimeSeconds, outboxPending, storageWritable, note
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(requestID, forKey: .requestID)
        if let battery { try encodeBattery(battery, &c, forKey: .battery) }
        try c.encodeIfPresent(mainsPresent, forKey: .mainsPresent)
        try c.encodeIfPresent(buttonPresent, forKey: .buttonPresent)
        try c.encodeIfPresent(uptimeSeconds, forKey: .uptimeSeconds)
        try c.encodeIfPresent(outboxPending, forKey: .outboxPending)
        try c.encodeIfPresent(storageWritable, forKey: .storageWritable)
        try c.encodeIfPresent(note, forKey: .note)
    }
}

// The centre's fields are named with one spelling everywhere a person reads them (`center`), whatever the
// Swift names.

extension SessionAccept {
    private enum CodingKeys: String, CodingKey { case centerTime, heartbeatIntervalSeconds, settings }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(centreTime, forKey: .centerTime)
        try c.encode(heartbeatIntervalSeconds, forKey: .heartbeatIntervalSeconds)
        try c.encode(settings, forKey: .settings)
    }
}

extension HeartbeatAck {
    private enum CodingKeys: String, CodingKey { case echoedCounter, centerTime }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(echoedCounter, forKey: .echoedCounter)
        try c.encode(centreTime, forKey: .centerTime)
    }
}

extension Settings {
    private enum CodingKeys: String, CodingKey {
        case cancelWindowMilliseconds, holdMilliseconds, debounceMilliseconds, mainsLostMaximumDelaySeconds
        case heartbeatIntervalSeconds, secondaryCenter
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(cancelWindowMilliseconds, forKey: .cancelWindowMilliseconds)
        try c.encodeIfPresent(holdMilliseconds, forKey: .holdMilliseconds)
        try c.encodeIfPresent(debounceMilliseconds, forKey: .debounceMilliseconds)
        try c.encodeIfPresent(mainsLostMaximumDelaySeconds, forKey: .mainsLostMaximumDelaySeconds)
        try c.encodeIfPresent(heartbeatIntervalSeconds, forKey: .heartbeatIntervalSeconds)
        try c.encodeIfPresent(secondaryCentre, forKey: .secondaryCenter)
    }
}
