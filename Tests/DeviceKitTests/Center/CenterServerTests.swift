import Glibc
import Foundation
import GRDB
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// The centre over real loopback sockets, with the test playing the device through the codec.
/// Timings are bounds to wait for, never measurements.
@Suite(.serialized) struct CenterServerTests {
    @Test func anAlarmIsRecordedOnceAndAcknowledgedAgainWhenRetransmitted() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre)
        #expect(try await device.handshake() != nil)

        try await device.send(.testAlarm(7))
        #expect(try await device.received { $0 == .ack(Ack(id: 7)) } != nil)
        try await device.send(.testAlarm(7))  // same id, new counter: a retransmission
        _ = try await centre.events.first { if case .duplicateAlarm(1, 7) = $0 { true } else { false } }
        #expect(try await device.received { _ in device.acks(of: 7) == 2 } != nil)

        #expect(centre.events.all.count { if case .alarm(device: 1, alarm: _, lateMilliseconds: _, dispatched: true) = $0 { true } else { false } } == 1)
        #expect(centre.metric("center_alarms_recorded_total") == 1)
        #expect(centre.metric("center_alarms_duplicate_total") == 1)
        #expect(centre.metric("center_acks_sent_total") == 2)
        // The new alarm's arrival → ack, once (the retransmission is no new alarm).
        #expect(centre.metric("center_alarm_ack_seconds_count") == 1)
        // The case opens once, and its first update reaches the device.
        #expect(try await device.received { if case .caseUpdate(let u) = $0 { u.alarmID == 7 && u.state == .received } else { false } } != nil)
        await centre.stop()
        #expect(try CenterJournal(path: centre.server.configuration.journalPath).alarms().map(\.alarmID) == [7])
    }

    @Test func anAlarmOverUDPIsAcknowledgedToItsSourceAddress() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        #expect(try await device.handshake() != nil)
        try await device.send(.testAlarm(11))
        #expect(try await device.received { $0 == .ack(Ack(id: 11)) } != nil)
        await centre.stop()
    }

    @Test func anAlarmSurvivesACentreRestartAndIsNotRecordedTwice() async throws {
        let journal = temporaryJournal()
        let first = try await RunningCentre.start(journal: journal)
        let device = try await TestDevice.connect(to: first)
        try await device.handshake()
        try await device.send(.testAlarm(21))
        #expect(try await device.received { $0 == .ack(Ack(id: 21)) } != nil)
        await device.close()
        await first.stop()

        let second = try await RunningCentre.start(journal: journal)
        let again = try await TestDevice.connect(to: second)
        again.setCounter(device.counter)
        // Without a session (the centre restarted) the frame is stale: the device re-handshakes.
        try await again.send(.testAlarm(21))
        try await eventually("the alarm of the lost session is refused as stale") { second.metric(#"center_frames_refused_total{category="stale"}"#) == 1 }
        #expect(try await again.handshake() != nil)
        try await again.send(.testAlarm(21))
        #expect(try await again.received { $0 == .ack(Ack(id: 21)) } != nil)
        _ = try await second.events.first { $0 == .duplicateAlarm(device: 1, alarmID: 21) }
        #expect(second.metric("center_alarms_recorded_total") == 0)
        await second.stop()
        #expect(try CenterJournal(path: journal).alarms().map(\.alarmID) == [21])
    }

    @Test func forgedReplayedAndStaleFramesAreRefusedCountedAndNeverAcknowledged() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre)
        try await device.handshake()

        let stranger = try DeviceKey(deviceID: 1, rootKey: Array(repeating: 0x99, count: 32))
        try await device.send(.testAlarm(31), key: stranger)
        let genuine = try await device.send(.testAlarm(32))
        #expect(try await device.received { $0 == .ack(Ack(id: 32)) } != nil)
        try await device.sendRaw(genuine)  // the same frame again: replayed
        let anchor = UInt64(65_536)
        try await device.send(.testAlarm(33), counter: anchor)  // at the session's floor: stale

        try await eventually("the stale frame is refused") { centre.metric(#"center_frames_refused_total{category="stale"}"#) == 1 }
        #expect(centre.metric(#"center_frames_refused_total{category="forged"}"#) == 1)
        #expect(centre.metric(#"center_frames_refused_total{category="replayed"}"#) == 1)
        #expect(centre.metric(#"center_frames_refused_total{category="stale"}"#) == 1)
        // A heartbeat after them is answered, so every earlier frame has been handled: no ack for 31 or 33.
        try await device.send(.testHeartbeat)
        #expect(try await device.received { $0.kind == .heartbeatAck } != nil)
        #expect(device.acks(of: 31) == 0 && device.acks(of: 33) == 0 && device.acks(of: 32) == 1)
        #expect(centre.metric("center_alarms_recorded_total") == 1)
        await centre.stop()
    }

    @Test func aSessionStartWithANonIncreasingAnchorIsRefused() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre)
        device.setCounter(200_000)
        try await device.handshake()
        // A device restored from an old image: its counter went back.
        device.setCounter(100_000)
        try await device.send(.sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [], bootCount: 2)))
        try await eventually("the older anchor is refused") { centre.metric(#"center_frames_refused_total{category="stale"}"#) == 1 }
        // Events reach the test's log a little after the metrics: wait for the first session's, then count.
        try await eventually("the first session's event") {
            centre.events.all.contains { if case .sessionOpened = $0 { true } else { false } }
        }
        #expect(centre.events.all.count { if case .sessionOpened = $0 { true } else { false } } == 1)
        await centre.stop()
    }

    @Test func aConnectionThatNeverAuthenticatesIsClosedAfterTheTimeout() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) { $0.authenticationTimeout = .milliseconds(200) }
        let device = try await TestDevice.connect(to: centre)
        _ = try await centre.events.first { $0 == .connectionClosed(reason: "authTimeout") }
        #expect(await poll { device.closed.withLock { $0 } })
        #expect(centre.metric(#"center_connections_closed_total{reason="authTimeout"}"#) == 1)
        await centre.stop()
    }

    @Test func anOversizedFrameClosesTheConnectionAndIsCounted() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre)
        // Version 1, up, length 2000: refused on its first three bytes.
        try await device.sendRaw(ByteBuffer(bytes: [0x10, 0x07, 0xd0] + [UInt8](repeating: 0, count: 64)))
        #expect(await poll { device.closed.withLock { $0 } })
        #expect(centre.metric(#"center_frames_refused_total{category="oversized"}"#) == 1)
        #expect(centre.metric(#"center_connections_closed_total{reason="oversized"}"#) == 1)
        await centre.stop()
    }

    @Test func randomBytesFromAnOutsiderNeverProduceAnAcknowledgement() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let outsider = try await TestDevice.connect(to: centre, over: .datagram)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let length = Int.random(in: 0...1_100, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if length >= 13, Bool.random(using: &rng) {
                // A plausible header, so that some reach the tag check.
                bytes[0] = 0x10
                bytes[1] = UInt8(length >> 8)
                bytes[2] = UInt8(truncatingIfNeeded: length)
                bytes[6] = 1
            }
            try await outsider.sendRaw(ByteBuffer(bytes: bytes))
        }
        let device = try await TestDevice.connect(to: centre)
        #expect(try await device.handshake() != nil, "the centre still serves")
        #expect(outsider.inbound.all.isEmpty)
        #expect(centre.metric("center_alarms_recorded_total") == 0)
        await centre.stop()
    }

    @Test func aSilentDeviceIsReportedOfflineAndOnlineWhenItReturns() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) { $0.offlineAfter = .milliseconds(500) }
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        try await device.handshake()
        try await device.send(.testHeartbeat)
        #expect(try await centre.events.first { $0 == .online(device: 1) } != nil)
        #expect(try await centre.events.first { $0 == .offline(device: 1) } != nil)
        // Its session ended with its supervision: it returns with a new one (protocol.md §3.4, §4.7).
        let stale = #"center_frames_refused_total{category="stale"}"#
        let before = centre.metric(stale)
        try await device.send(.testHeartbeat)
        try await eventually("the heartbeat of the lapsed session is stale") { centre.metric(stale) == before + 1 }
        #expect(try await device.handshake() != nil)
        #expect(try await centre.events.first { e in centre.events.all.count { $0 == .online(device: 1) } == 2 } != nil)
        await centre.stop()
        #expect(try CenterJournal(path: centre.server.configuration.journalPath).supervision(device: 1) == [true, false, true])
    }

    /// Issue 18: supervision survives a restart. The centre stops (killed, say) while a device is online; the
    /// device never comes back; the centre's next run reports it offline, once, after its `offlineAfter`.
    @Test func aDeviceOnlineWhenTheCentreStoppedIsReportedOfflineByItsNextRun() async throws {
        let journal = temporaryJournal()
        let first = try await RunningCentre.start(journal: journal) { $0.offlineAfter = .seconds(60) }
        let device = try await TestDevice.connect(to: first, over: .datagram)
        try #require(try await device.handshake() != nil)
        _ = try await first.events.first { $0 == .online(device: 1) }
        try await eventually("the journal says device 1 is online") {
            try CenterJournal(path: journal).presence(of: 1)?.online == true
        }
        await first.stop()
        let next = try await RunningCentre.start(journal: journal) { $0.offlineAfter = .milliseconds(500) }
        _ = try await next.events.first { $0 == .offline(device: 1) }
        #expect(!next.events.all.contains(.online(device: 1)), "supervised as online, not reported online again")
        await next.stop()
        #expect(try CenterJournal(path: journal).supervision(device: 1) == [true, false])
    }

    @Test func concurrentAlarmsAreGroupCommittedAndEachAcknowledgedOnlyOnceInTheJournal() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) {
            $0.session = CenterSession.Parameters(rate: 10_000, burst: 10_000)
        }
        let path = centre.server.configuration.journalPath
        let roots: [UInt32: [UInt8]] = [1: RunningCentre.rootKey, 2: RunningCentre.rootKey.reversed(), 3: Array(repeating: 3, count: 32)]
        var connected: [TestDevice] = []
        for id in UInt32(1)...3 {
            let device = try await TestDevice.connect(id, rootKey: roots[id] ?? [], to: centre)
            try await device.handshake()
            connected.append(device)
        }
        let devices = connected
        let ids = UInt32(1)...150
        // Every alarm twice (a retransmission, possibly in the same batch), all devices at once.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for device in devices {
                group.addTask {
                    for id in ids { try await device.send(.testAlarm(id)) }
                    for id in ids { try await device.send(.testAlarm(id)) }
                }
            }
            // Meanwhile: whatever a device has been acknowledged is already in the journal.
            group.addTask {
                let reader = try CenterJournal(path: path)
                defer { try? reader.close() }
                try await poll(within: .seconds(60)) {
                    let acked = devices.map { device in Set(device.messages.compactMap { if case .ack(let a) = $0 { a.id } else { nil } }) }
                    let journalled = try reader.alarms()
                    for (device, ids) in zip(devices, acked) {
                        let held = Set(journalled.filter { $0.device == device.id }.map(\.alarmID))
                        #expect(ids.isSubset(of: held), "device \(device.id) acknowledged before the journal held it")
                    }
                    return acked.allSatisfy { $0.count == ids.count }
                }
            }
            try await group.waitForAll()
        }
        for device in devices {
            #expect(try await device.received(within: .seconds(60)) { _ in device.messages.count { if case .ack = $0 { true } else { false } } == 2 * ids.count } != nil)
            for id in ids { #expect(device.acks(of: id) == 2, "device \(device.id) alarm \(id): one ack per copy sent") }
        }
        #expect(centre.metric("center_alarms_recorded_total") == Double(3 * ids.count))
        #expect(centre.metric("center_alarms_duplicate_total") == Double(3 * ids.count))
        #expect(centre.metric("center_journal_batches_total") < centre.metric("center_journal_batched_writes_total"), "writes were grouped")
        // Transactions are timed (one may still be running: at most as many as were started).
        let timed = centre.metric("center_journal_commit_seconds_count")
        #expect(timed > 0 && timed <= centre.metric("center_journal_batches_total"))
        await centre.stop()
        let alarms = try CenterJournal(path: path).alarms()
        #expect(alarms.count == 3 * ids.count)
        #expect(Set(alarms.map { [$0.device, $0.alarmID] }).count == 3 * ids.count)
    }

    @Test func aJournalThatCannotWriteAcknowledgesNothingAndAnswersBusy() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        try await device.handshake()
        let path = centre.server.configuration.journalPath
        // Another connection takes the journal's write lock: every write of the centre fails as busy.
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
        unsafe.busyMode = .timeout(120)  // the centre may be writing (the session's "online") as it is taken
        let other = try DatabaseQueue(path: path, configuration: unsafe)
        try other.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        try await device.send(.testAlarm(21))
        #expect(try await device.received { if case .nak(let nak) = $0 { nak.id == 21 && nak.reason == .busy } else { false } } != nil)
        #expect(device.acks(of: 21) == 0)
        #expect(centre.metric("center_journal_failures_total") >= 1)
        try other.inDatabase { db in try db.execute(sql: "ROLLBACK") }
        try other.close()
        try await device.send(.testAlarm(21))  // the device retries later
        #expect(try await device.received { $0 == .ack(Ack(id: 21)) } != nil)
        await centre.stop()
        #expect(try CenterJournal(path: path).alarms().map(\.alarmID) == [21])
    }

    /// An operator's decision taken while the journal could not write was only logged: the case changed in the
    /// operator's list, and the device was never told.
    @Test func aCaseChangeTheJournalCouldNotTakeIsWrittenAndToldOnceItCan() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        try await device.handshake()
        try await device.send(.testAlarm(31))
        #expect(try await device.received { $0 == .ack(Ack(id: 31)) } != nil)
        guard let opened = try await centre.server.openCases().first else {
            Issue.record("no case opened")
            return
        }
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
        unsafe.busyMode = .timeout(120)
        let other = try DatabaseQueue(path: centre.server.configuration.journalPath, configuration: unsafe)
        try other.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        let failuresBefore = centre.metric("center_journal_failures_total")
        #expect(try await centre.server.engage(case: opened.id))
        try await eventually("the engagement's write to fail") { centre.metric("center_journal_failures_total") > failuresBefore }
        try other.inDatabase { db in try db.execute(sql: "ROLLBACK") }
        try other.close()
        let engaged = try await device.received { if case .caseUpdate(let u) = $0 { u.state == .operatorEngaged } else { false } }
        #expect(engaged != nil, "the device is told once the journal takes the change")
        await centre.stop()
    }

    @Test func overTheRateLimitReliableMessagesAreNaked() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) {
            $0.session = CenterSession.Parameters(rate: 0.5, burst: 3)
        }
        let device = try await TestDevice.connect(to: centre)
        try await device.handshake()  // token 1
        for id in UInt32(1)...4 { try await device.send(.testAlarm(id)) }  // 2, 3 pass; 4 and 5 over
        #expect(try await device.received { if case .nak(let nak) = $0 { nak.reason == .rateLimited } else { false } } != nil)
        #expect(centre.metric(#"center_frames_dropped_total{reason="rateLimited"}"#) >= 1)
        await centre.stop()
    }

    @Test func theAutomaticOperatorEngagesAndClosesCasesWhichTheDeviceAcknowledges() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) {
            $0.cases = CasePolicy.Configuration(autoEngageAfter: .milliseconds(50), autoCloseAfter: .milliseconds(100))
        }
        let device = try await TestDevice.connect(to: centre)
        try await device.handshake()
        try await device.send(.testAlarm(41))
        let closed = try await device.received { if case .caseUpdate(let u) = $0 { u.state == .closed } else { false } }
        guard case .caseUpdate(let update)? = closed else {
            Issue.record("no closed case update")
            return
        }
        try await device.send(.ack(Ack(id: update.id)))
        #expect(try await centre.events.first { $0 == .caseUpdateDelivered(device: 1, updateID: update.id) } != nil)
        let states = device.messages.compactMap { if case .caseUpdate(let u) = $0 { u.state } else { nil } }
        #expect(states.starts(with: [.received]) && states.contains(.operatorEngaged) && states.last == .closed)
        await centre.stop()
    }

    @Test func aTestAlarmIsRecordedAndAcknowledgedButNeverDispatched() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) {
            $0.cases = CasePolicy.Configuration(autoEngageAfter: .milliseconds(10))
        }
        let device = try await TestDevice.connect(to: centre)
        try await device.handshake()
        try await device.send(.testAlarm(51, kind: .test))
        #expect(try await device.received { $0 == .ack(Ack(id: 51)) } != nil)
        try await device.send(.testHeartbeat)
        #expect(try await device.received { $0.kind == .heartbeatAck } != nil)
        #expect(device.messages.allSatisfy { $0.kind != .caseUpdate })
        #expect(try await centre.server.openCases().isEmpty)
        await centre.stop()
    }

    @Test func aCancelThatArrivesBeforeItsAlarmIsAppliedWhenTheAlarmArrives() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        try await device.handshake()
        try await device.send(.alarmCancel(AlarmCancel(id: 62, alarmID: 61, cancelledAt: 1_795_000_001_000)))
        #expect(try await device.received { $0 == .ack(Ack(id: 62)) } != nil)
        try await device.send(.testAlarm(61))
        #expect(try await device.received { $0 == .ack(Ack(id: 61)) } != nil)
        #expect(try await centre.events.first { $0 == .alarmCancelled(device: 1, alarmID: 61) } != nil)
        #expect(try await centre.server.openCases().isEmpty)
        await centre.stop()
    }

    @Test func theMetricsEndpointServesTheTextFormat() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal(), metricsPort: 0)
        let port = try #require(centre.ports.metrics)
        let device = try await TestDevice.connect(to: centre)
        #expect(try await device.handshake() != nil)
        try await device.send(.testAlarm(3))
        #expect(try await device.received { $0 == .ack(Ack(id: 3)) } != nil)
        let text = try await httpGet(port: port, path: "/metrics")
        func value(_ sample: String) -> Double? {
            text.split(separator: "\n").first { $0.hasPrefix(sample + " ") }.flatMap { Double($0.dropFirst(sample.count + 1)) }
        }
        #expect(text.hasPrefix("HTTP/1.1 200 OK"))
        // Every family with its type, labels, help and buckets, as CenterMetricsTests lists them.
        CenterMetricsTests.check(.init(try #require(text.components(separatedBy: "\r\n\r\n").dropFirst().first)))
        #expect(text.contains(#"center_frames_refused_total{category="forged"} 0"#))
        #expect(text.contains("center_sessions_active 1"))
        // The build serving, as the official clients' *_build_info.
        #expect(text.contains(#"center_build_info{version="\#(BuildStamp.version)",commit="\#(BuildStamp.commit)"} 1"#))
        // The alarm's arrival → ack, and the process's own cost, as every Prometheus client exports them.
        #expect(value("center_alarm_ack_seconds_count") == 1)
        #expect(value(#"center_alarm_ack_seconds_bucket{le="+Inf"}"#) == 1)
        #expect((value("center_alarm_ack_seconds_sum") ?? 0) > 0)
        #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
        #expect((value("process_open_fds") ?? 0) >= 3 && (value("process_max_fds") ?? 0) >= (value("process_open_fds") ?? 0))
        #expect((value("process_cpu_seconds_total") ?? 0) > 0)
        let started = try #require(value("process_start_time_seconds"))
        #expect(started <= Date().timeIntervalSince1970 && started > Date().timeIntervalSince1970 - 86_400, "\(started)")
        #expect(try await httpGet(port: port, path: "/").hasPrefix("HTTP/1.1 404"))
        await centre.stop()
    }

    @Test func atTheSessionLimitAnotherDeviceIsTurnedAwayAndCounted() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) { $0.maximumSessions = 1 }
        let first = try await TestDevice.connect(1, to: centre, over: .datagram)
        #expect(try await first.handshake() != nil)
        let second = try await TestDevice.connect(3, rootKey: Array(repeating: 3, count: 32), to: centre, over: .datagram)
        // Told so, under its session start's down key, in place of an accept: it tries its other centre at once.
        guard case .nak(let nak)? = try await second.startSession() else {
            Issue.record("the second device was not answered busy"); return
        }
        #expect(nak.id == 0 && nak.reason == .busy)
        #expect(centre.metric(#"center_frames_dropped_total{reason="tooManySessions"}"#) == 1)
        #expect(centre.metric("center_sessions_turned_away_total") == 1)
        #expect(centre.metric("center_sessions_limit") == 1)
        #expect(try await centre.events.first { $0 == .refused(reason: "tooManySessions", count: 1) } != nil, "reported within a second")
        #expect(centre.metric("center_sessions_active") == 1)
        await centre.stop()
    }

    /// Devices of one address turned away at the limit are each answered: an authentic session start is no
    /// forgery, so it costs nothing from the address's forgery budget (a burst of one here).
    @Test func devicesBehindOneAddressAreAllAnsweredBusyAtTheLimit() async throws {
        let master = try FleetMasterKey(bytes: Array(0x40...0x5f))
        let centre = try await RunningCentre.start(journal: temporaryJournal(), registry: DeviceRegistry(master: master)) {
            $0.maximumSessions = 1
            $0.forgedFrameRate = 0.01
        }
        let first = try await TestDevice.connect(1, masterKey: master, to: centre, over: .datagram)
        #expect(try await first.handshake() != nil)
        for id in UInt32(2)...6 {
            let device = try await TestDevice.connect(id, masterKey: master, to: centre, over: .datagram)
            guard case .nak(let nak)? = try await device.startSession() else { Issue.record("device \(id) was not answered"); continue }
            #expect(nak.reason == .busy)
        }
        #expect(centre.metric("center_sessions_turned_away_total") == 5)
        #expect(centre.metric(#"center_frames_dropped_total{reason="sourceLimited"}"#) == 0)
        await centre.stop()
    }

    /// A re-provisioned device (its next key epoch) that comes to a full centre is answered busy under its new
    /// key, the only one it can open the answer with, so that it goes to its secondary at once.
    @Test func aReProvisionedDeviceAtTheLimitIsAnsweredBusyUnderItsNewKey() async throws {
        let master = try FleetMasterKey(bytes: Array(0x40...0x5f))
        let centre = try await RunningCentre.start(journal: temporaryJournal(), registry: DeviceRegistry(master: master)) {
            $0.maximumSessions = 1
        }
        let first = try await TestDevice.connect(1, masterKey: master, to: centre, over: .datagram)
        #expect(try await first.handshake() != nil)
        let device = try await TestDevice.connect(2, masterKey: master, to: centre, over: .datagram)
        let newKey = DeviceKey(deviceID: 2, master: master, epoch: 1)
        let anchor = device.counter
        try await device.send(
            .sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1, keyEpoch: 1)),
            key: newKey)
        var answer: Message?
        await poll(within: patience) {
            answer = device.inbound.all.lazy.compactMap { try? $0.open(with: newKey.downKey(anchor: anchor)) }.first
            return answer != nil
        }
        guard case .nak(let nak)? = answer else {
            Issue.record("the re-provisioned device was not answered under its new key: \(String(describing: answer))")
            await centre.stop()
            return
        }
        #expect(nak.reason == .busy)
        #expect(centre.metric("center_sessions_turned_away_total") == 1)
        await centre.stop()
    }

    /// Reads are coalesced (`udpReadInterval`), and a read that took all one turn takes goes on at once: a
    /// burst of many turns' worth, queued in the socket before the centre reads, is read whole, and the centre
    /// still answers a device after it.
    @Test(arguments: [Duration.zero, .milliseconds(1), .milliseconds(50)])
    func aBurstOfDatagramsIsReadWholeWhateverTheReadInterval(interval: Duration) async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) { $0.udpReadInterval = interval }
        #expect(sendDatagrams(Array(repeating: [0xFF, 0x00, 0x01], count: 1_000), toPort: centre.ports.udp) == 1_000)
        try await eventually("every datagram read") { centre.metric("center_frames_received_total") == 1_000 }
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        #expect(try await device.handshake() != nil)
        await centre.stop()
    }

    /// Over UDP the centre works on the frames of sessions as it reads them and puts session starts off
    /// behind them (`SessionStartQueue`); past the queue's limit it sheds them, before any work. A device with a
    /// session is answered all the while. The burst queues in the socket while the centre waits out its read
    /// interval; the device sends its alarm again until it is acknowledged, as devices do.
    @Test func sessionStartsWaitBehindSessionsAndPastTheLimitAreShed() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) {
            $0.udpReadInterval = .milliseconds(100)
            $0.udpSessionStartsWaiting = 100
        }
        let device = try await TestDevice.connect(to: centre, over: .datagram)
        #expect(try await device.handshake() != nil)
        // 20,000 session starts of ids the centre holds no session for (nor a key: unknown if not shed),
        // sealed first and then sent at once.
        let frames = try (0..<20_000).map {
            Array(try CenterChannelHandlersTests.frame(CenterChannelHandlersTests.sessionStart, device: 5_000 + UInt32($0), counter: 1).readableBytesView)
        }
        #expect(sendDatagrams(frames, toPort: centre.ports.udp) == frames.count)
        var acknowledged = false
        for _ in 0..<20 where !acknowledged {
            try await device.send(.testAlarm(3))
            acknowledged = try await device.received(within: .milliseconds(500)) { $0 == .ack(Ack(id: 3)) } != nil
        }
        #expect(acknowledged)
        let shed = #"center_frames_dropped_total{reason="shed"}"#
        try await eventually("session starts shed") { centre.metric(shed) > 0 }
        try await eventually("the starts put off are worked on") { centre.metric("center_frames_unknown_device_total") > 0 }
        #expect(try await centre.events.first { if case .refused(reason: "shed", count: _) = $0 { true } else { false } } != nil)
        await centre.stop()
    }

    @Test func aFrameForAnUnknownDeviceIsCountedAndIgnored() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal())
        let device = try await TestDevice.connect(99, to: centre, over: .datagram)
        try await device.send(.sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [], bootCount: 1)))
        try await eventually("the frame is counted") { centre.metric("center_frames_unknown_device_total") == 1 }
        #expect(try await centre.events.first { $0 == .refused(reason: "unknownDevice", count: 1) } != nil)
        await centre.stop()
    }
}

