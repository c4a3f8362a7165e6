import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// Calls between a real `DeviceRuntime` and a real `CenterServer` on loopback: the signalling over the
/// sealed protocol, SRTP voice and video stub over UDP both ways, RTCP, silence, re-establishing.
@Suite(.serialized) struct CallEndToEndTests {
    static let master = try! FleetMasterKey(bytes: Array(repeating: 0x5A, count: 32))

    /// A centre whose operator engages each case after 100 ms (and so calls the home) and never closes it.
    struct Setup {
        let centre: CenterServer
        let task: Task<Void, any Error>
        let events: Collected<CenterEvent>
        let device: DeviceRuntime
        let observations: Collected<DeviceObservation.Kind>
        let directory: String

        static func start(deviceID: UInt32, centreSilence: Duration = .seconds(5)) async throws -> Setup {
            let directory = NSTemporaryDirectory() + "call-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let configuration = CenterConfiguration(
                host: "127.0.0.1", tcpPort: 0, udpPort: 0, journalPath: directory + "/centre.sqlite",
                session: .init(heartbeatIntervalSeconds: 5), cases: .init(autoEngageAfter: .milliseconds(100)),
                media: MediaLink.Parameters(silenceTimeout: centreSilence, reportInterval: .seconds(1)))
            let centre = CenterServer(
                configuration: configuration, registry: DeviceRegistry(master: master),
                logger: Logger(label: "test.centre", factory: { _ in SwiftLogNoOpLogHandler() }))
            let events = Collected<CenterEvent>()
            let stream = centre.events()
            Task { for await event in stream { events.append(event) } }
            let task = Task { try await centre.run() }
            let ports = try await centre.listening()
            let device = try DeviceRuntime(
                configuration: DeviceRuntimeConfiguration(
                    key: DeviceKey(deviceID: deviceID, master: master),
                    primary: try SocketAddress(ipAddress: "127.0.0.1", port: ports.tcp),
                    capabilities: [.button, .voice, .video], media: MediaLink.Parameters(reportInterval: .seconds(1))),
                outbox: InMemoryOutbox(), counterStore: InMemoryCounterStore(), indicators: RecordingIndicators(),
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                logger: Logger(label: "test.device", factory: { _ in SwiftLogNoOpLogHandler() }))
            let observations = Collected<DeviceObservation.Kind>()
            let deviceStream = device.observations
            Task { for await o in deviceStream { observations.append(o.kind) } }
            device.start()
            return Setup(centre: centre, task: task, events: events, device: device, observations: observations, directory: directory)
        }

        func stop() async {
            await device.stop()
            task.cancel()
            _ = try? await task.value
            try? FileManager.default.removeItem(atPath: directory)
        }

        func callStarted(after count: Int = 0) async throws -> UInt32 {
            var ids: [UInt32] = []
            try await eventually("call \(count + 1) to start") {
                ids = events.all.compactMap { if case .callStarted(_, let id) = $0 { id } else { nil } }
                return ids.count > count
            }
            return ids[count]
        }

        func centreEnded(_ callID: UInt32) async throws -> (CallEndReason, CallEndedBy, MediaStatistics?) {
            let event = try await events.first(within: .seconds(120)) { event in
                if case .callEnded(_, callID, _, _, _) = event { return true }
                return false
            }
            guard case .callEnded(_, _, let reason, let by, let statistics)? = event else { throw HarnessError("call \(callID) did not end") }
            return (reason, by, statistics)
        }

