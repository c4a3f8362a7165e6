/// Typed views of the header values a user agent acts on (RFC 3261 §19.1, §20, §25): URIs, Via, name-addr
/// (From, To, Contact, Route, Record-Route) and CSeq. Each parses the text of one value, tolerant where §7.3.1
/// is (white space around `/`, `;`, `=`), and serialises back with `description`.
public enum SIPHeaderValues {
    /// The elements of a comma-separated header value (Via, Contact, Route, Record-Route, …), each trimmed:
    /// commas inside a quoted string or inside `<…>` do not separate. An empty element stays (as `""`), so that
    /// the typed parser refuses it rather than it vanishing.
    public static func split(_ headerValue: String) -> [String] {
        let bytes = Array(headerValue.utf8)
        var parts: [String] = []
        var start = 0
        var inQuotes = false
        var inAngle = false
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if inQuotes {
                if byte == .backslash {
                    index += 2
                    continue
                }
                if byte == .quote { inQuotes = false }
            } else if inAngle {
                if byte == .greaterThan { inAngle = false }
            } else if byte == .quote {
                inQuotes = true
            } else if byte == .lessThan {
                inAngle = true
            } else if byte == .comma {
                parts.append(SIPScanner.trimmed(bytes[start..<index]))
                start = index + 1
            }
            index += 1
        }
        parts.append(SIPScanner.trimmed(bytes[min(start, bytes.count)...]))
        return parts
    }

    /// `"text"` with `\` and `"` escaped (§25.1 quoted-pair), for display names and digest parameters.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            if scalar == "\"" || scalar == "\\" { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out + "\""
    }
}

// MARK: URI

extension SIPURI: CustomStringConvertible {
    /// Parses a SIP or SIPS URI (§19.1.1) as written: escapes (`%41`) are checked but kept, so that the text
    /// comes back unchanged. Other schemes (`tel:`, `http:`) are refused: a user agent here only needs SIP.
    public init(parsing text: String) throws(SIPParseError) {
        let bytes = Array(text.utf8)
        func fail(_ reason: String) -> SIPParseError { .badURI(text, reason) }
        guard !bytes.isEmpty else { throw fail("is empty") }
        if bytes.contains(where: { $0 <= .space || $0 == 0x7F || $0 == .lessThan || $0 == .greaterThan || $0 == .quote }) {
            throw fail("contains white space, a control character or one of < > \"")
        }
        guard let colon = bytes.firstIndex(of: .colon) else { throw fail("has no scheme (sip: or sips:)") }
        let scheme = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
        guard scheme == "sip" || scheme == "sips" else { throw fail("is not a sip: or sips: URI") }

        var rest = bytes[(colon + 1)...]
        var user: String?
        var password: String?
        // Parameters and headers may not hold a raw `@` (§25.1), but a user part may hold `;` `?` `/`: the
        // user information ends at the last `@`.
        if let at = rest.lastIndex(of: .at) {
            let userInfo = rest[..<at]
            let userEnd = userInfo.firstIndex(of: .colon) ?? userInfo.endIndex
            let userBytes = userInfo[..<userEnd]
            guard !userBytes.isEmpty else { throw fail("has an empty user part before @") }
            guard Self.allValid(userBytes, extra: Self.userUnreserved) else { throw fail("has a character a user part may not hold (escape it as %HH)") }
            user = String(decoding: userBytes, as: UTF8.self)
            if userEnd < userInfo.endIndex {
                let passwordBytes = userInfo[(userEnd + 1)...]
                guard Self.allValid(passwordBytes, extra: Self.passwordUnreserved) else { throw fail("has a character a password may not hold") }
                password = String(decoding: passwordBytes, as: UTF8.self)
            }
            rest = rest[(at + 1)...]
        }

        // Host: a name, an IPv4 address, or an IPv6 reference in brackets.
        var index = rest.startIndex
        if rest.first == .leftBracket {
            guard let close = rest.firstIndex(of: .rightBracket) else { throw fail("has an IPv6 reference without ]") }
            let inside = rest[(index + 1)..<close]
            guard !inside.isEmpty, inside.allSatisfy({ $0.isHexDigit || $0 == .colon || $0 == .dot }) else {
                throw fail("has an IPv6 reference that is not hex digits, : and .")
            }
            index = close + 1
        } else {
            while index < rest.endIndex, rest[index].isHostCharacter { index += 1 }
            guard index > rest.startIndex else { throw fail("has no host") }
        }
        let host = String(decoding: rest[rest.startIndex..<index], as: UTF8.self)

        var port: Int?
        if index < rest.endIndex, rest[index] == .colon {
            index += 1
            let digitsStart = index
            while index < rest.endIndex, rest[index].isDigit { index += 1 }
            guard let value = Self.port(rest[digitsStart..<index]) else { throw fail("has a port that is not a number of 0-65535") }
            port = value
        }

        var parameters: [SIPParameter] = []
        while index < rest.endIndex, rest[index] == .semicolon {
            index += 1
            let start = index
            while index < rest.endIndex, rest[index] != .semicolon, rest[index] != .question { index += 1 }
            let parameter = rest[start..<index]
            let equals = parameter.firstIndex(of: .equals) ?? parameter.endIndex
            let name = parameter[..<equals]
            guard !name.isEmpty else { throw fail("has an empty parameter") }
            guard Self.allValid(parameter, extra: Self.parameterUnreserved) else { throw fail("has a parameter with a character it may not hold") }
            let value = equals < parameter.endIndex ? String(decoding: parameter[(equals + 1)...], as: UTF8.self) : nil
            parameters.append(SIPParameter(String(decoding: name, as: UTF8.self), value))
        }

        var headers = ""
        if index < rest.endIndex {
            guard rest[index] == .question else { throw fail("has text after its host that is not :port, ;parameters or ?headers") }
            headers = String(decoding: rest[(index + 1)...], as: UTF8.self)
        }
        self.init(scheme: scheme, user: user, password: password, host: host, port: port, parameters: parameters, headers: headers)
    }

