import Foundation
import Synchronization
import Testing

@testable import DeviceKit

/// A throwaway PostgreSQL cluster (tools/pg_cluster.sh) on a free loopback port: password (SCRAM) login, the
/// server run as the `postgres` user when the tests run as root. `shared` is started once per test process
/// and stopped when it exits; a test that restarts or kills its server starts one of its own (`start()`).
/// Clusters of test processes that died without stopping theirs are removed at the next start.
///
/// PostgreSQL is installed by `make test` (`make pg-deps`); without it the tests that need it fail and say so.
final class PostgresTestCluster: Sendable {
    let directory: String
    let port: Int
    let user: String
    let password: String
    private let databases = Mutex(0)

    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..")
        .standardized.path
    private static let script = root + "/tools/pg_cluster.sh"
    private static let prefix = "/tmp/dkpg-"
    private static let started = Mutex<[String]>([])

    /// The process's cluster, started at first use.
    static var shared: PostgresTestCluster {
        get throws { try sharedCluster.get() }
    }

    private static let sharedCluster: Result<PostgresTestCluster, any Error> = Result { try start() }

    /// A cluster of the caller's own; `stop()` it.
    static func start() throws -> PostgresTestCluster {
        removeAbandoned()
        let pid = ProcessInfo.processInfo.processIdentifier
        let directory = prefix + "\(pid)-\(UUID().uuidString.prefix(8))"
        let output = try run([script, "start", directory])
        var values: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        guard let port = values["PGPORT"].flatMap(Int.init), let user = values["PGUSER"], let password = values["PGPASSWORD"] else {
            throw ClusterError(description: "tools/pg_cluster.sh start printed no PGPORT, PGUSER, PGPASSWORD: \(output)")
        }
        let isFirst = started.withLock { list in
            list.append(directory)
            return list.count == 1
        }
        if isFirst { atexit { PostgresTestCluster.stopAll() } }
        return PostgresTestCluster(directory: directory, port: port, user: user, password: password)
    }

    private init(directory: String, port: Int, user: String, password: String) {
        self.directory = directory
        self.port = port
        self.user = user
        self.password = password
    }

    /// A new, empty database of this cluster, as the journal is given one.
    func newDatabase() throws -> PostgresJournalConfiguration {
        let name = "journal_\(databases.withLock { count in count += 1; return count })"
        _ = try Self.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", "devicekit",
             "-c", "CREATE DATABASE \(name)"],
            environment: ["PGPASSWORD": password])
        return configuration(database: name)
    }

    func configuration(database: String) -> PostgresJournalConfiguration {
        PostgresJournalConfiguration(endpoint: .tcp(host: "127.0.0.1", port: port), user: user, database: database, password: password)
    }

    /// Runs `statement` in `database` with psql.
    func psql(_ statement: String, database: String) throws -> String {
        try Self.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", database,
             "-c", statement],
            environment: ["PGPASSWORD": password])
    }

    func restart() throws { _ = try Self.run([Self.script, "restart", directory]) }
    func kill() throws { _ = try Self.run([Self.script, "kill", directory]) }

    func stop() {
        _ = try? Self.run([Self.script, "stop", directory])
        Self.started.withLock { $0.removeAll { $0 == directory } }
    }

    private static func stopAll() {
        for directory in started.withLock({ $0 }) { _ = try? run([script, "stop", directory]) }
    }

    /// Clusters whose test process is gone.
    private static func removeAbandoned() {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/tmp") else { return }
        for name in names where name.hasPrefix("dkpg-") {
            guard let pid = Int32(name.dropFirst(5).prefix(while: \.isNumber)), Glibc.kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? run([script, "stop", "/tmp/" + name])
        }
    }

    /// Runs `arguments` (found on PATH) to its end: its standard output, or an error with what it said.
    /// posix_spawn and waitpid rather than Foundation's Process, which here at times never saw the script end.
    @discardableResult
    private static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let base = NSTemporaryDirectory() + "pg-cluster-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: base + ".out")
            try? FileManager.default.removeItem(atPath: base + ".err")
        }
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, base + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, base + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
        // Through bash, which closes every other descriptor of this process's first: the server outlives the
        // call, and a test's socket or pseudo-terminal held open by it stays bound, or never hangs up (seen:
        // "address already in use", a serial port whose hang-up never came). (glibc's addclosefrom_np is not
        // visible to Swift.)
        let closing = #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null; done; exec "$@""#
        let command = ["/bin/bash", "-c", closing, "bash"] + arguments
        var pid: pid_t = 0
        let status = withCStrings(command) { argv in
            withCStrings(variables) { envp in posix_spawn(&pid, "/bin/bash", &actions, nil, argv, envp) }
        }
        guard status == 0 else { throw ClusterError(description: "cannot run \(arguments[0]): \(String(cString: strerror(status)))") }
        var exit: Int32 = 0
        while waitpid(pid, &exit, 0) < 0, errno == EINTR {}
        let output = (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? ""
        let errors = (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? ""
        guard exit == 0 else {
            throw ClusterError(description: "\(arguments.prefix(2).joined(separator: " ")) failed (status \(exit)): \(errors)\(output)")
        }
        return output
    }

    private static func withCStrings<T>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> T) -> T {
        var pointers = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return body(pointers)
    }

    struct ClusterError: Error, CustomStringConvertible {
        var description: String
    }
}

/// The journal's two backends, for the suites that hold both to the same promises.
enum JournalBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// A new, empty journal's location: a file in a fresh directory, or a fresh database of the shared cluster.
    func newLocation() throws -> JournalLocation {
        switch self {
        case .sqlite: .sqlite(temporaryJournal())
        case .postgres: .postgres(try PostgresTestCluster.shared.newDatabase())
        }
    }

    /// A new, empty journal.
    func newJournal(forwardsDC09: Bool = false) throws -> CenterJournal {
        try CenterJournal(try newLocation(), forwardsDC09: forwardsDC09)
    }
}

/// Runs `body` on a thread of its own and waits for it without holding one of Swift concurrency's threads:
/// for the tests' blocking work against PostgreSQL (round trips, psql, pg_ctl). There are only as many of those
/// threads as cores (2 here), and a test that blocks one for seconds slows every other test's timers and
/// polls (a full run failed in unrelated tests so).
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