/// Sends `datagrams` from one plain UDP socket to 127.0.0.1:`port` as fast as it can; returns how many went.
func sendDatagrams(_ datagrams: [[UInt8]], toPort port: Int) -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard socket >= 0 else { return 0 }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
    return datagrams.count { bytes in
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(socket, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == bytes.count
            }
        }
    }
}

/// One HTTP/1.1 GET over a plain socket; returns the whole response.
///
/// The request goes out on the event loop as soon as the connection is up: written from the test's task
/// instead, a full test run could leave that task waiting for a thread longer than the endpoint's request
/// timeout (5 s), which then closed the connection, as it should, and the test failed.
func httpGet(port: Int, path: String) async throws -> String {
    let sink = TestByteSink()
    let request = "GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n"
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteCollector(sink: sink, sendingOnConnect: request))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.closeFuture.get()
    return sink.text
}

final class TestByteSink: Sendable {
    private let bytes = Collected<UInt8>()
    func append(_ buffer: ByteBuffer) { for byte in buffer.readableBytesView { bytes.append(byte) } }
    var text: String { String(decoding: bytes.all, as: UTF8.self) }
}

/// Keeps what a connection receives; sends `sendingOnConnect` first, if given, once connected.
final class ByteCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let sink: TestByteSink
    let sendingOnConnect: String?
    init(sink: TestByteSink, sendingOnConnect: String? = nil) {
        self.sink = sink
        self.sendingOnConnect = sendingOnConnect
    }

    func channelActive(context: ChannelHandlerContext) {
        if let sendingOnConnect { context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: sendingOnConnect)), promise: nil) }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { sink.append(unwrapInboundIn(data)) }
}