    public var description: String {
        var out = scheme + ":"
        if let user {
            out += user
            if let password { out += ":" + password }
            out += "@"
        }
        out += hostPort
        for parameter in parameters {
            out += ";" + parameter.name
            if let value = parameter.value { out += "=" + value }
        }
        if !headers.isEmpty { out += "?" + headers }
        return out
    }

    /// `host` or `host:port`, as a Via sent-by or a connection target is written.
    public var hostPort: String { port.map { "\(host):\($0)" } ?? host }

    // §25.1: user-unreserved, password characters and param-unreserved, beyond `unreserved` and `escaped`.
    private static let userUnreserved: [UInt8] = Array("&=+$,;?/".utf8)
    private static let passwordUnreserved: [UInt8] = Array("&=+$,".utf8)
    private static let parameterUnreserved: [UInt8] = Array("[]/:&+$=".utf8)

    /// Every byte is unreserved, in `extra`, or part of a `%HH` escape.
    private static func allValid(_ bytes: ArraySlice<UInt8>, extra: [UInt8]) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == .percent {
                guard index + 2 < bytes.endIndex, bytes[index + 1].isHexDigit, bytes[index + 2].isHexDigit else { return false }
                index += 3
                continue
            }
            guard byte.isURIUnreserved || extra.contains(byte) else { return false }
            index += 1
        }
        return true
    }

    /// A port of 1-5 digits, 0-65535.
    static func port(_ digits: ArraySlice<UInt8>) -> Int? {
        guard (1...5).contains(digits.count), digits.allSatisfy(\.isDigit) else { return nil }
        let value = digits.reduce(0) { $0 * 10 + Int($1 - .zero) }
        return value <= 65_535 ? value : nil
    }
}

// MARK: Via

/// One Via value (§20.42): `SIP/2.0/UDP host:port;branch=z9hG4bK…;received=…;rport`.
public struct SIPVia: Hashable, Sendable, CustomStringConvertible {
    /// Upper case: `UDP`, `TCP`, `TLS`, or another token as written, upper-cased.
    public var transport: String
    /// As written: a name, an IPv4 address or an IPv6 reference in brackets.
    public var host: String
    public var port: Int?
    /// Every parameter in order, `branch`, `received` and `rport` included.
    public var parameters: [SIPParameter]

