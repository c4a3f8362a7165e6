/// SIP messages (RFC 3261 §7) as values: a request or a response, its header fields in the order they came,
/// and its body. The data model shared by the parser (`SIPMessage+Parsing`), the transaction machines
/// (`SIPTransaction`), the user agent and its NIO shell. Header values stay text; the few fields a user
/// agent acts on (Via, From, To, Call-ID, CSeq, Contact, …) have typed views (`SIPHeaderValues`).
///
/// Layering (protocol.md §8):
/// ```
///  SIPUserAgent (dialogs, REGISTER, calls)      pure core + NIO shell (SIPEndpoint: UDP, TCP)
///  SIPTransactions (RFC 3261 §17 machines)       pure, timers as actions
///  SIPMessage parse / serialize, SIPStreamFramer pure, fuzzed
///  SDP offer/answer (RFC 4566/3264), SDES (RFC 4568), digest (RFC 2617/7616/8760)   pure
/// ```

/// A SIP method token, upper case as on the wire; unknown methods keep their text (§7.1: case-sensitive).
public struct SIPMethod: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let invite = SIPMethod(rawValue: "INVITE")
    public static let ack = SIPMethod(rawValue: "ACK")
    public static let bye = SIPMethod(rawValue: "BYE")
    public static let cancel = SIPMethod(rawValue: "CANCEL")
    public static let register = SIPMethod(rawValue: "REGISTER")
    public static let options = SIPMethod(rawValue: "OPTIONS")

    public var description: String { rawValue }
}

/// One `name=value` (or bare `name`) parameter of a URI or a header value, as written.
public struct SIPParameter: Hashable, Sendable {
    public var name: String
    public var value: String?
    public init(_ name: String, _ value: String? = nil) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == SIPParameter {
    /// The first parameter named `name` (case-insensitive, as §19.1.4 and §20 compare parameter names):
    /// `nil` when absent, `.some(nil)` for a bare flag such as `;lr` or `;rport`.
    public subscript(parameter name: String) -> String?? {
        guard let found = first(where: { $0.name.equalsIgnoringASCIICase(name) }) else { return nil }
        return .some(found.value)
    }

    /// Sets (replacing the first of that name) or, with `nil`, removes the parameter `name`.
    public mutating func set(_ name: String, to value: String??) {
        guard let value else {
            removeAll { $0.name.equalsIgnoringASCIICase(name) }
            return
        }
        if let index = firstIndex(where: { $0.name.equalsIgnoringASCIICase(name) }) {
            self[index].value = value
        } else {
            append(SIPParameter(name, value))
        }
    }
}

/// A SIP or SIPS URI (§19.1): `sip:user:password@host:port;params?headers`. The host is as written (a name,
/// an IPv4 address, or an IPv6 reference in brackets: `[::1]`).
public struct SIPURI: Hashable, Sendable {
    /// `sip` or `sips` (lower case).
    public var scheme: String
    public var user: String?
    public var password: String?
    public var host: String
    public var port: Int?
    public var parameters: [SIPParameter]
    /// The `?name=value&…` part, as written (without the `?`); empty when absent.
    public var headers: String

    public init(
        scheme: String = "sip", user: String? = nil, password: String? = nil, host: String, port: Int? = nil,
        parameters: [SIPParameter] = [], headers: String = ""
    ) {
        self.scheme = scheme
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.parameters = parameters
        self.headers = headers
    }

    /// The `transport` parameter, lower case (`udp`, `tcp`), if any.
    public var transport: String? { (parameters[parameter: "transport"] ?? nil)?.lowercased() }
}

/// One header field as it came: its name as written (a compact form such as `v` is kept) and its value with
/// folding undone and surrounding white space trimmed.
public struct SIPHeaderField: Hashable, Sendable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The header fields of a message in order. Lookups compare names case-insensitively and treat a compact
/// form (§7.3.3: `i` Call-ID, `m` Contact, `e` Content-Encoding, `l` Content-Length, `c` Content-Type,
/// `f` From, `s` Subject, `k` Supported, `t` To, `v` Via) as its long name.
public struct SIPHeaders: Hashable, Sendable, RandomAccessCollection {
    public private(set) var fields: [SIPHeaderField]

