import Foundation
import GRDB

/// The centre's durable record: session anchors, every reliable message once, cases and their updates,
/// supervision reports. Kept in a `JournalStore`: an SQLite file (the default; WAL, `synchronous = FULL`) or a
/// PostgreSQL server that nodes on several hosts share (`--journal postgres://…`). Either way a write that
/// returned is committed durably, and the centre acknowledges nothing before that.
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
/// same statement (protocol.md §3.4). A write that cannot be made (a lock not had in time, a server gone) throws,
/// so the batch is answered `nak busy` and never dropped in silence.
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

    /// Where the journal is: the SQLite file's path, or the PostgreSQL server's address (no password).
    public let location: String
    let store: any JournalStore
    /// Whether recording a new case event also queues it for the DC-09 receivers (`--forward`).
    let forwardsDC09: Bool
    let batchesInOneRoundTrip: Bool
    /// The centre node whose journal this is (`--node`): the cases it opens are its own, and it changes only
    /// those (CenterJournal+Lease.swift). `nil` (tests of the journal alone): cases of no node, changed by any.
    public let node: String?
    /// This journal object's own mark, written with each renewal of the node's lease: a renewal that finds
    /// another's there learns that another process renews under the same node name (CenterJournal+Lease.swift).
    let run = String(UInt64.random(in: .min ... .max), radix: 16)

    /// What the static writes need to know of the journal they write for.
    struct WriteContext {
        var forwards: Bool
        var node: String?
    }

    var writeContext: WriteContext { WriteContext(forwards: forwardsDC09, node: node) }

    /// An SQLite journal at `path`, created if missing.
    /// - Parameter busyTimeout: how long a write waits for another process's transaction on the same file
    ///   before it fails (and its batch is answered `nak busy`).
    ///   Opening fails with a `JournalOpenError` that says why in words.
    /// - Parameter forwardsDC09: queue each new case event for the DC-09 receivers, in the transaction that
    ///   records it (CenterJournal+DC09Forward.swift).
    public convenience init(path: String, busyTimeout: Duration = .seconds(10), forwardsDC09: Bool = false, node: String? = nil) throws {
        try self.init(.sqlite(path), busyTimeout: busyTimeout, forwardsDC09: forwardsDC09, node: node)
    }

    /// The journal at `location`: an SQLite file, or a PostgreSQL database whose schema it creates or migrates.
    public convenience init(
        _ location: JournalLocation, busyTimeout: Duration = .seconds(10), forwardsDC09: Bool = false, node: String? = nil
    ) throws {
        try self.init(location, busyTimeout: busyTimeout, forwardsDC09: forwardsDC09, node: node, batchesInOneRoundTrip: true)
    }

    /// - Parameter batchesInOneRoundTrip: on PostgreSQL, `commit` a batch through `journal_apply`; false only for
    ///   the tests that hold the two ways to the same outcomes.
    init(_ location: JournalLocation, busyTimeout: Duration, forwardsDC09: Bool, node: String? = nil, batchesInOneRoundTrip: Bool) throws {
        self.forwardsDC09 = forwardsDC09
        self.node = node
        self.batchesInOneRoundTrip = batchesInOneRoundTrip
        self.location = location.description
        switch location {
        case .sqlite(let path):
            store = try SQLiteJournalStore(path: path, busyTimeout: busyTimeout)
        case .postgres(let configuration):
            store = try PostgresJournalStore(configuration: configuration, lockTimeout: busyTimeout)
        }
    }

    /// The SQLite file's path; nil for a PostgreSQL journal.
    public var sqlitePath: String? { (store as? SQLiteJournalStore)?.path }

    /// For the extensions' reads.
    func read<T>(_ body: (any JournalSQL) throws -> T) throws -> T { try store.read(body) }

    /// A write transaction that holds the rows of `devices` (JournalStore).
    func write<T>(locking devices: [UInt32] = [], _ body: (any JournalSQL) throws -> T) throws -> T {
        try store.write(locking: devices, body)
    }

    /// The `synchronous` pragma in force (2 is FULL) of an SQLite journal, -1 for another; for the tests that
    /// hold the journal to its promise.
    public func synchronousMode() throws -> Int {
        guard let sqlite = store as? SQLiteJournalStore else { return -1 }
        return try sqlite.synchronousMode()
    }

    public func close() throws { try store.close() }

    /// An empty write transaction: throws while the journal cannot be written (JournalBatcher's probe).
    func probe() throws {
        try write { sql in _ = try sql.query("SELECT 1 AS one", []) }
    }

    // MARK: Sessions

    /// Every device's latest session anchor and its key epoch.
    public func storedAnchors() throws -> [UInt32: StoredAnchor] {
        try read { sql in
            var anchors: [UInt32: StoredAnchor] = [:]
            for row in try sql.query("SELECT id, epoch, anchor FROM device") {
                anchors[try row.uint32("id")] = StoredAnchor(
                    epoch: UInt16(truncatingIfNeeded: try row.int64("epoch")), anchor: UInt64(clamping: try row.int64("anchor")))
            }
            return anchors
        }
    }

    /// Every device's latest session anchor.
    public func anchors() throws -> [UInt32: UInt64] { try storedAnchors().mapValues(\.anchor) }

    /// Stores `anchor` as the device's session anchor only if it is above the stored one, in one statement,
    /// so that of two processes given the same `sessionStart` (a replay) exactly one sees it rise; never
    /// lowers it, whatever order writes come in.
    ///
    /// An anchor of a later key epoch than the stored one always rises: the device moves to that epoch and the
    /// old one is retired, in the same statement (protocol.md §3.4).
    @discardableResult
    public func storeAnchor(device: UInt32, anchor: UInt64, epoch: UInt16 = 0) throws -> AnchorOutcome {
        try write(locking: [device]) { sql in try Self.storeAnchor(sql, device: device, anchor: anchor, epoch: epoch, node: node) }
    }

    /// A risen anchor is a session opened at `node`: the device is this node's to supervise from now on
    /// (CenterJournal+Presence.swift).
    private static func storeAnchor(
        _ sql: any JournalSQL, device: UInt32, anchor: UInt64, epoch: UInt16, node: String?
    ) throws -> AnchorOutcome {
        let raised = try sql.execute(
            """
            INSERT INTO device (id, anchor, epoch) VALUES (?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET anchor = excluded.anchor, epoch = excluded.epoch
            WHERE excluded.epoch > device.epoch OR (excluded.epoch = device.epoch AND excluded.anchor > device.anchor)
            """, JournalValue(device), JournalValue(anchor), JournalValue(Int(epoch)))
        if raised == 1 {
            try movePresence(sql, device: device, to: node)
            return AnchorOutcome(raised: true, stored: anchor, epoch: epoch)
        }
        let row = try sql.queryOne("SELECT anchor, epoch FROM device WHERE id = ?", JournalValue(device))
        return AnchorOutcome(
            raised: false, stored: try row.map { UInt64(clamping: try $0.int64("anchor")) } ?? 0,
            epoch: try row.map { UInt16(truncatingIfNeeded: try $0.int64("epoch")) } ?? 0)
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
        try write(locking: [device]) { sql in
            try Self.record(sql, device: device, message: message, at: at, opensCase: opensCase, note: note, context: writeContext)
        }
    }

    static func record(
        _ sql: any JournalSQL, device: UInt32, message: Message, at: WireTime, opensCase: Bool, note: String?, context: WriteContext
    ) throws -> RecordOutcome {
        guard let id = message.reliableID else { return RecordOutcome(isNew: false, alarmRecorded: false) }
        var reference: Int64?
        if case .alarmCancel(let cancel) = message { reference = Int64(cancel.alarmID) }
        let digest = message.identityDigest
        let inserted = try sql.execute(
            """
            INSERT INTO message (device, id, kind, ref, json, received_at, digest, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (device, id) DO NOTHING
            """,
            JournalValue(device), JournalValue(id), .text(message.kind.name), JournalValue(reference), .text(message.json),
            JournalValue(at), .bytes(digest), JournalValue(note))
        var outcome = RecordOutcome(isNew: inserted == 1, alarmRecorded: false)
        guard outcome.isNew else {
            return try recordConflict(
                sql, device: device, id: id, message: message, digest: digest, at: at, opensCase: opensCase, context: context)
        }
        if context.forwards { try queueForward(sql, device: device, message: message, at: at) }
        switch message {
        case .alarm(let alarm):
            let cancel = try sql.queryOne(
                "SELECT id FROM message WHERE device = ? AND kind = 'alarmCancel' AND ref = ? LIMIT 1",
                JournalValue(device), JournalValue(alarm.id))
            outcome.earlierCancel = try cancel?.uint32("id")
            if opensCase, cancel == nil {
                outcome.openedCase = try Self.openCase(sql, device: device, alarmID: alarm.id, at: at, owner: context.node)
            }
        case .alarmCancel(let cancel):
            outcome.alarmRecorded = try !sql.query(
                "SELECT 1 AS found FROM message WHERE device = ? AND kind = 'alarm' AND id = ?",
                JournalValue(device), JournalValue(cancel.alarmID)
            ).isEmpty
            let open = try sql.queryOne(
                "SELECT id FROM dispatch_case WHERE device = ? AND alarm_id = ? AND state < ? ORDER BY id DESC LIMIT 1",
                JournalValue(device), JournalValue(cancel.alarmID), JournalValue(Int(CaseState.closed.rawValue)))
            if let open {
                let closed = CasePolicy.Case(id: try open.int64("id"), device: device, alarmID: cancel.alarmID, state: .closed)
                // The person's own withdrawal: it closes the case whichever node works it.
                if let update = try Self.advance(sql, closed, at: at, owner: nil) { outcome.closedCase = (closed, update) }
            }
        default:
            break
        }
        return outcome
    }

    /// A message whose (device, id) is recorded already: a retransmission of the same content, or a conflict.
    private static func recordConflict(
        _ sql: any JournalSQL, device: UInt32, id: UInt32, message: Message, digest: [UInt8], at: WireTime, opensCase: Bool,
        context: WriteContext
    ) throws -> RecordOutcome {
        var outcome = RecordOutcome(isNew: false, alarmRecorded: false)
        let first = try sql.queryOne("SELECT digest FROM message WHERE device = ? AND id = ?", JournalValue(device), JournalValue(id))?
            .optionalBytes("digest")
        // No digest: recorded before digests were kept; the same content is the safe reading.
        guard let first, first != digest else { return outcome }
        if let known = try sql.queryOne(
            "SELECT reuse FROM message_conflict WHERE device = ? AND id = ? AND digest = ?",
            JournalValue(device), JournalValue(id), .bytes(digest))
        {
            outcome.idReused = Int(try known.int64("reuse"))  // a retransmission of the conflicting message
            return outcome
        }
        let reuse = try sql.queryOne(
            "SELECT COALESCE(MAX(reuse), 0) + 1 AS next FROM message_conflict WHERE device = ? AND id = ?",
            JournalValue(device), JournalValue(id))?.int64("next") ?? 1
        try sql.execute(
            "INSERT INTO message_conflict (device, id, reuse, kind, json, digest, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            JournalValue(device), JournalValue(id), .integer(reuse), .text(message.kind.name), .text(message.json),
            .bytes(digest), JournalValue(at))
        outcome.idReused = Int(reuse)
        if case .alarm(let alarm) = message {
            // A call for help under a reused id is still one: a case of its own.
            outcome.isNew = true
            if context.forwards { try queueForward(sql, device: device, message: message, at: at) }
            if opensCase {
                outcome.openedCase = try openCase(sql, device: device, alarmID: alarm.id, at: at, reuse: reuse, owner: context.node)
            }
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
        /// of the device was superseded by one another process opened must not report the device offline. An
        /// offline report is also not written while another node supervises the device (CenterJournal+Presence.swift).
        case supervision(device: UInt32, online: Bool, at: WireTime, ifAnchor: UInt64? = nil)
        /// An event from the DC-09 port; a retransmission of one received within `window` milliseconds is
        /// not new (CenterJournal+DC09.swift).
        case dc09Event(device: UInt32, DC09Event, at: WireTime, window: UInt64)
        /// A DC-09 receiver acknowledged these queued events (`--forward`): they leave the queue.
        case forwarded(rows: [Int64])

        /// A session anchor or a supervision report: it waits behind the writes devices and operators wait on
        /// (`JournalBatcher`).
        var waitsBehindOthers: Bool {
            switch self {
            case .anchor, .supervision: true
            case .message, .caseUpdate, .caseUpdateDelivered, .dc09Event, .forwarded: false
            }
        }

        /// The device whose rows the write reads and then writes (the journal holds them for the transaction).
        var device: UInt32? {
            switch self {
            case .anchor(let device, _, _), .message(let device, _, _, _, _), .supervision(let device, _, _, _),
                .dc09Event(let device, _, _, _):
                device
            case .caseUpdate(let changed, _): changed.device
            case .caseUpdateDelivered, .forwarded: nil
            }
        }
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
    /// read-only, its server gone — cannot write the others either): it throws, nothing of the batch is durable,
    /// and the caller must treat every write as failed and acknowledge none.
    ///
    /// On PostgreSQL a batch goes to the server in one round trip (`PostgresJournalBatch`) when it can.
    public func commit(_ writes: [Write]) throws -> [WriteOutcome] {
        if batchesInOneRoundTrip, let postgres = store as? PostgresJournalStore, !writes.isEmpty,
            writes.allSatisfy(PostgresJournalBatch.applies)
        {
            let batch = try PostgresJournalBatch.encode(writes, node: node, forwards: forwardsDC09)
            let result = try postgres.writeOneStatement { sql in
                try sql.queryOne("SELECT journal_apply(?::JSONB)::TEXT AS outcomes", .text(batch))?.string("outcomes")
            }
            guard let result else { throw JournalReadError(column: "journal_apply", found: "no result") }
            return try PostgresJournalBatch.decode(result, writes: writes)
        }
        let devices = Array(Set(writes.compactMap(\.device))).sorted()
        return try write(locking: devices) { sql in try writes.map { try Self.apply($0, sql, context: self.writeContext) } }
    }

    private static func apply(_ write: Write, _ sql: any JournalSQL, context: WriteContext) throws -> WriteOutcome {
        switch write {
        case .anchor(let device, let anchor, let epoch):
            return .anchor(try storeAnchor(sql, device: device, anchor: anchor, epoch: epoch, node: context.node))
        case .message(let device, let message, let at, let opensCase, let note):
            return .recorded(try record(sql, device: device, message: message, at: at, opensCase: opensCase, note: note, context: context))
        case .caseUpdate(let changed, let at):
            return .caseUpdate(try advance(sql, changed, at: at, owner: context.node))
        case .caseUpdateDelivered(let id, let at):
            try caseUpdateDelivered(sql, id, at: at)
            return .stored
        case .supervision(let device, let online, let at, let anchor):
            return .supervision(written: try recordSupervision(sql, device: device, online: online, at: at, ifAnchor: anchor, node: context.node))
        case .dc09Event(let device, let event, let at, let window):
            let (message, outcome) = try recordDC09(sql, device: device, event: event, at: at, window: window, context: context)
            return .dc09Recorded(message, outcome)
        case .forwarded(let rows):
            try removeForwarded(sql, rows: rows)
            return .stored
        }
    }

    /// Every recorded alarm, in the order received.
    public func alarms() throws -> [RecordedAlarm] {
        try read { sql in try Self.fetchAlarms(sql) }
    }

    static func fetchAlarms(_ sql: any JournalSQL) throws -> [RecordedAlarm] {
        try sql.query("SELECT device, id, received_at FROM message WHERE kind = 'alarm' ORDER BY received_at, device, id").map { row in
            RecordedAlarm(device: try row.uint32("device"), alarmID: try row.uint32("id"), receivedAt: try row.wireTime("received_at"))
        }
    }

    // MARK: Cases

    private static func openCase(
        _ sql: any JournalSQL, device: UInt32, alarmID: UInt32, at: WireTime, reuse: Int64 = 0, owner: String?
    ) throws -> (CasePolicy.Case, CaseUpdate) {
        guard
            let row = try sql.queryOne(
                """
                INSERT INTO dispatch_case (device, alarm_id, reuse, state, opened_at, updated_at, owner) VALUES (?, ?, ?, ?, ?, ?, ?)
                RETURNING id
                """,
                JournalValue(device), JournalValue(alarmID), .integer(reuse), JournalValue(Int(CaseState.received.rawValue)),
                JournalValue(at), JournalValue(at), owner.map { .text($0) } ?? .null)
        else { throw JournalReadError(column: "dispatch_case.id", found: "no row returned") }
        let caseID = try row.int64("id")
        let update = try insertUpdate(sql, caseID: caseID, alarmID: alarmID, state: .received, at: at)
        return (CasePolicy.Case(id: caseID, device: device, alarmID: alarmID, state: .received, openedAt: at), update)
    }

    /// Records a case's new state; returns the update to send, or `nil` if the case is already at or past
    /// that state (states only move forward), or another node works it now.
    public func updateCase(_ changed: CasePolicy.Case, at: WireTime) throws -> CaseUpdate? {
        try write(locking: [changed.device]) { sql in try Self.advance(sql, changed, at: at, owner: node) }
    }

    /// With `owner`, only a case of that node's (or of none): a node whose lease lapsed, and whose cases
    /// another took over, changes nothing of them.
    private static func advance(_ sql: any JournalSQL, _ changed: CasePolicy.Case, at: WireTime, owner: String?) throws -> CaseUpdate? {
        let state = JournalValue(Int(changed.state.rawValue))
        let moved =
            try owner.map { owner in
                try sql.execute(
                    "UPDATE dispatch_case SET state = ?, updated_at = ? WHERE id = ? AND state < ? AND (owner IS NULL OR owner = ?)",
                    state, JournalValue(at), .integer(changed.id), state, .text(owner))
            }
            ?? sql.execute(
                "UPDATE dispatch_case SET state = ?, updated_at = ? WHERE id = ? AND state < ?",
                state, JournalValue(at), .integer(changed.id), state)
        guard moved == 1 else { return nil }
        return try insertUpdate(sql, caseID: changed.id, alarmID: changed.alarmID, state: changed.state, at: at)
    }

    /// The device acknowledged case update `id`.
    public func caseUpdateDelivered(_ id: UInt32, at: WireTime) throws {
        try write { sql in try Self.caseUpdateDelivered(sql, id, at: at) }
    }

    private static func caseUpdateDelivered(_ sql: any JournalSQL, _ id: UInt32, at: WireTime) throws {
        try sql.execute("UPDATE case_update SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL", JournalValue(at), JournalValue(id))
    }

    /// Cases not closed, oldest first.
    public func openCases() throws -> [CasePolicy.Case] {
        try read { sql in
            try sql.query(
                "SELECT id, device, alarm_id, state, opened_at FROM dispatch_case WHERE state < ? ORDER BY id",
                JournalValue(Int(CaseState.closed.rawValue))
            ).map(Self.openCase)
        }
    }

    /// Case updates sent but never acknowledged, oldest first.
    public func undeliveredUpdates() throws -> [PendingUpdate] {
        try read { sql in
            try sql.query(
                """
                SELECT u.id, u.state, u.at, c.device, c.alarm_id FROM case_update u
                JOIN dispatch_case c ON c.id = u.case_id WHERE u.delivered_at IS NULL ORDER BY u.id
                """
            ).map(Self.pendingUpdate)
        }
    }

    // MARK: Supervision (CenterJournal+Presence.swift)

    /// Supervision reports of `device`, oldest first: `true` online, `false` offline.
    public func supervision(device: UInt32) throws -> [Bool] {
        try read { sql in
            try sql.query("SELECT online FROM supervision WHERE device = ? ORDER BY \(sql.dialect.supervisionOrder)", JournalValue(device))
                .map { try $0.bool("online") }
        }
    }

    private static func insertUpdate(
        _ sql: any JournalSQL, caseID: Int64, alarmID: UInt32, state: CaseState, at: WireTime
    ) throws -> CaseUpdate {
        guard
            let row = try sql.queryOne(
                "INSERT INTO case_update (case_id, state, at) VALUES (?, ?, ?) RETURNING id",
                .integer(caseID), JournalValue(Int(state.rawValue)), JournalValue(at))
        else { throw JournalReadError(column: "case_update.id", found: "no row returned") }
        // The row id is the update's message id: unique for the journal's life, so a device that dedupes
        // centre messages by id never mistakes a new update for an old one, even across centre restarts.
        return CaseUpdate(id: try row.uint32("id"), alarmID: alarmID, state: state, at: at)
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
