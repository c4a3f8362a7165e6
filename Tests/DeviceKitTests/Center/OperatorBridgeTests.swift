import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// The centre's operator phones on real loopback sockets: a `CenterServer` with `--operator` phones that are
/// `SIPPhone`s of the test (one busy, one that answers, one that never does), and a real `DeviceRuntime` as
/// the home. An engaged case rings the pool in order; the answered phone and the home hear each other
/// through the bridge; a hang-up on either side ends the other; the case stays open.
@Suite(.serialized) struct OperatorBridgeTests {
    static let master = try! FleetMasterKey(bytes: Array(repeating: 0x5B, count: 32))

    final class Desk: Sendable {
        let phone: SIPPhone
        let events: NIOLockedValueBox<[SIPPhone.Event]>
        let port: Int

        init(phone: SIPPhone, events: NIOLockedValueBox<[SIPPhone.Event]>, port: Int) {
            self.phone = phone
            self.events = events
            self.port = port
        }

        var answeredCall: SIPCallHandle? {
            events.withLockedValue { $0.compactMap { if case .incoming(let c, _) = $0 { c } else { nil } }.last }
        }

        var reports: [SIPPhone.CallReport] {
            events.withLockedValue { $0.compactMap { if case .ended(let r) = $0 { r } else { nil } } }
        }

        var uri: SIPURI { SIPURI(user: "desk", host: "127.0.0.1", port: port) }

        static func start(_ options: SIPPhone.Options, on loop: any EventLoop) async throws -> Desk {
            let events = NIOLockedValueBox<[SIPPhone.Event]>([])
            let userAgent = SIPUserAgent.Configuration(identity: SIPURI(user: "desk", host: "127.0.0.1"), contactHost: "127.0.0.1", contactPort: 0)
            let phone = try await SIPPhone.start(SIPEndpoint.Configuration(host: "127.0.0.1", port: 0), userAgent: userAgent, options: options, on: loop) {
                event in events.withLockedValue { $0.append(event) }
            }
            return Desk(phone: phone, events: events, port: try await loop.submit { phone.endpoint.port }.get())
        }
    }

    struct Setup {
        let centre: CenterServer
        let task: Task<Void, any Error>
        let events: Collected<CenterEvent>
        let device: DeviceRuntime
        let observations: Collected<DeviceObservation.Kind>
        let directory: String

        static func start(deviceID: UInt32, desks: [Desk], ringTimeout: Duration = .seconds(30), retryAfter: Duration = .seconds(10)) async throws -> Setup {
            let directory = NSTemporaryDirectory() + "bridge-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            var configuration = CenterConfiguration(
                host: "127.0.0.1", tcpPort: 0, udpPort: 0, journalPath: directory + "/centre.sqlite",
                session: .init(heartbeatIntervalSeconds: 5), cases: .init(autoEngageAfter: .milliseconds(100)),
                media: MediaLink.Parameters(reportInterval: .seconds(1)))
            configuration.operators = OperatorPhones(
                phones: try desks.map { ($0.uri, SIPTarget(.udp, try SocketAddress(ipAddress: "127.0.0.1", port: $0.port))) },
                endpoint: SIPEndpoint.Configuration(host: "127.0.0.1", port: 0), identity: SIPURI(user: "centre", host: "127.0.0.1"),
                ringTimeout: ringTimeout, retryAfter: retryAfter)
            let centre = CenterServer(
                configuration: configuration, registry: DeviceRegistry(master: master),
                logger: Logger(label: "test.centre", factory: { _ in SwiftLogNoOpLogHandler() }))
            let events = Collected<CenterEvent>()
            let stream = centre.events()
            Task { for await event in stream { events.append(event) } }
            let task = Task { try await centre.run() }
            let ports = try await centre.listening()
            #expect(ports.sip != nil)
            let device = try DeviceRuntime(
                configuration: DeviceRuntimeConfiguration(
                    key: DeviceKey(deviceID: deviceID, master: master),
                    primary: try SocketAddress(ipAddress: "127.0.0.1", port: ports.tcp),
                    capabilities: [.button, .voice], media: MediaLink.Parameters(reportInterval: .seconds(1))),
                outbox: InMemoryOutbox(), counterStore: InMemoryCounterStore(), indicators: RecordingIndicators(),
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger(label: "test.device", factory: { _ in SwiftLogNoOpLogHandler() }))
            let observations = Collected<DeviceObservation.Kind>()
            let deviceStream = device.observations
            Task { for await o in deviceStream { observations.append(o.kind) } }
            device.start()
            return Setup(centre: centre, task: task, events: events, device: device, observations: observations, directory: directory)
        }

        func stop(_ desks: [Desk]) async {
            await device.stop()
            task.cancel()
            _ = try? await task.value
            for desk in desks { try? await desk.phone.eventLoop.flatSubmit { desk.phone.stop() }.get() }
            try? FileManager.default.removeItem(atPath: directory)
        }