    public init(transport: String, host: String, port: Int? = nil, branch: String? = nil) {
        self.transport = transport.uppercased()
        self.host = host
        self.port = port
        self.parameters = []
        self.branch = branch
    }

    public var branch: String? {
        get { parameters[parameter: "branch"] ?? nil }
        set { parameters.set("branch", to: newValue.map { .some($0) }) }
    }

    public var received: String? {
        get { parameters[parameter: "received"] ?? nil }
        set { parameters.set("received", to: newValue.map { .some($0) }) }
    }

    /// RFC 3581: `nil` when absent, `.some(nil)` for a bare `;rport` (a request asking for it), the port when
    /// filled in.
    public var rport: Int?? {
        get {
            guard let value = parameters[parameter: "rport"] else { return nil }
            guard let value else { return .some(nil) }
            return .some(SIPURI.port(Array(value.utf8)[...]))
        }
        set {
            switch newValue {
            case .none: parameters.set("rport", to: nil)
            case .some(.none): parameters.set("rport", to: .some(nil))
            case .some(.some(let port)): parameters.set("rport", to: .some(String(port)))
            }
        }
    }

    public init(parsing text: String) throws(SIPParseError) {
        var scanner = SIPScanner(text)
        func fail(_ reason: String) -> SIPParseError { .badHeaderValue("Via", text, reason) }
        scanner.skipSpace()
        guard let name = scanner.token(), name.equalsIgnoringASCIICase("SIP") else { throw fail("does not start with SIP/2.0/transport") }
        scanner.skipSpace()
        guard scanner.consume(.slash) else { throw fail("does not start with SIP/2.0/transport") }
        scanner.skipSpace()
        guard scanner.token() == "2.0" else { throw fail("is not SIP version 2.0") }
        scanner.skipSpace()
        guard scanner.consume(.slash) else { throw fail("does not start with SIP/2.0/transport") }
        scanner.skipSpace()
        guard let transport = scanner.token() else { throw fail("has no transport after SIP/2.0/") }
        guard scanner.skipSpace() > 0 else { throw fail("has no space between the transport and the host") }
        guard let host = scanner.host() else { throw fail("has no host (or an IPv6 reference without ])") }
        scanner.skipSpace()
        var port: Int?
        if scanner.consume(.colon) {
            scanner.skipSpace()
            guard let value = SIPURI.port(scanner.take(while: \.isDigit)) else { throw fail("has a port that is not a number of 0-65535") }
            port = value
        }
        let parameters = try scanner.parameters(header: "Via", value: text)
        self.transport = transport.uppercased()
        self.host = host
        self.port = port
        self.parameters = parameters
        if case .some(.none) = parameters[parameter: "branch"] { throw fail("has a branch parameter without a value") }
        if case .some(.some(let value)) = parameters[parameter: "rport"], SIPURI.port(Array(value.utf8)[...]) == nil {
            throw fail("has an rport that is not a port number")
        }
    }

    public var description: String {
        var out = "SIP/2.0/\(transport) \(host)"
        if let port { out += ":\(port)" }
        return out + parameters.headerParameterText
    }
}

// MARK: name-addr

/// A From, To, Contact, Route or Record-Route value (§20.10, §20.20, §20.39): `"Name" <sip:…>;tag=x`,
/// `Name <sip:…>` or a bare `sip:a@b;tag=x`, whose parameters belong to the header, not the URI.
public struct SIPNameAddress: Hashable, Sendable, CustomStringConvertible {
    /// Without quotes or escapes; `nil` when none was written.
    public var displayName: String?
    public var uri: SIPURI
    /// The header's parameters (`tag`, `expires`, `q`, …) in order.
    public var parameters: [SIPParameter]

    public init(displayName: String? = nil, uri: SIPURI, parameters: [SIPParameter] = []) {
        self.displayName = displayName
        self.uri = uri
        self.parameters = parameters
    }

    public var tag: String? {
        get { parameters[parameter: "tag"] ?? nil }
        set { parameters.set("tag", to: newValue.map { .some($0) }) }
    }

    public init(parsing text: String) throws(SIPParseError) {
        try self.init(parsing: text, header: "address")
    }

