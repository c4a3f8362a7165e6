/// A one-byte code whose set of values grows with minor versions (alarm kinds, event kinds, reasons).
///
/// A struct, not an enum, so that a value a newer peer sends decodes instead of failing: a v1 centre must
/// still dispatch an alarm of a kind added in v1.1. Known values have names; unknown ones print as numbers.
public protocol WireCode: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible
where RawValue == UInt8 {
    init(rawValue: UInt8)
    static var names: [UInt8: String] { get }
}

extension WireCode {
    public var description: String { Self.names[rawValue] ?? "unknown(\(rawValue))" }
    public var isKnown: Bool { Self.names[rawValue] != nil }

    /// All values this version names.
    public static var allKnown: [Self] { names.keys.sorted().map(Self.init(rawValue:)) }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(UInt8.self) {
            self.init(rawValue: number)
            return
        }
        let name = try container.decode(String.self)
        guard let code = Self.names.first(where: { $0.value == name })?.key else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "unknown name '\(name)'")
        }
        self.init(rawValue: code)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let name = Self.names[rawValue] {
            try container.encode(name)
        } else {
            try container.encode(rawValue)
        }
    }
}
