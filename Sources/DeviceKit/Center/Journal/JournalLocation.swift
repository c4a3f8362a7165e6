import Foundation

/// Where the centre keeps its journal (`devicesim center --journal`): an SQLite file (a path), or a PostgreSQL
/// database (`postgres://USER@HOST[:PORT]/DATABASE`) that centre nodes on several hosts share.
public enum JournalLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(String)
    case postgres(PostgresJournalConfiguration)

    /// Reads `--journal`: a `postgres://` or `postgresql://` URL is a PostgreSQL database, anything else the
    /// path of an SQLite file. The password never comes from the URL (it would show in `ps` and in shell
    /// histories): it is the first line of `passwordFile`, else `PGPASSWORD` in `environment`, else none
    /// (a server that trusts the connection, or asks and is refused).
    public static func parse(
        _ text: String, passwordFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(JournalLocationError) -> JournalLocation {
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else {
            guard passwordFile == nil else { throw JournalLocationError(text: text, reason: .passwordFileWithoutServer) }
            return .sqlite(text)
        }
        var configuration = try PostgresJournalConfiguration(url: text)
        if let passwordFile {
            guard let contents = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw JournalLocationError(text: text, reason: .unreadablePasswordFile(passwordFile))
            }
            configuration.password = contents.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        } else {
            configuration.password = environment["PGPASSWORD"]
        }
        return .postgres(configuration)
    }

    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let configuration): configuration.description
        }
    }
}

/// A PostgreSQL database to keep the journal in.
public struct PostgresJournalConfiguration: Sendable, Hashable, CustomStringConvertible {
    public enum Endpoint: Sendable, Hashable {
        case tcp(host: String, port: Int)
        /// The directory of the server's Unix socket (`?host=/run/postgresql`, as libpq writes it).
        case unixSocket(directory: String, port: Int)
    }

    public var endpoint: Endpoint
    public var user: String
    public var database: String
    /// Not part of `description`, never logged.
    public var password: String?
    /// Encrypt the connection (`?sslmode=require`, the server's certificate checked against the system's
    /// trust store); `disable`, the default, for a server on loopback or a private network.
    public var requireTLS: Bool

    public init(endpoint: Endpoint, user: String, database: String, password: String? = nil, requireTLS: Bool = false) {
        self.endpoint = endpoint
        self.user = user
        self.database = database
        self.password = password
        self.requireTLS = requireTLS
    }

    /// Reads `postgres://USER@HOST[:PORT]/DATABASE[?host=/socket/dir][&sslmode=disable|require]`.
    init(url text: String) throws(JournalLocationError) {
        func fail(_ reason: JournalLocationError.Reason) -> JournalLocationError { JournalLocationError(text: text, reason: reason) }
        guard let url = URLComponents(string: text) else { throw fail(.notAURL) }
        guard url.password == nil else { throw fail(.passwordInURL) }
        guard let user = url.user, !user.isEmpty else { throw fail(.missingUser) }
        let database = String(url.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw fail(.missingDatabase) }
        var socketDirectory: String?
        var requireTLS = false
        for item in url.queryItems ?? [] {
            switch (item.name, item.value ?? "") {
            case ("host", let value) where value.hasPrefix("/"): socketDirectory = value
            case ("sslmode", "disable"): requireTLS = false
            case ("sslmode", "require"), ("sslmode", "verify-full"): requireTLS = true
            default: throw fail(.unknownParameter("\(item.name)=\(item.value ?? "")"))
            }
        }
        if let port = url.port, !(1...65535).contains(port) { throw fail(.badPort) }
        let port = url.port ?? 5432
        if let socketDirectory {
            endpoint = .unixSocket(directory: socketDirectory, port: port)
        } else {
            guard let host = url.host, !host.isEmpty else { throw fail(.missingHost) }
            endpoint = .tcp(host: host, port: port)
        }
        self.user = user
        self.database = database
        self.requireTLS = requireTLS
    }

    /// The URL without a password.
    public var description: String {
        let tls = requireTLS ? "sslmode=require" : nil
        switch endpoint {
        case .tcp(let host, let port):
            let host = host.contains(":") ? "[\(host)]" : host
            return "postgres://\(user)@\(host):\(port)/\(database)" + (tls.map { "?" + $0 } ?? "")
        case .unixSocket(let directory, let port):
            return "postgres://\(user)@:\(port)/\(database)?host=\(directory)" + (tls.map { "&" + $0 } ?? "")
        }
    }
}

/// `--journal` (or its password file) could not be read, said in words.
public struct JournalLocationError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case notAURL
        case passwordInURL
        case missingUser
        case missingHost
        case missingDatabase
        case badPort
        case unknownParameter(String)
        case unreadablePasswordFile(String)
        case passwordFileWithoutServer
    }

    public var text: String
    public var reason: Reason

    public var description: String {
        let form = "postgres://USER@HOST[:PORT]/DATABASE"
        switch reason {
        case .notAURL: return "--journal \(Self.withoutPassword(text)) is not a URL: write \(form)"
        case .passwordInURL:
            return "--journal must not hold the password (it would show in ps and shell histories): put it in a file given with --journal-password-file, or in PGPASSWORD"
        case .missingUser: return "--journal \(text) names no user: write \(form)"
        case .missingHost: return "--journal \(text) names no host: write \(form), or ?host=/socket/directory for a Unix socket"
        case .missingDatabase: return "--journal \(text) names no database: write \(form)"
        case .badPort: return "--journal \(text): the port must be 1 to 65535"
        case .unknownParameter(let parameter):
            return "--journal \(text): unknown parameter \(parameter); known are host=/socket/directory and sslmode=disable|require"
        case .unreadablePasswordFile(let path): return "cannot read the journal's password file \(path): give a readable file whose first line is the password"
        case .passwordFileWithoutServer: return "--journal-password-file is for a PostgreSQL journal (--journal postgres://…), and \(text) is a file"
        }
    }

    /// The text with anything between `//` and `@` after its first `:` taken out.
    static func withoutPassword(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@"),
            let colon = text[scheme.upperBound..<at].firstIndex(of: ":")
        else { return text }
        return String(text[..<colon]) + ":…" + String(text[at...])
    }
}
