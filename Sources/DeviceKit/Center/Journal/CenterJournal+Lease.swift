/// Centre nodes that share one journal (PostgreSQL, or SQLite between `--workers`) share its cases: each case
/// is worked by one node at a time, its owner (`dispatch_case.owner`), and a node holds its cases by a lease in
/// the journal (`centre_node.lease_until`) that it renews every quarter of the lease.
///
/// - A node owns the cases it opens (the batch that records the alarm writes the owner).
/// - A node changes only its own cases, and cases of no node (`advance` checks the owner in the statement that
///   changes the state): a node whose lease lapsed while it could not reach the journal, and whose cases another
///   node took over meanwhile, changes nothing of them when it comes back. The person's own withdrawal (a cancel)
///   closes a case whichever node works it.
/// - Each renewal takes over the open cases of nodes whose lease lapsed (and of no node), with the closed ones
///   whose last updates the device never acknowledged, and says which open cases are still the node's own: the
///   node forgets one it holds that is not (another node took it over, or the device's cancel closed it).
/// - The journal's own clock decides (`clockMilliseconds`): nodes on several hosts need not agree on the time.
///
/// A node that starts takes back its own cases too (a restart under the same `--node` name). The same renewal
/// hands over the supervision of the devices such nodes supervised (CenterJournal+Presence.swift).
public struct CaseLeaseRenewal: Sendable {
    /// Open cases this renewal gave the node: to work (the automatic operator's timers, the console's list).
    public var claimed: [CasePolicy.Case] = []
    /// Updates of the cases given to the node (open or closed) that their devices never acknowledged: to send.
    public var undelivered: [CenterJournal.PendingUpdate] = []
    /// Every open case the node owns now, the ones just given included.
    public var owned: Set<Int64> = []
    /// The nodes whose cases were taken over, for the log.
    public var from: Set<String> = []
    /// Online devices whose supervision this renewal gave the node (CenterJournal+Presence.swift): to report
    /// offline unless heard from within the node's `offlineAfter`.
    public var supervised: [UInt32] = []
    /// Another process renewed this node's lease since this one last did: two nodes were given the same
    /// `--node` name, and would both work its cases. Not known at the first renewal (a restart finds its
    /// previous run's mark).
    public var nameShared = false
    /// The other nodes whose lease is in force (the follower reads their case updates only while there are some).
    public var liveNodes: [String] = []
}

/// A lease renewed without a node: the journal was opened for no node (`CenterJournal(node: nil)`).
public struct CaseLeaseWithoutNode: Error, CustomStringConvertible {
    public var description: String { "the journal was opened for no centre node: cases cannot be leased" }
}

extension CenterJournal {
    /// Renews this node's lease for `duration` and takes over the cases due to it (see the type's
    /// documentation); with `reclaimingOwn` (at start) also the node's own, left by its previous run.
    public func renewLease(for duration: Duration, reclaimingOwn: Bool = false) throws -> CaseLeaseRenewal {
        guard let node else { throw CaseLeaseWithoutNode() }
        return try write { sql in
            let now = try Self.clockMilliseconds(sql)
            var renewal = CaseLeaseRenewal()
            if !reclaimingOwn, let last = try sql.queryOne("SELECT run FROM centre_node WHERE node = ?", .text(node))?.optionalString("run") {
                renewal.nameShared = last != run
            }
            try sql.execute(
                """
                INSERT INTO centre_node (node, lease_until, run) VALUES (?, ?, ?)
                ON CONFLICT (node) DO UPDATE SET lease_until = excluded.lease_until, run = excluded.run
                """,
                .text(node), .integer(now + duration.milliseconds), .text(run))
            // Whose cases are free: of no node, or of a node with no lease in force (never renewed, or lapsed).
            let free = "(owner IS NULL OR (owner <> ? AND owner NOT IN (SELECT node FROM centre_node WHERE lease_until >= ?)))"
            let due = reclaimingOwn ? "(owner = ? OR \(free))" : free
            let arguments: [JournalValue] = (reclaimingOwn ? [.text(node)] : []) + [.text(node), .integer(now)]
            let closed = JournalValue(Int(CaseState.closed.rawValue))
            let others = "SELECT DISTINCT owner FROM dispatch_case WHERE state < ? AND owner IS NOT NULL AND \(free)"
            for row in try sql.query(others, [closed, .text(node), .integer(now)]) {
                if let owner = try row.optionalString("owner") { renewal.from.insert(owner) }
            }
            renewal.claimed = try sql.query(
                "UPDATE dispatch_case SET owner = ? WHERE state < ? AND \(due) RETURNING id, device, alarm_id, state, opened_at",
                [.text(node), closed] + arguments
            ).map(Self.openCase)
            let closedClaimed = try sql.query(
                """
                UPDATE dispatch_case SET owner = ? WHERE state >= ? AND \(due)
                AND id IN (SELECT case_id FROM case_update WHERE delivered_at IS NULL) RETURNING id
                """,
                [.text(node), closed] + arguments
            ).map { try $0.int64("id") }
            let given = renewal.claimed.map(\.id) + closedClaimed
            if !given.isEmpty {
                let marks = Array(repeating: "?", count: given.count).joined(separator: ", ")
                renewal.undelivered = try sql.query(
                    """
                    SELECT u.id, u.state, u.at, c.device, c.alarm_id FROM case_update u
                    JOIN dispatch_case c ON c.id = u.case_id WHERE u.delivered_at IS NULL AND c.id IN (\(marks)) ORDER BY u.id
                    """,
                    given.map { .integer($0) }
                ).map(Self.pendingUpdate)
            }
            renewal.supervised = try Self.adoptPresence(sql, node: node, now: now, reclaimingOwn: reclaimingOwn)
            renewal.liveNodes = try sql.query("SELECT node FROM centre_node WHERE lease_until >= ? AND node <> ?", [.integer(now), .text(node)])
                .map { try $0.string("node") }
            renewal.owned = Set(
                try sql.query("SELECT id FROM dispatch_case WHERE state < ? AND owner = ?", [closed, .text(node)]).map { try $0.int64("id") })
            return renewal
        }
    }

