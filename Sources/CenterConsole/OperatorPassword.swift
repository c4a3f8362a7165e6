import HummingbirdBcrypt

/// Operators' passwords: the policy a new one must meet, its bcrypt hash (cost 12) and the check at login.
///
/// Slow on purpose (about a quarter of a second a hash at cost 12): call it from a thread pool, never from
/// an event loop.
public enum OperatorPassword {
    /// bcrypt reads this many bytes of a password and ignores the rest.
    public static let maximumBytes = 72
    public static let minimumBytes = 8
    /// The work factor of stored hashes: 2^12 rounds.
    static let cost: UInt8 = 12

    /// The bcrypt hash to store for a new password, or why the password is refused.
    public static func hash(_ password: String) throws(OperatorPasswordError) -> String {
        try hash(password, cost: cost)
    }

    /// With another cost, so that tests stay fast.
    static func hash(_ password: String, cost: UInt8) throws(OperatorPasswordError) -> String {
        try check(password)
        return Bcrypt.hash(password, cost: cost)
    }

    /// Whether `password` is the one `hash` was made from. A password bcrypt would cut short (over 72 bytes)
    /// is never right: no stored password is that long, and its first 72 bytes must not open the account.
    public static func verify(_ password: String, hash: String) -> Bool {
        guard password.utf8.count <= maximumBytes, !password.utf8.contains(0) else { return false }
        return Bcrypt.verify(password, hash: hash)
    }

    /// Refuses a password outside the policy: 8 to 72 bytes of UTF-8, not only blanks, no NUL.
    public static func check(_ password: String) throws(OperatorPasswordError) {
        let bytes = password.utf8.count
        if bytes < minimumBytes { throw .tooShort(bytes: bytes) }
        if bytes > maximumBytes { throw .tooLong(bytes: bytes) }
        // bcrypt's C code reads up to the first NUL: the rest would not count.
        if password.utf8.contains(0) { throw .containsNUL }
        if password.allSatisfy(\.isWhitespace) { throw .blank }
    }
}

/// Why a new password is refused, in words for the person choosing it.
public enum OperatorPasswordError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooShort(bytes: Int)
    case tooLong(bytes: Int)
    case blank
    case containsNUL

    public var description: String {
        switch self {
        case .tooShort(let bytes):
            "the password is too short (\(bytes) bytes): use at least \(OperatorPassword.minimumBytes) characters"
        case .tooLong(let bytes):
            "the password is too long (\(bytes) bytes of UTF-8): bcrypt reads only the first \(OperatorPassword.maximumBytes), so use at most \(OperatorPassword.maximumBytes) bytes (72 letters of English, 24 Chinese characters)"
        case .blank:
            "the password is only spaces: use letters, digits or other characters"
        case .containsNUL:
            "the password contains a NUL character: leave it out"
        }
    }
}