    init(parsing text: String, header: String) throws(SIPParseError) {
        var scanner = SIPScanner(text)
        func fail(_ reason: String) -> SIPParseError { .badHeaderValue(header, text, reason) }
        scanner.skipSpace()
        if scanner.peek == .asterisk, SIPScanner.trimmed(Array(text.utf8)[...]) == "*" { throw .wildcardContact }
        var displayName: String?
        var angle = false
        if scanner.peek == .quote {
            guard let quoted = scanner.quotedString() else { throw fail("has a display name whose quotes do not close") }
            displayName = quoted.unescaped
            scanner.skipSpace()
            guard scanner.peek == .lessThan else { throw fail("has a quoted display name but no <URI> after it") }
            angle = true
        } else {
            // Display-name tokens up to `<`, or else a bare addr-spec from the start.
            let start = scanner.index
            _ = scanner.take(while: { $0.isTokenCharacter || $0 == .space || $0 == .tab })
            if scanner.peek == .lessThan {
                let name = SIPScanner.trimmed(scanner.bytes[start..<scanner.index])
                displayName = name.isEmpty ? nil : name
                angle = true
            } else {
                scanner.index = start
            }
        }
        let uriText: String
        if angle {
            _ = scanner.consume(.lessThan)
            let inside = scanner.take(while: { $0 != .greaterThan })
            guard scanner.consume(.greaterThan) else { throw fail("has a < without a closing >") }
            uriText = String(decoding: inside, as: UTF8.self)
        } else {
            // §20.10: after a bare URI, everything from the first `;` is a header parameter.
            uriText = SIPScanner.trimmed(scanner.take(while: { $0 != .semicolon }))
        }
        let uri: SIPURI
        do {
            uri = try SIPURI(parsing: uriText)
        } catch {
            throw fail("has a URI that is not a sip: URI (\(error))")
        }
        // §20.10: a URI with headers must be written in <…> (RFC 4475 "regbadct").
        guard angle || uri.headers.isEmpty else { throw fail("has a URI with ?headers that is not in <…>") }
        self.uri = uri
        self.displayName = displayName
        self.parameters = try scanner.parameters(header: header, value: text)
    }

    public var description: String {
        var out = ""
        if let displayName { out += SIPHeaderValues.quoted(displayName) + " " }
        return out + "<\(uri)>" + parameters.headerParameterText
    }
}

// MARK: CSeq

/// The CSeq value (§20.16): `314159 INVITE`.
public struct SIPCSeq: Hashable, Sendable, CustomStringConvertible {
    public var sequence: UInt32
    public var method: SIPMethod

    public init(sequence: UInt32, method: SIPMethod) {
        self.sequence = sequence
        self.method = method
    }

    public init(parsing text: String) throws(SIPParseError) {
        var scanner = SIPScanner(text)
        func fail(_ reason: String) -> SIPParseError { .badHeaderValue("CSeq", text, reason) }
        scanner.skipSpace()
        let digits = scanner.take(while: \.isDigit)
        guard !digits.isEmpty else { throw fail("does not start with a sequence number") }
        // Leading zeros are allowed (RFC 4475 "0009"); the value must fit 32 bits (§8.1.1.5).
        var value: UInt64 = 0
        for digit in digits {
            value = value * 10 + UInt64(digit - .zero)
            guard value <= UInt64(UInt32.max) else { throw fail("has a sequence number larger than 32 bits") }
        }
        guard scanner.skipSpace() > 0, let method = scanner.token() else { throw fail("is not a number and a method") }
        scanner.skipSpace()
        guard scanner.atEnd else { throw fail("has text after the method") }
        self.sequence = UInt32(value)
        self.method = SIPMethod(rawValue: method)
    }

    public var description: String { "\(sequence) \(method)" }
}

// MARK: Lookups on the header fields

extension SIPHeaders {
    /// Every Via value, top first, lists split; `[]` when there is none.
    public func vias() throws(SIPParseError) -> [SIPVia] {
        var vias: [SIPVia] = []
        for value in all("via") {
            for element in SIPHeaderValues.split(value) { vias.append(try SIPVia(parsing: element)) }
        }
        return vias
    }