    /// Takes or renews lease `name` for `holder`, for `duration` from now on the journal's clock: true when
    /// `holder` holds it now (it did, or nobody's lease was in force), false when another holder's is.
    public func holdLease(_ name: String, holder: String, for duration: Duration) throws -> Bool {
        try write { sql in
            let now = try Self.clockMilliseconds(sql)
            return try sql.execute(
                """
                INSERT INTO journal_lease (name, holder, lease_until) VALUES (?, ?, ?)
                ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, lease_until = excluded.lease_until
                WHERE journal_lease.holder = excluded.holder OR journal_lease.lease_until < ?
                """,
                .text(name), .text(holder), .integer(now + duration.milliseconds), .integer(now)) == 1
        }
    }

    /// Gives lease `name` up, if `holder` holds it: another may take it at once.
    public func releaseLease(_ name: String, holder: String) throws {
        try write { sql in _ = try sql.execute("DELETE FROM journal_lease WHERE name = ? AND holder = ?", .text(name), .text(holder)) }
    }

    /// Now on the journal's clock, in milliseconds since the Unix epoch.
    static func clockMilliseconds(_ sql: any JournalSQL) throws -> Int64 {
        let expression =
            switch sql.dialect {
            case .sqlite: "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
            case .postgres: "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
            }
        guard let now = try sql.queryOne("SELECT \(expression) AS now")?.int64("now") else {
            throw JournalReadError(column: "now", found: "no row returned")
        }
        return now
    }

    /// The owner of case `id` while it is open (`nil`: closed, no such case, or no node's).
    public func openCaseOwner(_ id: Int64) throws -> String? {
        try read { sql in
            try sql.queryOne("SELECT owner FROM dispatch_case WHERE id = ? AND state < ?", .integer(id), JournalValue(Int(CaseState.closed.rawValue)))?
                .optionalString("owner")
        }
    }

    /// The owner of case `id` (`nil`: no node, or no such case).
    public func owner(ofCase id: Int64) throws -> String? {
        try read { sql in try sql.queryOne("SELECT owner FROM dispatch_case WHERE id = ?", .integer(id))?.optionalString("owner") }
    }

    static func openCase(_ row: JournalRow) throws -> CasePolicy.Case {
        CasePolicy.Case(
            id: try row.int64("id"), device: try row.uint32("device"), alarmID: try row.uint32("alarm_id"),
            state: CaseState(rawValue: UInt8(truncatingIfNeeded: try row.int64("state"))), openedAt: try row.wireTime("opened_at"))
    }

    static func pendingUpdate(_ row: JournalRow) throws -> PendingUpdate {
        PendingUpdate(
            device: try row.uint32("device"),
            update: CaseUpdate(
                id: try row.uint32("id"), alarmID: try row.uint32("alarm_id"),
                state: CaseState(rawValue: UInt8(truncatingIfNeeded: try row.int64("state"))), at: try row.wireTime("at")))
    }
}
