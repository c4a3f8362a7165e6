import Foundation
import Testing

@testable import DeviceKit

/// The centre on a PostgreSQL journal (a throwaway cluster, tools/pg_cluster.sh): what it acknowledges is
/// committed there; two centre nodes on one database decide anchors and alarms once; a server that goes away
/// makes the centre answer `nak busy`, fail `/ready` and recover by itself; nothing acknowledged is lost
/// through a restart of the server.
@Suite(.serialized) struct CenterPostgresTests {
    static func start(_ configuration: PostgresJournalConfiguration, metricsPort: Int? = nil) async throws -> RunningCentre {
        try await RunningCentre.start(journal: "unused", metricsPort: metricsPort) { $0.journal = .postgres(configuration) }
    }

    @Test func twoNodesOnOneDatabaseAcknowledgeAnAlarmOnceCommittedAndRecordItOnce() async throws {
        let database = try await offThePool { try PostgresTestCluster.shared.newDatabase() }
        let first = try await Self.start(database)
        let second = try await Self.start(database)
        let device = try await TestDevice.connect(to: first, over: .datagram)
        #expect(try await device.handshake() != nil)
        try await device.send(.testAlarm(7))
        #expect(try await device.received { $0 == .ack(Ack(id: 7)) } != nil)
        #expect(try await offThePool { try CenterJournal(.postgres(database)).alarms().map(\.alarmID) } == [7], "committed before the ack")

        // The device's path to the first node fails; it reaches the second and sends the alarm again.
        let moved = try await TestDevice.connect(to: second)
        moved.setCounter(device.counter)
        #expect(try await moved.handshake() != nil, "the second node accepts the higher anchor the first one stored")
        try await moved.send(.testAlarm(7))
        #expect(try await moved.received { $0 == .ack(Ack(id: 7)) } != nil)
        _ = try await second.events.first { $0 == .duplicateAlarm(device: 1, alarmID: 7) }
        #expect(second.metric("center_alarms_recorded_total") == 0, "a retransmission to another node is not a new alarm")
        // A replay of the first session's start to the second node: its anchor is below the stored one.
        let replay = try await TestDevice.connect(to: second)
        replay.setCounter(0)
        try await replay.send(.sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [], bootCount: 1)))
        try await eventually("the replayed start is refused as stale") {
            second.metric(#"center_frames_refused_total{category="stale"}"#) == 1
        }
        await first.stop()
        await second.stop()
        let (alarms, cases) = try await offThePool {
            let journal = try CenterJournal(.postgres(database))
            return (try journal.alarms().map(\.alarmID), try journal.openCases().count)
        }
        #expect(alarms == [7])
        #expect(cases == 1, "one case, dispatched once")
    }

    /// Issue 18: a case is worked by one node at a time. Node a opens the case and has no automatic operator;
    /// it stops (its lease is not given back, as after SIGKILL). Once its 4 s lease lapses node b takes the case
    /// over, its automatic operator engages and closes it, and the device, now at b, hears every update it had
    /// not acknowledged, each state once in the journal.
    @Test func aStoppedNodesOpenCaseIsWorkedByTheOtherOnceItsLeaseLapses() async throws {
        let database = try await offThePool { try PostgresTestCluster.shared.newDatabase() }
        let first = try await Self.node("a", on: database) {
            $0.caseLease = .seconds(4)
        }
        let second = try await Self.node("b", on: database) {
            $0.caseLease = .seconds(4)
            $0.cases = CasePolicy.Configuration(autoEngageAfter: .milliseconds(100), autoCloseAfter: .milliseconds(100))
        }
        let device = try await TestDevice.connect(to: first, over: .datagram)
        try await device.handshake()
        try await device.send(.testAlarm(9))
        #expect(try await device.received { $0 == .ack(Ack(id: 9)) } != nil)
        let opened = try #require(try await first.server.openCases().first)
        #expect(try await second.server.openCases().isEmpty, "a's case, not b's")
        try await Self.leaseRenewed(of: "a", times: 2, in: database)
        #expect(try await second.server.openCases().isEmpty, "not taken while a renews its lease")

        await first.stop()
        let stopped = ContinuousClock.now
        _ = try await second.events.first { $0 == .caseUpdate(caseID: opened.id, device: 1, alarmID: 9, state: .closed) }
        let takeover = ContinuousClock.now - stopped
        #expect(takeover < .seconds(30), "within the lease and a renewal (a bound, not a measurement): \(takeover)")
        let moved = try await TestDevice.connect(to: second)
        moved.setCounter(device.counter)
        try await moved.handshake()
        let closed = try await moved.received { if case .caseUpdate(let u) = $0 { u.state == .closed } else { false } }
        #expect(closed != nil, "the device at b hears the close")
        let states = moved.messages.compactMap { if case .caseUpdate(let u) = $0 { u.state } else { nil } }
        #expect(states == [.received, .operatorEngaged, .closed], "every update it had not acknowledged, in order")
        await second.stop()
        let (owner, updates) = try await offThePool {
            let journal = try CenterJournal(.postgres(database))
            let updates = try PostgresTestCluster.shared.psql(
                "SELECT string_agg(state::text, ',' ORDER BY id) FROM case_update WHERE case_id = \(opened.id)", database: database.database)
            return (try journal.owner(ofCase: opened.id), updates.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(owner == "b")
        #expect(updates == "1,2,4", "received, engaged, closed: each once")
    }

    /// A centre node named `name` on `database`, configured further by `configure`.
    static func node(
        _ name: String, on database: PostgresJournalConfiguration, _ configure: (inout CenterConfiguration) -> Void = { _ in }
    ) async throws -> RunningCentre {
        try await RunningCentre.start(journal: "unused") {
            $0.journal = .postgres(database)
            $0.node = name
            configure(&$0)
        }
    }

    /// Waits until node `node`'s lease in the journal has moved `times` times (renewals, every quarter lease).
    static func leaseRenewed(of node: String, times: Int, in database: PostgresJournalConfiguration) async throws {
        var seen: Set<String> = []
        try await eventually("\(times) renewals of \(node)'s lease") {
            let lease = try await offThePool {
                try PostgresTestCluster.shared.psql("SELECT lease_until FROM centre_node WHERE node = '\(node)'", database: database.database)
            }
            seen.insert(lease.trimmingCharacters(in: .whitespacesAndNewlines))
            return seen.count > times
        }
    }

    /// Issue 18: supervision is taken over. A device whose node dies, and which never comes back (dead itself,
    /// or unplugged), is reported offline once by the node that took over the dead node's lease, and its
    /// supervision is that node's in the journal; a device that comes back at the other node is not.
    @Test func aStoppedNodesDeviceThatNeverComesBackIsReportedOfflineByTheOther() async throws {
        let database = try await offThePool { try PostgresTestCluster.shared.newDatabase() }
        // a would report its silent devices offline only after a minute; b, after 2 s.
        func node(_ name: String, offlineAfter: Duration) async throws -> RunningCentre {
            try await Self.node(name, on: database) {
                $0.caseLease = .seconds(2)
                $0.offlineAfter = offlineAfter
            }
        }
        let (first, second) = (try await node("a", offlineAfter: .seconds(60)), try await node("b", offlineAfter: .seconds(2)))
        let lost = try await TestDevice.connect(1, to: first, over: .datagram)
        try #require(try await lost.handshake() != nil)
        let moving = try await TestDevice.connect(2, rootKey: RunningCentre.rootKey.reversed(), to: first, over: .datagram)
        try #require(try await moving.handshake() != nil)
        _ = try await first.events.first { $0 == .online(device: 2) }
        try await eventually(within: .seconds(30), "a supervises both in the journal") {
            try await offThePool {
                let journal = try CenterJournal(.postgres(database))
                defer { try? journal.close() }
                return try [1, 2].allSatisfy { try journal.presence(of: $0).map { $0.node == "a" && $0.online } ?? false }
            }
        }
        await first.stop()
        // Device 2 reaches b and keeps talking; device 1 is never heard again.
        let moved = try await TestDevice.connect(2, rootKey: RunningCentre.rootKey.reversed(), to: second)
        moved.setCounter(moving.counter)
        try #require(try await moved.handshake() != nil)
        let talking = Task {
            while !Task.isCancelled {
                try await moved.send(.heartbeat(Heartbeat(status: [], battery: 90)))
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        defer { talking.cancel() }
        _ = try await second.events.first { $0 == .offline(device: 1) }
        let presence = try await offThePool {
            let journal = try CenterJournal(.postgres(database))
            defer { try? journal.close() }
            return (try journal.supervision(device: 1), try journal.presence(of: 1)?.node, try journal.presence(of: 2)?.node)
        }
        #expect(presence.0 == [true, false], "online at a, offline by b: once")
        #expect(presence.1 == "b" && presence.2 == "b")
        // Two more supervision periods (b renews its lease every 0.5 s): device 2, talking to b, is never reported
        // offline; device 1 only once.
        try await Self.leaseRenewed(of: "b", times: 8, in: database)
        #expect(!second.events.all.contains(.offline(device: 2)))
        #expect(second.events.all.filter { $0 == .offline(device: 1) }.count == 1)
        talking.cancel()
        await second.stop()
    }

    /// Issue 18: a call is recoverable. Node a's automatic operator engages the case and a calls the home; a
    /// stops. Node b takes the engaged case over and calls the home again, at b, where the device now is.
    @Test func anEngagedCaseTakenOverCallsTheHomeAgain() async throws {
        let database = try await offThePool { try PostgresTestCluster.shared.newDatabase() }
        let first = try await Self.node("a", on: database) {
            $0.caseLease = .seconds(2)
            $0.cases = CasePolicy.Configuration(autoEngageAfter: .milliseconds(100), autoCloseAfter: nil)
        }
        let second = try await Self.node("b", on: database) {
            $0.caseLease = .seconds(2)
        }
        let device = try await TestDevice.connect(to: first, over: .datagram)
        try #require(try await device.handshake() != nil)
        try await device.send(.testAlarm(6))
        let offered = try await device.received { if case .callOffer = $0 { true } else { false } }
        #expect(offered != nil, "a calls the home when its operator engages")
        await first.stop()
        let moved = try await TestDevice.connect(to: second)
        moved.setCounter(device.counter)
        try #require(try await moved.handshake() != nil)
        let again = try await moved.received { if case .callOffer = $0 { true } else { false } }
        guard case .callOffer(let offer) = again else {
            Issue.record("b did not call the home again")
            return
        }
        #expect(offer.alarmID == 6)
        #expect(try await second.server.openCases().map(\.state) == [.operatorEngaged], "b works the engaged case")
        await second.stop()
    }

    /// A node alone reads no case updates back (it would read only its own); when another node starts, it
    /// follows again from that node's first update: node a, alone for two renewals and with a case of its own,
    /// shows node b's case, each update once, and its own once.
    @Test func aLoneNodeFollowsAgainOnceAnotherStarts() async throws {
        let database = try await offThePool { try PostgresTestCluster.shared.newDatabase() }
        let operatorQuickly = CasePolicy.Configuration(autoEngageAfter: .milliseconds(100), autoCloseAfter: .milliseconds(100))
        let first = try await Self.node("a", on: database) {
            $0.caseLease = .seconds(2)
            $0.cases = operatorQuickly
        }
        let own = try await TestDevice.connect(1, to: first, over: .datagram)
        try #require(try await own.handshake() != nil)
        try await own.send(.testAlarm(1, kind: .fall))
        _ = try await first.events.first { if case .caseUpdate(_, 1, 1, .closed) = $0 { true } else { false } }
        try await Self.leaseRenewed(of: "a", times: 2, in: database)
        let second = try await Self.node("b", on: database) {
            $0.caseLease = .seconds(2)
            $0.cases = operatorQuickly
        }
        let other = try await TestDevice.connect(2, rootKey: RunningCentre.rootKey.reversed(), to: second, over: .datagram)
        try #require(try await other.handshake() != nil)
        try await other.send(.testAlarm(2, kind: .fall))
        _ = try await first.events.first { if case .caseUpdate(_, 2, 2, .closed) = $0 { true } else { false } }
        func updates(device: UInt32) -> [CaseState] {
            first.events.all.compactMap { if case .caseUpdate(_, device, _, let state) = $0 { state } else { nil } }
        }
        #expect(updates(device: 2) == [.received, .operatorEngaged, .closed], "b's case, read back by a")
        #expect(updates(device: 1) == [.received, .operatorEngaged, .closed], "a's own, once")
        await first.stop()
        await second.stop()
    }

    /// Issue 18: the event stream of any node shows every case. Node a works the case (its automatic operator
    /// engages and closes it); node b, which the device never reached, emits the alarm and each of the case's
    /// updates too, read back from the journal; neither node emits an update twice.
    @Test func everyNodesEventStreamShowsEveryCase() async throws {
        let database = try await offThePool { try PostgresTestCluster.shared.newDatabase() }
        let first = try await Self.node("a", on: database) {
            $0.cases = CasePolicy.Configuration(autoEngageAfter: .milliseconds(100), autoCloseAfter: .milliseconds(100))
        }
        let second = try await Self.node("b", on: database)
        let device = try await TestDevice.connect(to: first, over: .datagram)
        try await device.handshake()
        try await device.send(.testAlarm(4, kind: .fall))
        #expect(try await device.received { $0 == .ack(Ack(id: 4)) } != nil)
        let closed = try await second.events.first { if case .caseUpdate(_, 1, 4, .closed) = $0 { true } else { false } }
        #expect(closed != nil, "b shows the close a made")
        func updates(_ centre: RunningCentre) -> [CaseState] {
            centre.events.all.compactMap { if case .caseUpdate(_, 1, 4, let state) = $0 { state } else { nil } }
        }
        #expect(updates(second) == [.received, .operatorEngaged, .closed])
        let alarm = second.events.all.compactMap { if case .alarm(1, let alarm, _, let dispatched) = $0 { (alarm, dispatched) } else { nil } }
        #expect(alarm.map(\.0.kind) == [.fall] && alarm.map(\.0.id) == [4] && alarm.map(\.1) == [true], "the alarm, from the journal")
        // A second case, shown by b once closed: b read past the first case's updates again, and came twice by none.
        try await device.send(.testAlarm(5, kind: .fall))
        _ = try await second.events.first { if case .caseUpdate(_, 1, 5, .closed) = $0 { true } else { false } }
        #expect(updates(second) == [.received, .operatorEngaged, .closed])
        #expect(updates(first) == [.received, .operatorEngaged, .closed])
        await first.stop()
        await second.stop()
    }

    @Test func throughAPostgresOutageTheCentreAnswersBusyIsNotReadyAndRecoversAndLosesNothingAcknowledged() async throws {
        let cluster = try await offThePool { try PostgresTestCluster.start() }
        defer { cluster.stop() }
        let database = try await offThePool { try cluster.newDatabase() }
        let centre = try await Self.start(database, metricsPort: 0)
        let port = try #require(centre.ports.metrics)
        #expect(try await httpGet(port: port, path: "/ready").hasPrefix("HTTP/1.1 200"))
        #expect(try await httpGet(port: port, path: "/live").hasPrefix("HTTP/1.1 200"))
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        try await device.handshake()
        try await device.send(.testAlarm(1))
        #expect(try await device.received { $0 == .ack(Ack(id: 1)) } != nil)

        try await offThePool { try cluster.kill() }  // the server is gone, without a word
        try await device.send(.testAlarm(2))
        #expect(try await device.received { if case .nak(let nak) = $0 { nak.id == 2 && nak.reason == .busy } else { false } } != nil)
        #expect(device.acks(of: 2) == 0)
        #expect(centre.metric("center_journal_up") == 0)
        let notReady = try await httpGet(port: port, path: "/ready")
        #expect(notReady.hasPrefix("HTTP/1.1 503"), "\(notReady)")
        #expect(notReady.contains("the journal cannot be written"))
        #expect(try await httpGet(port: port, path: "/live").hasPrefix("HTTP/1.1 200"), "alive, only not ready")

        try await offThePool { try cluster.restart() }  // the server is back (crash recovery): the centre's probe finds it by itself
        try await eventually(within: .seconds(30), "the centre is ready again without any device writing") {
            centre.metric("center_journal_up") == 1
        }
        #expect(try await httpGet(port: port, path: "/ready").hasPrefix("HTTP/1.1 200"))
        try await device.send(.testAlarm(2))  // the device sends the refused alarm again
        #expect(try await device.received { $0 == .ack(Ack(id: 2)) } != nil)
        try await device.send(.testAlarm(3))
        #expect(try await device.received { $0 == .ack(Ack(id: 3)) } != nil)

        try await offThePool { try cluster.restart() }  // a clean restart (fast shutdown) with alarms acknowledged before it
        try await device.send(.testAlarm(4))
        _ = try await device.received { message in
            if case .nak(let nak) = message, nak.id == 4 { return true }
            return message == .ack(Ack(id: 4))
        }
        await centre.stop()
        let recorded = try await offThePool { try CenterJournal(.postgres(database)).alarms().map(\.alarmID) }
        #expect(Array(recorded.prefix(3)) == [1, 2, 3], "every acknowledged alarm, once")
        #expect(Set(recorded).count == recorded.count)
        if device.acks(of: 4) > 0 { #expect(recorded.contains(4)) }
    }
}
