import Foundation

/// One alarm receiving centre the centre forwards its case events to over SIA DC-09, as `--forward` names it:
///
/// ```
/// dc09://HOST:PORT?account=HEX&key=HEX|key-file=PATH&transport=tcp|udp&format=sia|cid&receiver=HEX&line=HEX&window=N
/// ```
/// Every parameter is optional. Without `account`, each device reports as an account of its own, its device
/// id in eight hex digits; with one, every device reports under it and the SIA-DCS data names the device as
/// its user (`Nid<device>/ri1/QA001`). Contact ID has no field for that (docs/dc09.md, "The centre as a
/// gateway"), so `format=cid` goes without `account`. A `key` (hex, 16, 24 or 32 bytes: AES-128/192/256)
/// encrypts every frame; `key-file` names a file holding it, which the caller reads (`keyFile`). `window`: frames
/// in flight at once (the sender's default, 1, unless given): pysiaalarm's TCP server, like many receivers, reads
/// one frame per read and loses a second that came in the same read, so pipelining is for receivers that take it.
public struct DC09ForwardTarget: Sendable {
    public enum Transport: String, Hashable, Sendable { case tcp, udp }

    public var host: String
    public var port: Int
    /// One account for every device; nil: each device its own (its id in hex).
    public var account: String?
    public var key: DC09Key?
    /// A file holding the key in hex, still to be read (`key` is nil until then).
    public var keyFile: String?
    public var transport: Transport
    public var format: DC09Frame.ID
    public var receiver: String
    public var line: String
    /// Frames in flight at once to this receiver; nil: `DC09ForwardMachine.Parameters.window`.
    public var window: Int?

    public init(
        host: String, port: Int, account: String? = nil, key: DC09Key? = nil, transport: Transport = .tcp,
        format: DC09Frame.ID = .siaDCS, receiver: String = "0", line: String = "0"
    ) {
        self.host = host
        self.port = port
        self.account = account
        self.key = key
        self.transport = transport
        self.format = format
        self.receiver = receiver
        self.line = line
    }

    /// The account `device`'s events go under.
    public func account(of device: UInt32) -> String {
        account ?? Self.deviceAccount(device)
    }

    /// A device's own account: its id in eight upper-case hex digits.
    public static func deviceAccount(_ device: UInt32) -> String {
        let digits = String(device, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// The target as a person reads it, without its key: `dc09://127.0.0.1:12345 (tcp, sia, encrypted)`.
    public var description: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "dc09://\(host):\(port) (\(transport.rawValue), \(format == .contactID ? "cid" : "sia")\(key != nil || keyFile != nil ? ", encrypted" : ""))"
    }

    /// Reads a `--forward` URL; throws a `DC09ForwardURLError` that says what was wrong.
    public init(url text: String) throws(DC09ForwardURLError) {
        func fail(_ reason: DC09ForwardURLError.Reason) -> DC09ForwardURLError { DC09ForwardURLError(reason: reason) }
        guard text.hasPrefix("dc09://") else { throw fail(.scheme) }
        guard let components = URLComponents(string: text) else { throw fail(.notAURL) }
        guard let host = components.host, !host.isEmpty else { throw fail(.noHost) }
        guard let port = components.port else { throw fail(.noPort) }
        guard (1...65535).contains(port) else { throw fail(.port(port)) }
        guard components.path.isEmpty || components.path == "/", components.user == nil, components.fragment == nil else {
            throw fail(.extra)
        }
        self.init(host: host, port: port)
        var seen: Set<String> = []
        for item in components.queryItems ?? [] {
            guard seen.insert(item.name).inserted else { throw fail(.repeated(item.name)) }
            guard let value = item.value, !value.isEmpty else { throw fail(.empty(item.name)) }
            switch item.name {
            case "account":
                guard Self.isHex(value, 3...16) else { throw fail(.account) }
                account = value.uppercased()
            case "key":
                do { key = try DC09Key(bytes: try KeyKind.dc09.parse(value)) } catch { throw fail(.key("\(error)")) }
            case "key-file":
                keyFile = value
            case "transport":
                guard let given = Transport(rawValue: value) else { throw fail(.transport(value)) }
                transport = given
            case "format":
                switch value {
                case "sia": format = .siaDCS
                case "cid": format = .contactID
                default: throw fail(.format(value))
                }
            case "receiver":
                guard Self.isHex(value, 1...6) else { throw fail(.number("receiver")) }
                receiver = value.uppercased()
            case "line":
                guard Self.isHex(value, 1...6) else { throw fail(.number("line")) }
                line = value.uppercased()
            case "window":
                guard let given = Int(value), (1...64).contains(given) else { throw fail(.window(value)) }
                window = given
            default:
                throw fail(.unknownParameter(item.name))
            }
        }
        if seen.contains("key"), seen.contains("key-file") { throw fail(.twoKeys) }
        if format == .contactID, account != nil { throw fail(.contactIDWithAccount) }
    }

    private static func isHex(_ text: String, _ counts: ClosedRange<Int>) -> Bool {
        counts.contains(text.count) && text.allSatisfy { $0.isASCII && $0.isHexDigit }
    }
}

/// A `--forward` URL that cannot be used, in words that say what to write instead. Never holds the key.
public struct DC09ForwardURLError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case scheme, notAURL, noHost, noPort, port(Int), extra, repeated(String), empty(String), account, key(String)
        case transport(String), format(String), number(String), unknownParameter(String), twoKeys, contactIDWithAccount
        case tooMany, window(String)
    }

    public var reason: Reason

    public init(reason: Reason) { self.reason = reason }

    public var description: String {
        let form = "dc09://HOST:PORT?account=HEX&key=HEX"
        switch reason {
        case .scheme: return "a forward target begins with dc09://, e.g. \(form)"
        case .notAURL: return "the forward target is not a URL: write it as \(form)"
        case .noHost: return "the forward target names no host: write it as \(form)"
        case .noPort: return "the forward target names no port: write it as \(form) (DC-09 has no default port)"
        case .port(let port): return "the forward target's port \(port) is not from 1 to 65535"
        case .extra: return "the forward target has a path, user or fragment; it is only \(form)"
        case .repeated(let name): return "the forward target gives \(name)= twice: give it once"
        case .empty(let name): return "the forward target's \(name)= is empty: give a value or leave it out"
        case .account: return "the forward target's account= is not 3 to 16 hex digits (e.g. account=1234)"
        case .key(let why): return "the forward target's key=: \(why)"
        case .transport(let value): return "the forward target's transport=\(value) is neither tcp nor udp"
        case .format(let value): return "the forward target's format=\(value) is neither sia (SIA-DCS) nor cid (Contact ID)"
        case .number(let name): return "the forward target's \(name)= is not 1 to 6 hex digits (e.g. \(name)=1)"
        case .unknownParameter(let name):
            return "the forward target's parameter \(name)= is unknown (known: account, key, key-file, transport, format, receiver, line, window)"
        case .twoKeys: return "the forward target gives both key= and key-file=: give one"
        case .contactIDWithAccount:
            return "format=cid cannot tell devices apart under one account (Contact ID has no field for the device): leave out account= so each device reports as its own account (its id in hex), or use format=sia"
        case .window(let value): return "the forward target's window=\(value) is not a number of frames in flight from 1 to 64"
        case .tooMany: return "--forward is given more than twice: the first is the primary receiver, the second its backup"
        }
    }
}