    public func from() throws(SIPParseError) -> SIPNameAddress {
        try SIPNameAddress(parsing: single("From"), header: "From")
    }

    public func to() throws(SIPParseError) -> SIPNameAddress {
        try SIPNameAddress(parsing: single("To"), header: "To")
    }

    /// The Call-ID: one field, not empty, without white space (§20.8).
    public func callID() throws(SIPParseError) -> String {
        let value = try single("Call-ID")
        guard !value.isEmpty, !value.utf8.contains(where: { $0 == .space || $0 == .tab }) else {
            throw .badHeaderValue("Call-ID", value, "is empty or holds white space")
        }
        return value
    }

    public func cseq() throws(SIPParseError) -> SIPCSeq {
        try SIPCSeq(parsing: single("CSeq"))
    }

    /// Every Contact value, lists split; `[]` when there is none. `Contact: *` (remove every binding, in a
    /// REGISTER) names no address: it throws `SIPParseError.wildcardContact`; `hasWildcardContact` tells it first.
    public func contacts() throws(SIPParseError) -> [SIPNameAddress] {
        try addresses("Contact")
    }

    /// Whether Contact is `*` (§10.2.2).
    public var hasWildcardContact: Bool { all("contact").contains { $0 == "*" } }

    /// Every `Route` or `Record-Route` value (the name given), lists split, top first.
    public func routes(_ name: String) throws(SIPParseError) -> [SIPNameAddress] {
        try addresses(name)
    }

    /// The media type of the body, lower case, without parameters: `application/sdp`.
    public var contentType: String? {
        guard let value = self["content-type"] else { return nil }
        let type = SIPScanner.trimmed(Array(value.utf8).prefix { $0 != .semicolon }).lowercased()
        return type.isEmpty ? nil : type
    }

    private func addresses(_ name: String) throws(SIPParseError) -> [SIPNameAddress] {
        var addresses: [SIPNameAddress] = []
        for value in all(name) {
            for element in SIPHeaderValues.split(value) {
                addresses.append(try SIPNameAddress(parsing: element, header: name))
            }
        }
        return addresses
    }

    /// The value of a header that may appear once.
    func single(_ name: String) throws(SIPParseError) -> String {
        let values = all(name)
        guard let first = values.first else { throw .missingHeader(name) }
        guard values.count == 1 else { throw .duplicateHeader(name) }
        return first
    }
}

extension Array where Element == SIPParameter {
    /// `;name=value;flag` as a header writes its parameters.
    var headerParameterText: String {
        var out = ""
        for parameter in self {
            out += ";" + parameter.name
            if let value = parameter.value { out += "=" + value }
        }
        return out
    }
}

// MARK: Scanning

/// A cursor over the UTF-8 bytes of one header value (folding already undone).
struct SIPScanner {
    let bytes: [UInt8]
    var index = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    var atEnd: Bool { index >= bytes.count }
    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// Skips SP and HTAB; returns how many.
    @discardableResult
    mutating func skipSpace() -> Int {
        let start = index
        while index < bytes.count, bytes[index] == .space || bytes[index] == .tab { index += 1 }
        return index - start
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        index += 1
        return true
    }

    mutating func take(while predicate: (UInt8) -> Bool) -> ArraySlice<UInt8> {
        let start = index
        while index < bytes.count, predicate(bytes[index]) { index += 1 }
        return bytes[start..<index]
    }

    /// One or more token characters (§25.1).
    mutating func token() -> String? {
        let token = take(while: \.isTokenCharacter)
        return token.isEmpty ? nil : String(decoding: token, as: UTF8.self)
    }

