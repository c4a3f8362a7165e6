import Foundation

/// What other nodes do with their cases, read back from the journal so that every node's event stream
/// (`--json`) and console show every case (CenterRuntime+Follow.swift). Case updates are read in the order of
/// their ids after a cursor; on PostgreSQL several nodes' transactions commit in another order than they took
/// their ids, so an id skipped by a read may still appear: the follower keeps such gaps and asks for them
/// again for a while (`FollowCursor`).
public struct FollowedCaseUpdate: Hashable, Sendable {
    public var caseID: Int64
    public var device: UInt32
    public var update: CaseUpdate
    /// The case's owner when read (`nil`: no node's).
    public var owner: String?
    /// For the update that opened the case (`received`): its alarm, from the journal's recorded form.
    public var alarm: Alarm?
}

extension CenterJournal {
    /// The highest case update id so far (0 for none): where a follower that starts now begins.
    public func lastCaseUpdateID() throws -> Int64 {
        try read { sql in try sql.queryOne("SELECT COALESCE(MAX(id), 0) AS last FROM case_update")?.int64("last") ?? 0 }
    }

    /// Where a follower that paused at `cursor` (no other node lived) starts again: just before the first
    /// update after it of a case another node owns, or at the last update if there is none.
    public func resumeCursor(after cursor: Int64) throws -> Int64 {
        try read { sql in
            let first = try sql.queryOne(
                """
                SELECT MIN(u.id) AS first FROM case_update u JOIN dispatch_case c ON c.id = u.case_id
                WHERE u.id > ? AND c.owner IS NOT NULL AND c.owner <> ?
                """, .integer(cursor), .text(node ?? ""))?.optionalInt64("first")
            return try first.map { $0 - 1 } ?? sql.queryOne("SELECT COALESCE(MAX(id), 0) AS last FROM case_update")?.int64("last") ?? cursor
        }
    }

    /// Case updates with ids above `cursor`, or among `gaps`, in id order, at most `limit`.
    public func caseUpdates(after cursor: Int64, orAmong gaps: [Int64] = [], limit: Int) throws -> [FollowedCaseUpdate] {
        try read { sql in
            let among = gaps.isEmpty ? "" : " OR u.id IN (\(Array(repeating: "?", count: gaps.count).joined(separator: ", ")))"
            return try sql.query(
                """
                SELECT u.id, u.case_id, u.state, u.at, c.device, c.alarm_id, c.owner, m.json FROM case_update u
                JOIN dispatch_case c ON c.id = u.case_id
                LEFT JOIN message m ON u.state = 1 AND c.reuse = 0 AND m.device = c.device AND m.id = c.alarm_id AND m.kind = 'alarm'
                WHERE u.id > ?\(among) ORDER BY u.id LIMIT ?
                """,
                [.integer(cursor)] + gaps.map { .integer($0) } + [JournalValue(limit)]
            ).map { row in
                let alarmID = try row.uint32("alarm_id")
                let owner = try row.optionalString("owner")
                return FollowedCaseUpdate(
                    caseID: try row.int64("case_id"), device: try row.uint32("device"),
                    update: CaseUpdate(
                        id: try row.uint32("id"), alarmID: alarmID,
                        state: CaseState(rawValue: UInt8(truncatingIfNeeded: try row.int64("state"))), at: try row.wireTime("at")),
                    owner: owner,
                    // This node's own are read past, not shown: their alarms are not decoded.
                    alarm: owner != nil && owner == node ? nil : try row.optionalString("json").flatMap { Alarm(recordedJSON: $0, id: alarmID) })
            }
        }
    }
}

/// A follower's place in the journal's case updates: the highest id read, and the ids below it not read yet
/// (another node's transaction that had taken them had not committed; or one rolled back, and they never
/// come), each asked for again until `gapLifetime` after it was first missed. Pure: time comes in as `now`.
public struct FollowCursor: Sendable {
    public private(set) var last: Int64
    private var gaps: [Int64: Duration] = [:]
    public let gapLifetime: Duration
    /// The most gaps kept (the oldest are given up first past it).
    public let gapLimit: Int

    public init(last: Int64, gapLifetime: Duration = .seconds(30), gapLimit: Int = 4_096) {
        self.last = last
        self.gapLifetime = gapLifetime
        self.gapLimit = gapLimit
    }

    /// The gaps to ask for again, oldest first.
    public var openGaps: [Int64] { gaps.keys.sorted() }

    /// Takes the ids a read returned (in any order); returns those not seen before (every one of them, once).
    public mutating func read(_ ids: [Int64], now: Duration) -> Set<Int64> {
        var fresh = Set<Int64>()
        for id in ids.sorted() {
            if id > last {
                if id > last + 1 {
                    // Ids skipped: at most the limit's worth are remembered (a huge jump is a restarted sequence).
                    for missing in max(last + 1, id - Int64(gapLimit))..<id { gaps[missing] = now }
                }
                last = id
                fresh.insert(id)
            } else if gaps.removeValue(forKey: id) != nil {
                fresh.insert(id)
            }
        }
        gaps = gaps.filter { now - $0.value < gapLifetime }
        if gaps.count > gapLimit {
            for id in gaps.keys.sorted().prefix(gaps.count - gapLimit) { gaps[id] = nil }
        }
        return fresh
    }
}

extension Alarm {
    /// The alarm `id` from its recorded form in the journal (`Message.json`); nil if that is not an alarm's.
    init?(recordedJSON json: String, id: UInt32) {
        struct Stored: Decodable {
            var kind: AlarmKind
            var triggeredAt: WireTime
            var battery: UInt8?
            var flags: UInt8
            var pressCount: UInt16?
            var holdMilliseconds: UInt16?
        }
        guard let stored = try? JSONDecoder().decode(Stored.self, from: Data(json.utf8)) else { return nil }
        self.init(
            id: id, kind: stored.kind, triggeredAt: stored.triggeredAt, battery: stored.battery ?? 255, flags: AlarmFlags(rawValue: stored.flags),
            pressCount: stored.pressCount, holdMilliseconds: stored.holdMilliseconds)
    }
}
