import Crypto

/// Digest authentication for SIP (RFC 2617, RFC 7616, and RFC 8760 for SHA-256 in SIP): the challenge a
/// registrar or proxy sends (`WWW-Authenticate`/`Proxy-Authenticate`), the answer a user agent computes
/// (`Authorization`/`Proxy-Authorization`), and the check a server makes of it.
///
/// ```
///  HA1 = H(username:realm:password)                 (-sess: H(H(username:realm:password):nonce:cnonce))
///  HA2 = H(method:uri)                              (auth-int: H(method:uri:H(body)))
///  response = H(HA1:nonce:nc:cnonce:qop:HA2)        (no qop, RFC 2069: H(HA1:nonce:HA2))
/// ```
public struct SIPDigestChallenge: Hashable, Sendable, CustomStringConvertible {
    public enum Algorithm: String, Hashable, Sendable, CaseIterable {
        case md5 = "MD5"
        case md5Sess = "MD5-sess"
        case sha256 = "SHA-256"
        case sha256Sess = "SHA-256-sess"

        /// Parses the token case-insensitively; an algorithm we cannot compute (SHA-512-256, …) is `nil`.
        init?(token: String) {
            guard let known = Self.allCases.first(where: { $0.rawValue.equalsIgnoringASCIICase(token) }) else { return nil }
            self = known
        }

        var isSession: Bool { self == .md5Sess || self == .sha256Sess }

        /// Stronger is preferred when a 401 offers several challenges (RFC 8760 §2.4).
        var strength: Int {
            switch self {
            case .sha256: 4
            case .sha256Sess: 3
            case .md5: 2
            case .md5Sess: 1
            }
        }

        /// Lower-case hex of the hash of `text`.
        func hash(_ text: String) -> String { hash(Array(text.utf8)) }

        func hash(_ bytes: [UInt8]) -> String {
            switch self {
            case .md5, .md5Sess: Insecure.MD5.hash(data: bytes).hexString
            case .sha256, .sha256Sess: SHA256.hash(data: bytes).hexString
            }
        }
    }

    public var realm: String
    public var nonce: String
    public var opaque: String?
    /// MD5 when the challenge names none.
    public var algorithm: Algorithm
    /// The qop options offered (`auth`, `auth-int`), empty when none (RFC 2069 style).
    public var qop: [String]
    public var stale: Bool

    public init(realm: String, nonce: String, opaque: String? = nil, algorithm: Algorithm = .md5, qop: [String] = ["auth"], stale: Bool = false) {
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.algorithm = algorithm
        self.qop = qop
        self.stale = stale
    }

    /// Parses a `WWW-Authenticate`/`Proxy-Authenticate` value: `Digest realm="…", nonce="…", …`.
    public init(parsing headerValue: String) throws(SIPParseError) {
        func fail(_ reason: String) -> SIPParseError { .badChallenge(headerValue, reason) }
        guard let parameters = SIPDigestParameters(headerValue) else {
            throw fail("is not Digest followed by name=value parameters separated by commas")
        }
        guard let realm = parameters["realm"] else { throw fail("has no realm") }
        guard let nonce = parameters["nonce"] else { throw fail("has no nonce") }
        var algorithm = Algorithm.md5
        if let token = parameters["algorithm"] {
            guard let known = Algorithm(token: token) else { throw fail("names an algorithm we do not support (MD5, MD5-sess, SHA-256, SHA-256-sess)") }
            algorithm = known
        }
        self.realm = realm
        self.nonce = nonce
        self.opaque = parameters["opaque"]
        self.algorithm = algorithm
        self.qop = (parameters["qop"] ?? "").split(separator: ",").map { SIPScanner.trimmed(Array($0.utf8)) }.filter { !$0.isEmpty }
        self.stale = parameters["stale"].map { $0.equalsIgnoringASCIICase("true") } ?? false
    }

    /// The strongest challenge we can answer among the values of several `WWW-Authenticate` (or
    /// `Proxy-Authenticate`) fields, one challenge each; the first of equal strength wins. `nil` when none parses.
    public static func best(of values: [String]) -> SIPDigestChallenge? {
        var best: SIPDigestChallenge?
        for value in values {
            guard let challenge = try? SIPDigestChallenge(parsing: value) else { continue }
            if challenge.algorithm.strength > best?.algorithm.strength ?? 0 { best = challenge }
        }
        return best
    }

