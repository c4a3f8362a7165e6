/// Which node supervises each device (`device_presence`): the journal's answer to "who reports this device
/// offline if it falls silent", so that a device is supervised by exactly one node even when nodes die.
///
/// - `supervision` keeps every report (the history the console shows); `device_presence` holds each device's
///   latest one and the node that wrote it: the node that supervises the device.
/// - A node that opens a session of the device (its anchor rises) supervises it from then on.
/// - An offline report is written, and told, only while no other node supervises the device: a device that
///   moved to another node (its secondary path) is not offline because the first one stopped hearing it.
/// - Each lease renewal (CenterJournal+Lease.swift) takes over the online devices of nodes whose lease lapsed
///   (and of no node: journals older than this table); with `reclaimingOwn`, at start, the node's own too. The
///   node then supervises them as if it had just heard them: one it does not hear from within its
///   `offlineAfter` is reported offline, by this node, once. Without this a device whose node died, and which
///   died with it (or whose person unplugged it), would be reported offline by no one.
extension CenterJournal {
    /// Writes a supervision report; returns false when it was not written: an offline report of a device
    /// another node supervises, or one whose `ifAnchor` is no longer the device's stored anchor.
    static func recordSupervision(
        _ sql: any JournalSQL, device: UInt32, online: Bool, at: WireTime, ifAnchor anchor: UInt64?, node: String?
    ) throws -> Bool {
        if !online, let node,
            try sql.queryOne("SELECT node FROM device_presence WHERE device = ? AND node <> ?", JournalValue(device), .text(node)) != nil
        {
            return false
        }
        if let anchor {
            let stored = try sql.queryOne("SELECT anchor FROM device WHERE id = ?", JournalValue(device))?.int64("anchor")
            guard stored == Int64(clamping: anchor) else { return false }
        }
        try sql.execute(
            "INSERT INTO supervision (device, online, at) VALUES (?, ?, ?)", JournalValue(device), JournalValue(online), JournalValue(at))
        try sql.execute(
            """
            INSERT INTO device_presence (device, node, online, at) VALUES (?, ?, ?, ?)
            ON CONFLICT (device) DO UPDATE SET node = excluded.node, online = excluded.online, at = excluded.at
            """,
            JournalValue(device), node.map { .text($0) } ?? .null, JournalValue(online), JournalValue(at))
        return true
    }

    public func recordSupervision(device: UInt32, online: Bool, at: WireTime) throws {
        try write(locking: [device]) { sql in
            _ = try Self.recordSupervision(sql, device: device, online: online, at: at, ifAnchor: nil, node: node)
        }
    }

    /// A session of `device` opened at `node`: the node supervises it now.
    static func movePresence(_ sql: any JournalSQL, device: UInt32, to node: String?) throws {
        guard let node else { return }
        try sql.execute("UPDATE device_presence SET node = ? WHERE device = ?", .text(node), JournalValue(device))
    }

    /// Gives `node` the online devices of nodes whose lease ended before `now` (and of no node), with
    /// `reclaimingOwn` its own too; returns them. A statement a term (`PresenceAdoption`).
    static func adoptPresence(_ sql: any JournalSQL, node: String, now: Int64, reclaimingOwn: Bool) throws -> [UInt32] {
        // Its own first: the devices of no node and of lapsed nodes are its own once taken.
        var rows = reclaimingOwn ? try sql.query(PresenceAdoption.own, .text(node)) : []
        rows += try sql.query(PresenceAdoption.ofNoNode, .text(node))
        rows += try sql.query(PresenceAdoption.ofLapsedNodes, .text(node), .integer(now), .text(node))
        return try rows.map { try $0.uint32("device") }
    }

    /// The statements of `adoptPresence`, which every lease renewal runs (every 2.5 s by default). One statement
    /// a term, each a search of the index of online devices by node: SQLite plans the terms joined
    /// (`node IS NULL OR node IN (…)`) as a scan of that whole index, every online device read at every renewal.
    /// With a million devices online that was 0.11 s of the journal's writer every 2.5 s, which the alarms
    /// written meanwhile waited behind (docs/benchmarks.md, "Issue 19's table, re-measured").
    enum PresenceAdoption {
        static let ofNoNode = "UPDATE device_presence SET node = ? WHERE online = 1 AND node IS NULL RETURNING device"
        static let ofLapsedNodes = """
            UPDATE device_presence SET node = ? WHERE online = 1
            AND node IN (SELECT c.node FROM centre_node c WHERE c.lease_until < ? AND c.node <> ?) RETURNING device
            """
        /// At start: the devices the node's previous run left online are its own already.
        static let own = "SELECT device FROM device_presence WHERE online = 1 AND node = ?"
    }

    /// The node that supervises `device`, and whether its latest report is online (`nil`: never reported).
    public func presence(of device: UInt32) throws -> (node: String?, online: Bool)? {
        try read { sql in
            try sql.queryOne("SELECT node, online FROM device_presence WHERE device = ?", JournalValue(device)).map {
                (try $0.optionalString("node"), try $0.bool("online"))
            }
        }
    }
}
