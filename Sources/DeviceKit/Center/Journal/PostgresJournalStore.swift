import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO

/// The journal on a PostgreSQL server (postgres-nio), shared by centre nodes on several hosts.
///
/// Same record, same rules as on SQLite (`CenterJournal` writes the same statements through `JournalSQL`);
/// what differs is how transactions hold:
/// - **Durable:** a write transaction returns only after `COMMIT` returned, and the server commits with
///   `synchronous_commit` as configured (on by default: flushed to its WAL; with a synchronous standby, there
///   too). The centre acknowledges nothing before that.
/// - **Held per device:** SQLite has one writer at a time; PostgreSQL runs several nodes' transactions at once
///   under READ COMMITTED. So a write first takes a transaction-scoped advisory lock on each device it names
///   (`journal_lock_devices`, in ascending order, so that two nodes' batches never deadlock): what it read of
///   a device ("is this alarm's case open?") still holds when it commits. Single-row decisions (an anchor
///   that only rises, a (device, id) row inserted once) are one statement each, atomic in both databases.
/// - **Waits are bounded:** a lock not had within `lockTimeout` fails the statement (`lock_timeout`), and a
///   server that does not answer within `lockTimeout` plus 5 s fails the call and drops the connection; the
///   next call connects again. Either way the batch throws and is answered `nak busy`.
/// - **Schema:** versioned migrations in `journal_migration`, applied in one transaction under an advisory
///   lock, so that nodes starting together migrate once.
///
/// Two connections: one for writes (the batcher's, one transaction at a time), one for reads (the console,
/// the restore at start), each behind a lock. Blocking: call it from a thread pool, never from an event loop.
final class PostgresJournalStore: JournalStore {
    let configuration: PostgresJournalConfiguration
    private let writer: PostgresLink
    private let reader: PostgresLink

    var dialect: JournalDialect { .postgres }

    /// - Parameter migrate: create or migrate the schema (not for a reader that must not write).
    init(configuration: PostgresJournalConfiguration, lockTimeout: Duration, migrate: Bool = true) throws {
        self.configuration = configuration
        let group = MultiThreadedEventLoopGroup.singleton
        writer = PostgresLink(configuration: configuration, group: group, lockTimeout: lockTimeout)
        reader = PostgresLink(configuration: configuration, group: group, lockTimeout: lockTimeout)
        if migrate { try writer.transaction { sql in try Self.migrate(sql) } }
    }

    func write<T>(locking devices: [UInt32], _ body: (any JournalSQL) throws -> T) throws -> T {
        try writer.transaction { sql in
            if !devices.isEmpty {
                let list = devices.sorted().map(String.init).joined(separator: ",")
                _ = try sql.query("SELECT journal_lock_devices(?::bigint[]) AS locked", [.text("{\(list)}")])
            }
            return try body(sql)
        }
    }

    func read<T>(_ body: (any JournalSQL) throws -> T) throws -> T {
        try reader.transaction(readOnly: true, body)
    }

    /// One statement on the writer's connection, as a transaction of its own (no `BEGIN`/`COMMIT` round trips):
    /// `journal_apply`, which takes its devices' locks itself.
    func writeOneStatement<T>(_ body: (any JournalSQL) throws -> T) throws -> T {
        try writer.transaction(autocommit: true, body)
    }

    func close() throws {
        writer.close()
        reader.close()
    }

    // MARK: Schema

    /// A key no device id takes (ids are 0…2³²−1): the migrations' advisory lock.
    private static let migrationLock: Int64 = -1

