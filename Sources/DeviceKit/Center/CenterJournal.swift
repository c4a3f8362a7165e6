import Foundation
import GRDB

/// The centre's durable record: session anchors, every reliable message once, cases and their updates,
/// supervision reports. An SQLite file in WAL mode with `synchronous = FULL`, so that a write that returned
/// survives a power cut: the centre acknowledges nothing before that.
///
/// Group commit: `commit(_:)` writes a batch in one transaction, so one fsync covers every write in it.
/// The centre's runtime sends what arrives while a batch is being written in the next batch, and answers
/// each write (the `ack` of a message, the `sessionAccept` of an anchor) only once its batch committed.
///
/// Several processes may share one journal (`devicesim center --workers N`): every decision that must hold
/// across them is taken by the database inside the write transaction, never from a copy in memory. An anchor
/// is stored only if it rises (`storeAnchor` says whether it did), and a reliable message is new only if its
/// (device, id) row was inserted (`record`), so a retransmission that reaches another process is acknowledged
/// again but acted on once; the same id with other content (a device whose ids restarted) is a conflict, told
/// apart by a digest of the message's identity (`Message.identityDigest`). Key epochs move with anchors, in the
/// same statement (protocol.md §3.4). Writes take the write lock at `BEGIN IMMEDIATE` and wait up to `busyTimeout` for
/// another process's transaction; one that still cannot get it throws, like any failed write, so the batch is
/// answered `nak busy` and never dropped in silence. Before that, writers take `JournalWriterLock` (a `flock`
/// on the file `<journal>-writer`), so that the lock passes between processes without SQLite's polling sleeps.
///
/// Blocking: call it from a thread pool, never from an event loop.
public final class CenterJournal: Sendable {
    /// What storing a session anchor found.
    public struct AnchorOutcome: Equatable, Sendable {
        /// True if the anchor was above the stored one (or none was stored, or it opens a later key epoch) and
        /// is now the device's anchor.
        public var raised: Bool
        /// The device's anchor after the write: the new one if it rose, else the higher one already stored.
        public var stored: UInt64
        /// The key epoch of `stored`.
        public var epoch: UInt16

        public init(raised: Bool, stored: UInt64, epoch: UInt16 = 0) {
            self.raised = raised
            self.stored = stored
            self.epoch = epoch
        }
    }

    /// A device's latest session anchor and the key epoch it belongs to.
    public struct StoredAnchor: Hashable, Sendable {
        public var epoch: UInt16
        public var anchor: UInt64

        public init(epoch: UInt16, anchor: UInt64) {
            self.epoch = epoch
            self.anchor = anchor
        }
    }

    /// What recording a reliable message found.
    public struct RecordOutcome: Equatable, Sendable {
        /// False for a retransmission or duplicate: acknowledge again, act on it no more.
        public var isNew: Bool
        /// For an alarm: the id of a cancel of it that arrived before it (UDP reordering).
        public var earlierCancel: UInt32?
        /// For a cancel: whether the alarm it cancels is recorded.
        public var alarmRecorded: Bool
        /// For a new alarm to dispatch: its case, opened in the same transaction, and the update to send.
        public var openedCase: (CasePolicy.Case, CaseUpdate)?
        /// For a new cancel of an alarm whose case was open: that case, closed in the same transaction.
        public var closedCase: (CasePolicy.Case, CaseUpdate)?
        /// The message reuses an id the device already used for other content (its ids restarted): the how
        /// manyth reuse. An alarm is still new (`isNew`) and dispatched, flagged; other messages are refused.
        public var idReused: Int?

        public static func == (a: Self, b: Self) -> Bool {
            a.isNew == b.isNew && a.earlierCancel == b.earlierCancel && a.alarmRecorded == b.alarmRecorded
                && a.idReused == b.idReused
                && a.openedCase?.0 == b.openedCase?.0 && a.openedCase?.1 == b.openedCase?.1
                && a.closedCase?.0 == b.closedCase?.0 && a.closedCase?.1 == b.closedCase?.1
        }
    }

    /// One recorded alarm, as the journal holds it.
    public struct RecordedAlarm: Hashable, Sendable {
        public var device: UInt32
        public var alarmID: UInt32
        public var receivedAt: WireTime
    }

    /// A case update the device has not acknowledged: sent again when the device returns.
    public struct PendingUpdate: Hashable, Sendable {
        public var device: UInt32
        public var update: CaseUpdate
    }

