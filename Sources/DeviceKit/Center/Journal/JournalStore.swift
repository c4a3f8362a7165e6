/// The one interface the centre's journal keeps its records through, and its two implementations:
/// `SQLiteJournalStore` (an SQLite file: the embedded default, no server) and `PostgresJournalStore` (a
/// PostgreSQL server that centre nodes on several hosts share, `--journal postgres://…`).
///
/// `CenterJournal` holds every rule of the record (once per device and id, anchors that only rise, cases that
/// move with the message that moves them) and speaks SQL both databases take: `?` placeholders, `INSERT … ON
/// CONFLICT`, `RETURNING`, integers, text and bytes. A store gives it transactions:
/// - `write(locking:_:)` runs the body in one write transaction, committed once (one fsync for a whole batch:
///   group commit), or rolled back whole when anything in it throws. `locking` names the devices whose rows
///   the body reads and then writes: SQLite takes its single writer lock anyway, PostgreSQL takes a lock per
///   device (in ascending order, so that two nodes never deadlock), so that a decision read in a transaction
///   ("is there an open case of this alarm?") still holds when it commits, as it does on SQLite.
/// - `read(_:)` runs the body on a consistent snapshot.
///
/// The few statements the two dialects write differently are `JournalDialect`'s. Blocking: call a store from
/// a thread pool, never from an event loop.
protocol JournalStore: Sendable {
    var dialect: JournalDialect { get }
    func write<T>(locking devices: [UInt32], _ body: (any JournalSQL) throws -> T) throws -> T
    func read<T>(_ body: (any JournalSQL) throws -> T) throws -> T
    func close() throws
}

/// One connection inside a transaction.
protocol JournalSQL {
    var dialect: JournalDialect { get }
    /// Runs `sql` (placeholders `?`) and returns the rows it produced (a `SELECT`, or `RETURNING`).
    func query(_ sql: String, _ arguments: [JournalValue]) throws -> [JournalRow]
    /// Runs `sql` and returns how many rows it inserted, changed or deleted.
    @discardableResult
    func execute(_ sql: String, _ arguments: [JournalValue]) throws -> Int
}

extension JournalSQL {
    func query(_ sql: String, _ arguments: JournalValue...) throws -> [JournalRow] { try query(sql, arguments) }

    func queryOne(_ sql: String, _ arguments: JournalValue...) throws -> JournalRow? { try query(sql, arguments).first }

    @discardableResult
    func execute(_ sql: String, _ arguments: JournalValue...) throws -> Int { try execute(sql, arguments) }
}

/// The statements SQLite and PostgreSQL write differently.
enum JournalDialect: Sendable {
    case sqlite, postgres

    /// A condition: `column`, lowercased, contains the (lowercased) text bound to its `?` — not `LIKE`, so that
    /// a search for `50%` or `_` means those characters.
    func lowercasedContains(_ column: String) -> String {
        switch self {
        case .sqlite: "instr(swiftLowercaseString(\(column)), ?) > 0"
        case .postgres: "strpos(lower(\(column)), ?) > 0"
        }
    }

    /// The column that orders `supervision` rows as they were written.
    var supervisionOrder: String {
        switch self {
        case .sqlite: "rowid"
        case .postgres: "id"
        }
    }
}

/// A value bound to a statement or read from a row: the journal stores integers, text and bytes (a flag is an
/// integer, 0 or 1, in both databases).
enum JournalValue: Hashable, Sendable {
    case null
    case integer(Int64)
    case text(String)
    case bytes([UInt8])
}

extension JournalValue {
    init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
    init(_ value: Int) { self = .integer(Int64(value)) }
    init(_ value: UInt32) { self = .integer(Int64(value)) }
    /// A wire time or an anchor: stored as the signed 64-bit integer both databases hold.
    init(_ value: UInt64) { self = .integer(Int64(clamping: value)) }
    init(_ value: Bool) { self = .integer(value ? 1 : 0) }
    init(_ value: String?) { self = value.map { .text($0) } ?? .null }
}

/// A row read from the journal: its values by column name.
struct JournalRow: Sendable {
    var columns: [String]
    var values: [JournalValue]

    func value(_ column: String) throws -> JournalValue {
        guard let index = columns.firstIndex(of: column) else { throw JournalReadError(column: column, found: "no such column") }
        return values[index]
    }

    func int64(_ column: String) throws -> Int64 {
        guard case .integer(let value) = try value(column) else { throw JournalReadError(column: column, found: "\(try value(column))") }
        return value
    }

    func optionalInt64(_ column: String) throws -> Int64? {
        switch try value(column) {
        case .null: nil
        case .integer(let value): value
        case let other: throw JournalReadError(column: column, found: "\(other)")
        }
    }

    func uint32(_ column: String) throws -> UInt32 { UInt32(truncatingIfNeeded: try int64(column)) }
    func wireTime(_ column: String) throws -> WireTime { WireTime(clamping: try int64(column)) }
    func bool(_ column: String) throws -> Bool { try int64(column) != 0 }

    func string(_ column: String) throws -> String {
        guard let value = try optionalString(column) else { throw JournalReadError(column: column, found: "NULL") }
        return value
    }

    func optionalString(_ column: String) throws -> String? {
        switch try value(column) {
        case .null: nil
        case .text(let value): value
        case let other: throw JournalReadError(column: column, found: "\(other)")
        }
    }

    func optionalBytes(_ column: String) throws -> [UInt8]? {
        switch try value(column) {
        case .null: nil
        case .bytes(let value): value
        case let other: throw JournalReadError(column: column, found: "\(other)")
        }
    }
}

/// A row of the journal did not hold what the schema says: a journal written by something else.
struct JournalReadError: Error, CustomStringConvertible {
    var column: String
    var found: String
    var description: String { "the journal's column \(column) holds \(found), not what this centre wrote there" }
}