    /// Each migration once, in order; never edit one that shipped, add the next.
    static let migrations: [(name: String, statements: [String])] = [
        (
            "v1",
            [
                "CREATE TABLE device (id BIGINT PRIMARY KEY, anchor BIGINT NOT NULL, epoch BIGINT NOT NULL DEFAULT 0)",
                """
                CREATE TABLE message (
                    device BIGINT NOT NULL, id BIGINT NOT NULL, kind TEXT NOT NULL, ref BIGINT, json TEXT NOT NULL,
                    received_at BIGINT NOT NULL, digest BYTEA, note TEXT, PRIMARY KEY (device, id))
                """,
                "CREATE INDEX message_ref ON message (device, kind, ref)",
                "CREATE INDEX message_alarm_received ON message (received_at) WHERE kind = 'alarm'",
                """
                CREATE TABLE message_conflict (
                    device BIGINT NOT NULL, id BIGINT NOT NULL, reuse BIGINT NOT NULL, kind TEXT NOT NULL, json TEXT NOT NULL,
                    digest BYTEA NOT NULL, received_at BIGINT NOT NULL, PRIMARY KEY (device, id, reuse))
                """,
                """
                CREATE TABLE dispatch_case (
                    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, device BIGINT NOT NULL, alarm_id BIGINT NOT NULL,
                    reuse BIGINT NOT NULL DEFAULT 0, state BIGINT NOT NULL, opened_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL, UNIQUE (device, alarm_id, reuse))
                """,
                "CREATE INDEX dispatch_case_open ON dispatch_case (device, alarm_id) WHERE state < 4",  // 4: closed
                """
                CREATE TABLE case_update (
                    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, case_id BIGINT NOT NULL REFERENCES dispatch_case,
                    state BIGINT NOT NULL, at BIGINT NOT NULL, delivered_at BIGINT)
                """,
                "CREATE INDEX case_update_case ON case_update (case_id)",
                "CREATE INDEX case_update_undelivered ON case_update (id) WHERE delivered_at IS NULL",
                """
                CREATE TABLE supervision (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, device BIGINT NOT NULL, online BIGINT NOT NULL,
                    at BIGINT NOT NULL)
                """,
                "CREATE INDEX supervision_device ON supervision (device, id)",
                """
                CREATE TABLE dc09_message (
                    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, device BIGINT NOT NULL, account TEXT NOT NULL,
                    sequence TEXT NOT NULL, identity TEXT NOT NULL, received_at BIGINT NOT NULL)
                """,
                "CREATE INDEX dc09_message_identity ON dc09_message (device, identity, received_at)",
                """
                CREATE TABLE dc09_forward (
                    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, device BIGINT NOT NULL, message_id BIGINT NOT NULL,
                    sia TEXT NOT NULL, qualifier BIGINT NOT NULL, contact_id BIGINT NOT NULL, zone BIGINT NOT NULL,
                    meaning TEXT NOT NULL, queued_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE operator_account (
                    name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, language TEXT NOT NULL,
                    disabled BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE operator_action (
                    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, at BIGINT NOT NULL, operator TEXT NOT NULL,
                    action TEXT NOT NULL, case_id BIGINT, device BIGINT, note TEXT)
                """,
                "CREATE INDEX operator_action_case ON operator_action (case_id)",
                """
                CREATE TABLE resident (
                    device BIGINT PRIMARY KEY, name TEXT NOT NULL, address TEXT, contacts TEXT, notes TEXT,
                    updated_at BIGINT NOT NULL)
                """,
                // The per-device locks of a write, taken in ascending order whatever order they are given in.
                """
                CREATE FUNCTION journal_lock_devices(devices BIGINT[]) RETURNS INTEGER LANGUAGE plpgsql AS $$
                DECLARE device BIGINT; taken INTEGER := 0;
                BEGIN
                    FOR device IN SELECT DISTINCT d FROM unnest(devices) AS d ORDER BY d LOOP
                        PERFORM pg_advisory_xact_lock(device);
                        taken := taken + 1;
                    END LOOP;
                    RETURN taken;
                END $$
                """,
            ]
        ),
        ("v2-batch", [PostgresJournalBatch.function]),
        // Cases owned by a node, and the nodes' leases (CenterJournal+Lease.swift); journal_apply again, for owners.
        (
            "v3-case-owner",
            [
                "ALTER TABLE dispatch_case ADD COLUMN owner TEXT",
                "CREATE TABLE centre_node (node TEXT PRIMARY KEY, lease_until BIGINT NOT NULL)",
                "CREATE INDEX case_update_undelivered_case ON case_update (case_id) WHERE delivered_at IS NULL",
                PostgresJournalBatch.function,
            ]
        ),
        // The node that supervises each device (CenterJournal+Presence.swift); journal_apply again, to keep it.
        (
            "v4-device-presence",
            [
                "CREATE TABLE device_presence (device BIGINT PRIMARY KEY, node TEXT, online BIGINT NOT NULL, at BIGINT NOT NULL)",
                "CREATE INDEX device_presence_node ON device_presence (node) WHERE online = 1",
                """
                INSERT INTO device_presence (device, node, online, at)
                SELECT device, NULL, online, at FROM supervision WHERE id IN (SELECT MAX(id) FROM supervision GROUP BY device)
                """,
                PostgresJournalBatch.function,
            ]
        ),
        // Named leases of one holder at a time: the DC-09 forwarder's; the run that last renewed each node's
        // lease, to find two nodes under one name (CenterJournal+Lease.swift).
        (
            "v5-lease",
            [
                "CREATE TABLE journal_lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, lease_until BIGINT NOT NULL)",
                "ALTER TABLE centre_node ADD COLUMN run TEXT",
            ]
        ),
    ]

