import Foundation
import GRDB
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import DeviceKit

/// The centre's DC-09 port over real loopback sockets: events of known accounts are journalled as their
/// devices' messages and open and close cases, and are acknowledged only once the journal holds them.
@Suite struct DC09PortTests {
    static let key256 = try! DC09Key(bytes: Array(0x00...0x1f))
    static let key128 = try! DC09Key(bytes: Array(0x40...0x4f))
    /// 1234: device 17, clear; 5678: device 18, AES-256; ABC: device 19, AES-128.
    static let accounts = try! DC09Accounts([
        "1234": .init(device: 17), "5678": .init(device: 18, key: key256), "ABC": .init(device: 19, key: key128),
    ])

    static func start(
        journal: String = temporaryJournal(), _ configure: (inout DC09PortConfiguration) -> Void = { _ in }
    ) async throws -> RunningCentre {
        var port = DC09PortConfiguration(port: 0, accounts: accounts)
        configure(&port)
        return try await RunningCentre.start(journal: journal) { $0.dc09 = port }
    }

    static var now: DC09Timestamp { DC09Timestamp(milliseconds: UInt64(Date().timeIntervalSince1970 * 1000)) }

    /// A frame of `account` as a transmitter writes it: `code` in SIA-DCS or Contact ID, encrypted under `key`.
    static func frame(
        _ code: DC09EventCode, _ id: DC09Frame.ID = .siaDCS, account: String = "1234", sequence: Int, key: DC09Key? = nil,
        at timestamp: DC09Timestamp? = now
    ) throws -> [UInt8] {
        var random = SplitMix64(seed: UInt64(sequence))
        return try DC09Frame(
            id: id, sequence: DC09Frame.sequence(sequence), receiver: "0", line: "0", account: account,
            data: code.data(id, account: account), timestamp: timestamp
        ).encoded(key: key, random: &random)
    }

    static func null(account: String = "1234", sequence: Int) throws -> [UInt8] {
        var random = SplitMix64(seed: 1)
        return try DC09Frame(id: .null, sequence: DC09Frame.sequence(sequence), receiver: "0", line: "0", account: account, timestamp: now)
            .encoded(random: &random)
    }

    static func alarms(_ path: String) throws -> [CenterJournal.RecordedAlarm] { try CenterJournal(path: path).alarms() }

    // MARK: Events open cases, and are acknowledged after the journal holds them

