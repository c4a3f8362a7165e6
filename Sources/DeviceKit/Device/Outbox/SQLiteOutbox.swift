import Foundation
import GRDB
import NIOCore

/// The device's outbox on an SQLite database: what the centre has not acknowledged survives crashes and power
/// cuts, and the message-id counter and the boot count live beside it.
///
/// Why SQLite rather than an fsync'd append-only journal of our own:
/// - **One transaction for id and item.** `enqueue` draws the id and stores the message in a single write
///   transaction, so a crash can neither lose an id that was handed out nor hand it out twice; a hand-rolled
///   journal would need its own commit records and recovery code for that.
/// - **Crash safety on SD cards.** WAL with `synchronous = FULL` fsyncs the log at every commit; after a
///   power cut SQLite replays the committed frames and ignores a torn tail, a path tested far beyond what we
///   could test of our own format.
/// - **One dependency, shared.** The centre keeps its journal in SQLite through GRDB too, so the project
///   carries one storage engine and one set of operational knowledge.
///
/// ```
/// outbox       (seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- created order, never reused
///               id INTEGER UNIQUE, priority INTEGER,     -- message id; Message.outboxPriority
///               kind INTEGER, body BLOB)                 -- the body as the codec encodes it (protocol.md §4)
/// device_state (key TEXT PRIMARY KEY, value INTEGER)     -- next_message_id (from 1), boot_count
/// ```
public final class SQLiteOutbox: Outbox {
    /// The database file.
    public let path: String
    private let database: DatabaseQueue

    private static let nextMessageIDKey = "next_message_id"
    private static let bootCountKey = "boot_count"

    /// Opens (or creates) the outbox database at `path` and brings its schema up to date.
    ///
    /// The directory must exist. Two `SQLiteOutbox` values may open one file (a restarted process finds the
    /// previous one's WAL); writes wait up to `busyTimeout` for each other.
    public init(path: String, busyTimeout: Duration = .seconds(5)) throws(OutboxError) {
        self.path = path
        var configuration = Configuration()
        configuration.label = "outbox"
        let (seconds, attoseconds) = busyTimeout.components
        configuration.busyMode = .timeout(Double(seconds) + Double(attoseconds) / 1e18)
        // Not `configuration.journalMode = .wal`: GRDB then lowers `synchronous` to NORMAL, which may lose the
        // last commits in a power cut. An alarm acknowledged to the person as stored must be on the card.
        configuration.prepareDatabase { db in
            guard try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") == "wal" else {
                throw DatabaseError(message: "the storage does not support write-ahead logging")
            }
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            database = try DatabaseQueue(path: path, configuration: configuration)
            try Self.migrator.migrate(database)
        } catch {
            throw Self.failure(path, "cannot open the outbox database", error)
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE outbox (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id INTEGER NOT NULL UNIQUE,
                        priority INTEGER NOT NULL,
                        kind INTEGER NOT NULL,
                        body BLOB NOT NULL
                    );
                    CREATE INDEX outbox_order ON outbox (priority, seq);
                    CREATE TABLE device_state (
                        key TEXT PRIMARY KEY NOT NULL,
                        value INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    public func enqueue(_ build: @Sendable (UInt32) -> Message) throws(OutboxError) -> Message {
        do {
            return try database.write { db in
                let next = try Self.stateValue(db, Self.nextMessageIDKey) ?? 1
                guard next <= Int64(UInt32.max) else { throw Refusal.idsExhausted }
                let id = UInt32(next)
                let message = build(id)
                guard message.reliableID == id else {
                    throw Refusal.wrongID(kind: message.kind.name, drawn: id, carried: message.reliableID)
                }
                var body = ByteBuffer()
                do throws(ProtocolError) {
                    try message.encodeBody(into: &body)
                } catch {
                    throw Refusal.unencodable(kind: message.kind.name, error)
                }
                try db.execute(
                    sql: "INSERT INTO outbox (id, priority, kind, body) VALUES (?, ?, ?, ?)",
                    arguments: [Int64(id), message.outboxPriority, Int(message.kind.rawValue), Data(body.readableBytesView)])
                try Self.setStateValue(db, Self.nextMessageIDKey, next + 1)
                return message
            }
        } catch {
            throw Self.failure(path, "cannot store a message", error)
        }
    }

    public func pending(limit: Int) throws(OutboxError) -> [Message] {
        let rows: [(id: Int64, body: [UInt8])]
        do {
            rows = try database.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT id, body FROM outbox ORDER BY priority, seq LIMIT ?",
                    arguments: [max(0, limit)]
                ).map { row in (row["id"], [UInt8](row["body"] as Data)) }
            }
        } catch {
            throw Self.failure(path, "cannot read pending messages", error)
        }
        var messages: [Message] = []
        messages.reserveCapacity(rows.count)
        for row in rows {
            do {
                messages.append(try Message(body: ByteBuffer(bytes: row.body)))
            } catch {
                throw OutboxError(
                    "outbox \(path): stored message \(row.id) cannot be decoded (\(error)); "
                        + "it was written by an incompatible firmware or the storage is damaged")
            }
        }
        return messages
    }