        /// The operator-call stages seen so far, in order, with the phone each was on.
        var stages: [(phone: String, stage: OperatorCallStage)] {
            events.all.compactMap { if case .operatorCall(_, let phone, let stage) = $0 { (phone, stage) } else { nil } }
        }

        func waitFor(_ what: String, _ matches: @escaping (OperatorCallStage) -> Bool) async throws {
            try await eventually(what) { stages.contains { matches($0.stage) } }
        }
    }

    static func loop() -> any EventLoop { MultiThreadedEventLoopGroup.singleton.next() }

    @Test func aBusyPhoneIsPassedOverAndTheNextOneIsBridgedToTheHome() async throws {
        let busy = try await Desk.start(SIPPhone.Options(rejectWith: 486), on: Self.loop())
        let desk = try await Desk.start(SIPPhone.Options(answerAfter: .milliseconds(50)), on: Self.loop())
        let setup = try await Setup.start(deviceID: 4101, desks: [busy, desk])
        defer { Task { await setup.stop([busy, desk]) } }
        setup.device.raiseAlarm()

        try await setup.waitFor("the phone and the home bridged") { $0 == .bridged }
        let stages = setup.stages
        // The pool in order: the busy desk refused, the next one answered, then the home was called and joined.
        #expect(stages.first?.stage == .ringing && stages.first?.phone == busy.uri.description)
        #expect(stages.contains { $0.phone == busy.uri.description && $0.stage == .notAnswered("486 Busy Here") })
        #expect(stages.contains { if $0.phone == desk.uri.description, case .answered = $0.stage { true } else { false } })
        #expect(setup.events.all.contains { if case .callStarted(4101, _) = $0 { true } else { false } })

        // Voice both ways through the bridge: the desk's synthetic voice reaches the home, and the home's the desk.
        try await eventually("the home hears the operator") { (await setup.device.callStatistics()?.audio.received ?? 0) >= 50 }
        let call = try #require(desk.answeredCall)
        try await eventually("the operator hears the home") {
            let s = try await desk.phone.eventLoop.submit { desk.phone.statistics(call) }.get()
            return (s?.audio.received ?? 0) >= 50
        }
        let home = try #require(await setup.device.callStatistics())
        #expect(home.audio.cumulativeLost == 0 && home.authenticationFailures == 0)
        #expect(setup.centre.metricsText().contains("center_operator_calls_bridged 1"))

        // The operator hangs up: the home's call ends, the case stays open.
        try await desk.phone.eventLoop.submit { desk.phone.hangUp(call) }.get()
        try await eventually("the home's call ended") {
            setup.observations.all.contains { if case .callEnded(_, .hangUp, true, _) = $0 { true } else { false } }
        }
        try await setup.waitFor("the operator's leg reported ended") { if case .ended("hung up by the operator", _) = $0 { true } else { false } }
        #expect(try await setup.centre.openCases().contains { $0.device == 4101 })
        #expect(setup.centre.metricsText().contains("center_operator_calls_bridged 0"))
        #expect(setup.centre.metricsText().contains("center_operator_calls_not_answered_total 1"))
    }

    @Test func theHomeHangingUpEndsTheOperatorsCall() async throws {
        let desk = try await Desk.start(SIPPhone.Options(), on: Self.loop())
        let setup = try await Setup.start(deviceID: 4102, desks: [desk])
        defer { Task { await setup.stop([desk]) } }
        setup.device.raiseAlarm()
        try await setup.waitFor("bridged") { $0 == .bridged }
        #expect(await setup.device.hangUp())
        try await eventually("the desk got the centre's BYE") { desk.reports.contains { $0.end == .byPeer } }
        #expect(try await setup.centre.openCases().contains { $0.device == 4102 })
    }

    @Test func aPhoneThatRingsTooLongIsCancelledAndWithNoneLeftTheCaseWaits() async throws {
        let slow = try await Desk.start(SIPPhone.Options(answerAfter: .seconds(60)), on: Self.loop())
        let busy = try await Desk.start(SIPPhone.Options(rejectWith: 486), on: Self.loop())
        let setup = try await Setup.start(deviceID: 4103, desks: [slow, busy], ringTimeout: .milliseconds(400), retryAfter: .milliseconds(300))
        defer { Task { await setup.stop([slow, busy]) } }
        setup.device.raiseAlarm()
        try await setup.waitFor("the case waits for a phone") { if case .waiting = $0 { true } else { false } }
        // The slow desk saw our CANCEL; the pool is tried again after retryAfter.
        try await eventually("the slow desk was cancelled") { slow.reports.contains { $0.end == .cancelledByCaller } }
        try await eventually("the pool tried again") { setup.stages.count { if case .waiting = $0.stage { true } else { false } } >= 2 }
        #expect(!setup.events.all.contains { if case .callOffered(4103, _, _) = $0 { true } else { false } })  // no operator, no home call
        // Closing the case ends its operator leg.
        let open = try #require(try await setup.centre.openCases().first { $0.device == 4103 })
        #expect(try await setup.centre.close(case: open.id))
    }
}