    public var description: String {
        var parts = ["realm=\(SIPHeaderValues.quoted(realm))", "nonce=\(SIPHeaderValues.quoted(nonce))"]
        if let opaque { parts.append("opaque=\(SIPHeaderValues.quoted(opaque))") }
        parts.append("algorithm=\(algorithm.rawValue)")
        if !qop.isEmpty { parts.append("qop=\(SIPHeaderValues.quoted(qop.joined(separator: ",")))") }
        if stale { parts.append("stale=true") }
        return "Digest " + parts.joined(separator: ", ")
    }

    /// The qop a client answers with: `auth` when offered, `auth-int` only when it is all that is offered,
    /// none when the challenge offers none (or none we know).
    var chosenQop: String? {
        if qop.contains("auth") { return "auth" }
        if qop.contains("auth-int") { return "auth-int" }
        return nil
    }
}

/// A user's digest credentials. The password never appears in a description or an error.
public struct SIPDigestCredentials: Hashable, Sendable, CustomStringConvertible {
    public var username: String
    public var password: String

    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    public var description: String { "SIPDigestCredentials(username: \(username), password: <hidden>)" }

    /// The `Authorization`/`Proxy-Authorization` value answering `challenge` for a request of `method` to
    /// `uri` (the Request-URI as written): `Digest username="…", realm="…", nonce="…", uri="…", response="…",
    /// algorithm=…, cnonce="…", qop=auth, nc=00000001, opaque="…"`. `cnonce` must be fresh and random for each
    /// nonce; `nonceCount` counts the requests sent with this nonce, from 1.
    public func authorization(
        for challenge: SIPDigestChallenge, method: SIPMethod, uri: String, body: [UInt8] = [], cnonce: String, nonceCount: UInt32
    ) -> String {
        let qop = challenge.chosenQop
        let nc = SIPDigestAuthorization.hex8(nonceCount)
        let response = SIPDigestAuthorization.response(
            algorithm: challenge.algorithm, username: username, realm: challenge.realm, password: password,
            nonce: challenge.nonce, cnonce: cnonce, nc: nc, qop: qop, method: method, uri: uri, body: body)
        var parts = [
            "username=\(SIPHeaderValues.quoted(username))", "realm=\(SIPHeaderValues.quoted(challenge.realm))",
            "nonce=\(SIPHeaderValues.quoted(challenge.nonce))", "uri=\(SIPHeaderValues.quoted(uri))",
            "response=\"\(response)\"", "algorithm=\(challenge.algorithm.rawValue)",
        ]
        if qop != nil || challenge.algorithm.isSession { parts.append("cnonce=\(SIPHeaderValues.quoted(cnonce))") }
        if let qop { parts += ["qop=\(qop)", "nc=\(nc)"] }
        if let opaque = challenge.opaque { parts.append("opaque=\(SIPHeaderValues.quoted(opaque))") }
        return "Digest " + parts.joined(separator: ", ")
    }
}

/// An `Authorization`/`Proxy-Authorization` value as a server receives it, to verify against the password it
/// holds. Checking the nonce (that it is one we issued, fresh, and that `nc` grows) is the caller's part.
public struct SIPDigestAuthorization: Hashable, Sendable {
    public var username: String
    public var realm: String
    public var nonce: String
    public var uri: String
    /// Lower-case hex, as received (lower-cased).
    public var response: String
    public var algorithm: SIPDigestChallenge.Algorithm
    public var cnonce: String?
    /// The nonce count, when a qop was used.
    public var nc: UInt32?
    public var qop: String?
    public var opaque: String?

