import Foundation
import Testing

@testable import DeviceKit

/// The centre as a DC-09 gateway over loopback: devices speak our protocol to a real centre, which forwards
/// what it journals to a DC-09 receiver built on `DC09Receiving` (DC09TestReceiver), over TCP and UDP.
@Suite struct DC09ForwarderTests {
    /// Short waits, so that an outage is seen and left quickly; bounds, not measurements.
    static let parameters = DC09ForwardMachine.Parameters(
        window: 8, answerTimeout: .seconds(1), failuresBeforeFailover: 2, failbackAfter: .seconds(600),
        backoff: Backoff(base: .milliseconds(50), cap: .milliseconds(200)), bufferLimit: 64)
    static let accounts: [String: DC09Receiving.Account] = ["00000001": .init(), "00000002": .init()]

    static func centre(
        journal: String, _ targets: [DC09ForwardTarget], registry: DeviceRegistry = RunningCentre.registry,
        _ configure: (inout CenterConfiguration) -> Void = { _ in }
    ) async throws -> RunningCentre {
        try await RunningCentre.start(journal: journal, registry: registry) { configuration in
            configuration.forward = targets
            configuration.forwardParameters = parameters
            configure(&configuration)
        }
    }

    static func target(_ port: Int, _ transport: DC09ForwardTarget.Transport = .tcp) -> DC09ForwardTarget {
        DC09ForwardTarget(host: "127.0.0.1", port: port, transport: transport)
    }

    /// Sends `message` and waits for the centre's ack: it is journalled (and queued).
    static func record(_ message: Message, by device: TestDevice) async throws {
        try await device.send(message)
        try await eventually("the ack of \(message.reliableID ?? 0)") { device.acks(of: message.reliableID ?? 0) > 0 }
    }

    static func alarm(_ id: UInt32, kind: AlarmKind = .button) -> Message { .testAlarm(id, kind: kind) }