    public let path: String
    let database: DatabaseQueue
    /// Whether recording a new case event also queues it for the DC-09 receivers (`--forward`).
    let forwardsDC09: Bool
    private let writerLock: JournalWriterLock

    /// - Parameter busyTimeout: how long a write waits for another process's transaction on the same file
    ///   before it fails (and its batch is answered `nak busy`).
    ///   Opening fails with a `JournalOpenError` that says why in words.
    /// - Parameter forwardsDC09: queue each new case event for the DC-09 receivers, in the transaction that
    ///   records it (CenterJournal+DC09Forward.swift).
    public init(path: String, busyTimeout: Duration = .seconds(10), forwardsDC09: Bool = false) throws {
        self.path = path
        self.forwardsDC09 = forwardsDC09
        try JournalOpenError.checkDirectory(of: path)
        do { writerLock = try JournalWriterLock(journal: path) } catch let error as JournalLockError {
            throw JournalOpenError(path: path, errno: error.errno)
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(Double(busyTimeout.components.seconds) + Double(busyTimeout.components.attoseconds) / 1e18)
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
        registerDC09Migration(&migrator)
        registerDC09ForwardMigration(&migrator)
        registerConsoleMigration(&migrator)
        return migrator
    }

    /// For CenterJournal+DC09Forward.swift.
    func read<T>(_ body: (Database) throws -> T) throws -> T { try database.read(body) }

    /// The `synchronous` pragma in force (2 is FULL); for the tests that hold the journal to its promise.
    public func synchronousMode() throws -> Int {
        try database.read { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    public func close() throws { try database.close() }

    // MARK: Sessions

    /// Every device's latest session anchor and its key epoch.
    public func storedAnchors() throws -> [UInt32: StoredAnchor] {
        try database.read { db in
            var anchors: [UInt32: StoredAnchor] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, epoch, anchor FROM device") {
                anchors[UInt32(truncatingIfNeeded: row["id"] as Int64)] = StoredAnchor(
                    epoch: UInt16(truncatingIfNeeded: row["epoch"] as Int64), anchor: UInt64(row["anchor"] as Int64))
            }
            return anchors
        }
    }

    /// Every device's latest session anchor.
    public func anchors() throws -> [UInt32: UInt64] {
        try database.read { db in
            var anchors: [UInt32: UInt64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT id, anchor FROM device") {
                anchors[UInt32(truncatingIfNeeded: row["id"] as Int64)] = UInt64(row["anchor"] as Int64)
            }
            return anchors
        }
    }

    /// Stores `anchor` as the device's session anchor only if it is above the stored one, in one statement,
    /// so that of two processes given the same `sessionStart` (a replay) exactly one sees it rise; never
    /// lowers it, whatever order writes come in.
    @discardableResult
    ///
    /// An anchor of a later key epoch than the stored one always rises: the device moves to that epoch and the
    /// old one is retired, in the same statement (protocol.md §3.4).
    public func storeAnchor(device: UInt32, anchor: UInt64, epoch: UInt16 = 0) throws -> AnchorOutcome {
        try writeImmediately { db in try Self.storeAnchor(db, device: device, anchor: anchor, epoch: epoch) }
    }

    private static func storeAnchor(_ db: Database, device: UInt32, anchor: UInt64, epoch: UInt16) throws -> AnchorOutcome {
        try db.cachedStatement(sql: """
                INSERT INTO device (id, anchor, epoch) VALUES (?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET anchor = excluded.anchor, epoch = excluded.epoch
                WHERE excluded.epoch > device.epoch OR (excluded.epoch = device.epoch AND excluded.anchor > device.anchor)
                """).execute(
            arguments: [Int64(device), Int64(anchor), Int64(epoch)])
        if db.changesCount == 1 { return AnchorOutcome(raised: true, stored: anchor, epoch: epoch) }
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT anchor, epoch FROM device WHERE id = ?"), arguments: [Int64(device)])
        return AnchorOutcome(
            raised: false, stored: row.map { UInt64($0["anchor"] as Int64) } ?? 0,
            epoch: row.map { UInt16(truncatingIfNeeded: $0["epoch"] as Int64) } ?? 0)
    }

    /// A write transaction that takes SQLite's write lock at `BEGIN IMMEDIATE`, waiting for another process
    /// up to the busy timeout. A deferred one would read first and could then fail to upgrade with
    /// `SQLITE_BUSY` at once, without waiting, when another process wrote in between. The writer lock is taken
    /// first, so that processes sharing the journal queue for it in the kernel instead of SQLite's sleeps.
    func writeImmediately<T>(_ body: (Database) throws -> T) throws -> T {
        try writerLock.withLock { try transaction(body) }
    }

    private func transaction<T>(_ body: (Database) throws -> T) throws -> T {
        try database.writeWithoutTransaction { db in
            var result: T?
            try db.inTransaction(.immediate) {
                result = try body(db)
                return .commit
            }
            guard let result else { throw DatabaseError(message: "a journal transaction returned nothing") }
            return result
        }
    }

    // MARK: Messages

    /// Records a reliable message once per (device, id); a second time only reports it as not new.
    ///
    /// Cases move in the same transaction as the message that moves them, so that a cancel racing its alarm
    /// always finds the case: a new alarm opens one when `opensCase` (not for test alarms, nor when its
    /// cancel came first), and a new cancel closes its alarm's open case.
    ///
    /// The same id with other content (by `Message.identityDigest`) is a conflict: kept apart, counted
    /// (`idReused`), and for an alarm dispatched as a case of its own. `note` is kept with the message (the
    /// defects of an alarm read leniently).
    public func record(device: UInt32, message: Message, at: WireTime, opensCase: Bool = false, note: String? = nil) throws -> RecordOutcome {
        try writeImmediately { db in
            try Self.record(db, device: device, message: message, at: at, opensCase: opensCase, note: note, forwards: forwardsDC09)
        }
    }

    static func record(
        _ db: Database, device: UInt32, message: Message, at: WireTime, opensCase: Bool, note: String?, forwards: Bool
    ) throws -> RecordOutcome {
        guard let id = message.reliableID else { return RecordOutcome(isNew: false, alarmRecorded: false) }
        var reference: Int64?
        if case .alarmCancel(let cancel) = message { reference = Int64(cancel.alarmID) }
        let digest = Data(message.identityDigest)
        try db.cachedStatement(sql: """
                INSERT INTO message (device, id, kind, ref, json, received_at, digest, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (device, id) DO NOTHING
                """).execute(
            arguments: [Int64(device), Int64(id), message.kind.name, reference, message.json, Int64(at), digest, note])
        var outcome = RecordOutcome(isNew: db.changesCount == 1, alarmRecorded: false)
        guard outcome.isNew else {
            return try recordConflict(
                db, device: device, id: id, message: message, digest: digest, at: at, opensCase: opensCase, forwards: forwards)
        }
        if forwards { try queueForward(db, device: device, message: message, at: at) }
        switch message {
        case .alarm(let alarm):
            let cancel = try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM message WHERE device = ? AND kind = 'alarmCancel' AND ref = ? LIMIT 1"),
                arguments: [Int64(device), Int64(alarm.id)])
            outcome.earlierCancel = cancel.map { UInt32(truncatingIfNeeded: $0) }
            if opensCase, cancel == nil {
                outcome.openedCase = try Self.openCase(db, device: device, alarmID: alarm.id, at: at)
            }
        case .alarmCancel(let cancel):
            outcome.alarmRecorded = try Bool.fetchOne(
                db.cachedStatement(sql: "SELECT 1 FROM message WHERE device = ? AND kind = 'alarm' AND id = ?"),
                arguments: [Int64(device), Int64(cancel.alarmID)]) ?? false
            let open = try Int64.fetchOne(
                db.cachedStatement(sql: "SELECT id FROM dispatch_case WHERE device = ? AND alarm_id = ? AND state < ? ORDER BY id DESC LIMIT 1"),
                arguments: [Int64(device), Int64(cancel.alarmID), Int64(CaseState.closed.rawValue)])
            if let open {
                let closed = CasePolicy.Case(id: open, device: device, alarmID: cancel.alarmID, state: .closed)
                if let update = try Self.advance(db, closed, at: at) { outcome.closedCase = (closed, update) }
            }
        default:
            break
        }
        return outcome
    }

    /// A message whose (device, id) is recorded already: a retransmission of the same content, or a conflict.
    private static func recordConflict(
        _ db: Database, device: UInt32, id: UInt32, message: Message, digest: Data, at: WireTime, opensCase: Bool, forwards: Bool
    ) throws -> RecordOutcome {
        var outcome = RecordOutcome(isNew: false, alarmRecorded: false)
        let first = try Data.fetchOne(
            db.cachedStatement(sql: "SELECT digest FROM message WHERE device = ? AND id = ?"), arguments: [Int64(device), Int64(id)])
        // No digest: recorded before digests were kept; the same content is the safe reading.
        guard let first, first != digest else { return outcome }
        if let reuse = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT reuse FROM message_conflict WHERE device = ? AND id = ? AND digest = ?"),
            arguments: [Int64(device), Int64(id), digest])
        {
            outcome.idReused = Int(reuse)  // a retransmission of the conflicting message
            return outcome
        }
        let reuse = try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT COALESCE(MAX(reuse), 0) + 1 FROM message_conflict WHERE device = ? AND id = ?"),
            arguments: [Int64(device), Int64(id)]) ?? 1
        try db.cachedStatement(sql: """
                INSERT INTO message_conflict (device, id, reuse, kind, json, digest, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [Int64(device), Int64(id), reuse, message.kind.name, message.json, digest, Int64(at)])
        outcome.idReused = Int(reuse)
        if case .alarm(let alarm) = message {
            // A call for help under a reused id is still one: a case of its own.
            outcome.isNew = true
            if forwards { try queueForward(db, device: device, message: message, at: at) }
            if opensCase { outcome.openedCase = try openCase(db, device: device, alarmID: alarm.id, at: at, reuse: reuse) }
        }
        return outcome
    }

    // MARK: Group commit

    /// One write of a batch that `commit(_:)` makes durable together with others.
    public enum Write: Sendable {
        case anchor(device: UInt32, anchor: UInt64, epoch: UInt16 = 0)
        case message(device: UInt32, message: Message, at: WireTime, opensCase: Bool, note: String? = nil)
        case caseUpdate(CasePolicy.Case, at: WireTime)
        case caseUpdateDelivered(UInt32, at: WireTime)
        /// With `ifAnchor`, written only while that is still the device's stored anchor: a process whose session
        /// of the device was superseded by one another process opened must not report the device offline.
        case supervision(device: UInt32, online: Bool, at: WireTime, ifAnchor: UInt64? = nil)
        /// An event from the DC-09 port; a retransmission of one received within `window` milliseconds is
        /// not new (CenterJournal+DC09.swift).
        case dc09Event(device: UInt32, DC09Event, at: WireTime, window: UInt64)
        /// A DC-09 receiver acknowledged these queued events (`--forward`): they leave the queue.
        case forwarded(rows: [Int64])
    }

    /// What one write of a batch did.
    public enum WriteOutcome: Equatable, Sendable {
        case stored
        case anchor(AnchorOutcome)
        case recorded(RecordOutcome)
        case caseUpdate(CaseUpdate?)
        /// A supervision report: false when its `ifAnchor` no longer held and nothing was written.
        case supervision(written: Bool)
        /// A DC-09 event: the message it was journalled as (its id given by the journal) and what recording found.
        case dc09Recorded(Message, RecordOutcome)
    }

    /// Makes `writes` durable in one transaction and one fsync (group commit), in order, as if each had been
    /// written alone: a later write sees the earlier ones, so a duplicate within the batch is not new.
    ///
    /// A write that fails rolls the whole batch back (a journal that cannot write one row — disk full, locked,
    /// read-only — cannot write the others either): it throws, nothing of the batch is durable, and the
    /// caller must treat every write as failed and acknowledge none. Statements are prepared once and cached.
    public func commit(_ writes: [Write]) throws -> [WriteOutcome] {
        try writeImmediately { db in try writes.map { try Self.apply($0, db, forwards: self.forwardsDC09) } }
    }

    private static func apply(_ write: Write, _ db: Database, forwards: Bool) throws -> WriteOutcome {
        switch write {
        case .anchor(let device, let anchor, let epoch):
            return .anchor(try storeAnchor(db, device: device, anchor: anchor, epoch: epoch))
        case .message(let device, let message, let at, let opensCase, let note):
            return .recorded(try record(db, device: device, message: message, at: at, opensCase: opensCase, note: note, forwards: forwards))
        case .caseUpdate(let changed, let at):
            return .caseUpdate(try advance(db, changed, at: at))
        case .caseUpdateDelivered(let id, let at):
            try caseUpdateDelivered(db, id, at: at)
            return .stored
        case .supervision(let device, let online, let at, let anchor):
            return .supervision(written: try recordSupervision(db, device: device, online: online, at: at, ifAnchor: anchor))
        case .dc09Event(let device, let event, let at, let window):
            let (message, outcome) = try recordDC09(db, device: device, event: event, at: at, window: window, forwards: forwards)
            return .dc09Recorded(message, outcome)
        case .forwarded(let rows):
            try removeForwarded(db, rows: rows)
            return .stored
        }
    }

    /// Every recorded alarm, in the order received.
    public func alarms() throws -> [RecordedAlarm] {
        try database.read { db in try Self.fetchAlarms(db) }
    }

    static func fetchAlarms(_ db: Database) throws -> [RecordedAlarm] {
        try Row.fetchAll(
            db, sql: "SELECT device, id, received_at FROM message WHERE kind = 'alarm' ORDER BY received_at, device, id"
        ).map { row in
            RecordedAlarm(
                device: UInt32(truncatingIfNeeded: row["device"] as Int64),
                alarmID: UInt32(truncatingIfNeeded: row["id"] as Int64),
                receivedAt: UInt64(row["received_at"] as Int64))
        }
    }

    // MARK: Cases

    private static func openCase(
        _ db: Database, device: UInt32, alarmID: UInt32, at: WireTime, reuse: Int64 = 0
    ) throws -> (CasePolicy.Case, CaseUpdate) {
        try db.cachedStatement(sql: "INSERT INTO dispatch_case (device, alarm_id, reuse, state, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)").execute(
            arguments: [Int64(device), Int64(alarmID), reuse, Int64(CaseState.received.rawValue), Int64(at), Int64(at)])
        let caseID = db.lastInsertedRowID
        let update = try insertUpdate(db, caseID: caseID, alarmID: alarmID, state: .received, at: at)
        return (CasePolicy.Case(id: caseID, device: device, alarmID: alarmID, state: .received, openedAt: at), update)
    }

    /// Records a case's new state; returns the update to send, or `nil` if the case is already at or past
    /// that state (states only move forward).
    public func updateCase(_ changed: CasePolicy.Case, at: WireTime) throws -> CaseUpdate? {
        try writeImmediately { db in try Self.advance(db, changed, at: at) }
    }

    private static func advance(_ db: Database, _ changed: CasePolicy.Case, at: WireTime) throws -> CaseUpdate? {
        try db.cachedStatement(sql: "UPDATE dispatch_case SET state = ?, updated_at = ? WHERE id = ? AND state < ?").execute(
            arguments: [Int64(changed.state.rawValue), Int64(at), changed.id, Int64(changed.state.rawValue)])
        guard db.changesCount == 1 else { return nil }
        return try insertUpdate(db, caseID: changed.id, alarmID: changed.alarmID, state: changed.state, at: at)
    }

    /// The device acknowledged case update `id`.
    public func caseUpdateDelivered(_ id: UInt32, at: WireTime) throws {
        try writeImmediately { db in try Self.caseUpdateDelivered(db, id, at: at) }
    }

    private static func caseUpdateDelivered(_ db: Database, _ id: UInt32, at: WireTime) throws {
        try db.cachedStatement(sql: "UPDATE case_update SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL").execute(
            arguments: [Int64(at), Int64(id)])
    }

    /// Cases not closed, oldest first.
    public func openCases() throws -> [CasePolicy.Case] {
        try database.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, device, alarm_id, state, opened_at FROM dispatch_case WHERE state < ? ORDER BY id",
                arguments: [Int64(CaseState.closed.rawValue)]
            ).map { row in
                CasePolicy.Case(
                    id: row["id"], device: UInt32(truncatingIfNeeded: row["device"] as Int64),
                    alarmID: UInt32(truncatingIfNeeded: row["alarm_id"] as Int64),
                    state: CaseState(rawValue: UInt8(truncatingIfNeeded: row["state"] as Int64)),
                    openedAt: UInt64(max(0, row["opened_at"] as Int64)))
            }
        }
    }

    /// Case updates sent but never acknowledged, oldest first.
    public func undeliveredUpdates() throws -> [PendingUpdate] {
        try database.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT u.id, u.state, u.at, c.device, c.alarm_id FROM case_update u
                    JOIN dispatch_case c ON c.id = u.case_id WHERE u.delivered_at IS NULL ORDER BY u.id
                    """
            ).map { row in
                PendingUpdate(
                    device: UInt32(truncatingIfNeeded: row["device"] as Int64),
                    update: CaseUpdate(
                        id: UInt32(truncatingIfNeeded: row["id"] as Int64),
                        alarmID: UInt32(truncatingIfNeeded: row["alarm_id"] as Int64),
                        state: CaseState(rawValue: UInt8(truncatingIfNeeded: row["state"] as Int64)),
                        at: UInt64(row["at"] as Int64)))
            }
        }
    }

    // MARK: Supervision

    public func recordSupervision(device: UInt32, online: Bool, at: WireTime) throws {
        try writeImmediately { db in _ = try Self.recordSupervision(db, device: device, online: online, at: at, ifAnchor: nil) }
    }

    private static func recordSupervision(
        _ db: Database, device: UInt32, online: Bool, at: WireTime, ifAnchor anchor: UInt64?
    ) throws -> Bool {
        guard let anchor else {
            try db.cachedStatement(sql: "INSERT INTO supervision (device, online, at) VALUES (?, ?, ?)").execute(
                arguments: [Int64(device), online, Int64(at)])
            return true
        }
        try db.cachedStatement(sql: """
                INSERT INTO supervision (device, online, at)
                SELECT ?, ?, ? WHERE (SELECT anchor FROM device WHERE id = ?) = ?
                """).execute(
            arguments: [Int64(device), online, Int64(at), Int64(device), Int64(anchor)])
        return db.changesCount == 1
    }

    /// Supervision reports of `device`, oldest first: `true` online, `false` offline.
    public func supervision(device: UInt32) throws -> [Bool] {
        try database.read { db in
            try Bool.fetchAll(
                db, sql: "SELECT online FROM supervision WHERE device = ? ORDER BY rowid", arguments: [Int64(device)])
        }
    }

    private static func insertUpdate(
        _ db: Database, caseID: Int64, alarmID: UInt32, state: CaseState, at: WireTime
    ) throws -> CaseUpdate {
        try db.cachedStatement(sql: "INSERT INTO case_update (case_id, state, at) VALUES (?, ?, ?)").execute(
            arguments: [caseID, Int64(state.rawValue), Int64(at)])
        // The row id is the update's message id: unique for the journal's life, so a device that dedupes
        // centre messages by id never mistakes a new update for an old one, even across centre restarts.
        return CaseUpdate(
            id: UInt32(truncatingIfNeeded: db.lastInsertedRowID), alarmID: alarmID, state: state, at: at)
    }
}

