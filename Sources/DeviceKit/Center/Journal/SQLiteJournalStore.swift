import Foundation
import GRDB

/// The journal in an SQLite file (the default: no server): WAL mode with `synchronous = FULL`, so that a write
/// that returned survives a power cut, and the centre acknowledges nothing before that.
///
/// Several processes of one machine may share the file (`devicesim center --workers N`). Writes take the write
/// lock at `BEGIN IMMEDIATE` and wait up to `busyTimeout` for another process's transaction; one that still
/// cannot get it throws, like any failed write, so the batch is answered `nak busy` and never dropped in
/// silence. Before that, writers take `JournalWriterLock` (a `flock` on the file `<journal>-writer`), so that
/// the lock passes between processes without SQLite's polling sleeps. One writer at a time holds the whole
/// file, so the per-device locks `write(locking:)` names are implied.
final class SQLiteJournalStore: JournalStore {
    let path: String
    let database: DatabaseQueue
    private let writerLock: JournalWriterLock

    var dialect: JournalDialect { .sqlite }

    /// Opening fails with a `JournalOpenError` that says why in words.
    init(path: String, busyTimeout: Duration) throws {
        self.path = path
        try JournalOpenError.checkDirectory(of: path)
        do { writerLock = try JournalWriterLock(journal: path) } catch let error as JournalLockError {
            throw JournalOpenError(path: path, errno: error.errno)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout.seconds)
        configuration.prepareDatabase { db in
            // Set here rather than with `journalMode = .wal`: GRDB's WAL set-up lowers `synchronous` to NORMAL,
            // which may lose the last commits on power loss, and an acknowledged alarm must never be lost.
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
            guard mode == "wal" else { throw DatabaseError(message: "could not set WAL mode on the journal") }
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
        } catch let error as DatabaseError {
            throw JournalOpenError(path: path, database: error)
        }
        do {
            try Self.migrator.migrate(database)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_NOTADB {
            throw JournalOpenError(path: path, database: error)
        } catch {
            // GRDB checks which migrations are applied outside their transaction: two processes that open a new
            // file at once may both try `v1`, and the second fails on tables that now exist. Checked again, it
            // is applied. (`devicesim center --workers` opens the journal in the parent first, so this is rare.)
            try Self.migrator.migrate(database)
        }
    }

    /// A write transaction that takes SQLite's write lock at `BEGIN IMMEDIATE`, waiting for another process
    /// up to the busy timeout. A deferred one would read first and could then fail to upgrade with
    /// `SQLITE_BUSY` at once, without waiting, when another process wrote in between. The writer lock is taken
    /// first, so that processes sharing the journal queue for it in the kernel instead of SQLite's sleeps.
    func write<T>(locking devices: [UInt32], _ body: (any JournalSQL) throws -> T) throws -> T {
        try writerLock.withLock {
            try database.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(SQLiteJournalSQL(db: db))
                    return .commit
                }
                guard let result else { throw DatabaseError(message: "a journal transaction returned nothing") }
                return result
            }
        }
    }

    func read<T>(_ body: (any JournalSQL) throws -> T) throws -> T {
        try database.read { db in try body(SQLiteJournalSQL(db: db)) }
    }

    func close() throws { try database.close() }

    /// The `synchronous` pragma in force (2 is FULL).
    func synchronousMode() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Runs `body` on the file at `path` opened read-only: no migration, no pragma, nothing written.
    static func readOnly<T>(path: String, _ body: (any JournalSQL) throws -> T) throws -> T {
        var configuration = Configuration()
        configuration.readonly = true
        let database = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? database.close() }
        return try database.read { db in try body(SQLiteJournalSQL(db: db)) }
    }

    // MARK: Schema

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device (id INTEGER PRIMARY KEY, anchor INTEGER NOT NULL);
                    CREATE TABLE message (
                        device INTEGER NOT NULL, id INTEGER NOT NULL, kind TEXT NOT NULL, ref INTEGER,
                        json TEXT NOT NULL, received_at INTEGER NOT NULL, PRIMARY KEY (device, id)) WITHOUT ROWID;
                    CREATE INDEX message_ref ON message (device, kind, ref);
                    CREATE TABLE dispatch_case (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, device INTEGER NOT NULL, alarm_id INTEGER NOT NULL,
                        state INTEGER NOT NULL, opened_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
                        UNIQUE (device, alarm_id));
                    CREATE TABLE case_update (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, case_id INTEGER NOT NULL REFERENCES dispatch_case,
                        state INTEGER NOT NULL, at INTEGER NOT NULL, delivered_at INTEGER);
                    CREATE TABLE supervision (device INTEGER NOT NULL, online INTEGER NOT NULL, at INTEGER NOT NULL);
                    """)
        }
        // Key epochs beside anchors; a digest of each message's identity, and a note (an alarm's defects);
        // messages that reuse an id for other content; cases of a reused alarm id beside the first.
        migrator.registerMigration("v2", foreignKeyChecks: .deferred) { db in
            try db.execute(
                sql: """
                    ALTER TABLE device ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE message ADD COLUMN digest BLOB;
                    ALTER TABLE message ADD COLUMN note TEXT;
                    CREATE TABLE message_conflict (
                        device INTEGER NOT NULL, id INTEGER NOT NULL, reuse INTEGER NOT NULL, kind TEXT NOT NULL,
                        json TEXT NOT NULL, digest BLOB NOT NULL, received_at INTEGER NOT NULL,
                        PRIMARY KEY (device, id, reuse)) WITHOUT ROWID;
                    CREATE TABLE dispatch_case_v2 (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, device INTEGER NOT NULL, alarm_id INTEGER NOT NULL,
                        reuse INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL, opened_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL, UNIQUE (device, alarm_id, reuse));
                    INSERT INTO dispatch_case_v2 (id, device, alarm_id, reuse, state, opened_at, updated_at)
                        SELECT id, device, alarm_id, 0, state, opened_at, updated_at FROM dispatch_case;
                    DROP TABLE dispatch_case;
                    ALTER TABLE dispatch_case_v2 RENAME TO dispatch_case;
                    """)
        }
        // Events received on the DC-09 port (CenterJournal+DC09.swift).
        migrator.registerMigration("dc09-receiver") { db in
            try db.execute(
                sql: """
                    CREATE TABLE dc09_message (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, device INTEGER NOT NULL, account TEXT NOT NULL,
                        sequence TEXT NOT NULL, identity TEXT NOT NULL, received_at INTEGER NOT NULL);
                    CREATE INDEX dc09_message_identity ON dc09_message (device, identity, received_at);
                    """)
        }
        // The queue for the DC-09 receivers of `--forward` (CenterJournal+DC09Forward.swift).
        migrator.registerMigration("v3-dc09-forward") { db in
            try db.execute(
                sql: """
                    CREATE TABLE dc09_forward (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, device INTEGER NOT NULL, message_id INTEGER NOT NULL,
                        sia TEXT NOT NULL, qualifier INTEGER NOT NULL, contact_id INTEGER NOT NULL, zone INTEGER NOT NULL,
                        meaning TEXT NOT NULL, queued_at INTEGER NOT NULL);
                    """)
        }
        // The operators' console (CenterJournal+Console.swift).
        migrator.registerMigration("v4-console") { db in
            try db.execute(
                sql: """
                    CREATE TABLE operator_account (
                        name TEXT PRIMARY KEY, hash TEXT NOT NULL, role TEXT NOT NULL, language TEXT NOT NULL,
                        disabled INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL);
                    CREATE TABLE operator_action (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, operator TEXT NOT NULL,
                        action TEXT NOT NULL, case_id INTEGER, device INTEGER, note TEXT);
                    CREATE INDEX operator_action_case ON operator_action (case_id);
                    CREATE TABLE resident (
                        device INTEGER PRIMARY KEY, name TEXT NOT NULL, address TEXT, contacts TEXT, notes TEXT,
                        updated_at INTEGER NOT NULL);
                    """)
        }
        // Cases owned by a node, and the nodes' leases (CenterJournal+Lease.swift).
        migrator.registerMigration("v5-case-owner") { db in
            try db.execute(
                sql: """
                    ALTER TABLE dispatch_case ADD COLUMN owner TEXT;
                    CREATE TABLE centre_node (node TEXT PRIMARY KEY, lease_until INTEGER NOT NULL);
                    CREATE INDEX dispatch_case_open ON dispatch_case (state) WHERE state < 4;
                    CREATE INDEX case_update_undelivered_case ON case_update (case_id) WHERE delivered_at IS NULL;
                    """)
        }
        // The node that supervises each device, and the device's latest report (CenterJournal+Presence.swift);
        // a journal's devices so far are of no node: the first node to renew its lease takes the online ones.
        migrator.registerMigration("v6-device-presence") { db in
            try db.execute(
                sql: """
                    CREATE TABLE device_presence (
                        device INTEGER PRIMARY KEY, node TEXT, online INTEGER NOT NULL, at INTEGER NOT NULL);
                    CREATE INDEX device_presence_node ON device_presence (node) WHERE online = 1;
                    INSERT INTO device_presence (device, node, online, at)
                        SELECT device, NULL, online, at FROM supervision
                        WHERE rowid IN (SELECT MAX(rowid) FROM supervision GROUP BY device);
                    """)
        }
        // Named leases of one holder at a time: the DC-09 forwarder's; the run that last renewed each node's
        // lease, to find two nodes under one name (CenterJournal+Lease.swift).
        migrator.registerMigration("v7-lease") { db in
            try db.execute(
                sql: """
                    CREATE TABLE journal_lease (name TEXT PRIMARY KEY, holder TEXT NOT NULL, lease_until INTEGER NOT NULL);
                    ALTER TABLE centre_node ADD COLUMN run TEXT;
                    """)
        }
        return migrator
    }
}

/// A GRDB connection inside a transaction, speaking `JournalSQL`. Statements are prepared once and cached.
private struct SQLiteJournalSQL: JournalSQL {
    let db: Database

    var dialect: JournalDialect { .sqlite }

    func query(_ sql: String, _ arguments: [JournalValue]) throws -> [JournalRow] {
        let statement = try Self.bound(db.cachedStatement(sql: sql), arguments)
        let columns = statement.columnNames
        return try Row.fetchAll(statement).map { row in
            JournalRow(columns: columns, values: (0..<columns.count).map { Self.value(row[$0] as DatabaseValue) })
        }
    }

    func execute(_ sql: String, _ arguments: [JournalValue]) throws -> Int {
        try Self.bound(db.cachedStatement(sql: sql), arguments).execute()
        return db.changesCount
    }

    /// Binds `values` to the statement's parameters in order, checked (a count that does not fit throws).
    /// Bound once here rather than passed to `execute(arguments:)`, which binds each value inside a closure of
    /// its own (nested a value deep) on every execution.
    private static func bound(_ statement: Statement, _ values: [JournalValue]) throws -> Statement {
        try statement.setArguments(
            StatementArguments(
                values.map { value -> (any DatabaseValueConvertible)? in
                    switch value {
                    case .null: nil
                    case .integer(let integer): integer
                    case .text(let text): text
                    case .bytes(let bytes): Data(bytes)
                    }
                }))
        return statement
    }

    private static func value(_ value: DatabaseValue) -> JournalValue {
        switch value.storage {
        case .null: .null
        case .int64(let integer): .integer(integer)
        case .double(let double): .integer(Int64(double))
        case .string(let text): .text(text)
        case .blob(let data): .bytes([UInt8](data))
        }
    }
}
