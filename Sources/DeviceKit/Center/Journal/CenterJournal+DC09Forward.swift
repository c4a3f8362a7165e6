import Foundation

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

    /// The code a recorded message goes to the receivers with, or nil for one DC-09 does not carry.
    static func forwardCode(_ sql: any JournalSQL, device: UInt32, message: Message) throws -> DC09EventCode? {
        switch message {
        case .alarm(let alarm):
            return DC09EventCodes.alarm(alarm.kind)
        case .alarmCancel(let cancel):
            // The cancel names the zone of its alarm: the alarm's kind is in its recorded JSON. A cancel that
            // came before its alarm (UDP reordering) names zone 1, the call button.
            let json = try sql.queryOne(
                "SELECT json FROM message WHERE device = ? AND kind = 'alarm' AND id = ?", JournalValue(device),
                JournalValue(cancel.alarmID))?.string("json")
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

    static func queueForward(_ sql: any JournalSQL, device: UInt32, message: Message, at: WireTime) throws {
        guard let id = message.reliableID, let code = try forwardCode(sql, device: device, message: message) else { return }
        try sql.execute(
            """
            INSERT INTO dc09_forward (device, message_id, sia, qualifier, contact_id, zone, meaning, queued_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            JournalValue(device), JournalValue(id), .text(code.sia), JournalValue(code.qualifier), JournalValue(code.contactID),
            JournalValue(code.zone), .text(code.meaning), JournalValue(at))
    }

    static func removeForwarded(_ sql: any JournalSQL, rows: [Int64]) throws {
        for row in rows { try sql.execute("DELETE FROM dc09_forward WHERE id = ?", .integer(row)) }
    }

    /// Up to `limit` queued events after row `after` or among `gaps` (ids skipped by an earlier read: see
    /// `FollowCursor`), oldest first, and how many are queued in all.
    public func forwardQueue(after: Int64, orAmong gaps: [Int64] = [], limit: Int) throws -> (rows: [ForwardRow], depth: Int) {
        try read { sql in
            let among = gaps.isEmpty ? "" : " OR id IN (\(Array(repeating: "?", count: gaps.count).joined(separator: ", ")))"
            let rows = try sql.query(
                """
                SELECT id, device, sia, qualifier, contact_id, zone, meaning FROM dc09_forward
                WHERE id > ?\(among) ORDER BY id LIMIT ?
                """, [.integer(after)] + gaps.map { .integer($0) } + [JournalValue(limit)]
            ).map { row in
                ForwardRow(
                    id: try row.int64("id"), device: try row.uint32("device"),
                    code: DC09EventCode(
                        sia: try row.string("sia"), qualifier: Int(try row.int64("qualifier")),
                        contactID: Int(try row.int64("contact_id")), zone: Int(try row.int64("zone")),
                        meaning: try row.string("meaning")))
            }
            return (rows, try Self.forwardQueueDepth(sql))
        }
    }

    /// How many events are queued.
    public func forwardQueueDepth() throws -> Int {
        try read { sql in try Self.forwardQueueDepth(sql) }
    }

    private static func forwardQueueDepth(_ sql: any JournalSQL) throws -> Int {
        Int(try sql.queryOne("SELECT COUNT(*) AS depth FROM dc09_forward")?.int64("depth") ?? 0)
    }
}