        func deviceEnded(_ callID: UInt32) async throws -> (CallEndReason, Bool, MediaStatistics?) {
            let seen = try await observations.first(within: .seconds(120)) { kind in
                if case .callEnded(callID, _, _, _) = kind { return true }
                return false
            }
            guard case .callEnded(_, let reason, let byCentre, let statistics)? = seen else { throw HarnessError("device did not end call \(callID)") }
            return (reason, byCentre, statistics)
        }
    }

    @Test func aCallAfterAnAlarmCarriesVoiceBothWaysWithNoLossOnLoopback() async throws {
        let setup = try await Setup.start(deviceID: 3001)
        defer { Task { await setup.stop() } }
        setup.device.raiseAlarm()
        let callID = try await setup.callStarted()
        // The device reports its own start through an asynchronous stream, which may trail the centre's event.
        #expect(try await setup.observations.first { if case .callStarted(callID, _) = $0 { true } else { false } } != nil)

        // Two seconds of voice (100 packets) and at least one RTCP report each way.
        try await eventually("100 voice packets and an RTCP report at the centre") {
            let s = await centreStatistics(setup.centre, device: 3001)
            return (s?.audio.received ?? 0) >= 100 && (s?.rtcpReceived ?? 0) >= 1 && s?.peerFractionLost != nil
        }
        try await eventually("100 voice packets at the device") {
            let s = await setup.device.callStatistics()
            return (s?.audio.received ?? 0) >= 100 && (s?.rtcpReceived ?? 0) >= 1
        }
        #expect(try await setup.centre.hangUp(device: 3001))

        let (reason, by, centreStats) = try await setup.centreEnded(callID)
        #expect(reason == .hangUp && by == .center)
        let (deviceReason, byCentre, deviceStats) = try await setup.deviceEnded(callID)
        #expect(deviceReason == .hangUp && byCentre)
        for stats in [centreStats, deviceStats] {
            let s = try #require(stats)
            #expect(s.audio.received >= 100)
            #expect(s.audio.cumulativeLost == 0)
            #expect(s.audio.received == s.audio.expected)
            #expect(s.audio.outOfOrder == 0 && s.audio.duplicates == 0)
            #expect(s.malformed == 0 && s.authenticationFailures == 0 && s.replayed == 0 && s.unknownSource == 0)
            #expect(s.video.received > 0)  // the video stub, 10 frames a second
            #expect(s.video.cumulativeLost == 0)
            #expect(s.peerCumulativeLost == 0)
            #expect(s.audioDatagramBytes == 182)
            #expect(s.audio.jitterMilliseconds < 250)  // a bound against nonsense, not a measurement
        }
        // The case stays open: only an operator closes it.
        let open = try await setup.centre.openCases()
        #expect(open.contains { $0.device == 3001 && $0.state == .operatorEngaged })
        let metrics = setup.centre.metricsText()
        #expect(metrics.contains("center_calls_started_total 1"))
        #expect(metrics.contains(#"center_calls_ended_total{reason="hangUp"} 1"#))
        #expect(metrics.contains("center_media_packets_lost_total 0"))
        #expect(metrics.contains("center_calls_active 0"))
    }

    /// The media counters moved only when a call ended: a dashboard saw a half-hour call as nothing.
    @Test func theMediaCountersMoveWhileACallLasts() async throws {
        let setup = try await Setup.start(deviceID: 3004)
        defer { Task { await setup.stop() } }
        setup.device.raiseAlarm()
        _ = try await setup.callStarted()
        try await eventually("voice counted at the centre while the call lasts") {
            metricValue("center_media_packets_received_total", in: setup.centre.metricsText()) >= 50
        }
        #expect(setup.centre.metricsText().contains("center_calls_active 1"))
        #expect(try await setup.centre.hangUp(device: 3004))
    }

    @Test func aCallOutsideAnyAlarmIsDeclinedByTheDevice() async throws {
        let setup = try await Setup.start(deviceID: 3003)
        defer { Task { await setup.stop() } }
        try await eventually("the device's session") {
            setup.events.all.contains { if case .sessionOpened(3003, _) = $0 { true } else { false } }
        }
        let callID = try #require(try await setup.centre.call(device: 3003))
        let (reason, by, _) = try await setup.centreEnded(callID)
        #expect(reason == .declined && by == .device)
        #expect(!setup.observations.all.contains { if case .callStarted = $0 { true } else { false } })
        #expect(setup.centre.metricsText().contains(#"center_calls_ended_total{reason="declined"} 1"#))
    }

    @Test func silentMediaEndsTheCallKeepsTheCaseOpenAndTheCallCanBeReestablished() async throws {
        let setup = try await Setup.start(deviceID: 3002, centreSilence: .seconds(1))
        defer { Task { await setup.stop() } }
        setup.device.raiseAlarm()
        let first = try await setup.callStarted()
        try await eventually("voice at the centre") { (await centreStatistics(setup.centre, device: 3002))?.audio.received ?? 0 > 10 }

        setup.device.setMediaPaused(true)  // the home's voice stops; the signalling link stays up
        let silent = try await setup.events.first(within: .seconds(120)) { if case .mediaSilent(3002, first, _) = $0 { true } else { false } }
        #expect(silent != nil)
        let (reason, by, _) = try await setup.centreEnded(first)
        #expect(reason == .mediaSilent && by == .center)
        let (deviceReason, byCentre, _) = try await setup.deviceEnded(first)
        #expect(deviceReason == .mediaSilent && byCentre)
        #expect(try await setup.centre.openCases().contains { $0.device == 3002 })

        // The operator calls again: a new call, media flows again.
        let again = try await setup.centre.call(device: 3002)
        let second = try await setup.callStarted(after: 1)
        #expect(second == again && second != first)
        try await eventually("voice on the new call") { (await centreStatistics(setup.centre, device: 3002))?.audio.received ?? 0 > 10 }

        // This time the home hangs up.
        #expect(await setup.device.hangUp())
        let (endReason, endedBy, statistics) = try await setup.centreEnded(second)
        #expect(endReason == .hangUp && endedBy == .device)
        #expect((statistics?.audio.cumulativeLost ?? -1) == 0)
        #expect(try await setup.centre.openCases().contains { $0.device == 3002 })
    }
}

private func centreStatistics(_ centre: CenterServer, device: UInt32) async -> MediaStatistics? {
    (try? await centre.callStatistics(device: device)) ?? nil
}