    public func remove(id: UInt32) throws(OutboxError) {
        do {
            try database.write { db in
                try db.execute(sql: "DELETE FROM outbox WHERE id = ?", arguments: [Int64(id)])
            }
        } catch {
            throw Self.failure(path, "cannot remove acknowledged message \(id)", error)
        }
    }

    public func count() throws(OutboxError) -> Int {
        do {
            return try database.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0 }
        } catch {
            throw Self.failure(path, "cannot count pending messages", error)
        }
    }

    /// Counts one more boot, durably, and returns the new count (1 on a device's first boot).
    ///
    /// Call it once per start, before the first `sessionStart`, which carries it.
    public func incrementBootCount() throws(OutboxError) -> UInt32 {
        do {
            return try database.write { db in
                let count = (try Self.stateValue(db, Self.bootCountKey) ?? 0) + 1
                guard count <= Int64(UInt32.max) else { throw Refusal.bootCountExhausted }
                try Self.setStateValue(db, Self.bootCountKey, count)
                return UInt32(count)
            }
        } catch {
            throw Self.failure(path, "cannot count this boot", error)
        }
    }

    /// The boot count as last stored, without counting a boot (for diagnostics).
    public func currentBootCount() throws(OutboxError) -> UInt32 {
        do {
            return try database.read { db in UInt32(clamping: try Self.stateValue(db, Self.bootCountKey) ?? 0) }
        } catch {
            throw Self.failure(path, "cannot read the boot count", error)
        }
    }

    /// The id the next `enqueue` will draw. For diagnostics; never use it to build a message.
    public func nextMessageID() throws(OutboxError) -> UInt32 {
        do {
            let next = try database.read { db in try Self.stateValue(db, Self.nextMessageIDKey) ?? 1 }
            return UInt32(clamping: next)
        } catch {
            throw Self.failure(path, "cannot read the message id counter", error)
        }
    }

    /// A PRAGMA's value as text, for tests that check the durability settings.
    func pragma(_ name: String) throws -> String? {
        try database.read { db in
            switch try DatabaseValue.fetchOne(db, sql: "PRAGMA \(name)")?.storage {
            case .int64(let value)?: "\(value)"
            case .string(let value)?: value
            case .double, .blob, .null, nil: nil
            }
        }
    }

    // MARK: Storage helpers

    private static func stateValue(_ db: Database, _ key: String) throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT value FROM device_state WHERE key = ?", arguments: [key])
    }

    private static func setStateValue(_ db: Database, _ key: String, _ value: Int64) throws {
        try db.execute(
            sql: "INSERT INTO device_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            arguments: [key, value])
    }

    /// Why a write was refused before SQLite saw it; the transaction is rolled back.
    private enum Refusal: Error, CustomStringConvertible {
        case idsExhausted
        case bootCountExhausted
        case wrongID(kind: String, drawn: UInt32, carried: UInt32?)
        case unencodable(kind: String, ProtocolError)

        var description: String {
            switch self {
            case .idsExhausted:
                "all 2^32 message ids are used; the device must be re-provisioned"
            case .bootCountExhausted:
                "the boot count reached 2^32 - 1"
            case let .wrongID(kind, drawn, carried):
                "the \(kind) built for id \(drawn) carries \(carried.map { "id \($0)" } ?? "no id"); only reliable messages with the drawn id may be stored"
            case let .unencodable(kind, error):
                "the \(kind) cannot be encoded: \(error)"
            }
        }
    }

    /// An `OutboxError` naming the file and what failed; SQLite's own words, never the statement's arguments.
    private static func failure(_ path: String, _ what: String, _ error: any Error) -> OutboxError {
        let reason: String
        switch error {
        case let error as DatabaseError:
            reason = "SQLite error \(error.resultCode.rawValue)" + (error.message.map { ": \($0)" } ?? "")
        case let error as Refusal:
            reason = error.description
        default:
            reason = "\(type(of: error))"
        }
        return OutboxError("outbox \(path): \(what): \(reason)")
    }
}
