import Foundation
import GRDB

/// The gateway's durable queue (`devicesim center --forward dc09://…`, docs/dc09.md): each new case event
/// the DC-09 code table carries becomes a row of `dc09_forward` in the transaction that records the message,
/// and leaves it only when a receiver acknowledged it (`Write.forwarded`). So an event is queued exactly when
/// it is recorded as new (a retransmission from the device is not queued again), survives a restart of the
/// centre, and the queue's order is the order the journal recorded events in.
///
/// The row id is `AUTOINCREMENT`: never reused, even after the rows before it left, so a row's DC-09
/// sequence number (drawn from its id) is the same on every retransmission and across restarts.
extension CenterJournal {
    /// One queued event: which device, what the table calls it, when it happened (the device's time).
    public struct ForwardRow: Hashable, Sendable {
        public var id: Int64
        public var device: UInt32
        public var code: DC09EventCode

        public init(id: Int64, device: UInt32, code: DC09EventCode) {
            self.id = id
            self.device = device
            self.code = code
        }
    }

    static func registerDC09ForwardMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3-dc09-forward") { db in
            try db.execute(
                sql: """
                    CREATE TABLE dc09_forward (
                        id INTEGER PRIMARY KEY AUTOINCREMENT, device INTEGER NOT NULL, message_id INTEGER NOT NULL,
                        sia TEXT NOT NULL, qualifier INTEGER NOT NULL, contact_id INTEGER NOT NULL, zone INTEGER NOT NULL,
                        meaning TEXT NOT NULL, queued_at INTEGER NOT NULL);
                    """)
        }
    }

    /// The code a recorded message goes to the receivers with, or nil for one DC-09 does not carry.
    static func forwardCode(_ db: Database, device: UInt32, message: Message) throws -> DC09EventCode? {
        switch message {
        case .alarm(let alarm):
            return DC09EventCodes.alarm(alarm.kind)
        case .alarmCancel(let cancel):
            // The cancel names the zone of its alarm: the alarm's kind is in its recorded JSON. A cancel that
            // came before its alarm (UDP reordering) names zone 1, the call button.
            let json = try String.fetchOne(
                db.cachedStatement(sql: "SELECT json FROM message WHERE device = ? AND kind = 'alarm' AND id = ?"),
                arguments: [Int64(device), Int64(cancel.alarmID)])
            let kind = json.flatMap { try? JSONDecoder().decode(RecordedKind.self, from: Data($0.utf8)).kind } ?? .button
            return DC09EventCodes.cancel(kind)
        case .event(let event):
            return DC09EventCodes.event(event.kind)
        default:
            return nil
        }
    }

    private struct RecordedKind: Decodable {
        var kind: AlarmKind
    }

    static func queueForward(_ db: Database, device: UInt32, message: Message, at: WireTime) throws {
        guard let id = message.reliableID, let code = try forwardCode(db, device: device, message: message) else { return }
        try db.cachedStatement(sql: """
                INSERT INTO dc09_forward (device, message_id, sia, qualifier, contact_id, zone, meaning, queued_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(
            arguments: [
                Int64(device), Int64(id), code.sia, code.qualifier, code.contactID, code.zone, code.meaning, Int64(at),
            ])
    }

    static func removeForwarded(_ db: Database, rows: [Int64]) throws {
        let statement = try db.cachedStatement(sql: "DELETE FROM dc09_forward WHERE id = ?")
        for row in rows { try statement.execute(arguments: [row]) }
    }

    /// Up to `limit` queued events after row `after`, oldest first, and how many are queued in all.
    public func forwardQueue(after: Int64, limit: Int) throws -> (rows: [ForwardRow], depth: Int) {
        try read { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT id, device, sia, qualifier, contact_id, zone, meaning FROM dc09_forward
                    WHERE id > ? ORDER BY id LIMIT ?
                    """),
                arguments: [after, limit]
            ).map { row in
                ForwardRow(
                    id: row["id"], device: UInt32(truncatingIfNeeded: row["device"] as Int64),
                    code: DC09EventCode(
                        sia: row["sia"], qualifier: row["qualifier"], contactID: row["contact_id"], zone: row["zone"],
                        meaning: row["meaning"]))
            }
            return (rows, try Self.forwardQueueDepth(db))
        }
    }

    /// How many events are queued.
    public func forwardQueueDepth() throws -> Int {
        try read { db in try Self.forwardQueueDepth(db) }
    }

    private static func forwardQueueDepth(_ db: Database) throws -> Int {
        try Int.fetchOne(db.cachedStatement(sql: "SELECT COUNT(*) FROM dc09_forward")) ?? 0
    }
}