    @Test(arguments: [DC09ForwardTarget.Transport.tcp, .udp])
    func journalledEventsAreForwardedEachOnceInOrderPerDevice(transport: DC09ForwardTarget.Transport) async throws {
        let receiver = try await DC09TestReceiver.start(transport: transport, accounts: Self.accounts)
        defer { Task { await receiver.stop() } }
        let centre = try await Self.centre(journal: temporaryJournal(), [Self.target(receiver.port, transport)])
        defer { Task { await centre.stop() } }
        var devices: [TestDevice] = []
        for id: UInt32 in [1, 2] {
            let device = try await TestDevice.connect(id, rootKey: id == 1 ? RunningCentre.rootKey : RunningCentre.rootKey.reversed(), to: centre)
            try await device.handshake()
            devices.append(device)
        }
        for device in devices {
            try await Self.record(Self.alarm(1, kind: .fall), by: device)
            try await Self.record(Self.alarm(2, kind: .test), by: device)
            try await Self.record(.alarmCancel(AlarmCancel(id: 3, alarmID: 1, cancelledAt: 1_795_000_001_000)), by: device)
            try await Self.record(.event(DeviceEvent(id: 4, kind: .mainsLost, at: 1_795_000_002_000, value: 0)), by: device)
            // Not in the table: recorded, not forwarded.
            try await Self.record(.event(DeviceEvent(id: 5, kind: .pressDuringAlarm, at: 1_795_000_003_000, value: 1)), by: device)
            // The device sends its first alarm again (its ack lost): acknowledged again, not forwarded again.
            try await device.send(Self.alarm(1, kind: .fall))
            try await eventually("the second ack of alarm 1") { device.acks(of: 1) > 1 }
            try await Self.record(.event(DeviceEvent(id: 6, kind: .restart, at: 1_795_000_004_000, value: 0)), by: device)
        }
        try await eventually("10 events at the receiver") { distinctEvents(receiver.stored.all).count >= 10 }
        try await eventually("an empty queue") { centre.metric("center_dc09_forward_queue_depth") == 0 }
        let stored = receiver.stored.all
        for account in ["00000001", "00000002"] {
            var seen: [String] = []
            for frame in stored where frame.account == account && !seen.contains(frame.sequence) { seen.append(frame.sequence) }
            let data = seen.compactMap { sequence in stored.first { $0.account == account && $0.sequence == sequence }?.data }
            #expect(data == ["MA003", "RP000", "OC003", "AT000", "RR000"].map { "#\(account)|Nri1/\($0)" },
                    "account \(account): each event once, in the order recorded")
            #expect(seen == seen.sorted(), "sequences follow the queue's order")
        }
        #expect(distinctEvents(stored).count == 10)
        try await eventually("10 ACKs counted") { centre.metric("center_dc09_forwarded_total{receiver=\"primary\"}") == 10 }
        #expect(centre.metric("center_dc09_receiver_up{receiver=\"primary\"}") == 1)
    }

    @Test(arguments: [DC09ForwardTarget.Transport.tcp, .udp])
    func eventsQueuedWhileTheReceiverIsDownAllArriveWhenItIsBack(transport: DC09ForwardTarget.Transport) async throws {
        let port = try await freeLoopbackPorts()
        let centre = try await Self.centre(journal: temporaryJournal(), [Self.target(port, transport)])
        defer { Task { await centre.stop() } }
        let device = try await TestDevice.connect(1, to: centre)
        try await device.handshake()
        for id: UInt32 in 1...3 { try await Self.record(Self.alarm(id), by: device) }
        try await eventually("the receiver reported down") { centre.metric("center_dc09_receiver_up{receiver=\"primary\"}") == 0 }
        try await eventually("3 events queued") { centre.metric("center_dc09_forward_queue_depth") == 3 }
        let receiver = try await DC09TestReceiver.start(transport: transport, port: port, accounts: Self.accounts)
        defer { Task { await receiver.stop() } }
        try await eventually("the 3 events at the receiver") { distinctEvents(receiver.stored.all).count == 3 }
        try await eventually("an empty queue") { centre.metric("center_dc09_forward_queue_depth") == 0 }
        #expect(Set(receiver.stored.all.map(\.sequence)) == ["0002", "0003", "0004"], "rows 1 to 3")
        try await eventually("the receiver reported up") { centre.metric("center_dc09_receiver_up{receiver=\"primary\"}") == 1 }
    }

    @Test func aRestartedCentreSendsWhatWasQueuedAndNotWhatWasAcknowledged() async throws {
        let journal = temporaryJournal()
        let stored = Collected<DC09Frame>()
        // Not a port the system picks (the ephemeral range): an outgoing connection of another test could take
        // it while the receiver is down, before it binds it again (a full run failed so, "address in use").
        let port = try await freeLoopbackPorts()
        let receiver = try await DC09TestReceiver.start(transport: .tcp, port: port, accounts: Self.accounts, stored: stored)
        let centre = try await Self.centre(journal: journal, [Self.target(port)])
        let device = try await TestDevice.connect(1, to: centre)
        try await device.handshake()
        try await Self.record(Self.alarm(1), by: device)
        try await eventually("alarm 1 at the receiver") { distinctEvents(stored.all).count == 1 }
        try await eventually("alarm 1 out of the queue") { centre.metric("center_dc09_forward_queue_depth") == 0 }
        await receiver.stop()
        for id: UInt32 in 2...3 { try await Self.record(Self.alarm(id), by: device) }
        try await eventually("2 events queued") { centre.metric("center_dc09_forward_queue_depth") == 2 }
        await device.close()
        await centre.stop()

        let receiverBack = try await DC09TestReceiver.start(transport: .tcp, port: port, accounts: Self.accounts, stored: stored)
        defer { Task { await receiverBack.stop() } }
        let restarted = try await Self.centre(journal: journal, [Self.target(port)])
        defer { Task { await restarted.stop() } }
        try await eventually("alarms 2 and 3 after the restart") { distinctEvents(stored.all).count == 3 }
        try await eventually("an empty queue") { restarted.metric("center_dc09_forward_queue_depth") == 0 }
        #expect(stored.all.filter { $0.sequence == "0002" }.count == 1, "row 1, acknowledged before the restart, is not sent again")
        // And a new event after the restart takes the next row, not a reused one.
        let again = try await TestDevice.connect(1, to: restarted)
        again.setCounter(device.counter + 1_000)  // the same device, its counter past the stored anchor
        try await again.handshake()
        try await Self.record(Self.alarm(4), by: again)
        try await eventually("alarm 4") { distinctEvents(stored.all).count == 4 }
        #expect(stored.all.contains { $0.sequence == "0005" })
    }

    @Test(arguments: [
        (DC09ForwardTarget.Transport.tcp, 16, DC09Frame.ID.siaDCS, "1234"), (.udp, 24, .siaDCS, nil), (.tcp, 32, .contactID, nil),
    ] as [(DC09ForwardTarget.Transport, Int, DC09Frame.ID, String?)])
    func encryptedFramesReachTheReceiverWithEachKeySize(
        transport: DC09ForwardTarget.Transport, size: Int, format: DC09Frame.ID, account: String?
    ) async throws {
        let key = try DC09Key(bytes: Array(Array("0123456789ABCDEF0123456789ABCDEF".utf8).prefix(size)))
        let receiver = try await DC09TestReceiver.start(
            transport: transport, accounts: [account ?? "00000001": .init(key: key)])
        defer { Task { await receiver.stop() } }
        var target = Self.target(receiver.port, transport)
        target.key = key
        target.account = account
        target.format = format
        let centre = try await Self.centre(journal: temporaryJournal(), [target])
        defer { Task { await centre.stop() } }
        let device = try await TestDevice.connect(1, to: centre)
        try await device.handshake()
        try await Self.record(Self.alarm(1, kind: .pendant), by: device)
        let frame = try #require(try await receiver.stored.first { _ in true })
        #expect(frame.encrypted)
        #expect(frame.id == format)
        let expected = format == .contactID ? "#00000001|1101 01 002" : account == nil ? "#00000001|Nri1/QA002" : "#1234|Nid1/ri1/QA002"
        #expect(frame.data == expected)
        try await eventually("an empty queue: the encrypted ACK was read") { centre.metric("center_dc09_forward_queue_depth") == 0 }
    }

    /// Two centres on one port and journal, as `--workers` runs them: both queue, one sends; when it ends,
    /// the other takes the forwarder's lease and sends what is queued.
    @Test func centresSharingAJournalForwardThroughOneAndTheOtherTakesOver() async throws {
        let receiver = try await DC09TestReceiver.start(transport: .tcp, accounts: Self.accounts)
        defer { Task { await receiver.stop() } }
        let journal = temporaryJournal()
        let target = Self.target(receiver.port)
        // Both devices under the key `CenterWorkersTests.connect` connects with.
        let registry = try DeviceRegistry(keys: [1: RunningCentre.rootKey, 2: RunningCentre.rootKey])
        let first = try await Self.centre(journal: journal, [target], registry: registry) {
            $0.reusePort = true
            $0.node = "centre/0"
        }
        let second = try await Self.centre(journal: journal, [target], registry: registry) { configuration in
            configuration.reusePort = true
            configuration.node = "centre/1"
            configuration.tcpPort = first.ports.tcp
            configuration.udpPort = first.ports.udp
        }
        defer { Task { await second.stop() } }
        let centres = [first, second]
        let onFirst = try await CenterWorkersTests.connect(1, to: 0, of: centres)
        try await onFirst.handshake()
        let onSecond = try await CenterWorkersTests.connect(2, to: 1, of: centres)
        onSecond.setCounter(200_000)
        try await onSecond.handshake()
        try await Self.record(Self.alarm(1), by: onFirst)
        try await Self.record(Self.alarm(1), by: onSecond)
        try await eventually("both alarms at the receiver") { distinctEvents(receiver.stored.all).count == 2 }
        // The receiver holds a frame before its ACK reaches the sender: the counts are awaited.
        func forwarded() -> [Double] { centres.map { $0.metric("center_dc09_forwarded_total{receiver=\"primary\"}") } }
        try await eventually("both ACKs counted") { forwarded().reduce(0, +) == 2 }
        #expect(forwarded().sorted() == [0, 2], "one centre sends, the other's events included")
        #expect(centres.map { $0.metric("center_dc09_forwarding") }.sorted() == [0, 1])
        let sender = forwarded()[0] == 2 ? 0 : 1
        await centres[sender].stop()
        let survivor = centres[1 - sender]
        let device = sender == 0 ? onSecond : onFirst
        try await Self.record(Self.alarm(2), by: device)
        try await eventually("the survivor takes over and sends") { distinctEvents(receiver.stored.all).count == 3 }
        #expect(survivor.metric("center_dc09_forwarding") == 1)
        try await eventually("the survivor counts its ACK") { survivor.metric("center_dc09_forwarded_total{receiver=\"primary\"}") == 1 }
    }

    /// Issue 18: two centre nodes on one PostgreSQL journal, each with its own port and devices, forward through
    /// one of them (the holder of the journal's lease); when it stops, the other takes the lease over and sends
    /// what is queued, its own events and those the first had queued but not sent alike.
    @Test func nodesOnPostgresForwardThroughOneAndTheOtherTakesOver() async throws {
        let database = try await offThePool { try PostgresTestCluster.shared.newDatabase() }
        let receiver = try await DC09TestReceiver.start(transport: .tcp, accounts: Self.accounts)
        defer { Task { await receiver.stop() } }
        let target = Self.target(receiver.port)
        let nodes = [
            try await Self.centre(journal: "unused", [target]) {
                $0.journal = .postgres(database)
                $0.node = "a"
            },
            try await Self.centre(journal: "unused", [target]) {
                $0.journal = .postgres(database)
                $0.node = "b"
            },
        ]
        // Each device under its own key in `RunningCentre.registry`: a handshake under another key is never
        // answered (handshake() gives nil after `patience`), and meanwhile the other device's session lapses.
        let onA = try await TestDevice.connect(1, to: nodes[0], over: .datagram)
        try #require(try await onA.handshake() != nil, "device 1's session on node a")
        let onB = try await TestDevice.connect(2, rootKey: RunningCentre.rootKey.reversed(), to: nodes[1], over: .datagram)
        try #require(try await onB.handshake() != nil, "device 2's session on node b")
        try await Self.record(Self.alarm(1), by: onA)
        try await Self.record(Self.alarm(1), by: onB)
        try await eventually("both alarms at the receiver") { distinctEvents(receiver.stored.all).count == 2 }
        func forwarded() -> [Double] { nodes.map { $0.metric("center_dc09_forwarded_total{receiver=\"primary\"}") } }
        try await eventually("both ACKs counted") { forwarded().reduce(0, +) == 2 }
        #expect(forwarded().sorted() == [0, 2], "one node sends, the other's events included")
        #expect(nodes.map { $0.metric("center_dc09_forwarding") }.sorted() == [0, 1])
        let sender = forwarded()[0] == 2 ? 0 : 1
        await nodes[sender].stop()
        let survivor = nodes[1 - sender]
        defer { Task { await survivor.stop() } }
        try await Self.record(Self.alarm(2), by: sender == 0 ? onB : onA)
        try await eventually("the survivor takes over and sends") { distinctEvents(receiver.stored.all).count == 3 }
        #expect(survivor.metric("center_dc09_forwarding") == 1)
        let queued = try await offThePool { try CenterJournal(.postgres(database)).forwardQueueDepth() }
        #expect(queued == 0)
    }

    /// The receiver's clock is two minutes ahead: it refuses our first frame with a NAK that carries its time;
    /// the frame goes again at once with the corrected timestamp, and is taken.
    @Test(arguments: [DC09ForwardTarget.Transport.tcp, .udp])
    func aNAKsTimeCorrectsTheClockAndTheEventIsTaken(transport: DC09ForwardTarget.Transport) async throws {
        let receiver = try await DC09TestReceiver.start(transport: transport, accounts: Self.accounts, clockAhead: 120)
        defer { Task { await receiver.stop() } }
        let centre = try await Self.centre(journal: temporaryJournal(), [Self.target(receiver.port, transport)])
        defer { Task { await centre.stop() } }
        let device = try await TestDevice.connect(1, to: centre)
        try await device.handshake()
        try await Self.record(Self.alarm(1), by: device)
        let frame = try #require(try await receiver.stored.first { _ in true })
        let offset = (frame.timestamp?.secondsSince1970 ?? 0) - Int64(Date().timeIntervalSince1970)
        #expect((110...130).contains(offset), "the stored frame's time is the receiver's, not ours: \(offset) s ahead")
        try await eventually("the NAK counted") { centre.metric(#"center_dc09_forward_answers_total{receiver="primary",answer="NAK"}"#) >= 1 }
        try await eventually("an empty queue") { centre.metric("center_dc09_forward_queue_depth") == 0 }
    }

    /// A receiver that does not take test reports (`RP`) answers DUH: the row is kept and tried again, its
    /// device's later events wait behind it, and other devices' events go on.
    @Test func aDUHKeepsTheEventAndItsDevicesLaterEventsButNotOtherDevices() async throws {
        let receiver = try await DC09TestReceiver.start(transport: .tcp, accounts: Self.accounts) { _, code in code != "RP" }
        defer { Task { await receiver.stop() } }
        let centre = try await Self.centre(journal: temporaryJournal(), [Self.target(receiver.port)])
        defer { Task { await centre.stop() } }
        let first = try await TestDevice.connect(1, to: centre)
        try await first.handshake()
        let second = try await TestDevice.connect(2, rootKey: RunningCentre.rootKey.reversed(), to: centre)
        try await second.handshake()
        try await Self.record(Self.alarm(1, kind: .test), by: first)
        try await Self.record(Self.alarm(2), by: first)
        try await Self.record(Self.alarm(1), by: second)
        try await eventually("device 2's alarm at the receiver") { receiver.stored.all.contains { $0.account == "00000002" } }
        let duh = #"center_dc09_forward_answers_total{receiver="primary",answer="DUH"}"#
        try await eventually("the test report refused twice: kept and tried again") { centre.metric(duh) >= 2 }
        #expect(!receiver.stored.all.contains { $0.account == "00000001" }, "device 1's alarm waits behind its test report")
        try await eventually("two events still queued") { centre.metric("center_dc09_forward_queue_depth") == 2 }
    }

    @Test func theBackupTakesOverWhenThePrimaryRefuses() async throws {
        let primary = try await freeLoopbackPorts()
        let backup = try await DC09TestReceiver.start(transport: .tcp, accounts: Self.accounts)
        defer { Task { await backup.stop() } }
        let centre = try await Self.centre(journal: temporaryJournal(), [Self.target(primary), Self.target(backup.port)])
        defer { Task { await centre.stop() } }
        let device = try await TestDevice.connect(1, to: centre)
        try await device.handshake()
        try await Self.record(Self.alarm(1), by: device)
        try await eventually("the alarm at the backup") { distinctEvents(backup.stored.all).count == 1 }
        try await eventually("an empty queue") { centre.metric("center_dc09_forward_queue_depth") == 0 }
        #expect(centre.metric("center_dc09_receiver_up{receiver=\"primary\"}") == 0)
        try await eventually("the backup's ACK counted") { centre.metric("center_dc09_forwarded_total{receiver=\"backup\"}") == 1 }
    }
}

/// Not a test: the gateway's drain rate to the test receiver, for the report, when asked for
/// (`DC09_FORWARD_BENCH=EVENTS swift test --filter DC09ForwardBenchmark`; `DC09_FORWARD_WINDOW` frames in
/// flight, default 1). Events are queued while the receiver is down, then timed from its start to an empty
/// queue, and printed; nothing is asserted about the time.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["DC09_FORWARD_BENCH"] != nil))
struct DC09ForwardBenchmark {
    @Test func drainRateToTheTestReceiver() async throws {
        let count = Int(ProcessInfo.processInfo.environment["DC09_FORWARD_BENCH"] ?? "") ?? 2_000
        let window = Int(ProcessInfo.processInfo.environment["DC09_FORWARD_WINDOW"] ?? "") ?? 1
        let port = try await freeLoopbackPorts()
        var target = DC09ForwarderTests.target(port)
        target.window = window
        let centre = try await DC09ForwarderTests.centre(journal: temporaryJournal(), [target]) { configuration in
            configuration.session = CenterSession.Parameters(rate: 100_000, burst: 100_000)
            configuration.forwardParameters.bufferLimit = 2_048
        }
        defer { Task { await centre.stop() } }
        let devices = [UInt32(1), 2, 3]
        var connected: [TestDevice] = []
        for id in devices {
            let keys: [[UInt8]] = [RunningCentre.rootKey, RunningCentre.rootKey.reversed(), Array(repeating: 3, count: 32)]
            let key = keys[Int(id) - 1]
            let device = try await TestDevice.connect(id, rootKey: key, to: centre)
            try await device.handshake()
            connected.append(device)
        }
        for n in 0..<count {
            try await connected[n % 3].send(.testAlarm(UInt32(n / 3 + 1), kind: .test))
        }
        try await eventually("\(count) events queued") { centre.metric("center_dc09_forward_queue_depth") == Double(count) }
        let accounts = Dictionary(uniqueKeysWithValues: devices.map { (DC09ForwardTarget.deviceAccount($0), DC09Receiving.Account()) })
        let started = ContinuousClock.now
        let receiver = try await DC09TestReceiver.start(transport: .tcp, port: port, accounts: accounts)
        defer { Task { await receiver.stop() } }
        var first: ContinuousClock.Instant?
        try await eventually("every event at the receiver") {
            let stored = receiver.stored.all
            if first == nil, !stored.isEmpty { first = ContinuousClock.now }
            return distinctEvents(stored).count == count
        }
        let ended = ContinuousClock.now
        let flowing = ended - (first ?? started)
        let seconds = Double(flowing.components.seconds) + Double(flowing.components.attoseconds) / 1e18
        print("DC09ForwardBenchmark: \(count) events drained to the test receiver (TCP, window \(window)) \(ended - started) after it started (reconnection included), \(flowing) after the first arrived: \(Int(Double(count - 1) / seconds)) events/s")
        #expect(distinctEvents(receiver.stored.all).count == count)
    }
}