    @Test(arguments: [DC09Client.Transport.stream, .datagram])
    func aClearSIAAlarmOpensACaseAndIsAcknowledgedOnceJournalled(_ transport: DC09Client.Transport) async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: transport)
        try await client.send(try Self.frame(DC09EventCodes.alarm(.button), sequence: 7))
        let ack = try await client.answer(sequence: "0007")
        #expect(ack?.id == .ack && ack?.account == "1234" && ack?.encrypted == false)
        // Acknowledged: the journal holds it now.
        let path = centre.server.configuration.journalPath
        #expect(try Self.alarms(path).map(\.device) == [17])
        #expect(try await centre.server.openCases().map(\.device) == [17])
        #expect(try await centre.events.first { if case .alarm(17, let alarm, _, true) = $0 { alarm.kind == .button } else { false } } != nil)
        #expect(centre.metric(#"center_dc09_frames_total{answer="ACK",reason="recorded"}"#) == 1)
        #expect(centre.metric("center_dc09_events_recorded_total") == 1)
        await client.close()
        await centre.stop()
    }

    @Test(arguments: [DC09Client.Transport.stream, .datagram])
    func anEncryptedAlarmIsAcknowledgedEncryptedUnderTheAccountsKey(_ transport: DC09Client.Transport) async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: transport, key: Self.key256)
        try await client.send(try Self.frame(DC09EventCodes.alarm(.pendant), account: "5678", sequence: 8, key: Self.key256))
        let ack = try await client.answer(sequence: "0008")
        #expect(ack?.id == .ack && ack?.encrypted == true && ack?.timestamp != nil)
        #expect(try await centre.events.first { if case .alarm(18, let alarm, _, true) = $0 { alarm.kind == .pendant } else { false } } != nil)
        // AES-128 too, Contact ID.
        let short = try await DC09Client.connect(to: centre, over: transport, key: Self.key128)
        try await short.send(try Self.frame(DC09EventCodes.alarm(.inactivity), .contactID, account: "ABC", sequence: 9, key: Self.key128))
        #expect(try await short.answer(sequence: "0009")?.id == .ack)
        #expect(try await centre.server.openCases().map(\.device).sorted() == [18, 19])
        await client.close()
        await short.close()
        await centre.stop()
    }

    @Test func aContactIDAlarmOpensACaseAndMainsEventsAreJournalled() async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: .stream)
        try await client.send(try Self.frame(DC09EventCodes.alarm(.fall), .contactID, sequence: 1))
        try await client.send(try Self.frame(DC09EventCodes.event(.mainsLost)!, .contactID, sequence: 2))
        try await client.send(try Self.frame(DC09EventCodes.event(.mainsRestored)!, .siaDCS, sequence: 3))
        for sequence in ["0001", "0002", "0003"] { #expect(try await client.answer(sequence: sequence)?.id == .ack) }
        #expect(try await centre.events.first { if case .alarm(17, let alarm, _, true) = $0 { alarm.kind == .fall } else { false } } != nil)
        let kinds = try await {
            try await eventually("both mains events") {
                centre.events.all.count { if case .recorded(17, .event) = $0 { true } else { false } } == 2
            }
            return centre.events.all.compactMap { if case .recorded(17, .event(let e)) = $0 { e.kind } else { nil } }
        }()
        #expect(kinds == [.mainsLost, .mainsRestored])
        await client.close()
        await centre.stop()
    }

    @Test func aCancelClosesTheCaseAndWithoutAnOpenAlarmChangesNothing() async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: .stream)
        try await client.send(try Self.frame(DC09EventCodes.cancel(.button), sequence: 1))
        #expect(try await client.answer(sequence: "0001")?.id == .ack, "a cancel with no open alarm is acknowledged")
        #expect(try await centre.server.openCases().isEmpty)
        try await client.send(try Self.frame(DC09EventCodes.alarm(.button), sequence: 2))
        #expect(try await client.answer(sequence: "0002")?.id == .ack)
        #expect(try await centre.server.openCases().count == 1)
        try await client.send(try Self.frame(DC09EventCodes.cancel(.button), .contactID, sequence: 3))
        #expect(try await client.answer(sequence: "0003")?.id == .ack)
        #expect(try await centre.events.first { if case .caseUpdate(_, 17, _, .closed) = $0 { true } else { false } } != nil)
        #expect(try await centre.server.openCases().isEmpty)
        #expect(try await centre.events.first { if case .alarmCancelled(17, _) = $0 { true } else { false } } != nil)
        await client.close()
        await centre.stop()
    }

    /// A DC-09 device has no session of ours: its cases' updates are not queued for one (with a key for the
    /// device at hand, each case's updates were kept for a session that never came: a load run's 120,000
    /// alarms left as many machines holding them).
    @Test func theCaseUpdatesOfADC09DeviceAreNotQueuedForASessionOfOurs() async throws {
        let registry = try DeviceRegistry(keys: [17: RunningCentre.rootKey])
        var port = DC09PortConfiguration(port: 0, accounts: Self.accounts)
        port.frameRate = 1_000
        let centre = try await RunningCentre.start(journal: temporaryJournal(), registry: registry) {
            $0.dc09 = port
            $0.cases = .init(autoEngageAfter: .milliseconds(10), autoCloseAfter: .milliseconds(20))
        }
        let client = try await DC09Client.connect(to: centre, over: .stream)
        try await client.send(try Self.frame(DC09EventCodes.alarm(.button), sequence: 4))
        #expect(try await client.answer(sequence: "0004")?.id == .ack)
        #expect(try await centre.events.first { if case .caseUpdate(_, 17, _, .closed) = $0 { true } else { false } } != nil)
        #expect(try await centre.server.sessionMachinesHeld() == 0)
        await client.close()
        await centre.stop()
    }

    @Test func nullSupervisionIsAcknowledgedAtOnceAndIsTheDevicesProofOfLife() async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: .datagram)
        try await client.send(try Self.null(account: "1234", sequence: 3))
        #expect(try await client.answer(sequence: "0003")?.id == .ack)
        #expect(try await centre.events.first { $0 == .online(device: 17) } != nil)
        #expect(centre.metric(#"center_dc09_frames_total{answer="ACK",reason="supervision"}"#) == 1)
        // An unknown account's NULL proves nothing.
        try await client.send(try Self.null(account: "9999", sequence: 4))
        #expect(try await client.answer { $0.id == .nak } != nil)
        #expect(!centre.events.all.contains { if case .online(let device) = $0 { device != 17 } else { false } })
        await client.close()
        await centre.stop()
    }

    // MARK: TCP streams

    @Test func severalFramesInOneWriteAndOneFrameAcrossWritesAreEachAnsweredInOrder() async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: .stream)
        let frames = try (1...4).map { try Self.frame(DC09EventCodes.event(.tamper)!, sequence: $0) }
        try await client.send(frames[0] + frames[1] + frames[2] + Array(frames[3].prefix(10)))
        try await client.send(Array(frames[3].dropFirst(10)))
        for sequence in 1...4 { #expect(try await client.answer(sequence: DC09Frame.sequence(sequence))?.id == .ack) }
        #expect(client.answers.all.map(\.sequence) == ["0001", "0002", "0003", "0004"])
        await client.close()
        await centre.stop()
    }

    // MARK: Refused: NAK and DUH, nothing journalled

    @Test func outsideTheTimeWindowIsNAKedWithOurTime() async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: .datagram)
        let stale = DC09Timestamp(secondsSince1970: Self.now.secondsSince1970 - 3600)
        try await client.send(try Self.frame(DC09EventCodes.alarm(.button), sequence: 5, at: stale))
        let nak = try await client.answer { $0.id == .nak }
        let ourTime = nak?.timestamp?.secondsSince1970 ?? 0
        #expect(abs(ourTime - Self.now.secondsSince1970) < 60, "a NAK carries the receiver's time")
        #expect(try Self.alarms(centre.server.configuration.journalPath).isEmpty)
        #expect(centre.metric(#"center_dc09_frames_total{answer="NAK",reason="outsideWindow"}"#) == 1)
        await client.close()
        await centre.stop()
    }

    @Test func anUnknownAccountAWrongKeyAClearFrameFromAKeyedAccountAndAnUnknownCodeAreRefused() async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: .stream)
        let wrongKey = try DC09Key(bytes: Array(repeating: 9, count: 32))
        let burglary = DC09EventCode(sia: "BA", qualifier: 1, contactID: 130, zone: 1, meaning: "burglary")
        let cases: [([UInt8], DC09Frame.ID, String)] = [
            (try Self.frame(DC09EventCodes.alarm(.button), account: "9999", sequence: 1), .nak, "unknownAccount"),
            (try Self.frame(DC09EventCodes.alarm(.button), account: "5678", sequence: 2, key: wrongKey), .nak, "undecryptable"),
            (try Self.frame(DC09EventCodes.alarm(.button), account: "5678", sequence: 3), .duh, "clearFromKeyedAccount"),
            (try Self.frame(burglary, sequence: 4), .duh, "unsupported"),
            (try Self.frame(burglary, .contactID, sequence: 5), .duh, "unsupported"),
        ]
        for (bytes, answer, reason) in cases {
            let before = client.answers.all.count
            try await client.send(bytes)
            try await eventually("the answer to a frame refused for \(reason)") { client.answers.all.count > before }
            #expect(client.answers.all.last?.id == answer, "\(reason)")
            #expect(centre.metric(#"center_dc09_frames_total{answer="\#(answer.rawValue)",reason="\#(reason)"}"#) >= 1, "\(reason)")
        }
        #expect(try Self.alarms(centre.server.configuration.journalPath).isEmpty)
        #expect(try await centre.server.openCases().isEmpty)
        await client.close()
        await centre.stop()
    }

    // MARK: Once

    @Test func aRetransmissionIsRecordedOnceAlsoWithACorrectedTimestampAndAcrossARestart() async throws {
        let path = temporaryJournal()
        var centre = try await Self.start(journal: path)
        var client = try await DC09Client.connect(to: centre, over: .stream)
        let alarm = DC09EventCodes.alarm(.button)
        try await client.send(try Self.frame(alarm, sequence: 42))
        try await client.send(try Self.frame(alarm, sequence: 42))
        // After a NAK the transmitter corrects its clock: the same message, stamped anew.
        try await client.send(try Self.frame(alarm, sequence: 42, at: DC09Timestamp(secondsSince1970: Self.now.secondsSince1970 - 5)))
        try await eventually("three ACKs") { client.answers.all.count { $0.id == .ack } == 3 }
        #expect(try Self.alarms(path).count == 1)
        #expect(centre.metric(#"center_dc09_frames_total{answer="ACK",reason="retransmission"}"#) == 2)
        await client.close()
        await centre.stop()
        // The centre restarted: a transmitter that missed the ACK sends it again.
        centre = try await Self.start(journal: path)
        client = try await DC09Client.connect(to: centre, over: .datagram)
        try await client.send(try Self.frame(alarm, sequence: 42))
        #expect(try await client.answer(sequence: "0042")?.id == .ack)
        #expect(try Self.alarms(path).count == 1)
        #expect(try await centre.server.openCases().count == 1)
        // The next event reuses no sequence: a new one.
        try await client.send(try Self.frame(alarm, sequence: 43))
        #expect(try await client.answer(sequence: "0043")?.id == .ack)
        #expect(try Self.alarms(path).count == 2)
        await client.close()
        await centre.stop()
    }

    // MARK: Durable before ACK

    @Test func noACKIsSentWhileTheJournalCannotWrite() async throws {
        let centre = try await Self.start()
        let path = centre.server.configuration.journalPath
        let client = try await DC09Client.connect(to: centre, over: .stream)
        var unsafe = Configuration()
        unsafe.allowsUnsafeTransactions = true  // the lock is held across accesses on purpose
        unsafe.busyMode = .timeout(120)
        let other = try DatabaseQueue(path: path, configuration: unsafe)
        try other.inDatabase { db in try db.execute(sql: "BEGIN IMMEDIATE") }
        try await client.send(try Self.frame(DC09EventCodes.alarm(.button), sequence: 11))
        // Answers go in the order of their frames: the NULL's ACK comes only after the alarm's answer is known.
        try await client.send(try Self.null(sequence: 12))
        #expect(try await client.answer(sequence: "0012")?.id == .ack)
        #expect(client.answers.all.map(\.sequence) == ["0012"], "the alarm the journal could not take is not acknowledged")
        #expect(centre.metric(#"center_dc09_frames_total{answer="none",reason="journalFailed"}"#) == 1)
        try other.inDatabase { db in try db.execute(sql: "ROLLBACK") }
        try other.close()
        // The transmitter sends it again: now it is journalled and acknowledged.
        try await client.send(try Self.frame(DC09EventCodes.alarm(.button), sequence: 11))
        #expect(try await client.answer(sequence: "0011")?.id == .ack)
        #expect(try Self.alarms(path).count == 1)
        await client.close()
        await centre.stop()
    }

    // MARK: Defences

    @Test func aConnectionThatSendsNothingIsClosed() async throws {
        let centre = try await Self.start { $0.idleTimeout = .milliseconds(200) }
        let client = try await DC09Client.connect(to: centre, over: .stream)
        try await eventually("the idle connection closed") { client.isClosed }
        #expect(centre.metric(#"center_connections_closed_total{reason="idle"}"#) == 1)
        await centre.stop()
    }

    @Test func framesOverASourcesRateAreDroppedBeforeDecryption() async throws {
        let centre = try await Self.start { $0.frameRate = 0.001; $0.burst = 2 }
        let client = try await DC09Client.connect(to: centre, over: .stream)
        for sequence in 1...4 { try await client.send(try Self.null(sequence: sequence)) }
        try await eventually("two dropped") { centre.metric(#"center_dc09_frames_total{answer="none",reason="rateLimited"}"#) == 2 }
        try await eventually("two answered") { client.answers.all.count == 2 }
        #expect(client.answers.all.map(\.sequence) == ["0001", "0002"])
        await client.close()
        await centre.stop()
    }

    /// The port's limits are the centre's own (`--max-unauthenticated-per-address`): a DC-09 connection counts
    /// as unauthenticated until a frame of a known account is taken on it. (With a default of the port's own,
    /// 64, a load test of 1,000 devices from one address saw 8,915 reconnects while its devices waited for
    /// their first NULL.)
    @Test func pastTheConnectionLimitTheOldestConnectionWithoutAFrameIsClosed() async throws {
        let centre = try await RunningCentre.start(journal: temporaryJournal()) {
            $0.unauthenticatedPerAddress = 2
            $0.dc09 = DC09PortConfiguration(port: 0, accounts: Self.accounts)
        }
        let first = try await DC09Client.connect(to: centre, over: .stream)
        let taken = try await DC09Client.connect(to: centre, over: .stream)
        try await taken.send(try Self.null(sequence: 1))
        #expect(try await taken.answer(sequence: "0001")?.id == .ack)
        let third = try await DC09Client.connect(to: centre, over: .stream)
        let fourth = try await DC09Client.connect(to: centre, over: .stream)
        try await eventually("the oldest idle connection evicted") { first.isClosed }
        // The connection whose frame was taken stays.
        try await taken.send(try Self.null(sequence: 2))
        #expect(try await taken.answer(sequence: "0002")?.id == .ack)
        #expect(!third.isClosed || !fourth.isClosed)
        for client in [first, taken, third, fourth] { await client.close() }
        await centre.stop()
    }

    @Test func garbageNeverCrashesThePortAndIsNAKed() async throws {
        let centre = try await Self.start()
        let client = try await DC09Client.connect(to: centre, over: .stream)
        var random = SplitMix64(seed: 99)
        for _ in 0..<200 {
            var bytes = (0..<Int.random(in: 0...300, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            if Bool.random(using: &random) { bytes = [0x0A] + bytes + [0x0D] }
            try await client.send(bytes)
        }
        // Still serving: a good frame after the garbage is acknowledged.
        try await client.send(try Self.null(sequence: 77))
        #expect(try await client.answer(sequence: "0077")?.id == .ack)
        #expect(try Self.alarms(centre.server.configuration.journalPath).isEmpty)
        await client.close()
        await centre.stop()
    }
}

/// A DC-09 transmitter played by the test over a real socket: sends bytes, collects the answers decoded.
final class DC09Client: Sendable {
    enum Transport: Sendable { case stream, datagram }

    let channel: any Channel
    let remote: SocketAddress
    let transport: Transport
    let answers = Collected<DC09Frame>()
    private let closed = Mutex(false)

    private init(channel: any Channel, remote: SocketAddress, transport: Transport) {
        self.channel = channel
        self.remote = remote
        self.transport = transport
    }

    static func connect(to centre: RunningCentre, over transport: Transport, key: DC09Key? = nil) async throws -> DC09Client {
        guard let port = centre.ports.dc09 else { throw HarnessError("the centre has no DC-09 port") }
        let remote = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let sink = DC09AnswerSink(key: key)
        let channel: any Channel
        switch transport {
        case .stream:
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DC09StreamCollector(sink: sink)) }
                }
                .connect(to: remote).get()
        case .datagram:
            channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DC09DatagramCollector(sink: sink)) }
                }
                .bind(host: "127.0.0.1", port: 0).get()
        }
        let client = DC09Client(channel: channel, remote: remote, transport: transport)
        sink.attach(client)
        return client
    }

    var isClosed: Bool { closed.withLock { $0 } }
    func markClosed() { closed.withLock { $0 = true } }

    func send(_ bytes: [UInt8]) async throws {
        switch transport {
        case .stream: try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        case .datagram: try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: ByteBuffer(bytes: bytes)))
        }
    }

    func answer(sequence: String) async throws -> DC09Frame? {
        try await answer { $0.sequence == sequence }
    }

    func answer(where match: (DC09Frame) -> Bool) async throws -> DC09Frame? {
        try await answers.first(where: match)
    }

    func close() async { try? await channel.close() }
}