/// The journal could not be opened, said in words: the file's directory is missing, may not be written, or
/// the file is not a journal.
public struct JournalOpenError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        /// The directory to hold the journal does not exist (or is not a directory).
        case missingDirectory(String)
        /// This user may not create or write the file (EACCES, EPERM, EROFS).
        case notPermitted
        /// The file exists but is not an SQLite database.
        case notADatabase
        case other(String)
    }

    public var path: String
    public var reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    init(path: String, errno code: Int32) {
        switch code {
        case EACCES, EPERM, EROFS: self.init(path: path, reason: .notPermitted)
        case ENOENT, ENOTDIR: self.init(path: path, reason: .missingDirectory(Self.directory(of: path)))
        default: self.init(path: path, reason: .other(String(cString: strerror(code)).lowercased()))
        }
    }

    init(path: String, database error: DatabaseError) {
        switch error.resultCode {
        case .SQLITE_NOTADB: self.init(path: path, reason: .notADatabase)
        case .SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM: self.init(path: path, reason: .notPermitted)
        default: self.init(path: path, reason: .other(error.message ?? "\(error.resultCode)"))
        }
    }

    public var description: String {
        switch reason {
        case .missingDirectory(let directory):
            "cannot create the journal \(path): the directory \(directory) does not exist; create it (mkdir -p \(directory)) or give a journal in an existing directory"
        case .notPermitted:
            "cannot create or write the journal \(path): permission denied; give a journal in a directory this user may write, or run as its owner"
        case .notADatabase:
            "\(path) is not a journal (not an SQLite database): give another file, or move this one away"
        case .other(let reason):
            "cannot open the journal \(path): \(reason)"
        }
    }

    static func directory(of path: String) -> String {
        let directory = (path as NSString).deletingLastPathComponent
        return directory.isEmpty ? "." : directory
    }

    /// Throws `.missingDirectory` when the journal's directory is not there: SQLite would only say "unable to
    /// open database file", and the writer lock would name its own file.
    static func checkDirectory(of path: String) throws(JournalOpenError) {
        var isDirectory: ObjCBool = false
        let directory = directory(of: path)
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JournalOpenError(path: path, reason: .missingDirectory(directory))
        }
    }
}
