import Testing

@testable import DeviceKit

/// Which node supervises each device (CenterJournal+Presence.swift), on both databases and through both write
/// paths (a batch, on PostgreSQL `journal_apply`; a single write, statements): the node that reports a device
/// online or opens its session supervises it, no other node reports it offline, and the online devices of a
/// node whose lease lapsed (or of a node's previous run, or of no node) go to the node that renews next, once.
@Suite struct DevicePresenceTests {
    static func offline(_ journal: CenterJournal, _ device: UInt32, at: WireTime, ifAnchor anchor: UInt64? = nil) throws -> Bool {
        try journal.commit([.supervision(device: device, online: false, at: at, ifAnchor: anchor)]) == [.supervision(written: true)]
    }

    @Test(arguments: JournalBackend.allCases)
    func aLapsedNodesOnlineDevicesAreSupervisedByTheNextNodeOnce(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            let (a, b, c) = (try CenterJournal(location, node: "a"), try CenterJournal(location, node: "b"), try CenterJournal(location, node: "c"))
            for node in [a, b, c] { _ = try node.renewLease(for: .seconds(30), reclaimingOwn: true) }
            // Devices 1 and 2 come online at a in a batch, 3 by a single write; 4 comes and goes at a.
            _ = try a.commit([.supervision(device: 1, online: true, at: 100), .supervision(device: 2, online: true, at: 100)])
            try a.recordSupervision(device: 3, online: true, at: 101)
            try a.recordSupervision(device: 4, online: true, at: 101)
            #expect(try Self.offline(a, 4, at: 102))
            #expect(try a.presence(of: 1)! == ("a", true))
            #expect(try a.presence(of: 4)! == ("a", false))
            #expect(try a.presence(of: 9) == nil)

            // While a's lease holds, b takes none of them and cannot report them offline.
            #expect(try b.renewLease(for: .seconds(30)).supervised.isEmpty)
            #expect(try !Self.offline(b, 1, at: 110))
            #expect(try b.supervision(device: 1) == [true])

            // a's lease lapses: b's next renewal takes its online devices (not 4, offline), and only b's.
            _ = try a.renewLease(for: .seconds(-1))
            #expect(try b.renewLease(for: .seconds(30)).supervised.sorted() == [1, 2, 3])
            #expect(try c.renewLease(for: .seconds(30)).supervised.isEmpty, "given once")
            #expect(try b.presence(of: 2)! == ("b", true))

            // Device 2 opens a session at c (its anchor rises there): c supervises it, so b's report of it
            // offline is not written; nor is a's, back, of device 3; b's of device 3 is.
            #expect(try c.commit([.anchor(device: 2, anchor: 5_000)]) == [.anchor(.init(raised: true, stored: 5_000))])
            #expect(try c.presence(of: 2)! == ("c", true))
            #expect(try !Self.offline(b, 2, at: 120))
            #expect(try !Self.offline(a, 3, at: 120))
            #expect(try Self.offline(b, 3, at: 121))
            #expect(try b.supervision(device: 3) == [true, false])
            #expect(try b.presence(of: 3)! == ("b", false))
            // A stale anchor: c's session of device 2 was superseded by one of d's (the statements' path).
            _ = try c.storeAnchor(device: 2, anchor: 6_000)
            #expect(try !Self.offline(c, 2, at: 130, ifAnchor: 5_000))
            #expect(try Self.offline(c, 2, at: 131, ifAnchor: 6_000))
            for node in [a, b, c] { try node.close() }
        }
    }

    /// A node's next run supervises the devices its previous run left online (a restart under its name), and
    /// the first node to renew takes the online devices of no node (a journal older than `device_presence`,
    /// or one written without a node).
    @Test(arguments: JournalBackend.allCases)
    func aRestartedNodeSupervisesWhatItLeftOnlineAndNobodysDevicesAreTaken(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            let old = try CenterJournal(location)
            try old.recordSupervision(device: 7, online: true, at: 100)
            #expect(try old.presence(of: 7)! == (nil, true))
            let a = try CenterJournal(location, node: "a")
            #expect(try a.renewLease(for: .seconds(30), reclaimingOwn: true).supervised == [7])
            try a.recordSupervision(device: 8, online: true, at: 101)
            #expect(try a.renewLease(for: .seconds(30)).supervised.isEmpty)
            let again = try CenterJournal(location, node: "a")
            #expect(try again.renewLease(for: .seconds(30), reclaimingOwn: true).supervised.sorted() == [7, 8])
            let b = try CenterJournal(location, node: "b")
            #expect(try b.renewLease(for: .seconds(30), reclaimingOwn: true).supervised.isEmpty)
            for journal in [old, a, again, b] { try journal.close() }
        }
    }

    /// Every lease renewal adopts devices by these statements; each must search the index of online devices by
    /// node, not read all of it: with a million devices online a scan held the journal's writer 0.11 s every
    /// renewal. SQLite's plan is checked (PostgreSQL plans by its statistics, which an empty test table lacks).
    @Test func adoptingDevicesSearchesTheIndexOfOnlineDevicesRatherThanReadingItAll() throws {
        let journal = try CenterJournal(try JournalBackend.sqlite.newLocation(), node: "a")
        defer { try? journal.close() }
        let statements: [(String, [JournalValue])] = [
            (CenterJournal.PresenceAdoption.ofNoNode, [.text("a")]),
            (CenterJournal.PresenceAdoption.ofLapsedNodes, [.text("a"), .integer(1), .text("a")]),
            (CenterJournal.PresenceAdoption.own, [.text("a")]),
        ]
        for (statement, arguments) in statements {
            let plan = try journal.read { sql in try sql.query("EXPLAIN QUERY PLAN " + statement, arguments).map { try $0.string("detail") } }
            #expect(plan.contains { $0.hasPrefix("SEARCH device_presence USING INDEX device_presence_node") }, "\(statement): \(plan)")
            #expect(!plan.contains { $0.hasPrefix("SCAN device_presence") }, "\(statement): \(plan)")
        }
    }
}
