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