/// Decodes what the centre answers and hands it to the client (attached once made, answers kept till then).
final class DC09AnswerSink: Sendable {
    private let key: DC09Key?
    private let state = Mutex<(client: DC09Client?, early: [DC09Frame], closed: Bool, splitter: DC09FrameSplitter)>((nil, [], false, .init()))

    init(key: DC09Key?) { self.key = key }

    func attach(_ client: DC09Client) {
        state.withLock { state in
            for frame in state.early { client.answers.append(frame) }
            if state.closed { client.markClosed() }
            (state.client, state.early) = (client, [])
        }
    }

    func received(_ bytes: [UInt8], datagram: Bool) {
        state.withLock { state in
            let frames = datagram ? [bytes] : state.splitter.feed(bytes).compactMap { if case .frame(let f) = $0 { f } else { nil } }
            for bytes in frames {
                guard let frame = try? DC09Frame.decode(bytes, key: { [key] _ in key }) else { continue }
                if let client = state.client { client.answers.append(frame) } else { state.early.append(frame) }
            }
        }
    }

    func closed() {
        state.withLock { state in
            if let client = state.client { client.markClosed() } else { state.closed = true }
        }
    }
}

final class DC09StreamCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let sink: DC09AnswerSink
    init(sink: DC09AnswerSink) { self.sink = sink }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink.received(Array(unwrapInboundIn(data).readableBytesView), datagram: false)
    }
    func channelInactive(context: ChannelHandlerContext) { sink.closed() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

final class DC09DatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let sink: DC09AnswerSink
    init(sink: DC09AnswerSink) { self.sink = sink }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink.received(Array(unwrapInboundIn(data).data.readableBytesView), datagram: true)
    }
}