    public init(_ fields: [SIPHeaderField] = []) { self.fields = fields }

    public var startIndex: Int { fields.startIndex }
    public var endIndex: Int { fields.endIndex }
    public subscript(position: Int) -> SIPHeaderField { fields[position] }

    /// The long form of a header name, lower case: `v` → `via`, `Call-ID` → `call-id`.
    public static func canonical(_ name: String) -> String {
        let lower = name.lowercased()
        switch lower {
        case "i": return "call-id"
        case "m": return "contact"
        case "e": return "content-encoding"
        case "l": return "content-length"
        case "c": return "content-type"
        case "f": return "from"
        case "s": return "subject"
        case "k": return "supported"
        case "t": return "to"
        case "v": return "via"
        default: return lower
        }
    }

    /// The value of the first field named `name`, if any.
    public subscript(name: String) -> String? {
        let key = Self.canonical(name)
        return fields.first { Self.canonical($0.name) == key }?.value
    }

    /// The values of every field named `name`, in order, each field's value whole (a field that lists
    /// several values with commas is one entry here: `SIPHeaderValues.split` separates them).
    public func all(_ name: String) -> [String] {
        let key = Self.canonical(name)
        return fields.filter { Self.canonical($0.name) == key }.map(\.value)
    }

    public mutating func add(_ name: String, _ value: String) { fields.append(SIPHeaderField(name, value)) }

    /// Inserts a field before all others (a proxy's or a transport's new top Via).
    public mutating func prepend(_ name: String, _ value: String) { fields.insert(SIPHeaderField(name, value), at: 0) }

    /// Replaces every field named `name` with one field of `value` (at the place of the first, or at the end).
    public mutating func set(_ name: String, _ value: String) {
        let key = Self.canonical(name)
        if let first = fields.firstIndex(where: { Self.canonical($0.name) == key }) {
            fields[first] = SIPHeaderField(fields[first].name, value)
            var index = fields.index(after: first)
            while index < fields.endIndex {
                if Self.canonical(fields[index].name) == key { fields.remove(at: index) } else { index += 1 }
            }
        } else {
            fields.append(SIPHeaderField(name, value))
        }
    }

    public mutating func remove(_ name: String) {
        let key = Self.canonical(name)
        fields.removeAll { Self.canonical($0.name) == key }
    }
}

public struct SIPRequest: Hashable, Sendable {
    public var method: SIPMethod
    public var uri: SIPURI
    public var headers: SIPHeaders
    public var body: [UInt8]

    public init(method: SIPMethod, uri: SIPURI, headers: SIPHeaders = SIPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }
}

public struct SIPResponse: Hashable, Sendable {
    /// 100–699.
    public var statusCode: Int
    public var reasonPhrase: String
    public var headers: SIPHeaders
    public var body: [UInt8]

    public init(statusCode: Int, reasonPhrase: String, headers: SIPHeaders = SIPHeaders(), body: [UInt8] = []) {
        self.statusCode = statusCode
        self.reasonPhrase = reasonPhrase
        self.headers = headers
        self.body = body
    }

    /// 1xx.
    public var isProvisional: Bool { statusCode < 200 }
}

public enum SIPMessage: Hashable, Sendable {
    case request(SIPRequest)
    case response(SIPResponse)

    public var headers: SIPHeaders {
        switch self {
        case .request(let request): request.headers
        case .response(let response): response.headers
        }
    }
}

extension String {
    /// ASCII case-insensitive equality (SIP tokens, header and parameter names).
    func equalsIgnoringASCIICase(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        return zip(utf8, other.utf8).allSatisfy { a, b in asciiLower(a) == asciiLower(b) }
    }
}

@inline(__always) private func asciiLower(_ byte: UInt8) -> UInt8 {
    (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
}
