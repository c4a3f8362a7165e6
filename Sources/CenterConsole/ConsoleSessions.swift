import DeviceKit
import Synchronization

/// An operator logged in to the console: who, their role and language, and the token a state-changing
/// request must carry (CSRF, docs/console.md "Security").
struct ConsoleSession: Sendable, Equatable {
    var token: String
    var name: String
    var role: OperatorRole
    var language: ConsoleLanguage
    var csrf: String
    /// When it ends, on the console's monotonic clock.
    var expires: Duration
}

/// The sessions of logged-in operators, in memory (a restarted centre asks operators to log in again).
/// Tokens are 256 random bits from the system's generator; at most `limit` sessions are held, the oldest
/// going first when more log in.
final class ConsoleSessions: Sendable {
    let lifetime: Duration
    let limit: Int
    private let sessions = Mutex<[String: ConsoleSession]>([:])

    init(lifetime: Duration = .seconds(12 * 3600), limit: Int = 10_000) {
        self.lifetime = lifetime
        self.limit = max(1, limit)
    }

    func open(name: String, role: OperatorRole, language: ConsoleLanguage, now: Duration) -> ConsoleSession {
        let session = ConsoleSession(
            token: Self.randomToken(), name: name, role: role, language: language, csrf: Self.randomToken(),
            expires: now + lifetime)
        sessions.withLock { sessions in
            sessions = sessions.filter { $0.value.expires > now }
            if sessions.count >= limit, let oldest = sessions.min(by: { $0.value.expires < $1.value.expires }) {
                sessions[oldest.key] = nil
            }
            sessions[session.token] = session
        }
        return session
    }

    /// The session of `token`, if it is current.
    func session(_ token: String?, now: Duration) -> ConsoleSession? {
        guard let token else { return nil }
        return sessions.withLock { sessions in
            guard let session = sessions[token] else { return nil }
            guard session.expires > now else {
                sessions[token] = nil
                return nil
            }
            return session
        }
    }

    func close(_ token: String) {
        sessions.withLock { _ = $0.removeValue(forKey: token) }
    }

    /// Ends every session of `name` (the account was disabled).
    func closeAll(of name: String) {
        sessions.withLock { sessions in sessions = sessions.filter { $0.value.name != name } }
    }

    func setLanguage(_ language: ConsoleLanguage, token: String) {
        sessions.withLock { $0[token]?.language = language }
    }

    var count: Int { sessions.withLock { $0.count } }

    /// 32 random bytes, base64url without padding (43 characters: a valid cookie value).
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var text: [UInt8] = []
        var bits = 0
        var value = 0
        for byte in bytes {
            value = value << 8 | Int(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                text.append(alphabet[(value >> bits) & 63])
            }
        }
        if bits > 0 { text.append(alphabet[(value << (6 - bits)) & 63]) }
        return String(decoding: text, as: UTF8.self)
    }

    /// Compares two tokens in time that does not depend on where they differ.
    static func sameToken(_ a: String, _ b: String) -> Bool {
        let (x, y) = (Array(a.utf8), Array(b.utf8))
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for index in x.indices { difference |= x[index] ^ y[index] }
        return difference == 0
    }
}

/// Login attempts allowed per source address and failures per account (token buckets, pure: the caller
/// gives the time). An address may try 5 times at once, then once every 10 s; an account may fail 10 times
/// at once, then once every 30 s. At most `limit` addresses and accounts are tracked; full buckets are
/// forgotten first, since they restrict nothing.
struct LoginThrottle: Sendable {
    struct Limits: Sendable {
        var addressBurst: Double = 5
        var addressRate: Double = 0.1
        var accountBurst: Double = 10
        var accountRate: Double = 1.0 / 30
        var limit = 10_000
    }

    let limits: Limits
    private var addresses: [String: TokenBucket] = [:]
    private var accounts: [String: TokenBucket] = [:]

    init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Takes an attempt for `address`; `false` if it has none left.
    mutating func attempt(from address: String, now: Duration) -> Bool {
        if addresses[address] == nil { Self.trim(&addresses, limit: limits.limit, now: now) }
        var bucket = addresses[address] ?? TokenBucket(rate: limits.addressRate, burst: limits.addressBurst)
        defer { addresses[address] = bucket }
        return bucket.take(now: now)
    }

    /// Whether `account` may try now (it has failures left).
    mutating func accountMayTry(_ account: String, now: Duration) -> Bool {
        guard var bucket = accounts[account] else { return true }
        defer { accounts[account] = bucket }
        return bucket.hasToken(now: now)
    }

    /// A failed attempt on `account`.
    mutating func failed(_ account: String, now: Duration) {
        if accounts[account] == nil { Self.trim(&accounts, limit: limits.limit, now: now) }
        var bucket = accounts[account] ?? TokenBucket(rate: limits.accountRate, burst: limits.accountBurst)
        _ = bucket.take(now: now)
        accounts[account] = bucket
    }

    var trackedAddresses: Int { addresses.count }

    /// Seconds until `address` may try again (for `Retry-After`).
    var addressRetryAfter: Int { Int((1 / limits.addressRate).rounded(.up)) }
    var accountRetryAfter: Int { Int((1 / limits.accountRate).rounded(.up)) }

    private static func trim(_ buckets: inout [String: TokenBucket], limit: Int, now: Duration) {
        guard buckets.count >= limit else { return }
        buckets = buckets.filter { entry in
            var bucket = entry.value
            return !bucket.isFull(now: now)
        }
        if buckets.count >= limit, let any = buckets.keys.first { buckets[any] = nil }
    }
}

extension ConsoleServer {
    /// A password of 14 random letters and digits without look-alikes (no 0/O, 1/l/I), about 80 bits: for an
    /// account made for a run (`devicesim demo`), printed once.
    public static func makePassword() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        return String((0..<14).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
}