    /// A host: an IPv6 reference `[…]` or name/IPv4 characters.
    mutating func host() -> String? {
        if peek == .leftBracket {
            let start = index
            _ = take(while: { $0 != .rightBracket })
            guard consume(.rightBracket) else { return nil }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
        let host = take(while: \.isHostCharacter)
        return host.isEmpty ? nil : String(decoding: host, as: UTF8.self)
    }

    /// A quoted string at the cursor: the text as written (with quotes) and its content with escapes undone;
    /// `nil` if the quotes do not close.
    mutating func quotedString() -> (raw: String, unescaped: String)? {
        let start = index
        guard consume(.quote) else { return nil }
        var content: [UInt8] = []
        while index < bytes.count {
            let byte = bytes[index]
            if byte == .backslash {
                guard index + 1 < bytes.count else { return nil }
                content.append(bytes[index + 1])
                index += 2
                continue
            }
            index += 1
            if byte == .quote {
                return (String(decoding: bytes[start..<index], as: UTF8.self), String(decoding: content, as: UTF8.self))
            }
            content.append(byte)
        }
        return nil
    }

    /// `*( SEMI name [EQUAL value] )` to the end, with LWS around `;` and `=`; a value is a token, a host
    /// (IPv6 with or without brackets) or a quoted string, kept as written.
    mutating func parameters(header: String, value text: String) throws(SIPParseError) -> [SIPParameter] {
        var parameters: [SIPParameter] = []
        while true {
            skipSpace()
            if atEnd { return parameters }
            guard consume(.semicolon) else { throw .badHeaderValue(header, text, "has text where a ;parameter should be") }
            skipSpace()
            guard let name = token() else { throw .badHeaderValue(header, text, "has an empty parameter") }
            skipSpace()
            var value: String?
            if consume(.equals) {
                skipSpace()
                if peek == .quote {
                    guard let quoted = quotedString() else { throw .badHeaderValue(header, text, "has a parameter whose quotes do not close") }
                    value = quoted.raw
                } else {
                    let raw = take(while: { $0.isTokenCharacter || $0 == .colon || $0 == .leftBracket || $0 == .rightBracket })
                    guard !raw.isEmpty else { throw .badHeaderValue(header, text, "has a parameter \(name)= without a value") }
                    value = String(decoding: raw, as: UTF8.self)
                }
            }
            parameters.append(SIPParameter(name, value))
        }
    }

    /// The bytes as text without leading and trailing SP/HTAB.
    static func trimmed(_ bytes: some Collection<UInt8>) -> String {
        let array = Array(bytes)
        var start = 0
        var end = array.count
        while start < end, array[start] == .space || array[start] == .tab { start += 1 }
        while end > start, array[end - 1] == .space || array[end - 1] == .tab { end -= 1 }
        return String(decoding: array[start..<end], as: UTF8.self)
    }
}

extension UInt8 {
    static let tab: UInt8 = 0x09
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let space: UInt8 = 0x20
    static let quote: UInt8 = 0x22
    static let percent: UInt8 = 0x25
    static let asterisk: UInt8 = 0x2A
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let lessThan: UInt8 = 0x3C
    static let equals: UInt8 = 0x3D
    static let greaterThan: UInt8 = 0x3E
    static let question: UInt8 = 0x3F
    static let at: UInt8 = 0x40
    static let leftBracket: UInt8 = 0x5B
    static let backslash: UInt8 = 0x5C
    static let rightBracket: UInt8 = 0x5D

    var isDigit: Bool { self >= 0x30 && self <= 0x39 }
    var isAlphanumeric: Bool { isDigit || ((self | 0x20) >= 0x61 && (self | 0x20) <= 0x7A) }
    var isHexDigit: Bool { isDigit || ((self | 0x20) >= 0x61 && (self | 0x20) <= 0x66) }

    /// §25.1 token: alphanumerics and `-.!%*_+`'~`.
    var isTokenCharacter: Bool {
        if isAlphanumeric { return true }
        switch self {
        case 0x2D, 0x2E, 0x21, 0x25, 0x2A, 0x5F, 0x2B, 0x60, 0x27, 0x7E: return true
        default: return false
        }
    }

    /// A host name or IPv4 address: alphanumerics, `-`, `.` (and `_`, which some deployments use).
    var isHostCharacter: Bool { isAlphanumeric || self == 0x2D || self == 0x2E || self == 0x5F }

    /// §25.1 unreserved: alphanumerics and `-_.!~*'()`.
    var isURIUnreserved: Bool {
        if isAlphanumeric { return true }
        switch self {
        case 0x2D, 0x5F, 0x2E, 0x21, 0x7E, 0x2A, 0x27, 0x28, 0x29: return true
        default: return false
        }
    }
}