    /// Parses `Digest username="…", realm="…", …`. Errors never quote the value: it carries a response.
    public init(parsing headerValue: String) throws(SIPParseError) {
        guard let parameters = SIPDigestParameters(headerValue) else {
            throw .badAuthorization("is not Digest followed by name=value parameters separated by commas")
        }
        func required(_ name: String) throws(SIPParseError) -> String {
            guard let value = parameters[name] else { throw .badAuthorization("has no \(name)") }
            return value
        }
        username = try required("username")
        realm = try required("realm")
        nonce = try required("nonce")
        uri = try required("uri")
        response = try required("response").lowercased()
        algorithm = .md5
        if let token = parameters["algorithm"] {
            guard let known = SIPDigestChallenge.Algorithm(token: token) else {
                throw .badAuthorization("names an algorithm we do not support (MD5, MD5-sess, SHA-256, SHA-256-sess)")
            }
            algorithm = known
        }
        cnonce = parameters["cnonce"]
        qop = parameters["qop"]
        opaque = parameters["opaque"]
        if let count = parameters["nc"] {
            guard count.utf8.count == 8, let value = UInt32(count, radix: 16) else { throw .badAuthorization("has an nc that is not 8 hex digits") }
            nc = value
        }
        if qop != nil, cnonce == nil || nc == nil { throw .badAuthorization("has a qop but no cnonce or nc") }
        if algorithm.isSession, cnonce == nil { throw .badAuthorization("uses a -sess algorithm but has no cnonce") }
    }

    /// Whether the response is right for `password` and a request of `method` (with `body`, for auth-int).
    /// The comparison takes the same time wherever the first wrong digit is.
    public func verify(password: String, method: SIPMethod, body: [UInt8] = []) -> Bool {
        if let qop, qop != "auth", qop != "auth-int" { return false }
        let expected = Self.response(
            algorithm: algorithm, username: username, realm: realm, password: password, nonce: nonce,
            cnonce: cnonce ?? "", nc: nc.map(Self.hex8) ?? "", qop: qop, method: method, uri: uri, body: body)
        let a = Array(expected.utf8)
        let b = Array(response.utf8)
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func response(
        algorithm: SIPDigestChallenge.Algorithm, username: String, realm: String, password: String, nonce: String,
        cnonce: String, nc: String, qop: String?, method: SIPMethod, uri: String, body: [UInt8]
    ) -> String {
        var ha1 = algorithm.hash("\(username):\(realm):\(password)")
        if algorithm.isSession { ha1 = algorithm.hash("\(ha1):\(nonce):\(cnonce)") }
        let ha2 = qop == "auth-int"
            ? algorithm.hash("\(method.rawValue):\(uri):\(algorithm.hash(body))")
            : algorithm.hash("\(method.rawValue):\(uri)")
        guard let qop else { return algorithm.hash("\(ha1):\(nonce):\(ha2)") }
        return algorithm.hash("\(ha1):\(nonce):\(nc):\(cnonce):\(qop):\(ha2)")
    }

    static func hex8(_ value: UInt32) -> String {
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}

/// The `name=value` parameters after `Digest` (RFC 7616 §3.3: comma-separated, values tokens or quoted
/// strings), names lower-cased, quoted values unescaped. `nil` when the scheme is not Digest or the list is
/// malformed.
struct SIPDigestParameters {
    private var values: [String: String] = [:]

    init?(_ headerValue: String) {
        var scanner = SIPScanner(headerValue)
        scanner.skipSpace()
        guard let scheme = scanner.token(), scheme.equalsIgnoringASCIICase("Digest"), scanner.skipSpace() > 0 else { return nil }
        while true {
            scanner.skipSpace()
            guard let name = scanner.token() else { return nil }
            scanner.skipSpace()
            guard scanner.consume(.equals) else { return nil }
            scanner.skipSpace()
            let value: String
            if scanner.peek == .quote {
                guard let quoted = scanner.quotedString() else { return nil }
                value = quoted.unescaped
            } else {
                let token = scanner.take(while: { $0.isTokenCharacter || $0 == .slash || $0 == .equals })
                guard !token.isEmpty else { return nil }
                value = String(decoding: token, as: UTF8.self)
            }
            let key = name.lowercased()
            // A parameter given twice is ambiguous: refuse rather than pick one.
            guard values[key] == nil else { return nil }
            values[key] = value
            scanner.skipSpace()
            if scanner.atEnd { return }
            guard scanner.consume(.comma) else { return nil }
        }
    }

    subscript(name: String) -> String? { values[name] }
}

extension Sequence where Element == UInt8 {
    fileprivate var hexString: String {
        var out = ""
        for byte in self {
            let hex = String(byte, radix: 16)
            if hex.count == 1 { out += "0" }
            out += hex
        }
        return out
    }
}