    private static func migrate(_ sql: any JournalSQL) throws {
        _ = try sql.query("SELECT pg_advisory_xact_lock(?) IS NULL AS locked", [.integer(migrationLock)])
        try sql.execute("CREATE TABLE IF NOT EXISTS journal_migration (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)", [])
        let applied = Set(try sql.query("SELECT name FROM journal_migration", []).map { try $0.string("name") })
        for migration in migrations where !applied.contains(migration.name) {
            for statement in migration.statements { try sql.execute(statement, []) }
            try sql.execute(
                "INSERT INTO journal_migration (name, applied_at) VALUES (?, ?)",
                [.text(migration.name), JournalValue(WireTime(Date().timeIntervalSince1970 * 1000))])
        }
    }
}

/// One connection to the server, made when first needed and again after it failed, used by one caller at a
/// time.
private final class PostgresLink: Sendable {
    private let configuration: PostgresJournalConfiguration
    private let group: any EventLoopGroup
    private let lockTimeout: Duration
    private let connection = NIOLockedValueBox<PostgresConnection?>(nil)
    private static let logger = Logger(label: "devicekit.journal.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    init(configuration: PostgresJournalConfiguration, group: any EventLoopGroup, lockTimeout: Duration) {
        self.configuration = configuration
        self.group = group
        self.lockTimeout = lockTimeout
    }

    /// How long one call may wait for the server before the connection is given up.
    private var answerTimeout: TimeAmount {
        TimeAmount(lockTimeout) + .seconds(5)
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws. A failure of the
    /// connection itself drops it, so that the next call connects again.
    func transaction<T>(readOnly: Bool = false, autocommit: Bool = false, _ body: (any JournalSQL) throws -> T) throws -> T {
        try connection.withLockedValue { held in
            let connection: PostgresConnection
            if let current = held, !current.isClosed {
                connection = current
            } else {
                held = nil
                connection = try connect()
                held = connection
            }
            let sql = PostgresJournalSQL(connection: connection, timeout: answerTimeout, logger: Self.logger)
            if autocommit {
                do { return try body(sql) } catch let error as PostgresJournalError where error.reason == .timeout {
                    held = nil
                    throw error
                }
            }
            do {
                try sql.execute(readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", [])
                let result = try body(sql)
                try sql.execute("COMMIT", [])
                return result
            } catch {
                if (try? sql.execute("ROLLBACK", [])) == nil {
                    Self.close(connection)
                    held = nil
                }
                throw error
            }
        }
    }

    private func connect() throws -> PostgresConnection {
        var tls = PostgresConnection.Configuration.TLS.disable
        if configuration.requireTLS {
            do {
                tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            } catch {
                throw PostgresJournalError(location: configuration.description, reason: .connect("TLS: \(error)"))
            }
        }
        var settings: PostgresConnection.Configuration
        switch configuration.endpoint {
        case .tcp(let host, let port):
            settings = .init(host: host, port: port, username: configuration.user, password: configuration.password, database: configuration.database, tls: tls)
        case .unixSocket(let directory, let port):
            settings = .init(
                unixSocketPath: "\(directory)/.s.PGSQL.\(port)", username: configuration.user, password: configuration.password,
                database: configuration.database)
        }
        settings.options.connectTimeout = .seconds(5)
        let loop = group.next()
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection.connect(on: loop, configuration: settings, id: 1, logger: Self.logger).wait()
        } catch {
            throw PostgresJournalError(location: configuration.description, reason: .connect(PostgresJournalError.words(error)))
        }
        let sql = PostgresJournalSQL(connection: connection, timeout: answerTimeout, logger: Self.logger)
        do {
            // Lock waits (a device another node holds) end in an error, never in a batch that waits for ever.
            _ = try sql.execute("SET lock_timeout = \(max(1, lockTimeout.milliseconds))", [])
        } catch {
            Self.close(connection)
            throw error
        }
        return connection
    }

    func close() {
        connection.withLockedValue { held in
            _ = try? held?.close().wait()
            held = nil
        }
    }

    deinit {
        if let held = connection.withLockedValue({ $0 }) { Self.close(held) }
    }

    /// Closes `connection` without waiting, keeping it until it is closed (postgres-nio asserts that a
    /// connection is closed before it goes).
    static func close(_ connection: PostgresConnection) {
        let closing: EventLoopFuture<Void> = connection.close()
        closing.whenComplete { _ in withExtendedLifetime(connection) {} }
    }
}

/// `JournalSQL` on a PostgreSQL connection: `?` becomes `$1`, `$2`, …; each call waits for its answer at most
/// `timeout`, then closes the connection (an answer that comes later must not be read as the next one's).
private struct PostgresJournalSQL: JournalSQL {
    let connection: PostgresConnection
    let timeout: TimeAmount
    let logger: Logger

