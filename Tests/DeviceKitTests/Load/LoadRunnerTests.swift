import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import DeviceKit

/// Small load runs against an in-process centre on loopback: the same code as `devicesim load`, seconds long.
@Suite struct LoadRunnerTests {
    static let master = try! FleetMasterKey(bytes: Array(repeating: 0x5A, count: 32))

    /// 200 devices over TCP and 200 over UDP at once, against one centre; every alarm acknowledged, and the
    /// centre recorded exactly the alarms the devices saw acknowledged.
    @Test func smallFleetsOverTCPAndUDPLoseNoAlarm() async throws {
        let directory = NSTemporaryDirectory() + "load-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let centre = CenterServer(
            configuration: CenterConfiguration(
                host: "127.0.0.1", tcpPort: 0, udpPort: 0, journalPath: directory + "/centre.sqlite",
                session: .init(heartbeatIntervalSeconds: 1, rate: 100, burst: 100),
                cases: .init(autoEngageAfter: .milliseconds(50), autoCloseAfter: .milliseconds(100))),
            registry: DeviceRegistry(master: Self.master),
            logger: Logger(label: "test.centre", factory: { _ in SwiftLogNoOpLogHandler() }))
        let events = Mutex<[CenterEvent]>([])
        let stream = centre.events()
        let collector = Task { for await event in stream { events.withLock { $0.append(event) } } }
        let centreTask = Task { try await centre.run() }
        defer { centreTask.cancel() }
        let ports = try await centre.listening()

        func plan(_ transport: Transport, port: Int, firstID: UInt32) throws -> LoadPlan {
            LoadPlan(
                centre: try SocketAddress(ipAddress: "127.0.0.1", port: port), master: Self.master, transport: transport,
                firstID: firstID, fleetSize: 200, rampRate: 1000, fleetAlarmRate: 40, cancelShare: 0.3,
                duration: .milliseconds(1500), settle: .milliseconds(500),
                // The run ends as soon as every alarm is acknowledged; the long bound only matters on a starved machine.
                drain: .seconds(90), devicesPerSocket: 64,
                seed: UInt64(firstID))
        }
        async let tcp = LoadRunner(plan: try plan(.tcp, port: ports.tcp, firstID: 1), group: MultiThreadedEventLoopGroup.singleton).run()
        async let udp = LoadRunner(plan: try plan(.udp, port: ports.udp, firstID: 10_001), group: MultiThreadedEventLoopGroup.singleton).run()
        let reports = try await [tcp, udp]
        try await Task.sleep(for: .milliseconds(200))  // the last events on their way to the collector

        let seen = events.withLock { $0 }
        for (report, ids) in zip(reports, [UInt32(1)...200, 10_001...10_200]) {
            let c = report.counts
            #expect(report.devices == 200)
            #expect(c.sessionsOpened >= 200)
            #expect(report.histogram(.session).count == UInt64(c.sessionsOpened))
            #expect(c.alarmsSent > 20)  // 40/s for 1.5 s: about 60
            #expect(c.alarmsAcknowledged == c.alarmsSent)
            #expect(c.alarmsLost == 0)
            #expect(report.histogram(.alarm).count == UInt64(c.alarmsAcknowledged))
            #expect(c.heartbeatsSent > 200)
            #expect(c.heartbeatAcks > 0)
            // Frames of a session a starved device already gave up are refused after it reconnects; otherwise none.
            #expect(c.refusedFrames == 0 || c.reconnects > 0, "\(c.refusedFrames) refused without a reconnect")
            // The centre dispatched each acknowledged alarm once.
            let recorded = seen.compactMap { event -> String? in
                if case .alarm(let device, let alarm, _, _) = event, ids.contains(device) { "\(device)/\(alarm.id)" } else { nil }
            }
            #expect(recorded.count == c.alarmsAcknowledged)
            #expect(Set(recorded).count == recorded.count)
            let cancelled = seen.count { if case .alarmCancelled(let d, _) = $0 { ids.contains(d) } else { false } }
            #expect(cancelled <= c.cancelsSent)
            #expect(c.cancelsSent > 0)
        }
        collector.cancel()
    }
}
