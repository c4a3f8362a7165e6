import TOMLKit

/// The DC-09 accounts the centre's DC-09 port takes (`devicesim center --dc09-accounts FILE`): each account
/// (3 to 16 hex digits) reports for one of our device ids, so its events land on that device's cases, and
/// may have an AES key (then it must send encrypted):
/// ```toml
/// [accounts."1234"]
/// device = 17
/// key = "000102030405060708090a0b0c0d0e0f"   # optional: AES-128, -192 or -256 in hex
/// ```
/// An account is upper-cased (DC-09 hex digits); two accounts may not name one device.
public struct DC09Accounts: Sendable {
    public struct Account: Sendable {
        public var device: UInt32
        public var key: DC09Key?

        public init(device: UInt32, key: DC09Key? = nil) {
            self.device = device
            self.key = key
        }
    }

    /// By account, in upper-case hex.
    public let accounts: [String: Account]

    /// The account `name` names, in either case (hex digits).
    public func account(_ name: String) -> Account? { accounts[name.uppercased()] }

    /// - Throws: `DC09AccountsError` naming the account and what is wrong, for two accounts of one device.
    public init(_ accounts: [String: Account]) throws(DC09AccountsError) {
        var devices: [UInt32: String] = [:]
        var upper: [String: Account] = [:]
        for name in accounts.keys.sorted() {
            guard let account = accounts[name] else { continue }
            let normalised = name.uppercased()
            guard (3...16).contains(normalised.utf8.count), normalised.utf8.allSatisfy(DC09Frame.isUpperHexDigit) else {
                throw DC09AccountsError(account: name, "is not a DC-09 account: write 3 to 16 hex digits, e.g. [accounts.\"1234\"]")
            }
            guard upper[normalised] == nil else {
                throw DC09AccountsError(account: name, "is listed twice (accounts are hex: upper and lower case are the same)")
            }
            if let other = devices[account.device] {
                throw DC09AccountsError(
                    account: name, "names device \(account.device), as account \(other) does: give each account a device of its own")
            }
            devices[account.device] = normalised
            upper[normalised] = account
        }
        self.accounts = upper
    }

    /// Reads an accounts file (TOML, see the type).
    public init(toml text: String) throws(DC09AccountsError) {
        let document: TOMLTable
        do { document = try TOMLTable(string: text) } catch {
            throw DC09AccountsError(account: nil, "not valid TOML: \(error)")
        }
        guard let table = document["accounts"]?.table else {
            throw DC09AccountsError(account: nil, "has no [accounts.\"<account>\"] tables: write one per account, with device = <id> and an optional key = \"<hex>\"")
        }
        var accounts: [String: Account] = [:]
        for name in table.keys {
            guard let entry = table[name]?.table else {
                throw DC09AccountsError(account: name, "is not a table: write [accounts.\"\(name)\"] with device = <id>")
            }
            let unknown = Set(entry.keys).subtracting(["device", "key"])
            guard unknown.isEmpty else {
                throw DC09AccountsError(account: name, "has \(unknown.sorted().joined(separator: ", ")): an account has device and key only")
            }
            guard let value = entry["device"]?.int, let device = UInt32(exactly: value) else {
                throw DC09AccountsError(account: name, "needs device = <our device id, 0 to \(UInt32.max)>")
            }
            var key: DC09Key?
            if let field = entry["key"] {
                guard let hex = field.string else {
                    throw DC09AccountsError(account: name, "key is not a string: write key = \"<32, 48 or 64 hex digits>\"")
                }
                do {
                    key = try DC09Key(bytes: try KeyKind.dc09.parse(hex))
                } catch let error as KeyError {
                    throw DC09AccountsError(account: name, "key: \(error)")
                } catch {
                    throw DC09AccountsError(account: name, "key: \(error)")
                }
            }
            if accounts[name] != nil {
                throw DC09AccountsError(account: name, "is listed twice")
            }
            accounts[name] = Account(device: device, key: key)
        }
        try self.init(accounts)
    }

    /// The receiver's rules over these accounts: each account's key, the codes of `DC09EventCodes`.
    public func receiving(window: DC09TimeWindow = .init()) -> DC09Receiving {
        DC09Receiving(
            accounts: accounts.mapValues { DC09Receiving.Account(key: $0.key) }, window: window,
            takes: DC09ReceivedEvent.takes)
    }
}

/// Why an accounts file was refused: which account (when one) and what to write instead. Never holds a key.
public struct DC09AccountsError: Error, Hashable, Sendable, CustomStringConvertible {
    public var account: String?
    public var message: String

    public init(account: String?, _ message: String) {
        self.account = account
        self.message = message
    }

    public var description: String { account.map { "account \"\($0)\" \(message)" } ?? message }
}