    var dialect: JournalDialect { .postgres }

    func query(_ sql: String, _ arguments: [JournalValue]) throws -> [JournalRow] {
        try run(sql, arguments).rows.map { row in
            var columns: [String] = []
            var values: [JournalValue] = []
            for cell in row {
                columns.append(cell.columnName)
                values.append(try Self.value(cell))
            }
            return JournalRow(columns: columns, values: values)
        }
    }

    func execute(_ sql: String, _ arguments: [JournalValue]) throws -> Int {
        try run(sql, arguments).metadata.rows ?? 0
    }

    private func run(_ sql: String, _ arguments: [JournalValue]) throws -> PostgresQueryResult {
        var bindings = PostgresBindings(capacity: arguments.count)
        for argument in arguments {
            switch argument {
            case .null: bindings.appendNull()
            case .integer(let integer): bindings.append(integer)
            case .text(let text): bindings.append(text)
            case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
            }
        }
        let query = PostgresQuery(unsafeSQL: Self.numbered(sql), binds: bindings)
        let future = connection.query(query, logger: logger)
        let promise = future.eventLoop.makePromise(of: PostgresQueryResult.self)
        let timer = future.eventLoop.scheduleTask(in: timeout) {
            promise.fail(PostgresJournalError(location: "", reason: .timeout))
        }
        future.whenComplete { result in
            timer.cancel()
            promise.completeWith(result)
        }
        do {
            return try promise.futureResult.wait()
        } catch let error as PostgresJournalError {
            PostgresLink.close(connection)
            throw error
        } catch {
            throw PostgresJournalError(location: "", reason: .query(PostgresJournalError.words(error)))
        }
    }

    /// `?` → `$n`, outside quoted text.
    static func numbered(_ sql: String) -> String {
        var result = ""
        result.reserveCapacity(sql.utf8.count + 16)
        var number = 0
        var quoted = false
        for character in sql {
            if character == "'" { quoted.toggle() }
            if character == "?", !quoted {
                number += 1
                result += "$\(number)"
            } else {
                result.append(character)
            }
        }
        return result
    }

    private static func value(_ cell: PostgresCell) throws -> JournalValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return .integer(try cell.decode(Int64.self))
        case .bool: return .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .text, .varchar, .name, .bpchar: return .text(try cell.decode(String.self))
        case .bytea:
            var buffer = try cell.decode(ByteBuffer.self)
            return .bytes(buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .void: return .null
        default: throw JournalReadError(column: cell.columnName, found: "a value of PostgreSQL type \(cell.dataType)")
        }
    }
}

/// The PostgreSQL journal failed, said in words: the server could not be reached or refused the login, did
/// not answer in time, or refused a statement.
public struct PostgresJournalError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        case connect(String)
        case timeout
        case query(String)
    }

    public var location: String
    public var reason: Reason

    public var description: String {
        let journal = location.isEmpty ? "the PostgreSQL journal" : "the PostgreSQL journal \(location)"
        switch reason {
        case .connect(let why): return "cannot connect to \(journal): \(why)"
        case .timeout: return "\(journal) did not answer in time; the connection is dropped and made again on the next write"
        case .query(let why): return "\(journal) refused a statement: \(why)"
        }
    }

    /// What the server or the connection said, without the statement's bound values.
    static func words(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                return message + state
            }
            if let underlying = error.underlying { return "\(error.code): \(underlying)" }
            return "\(error.code)"
        }
        return "\(error)"
    }
}
