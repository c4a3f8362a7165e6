import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Press-to-ack latency on loopback: an in-process centre (SQLite journal, fsync'd) and simulated devices
/// with SQLite outboxes, each raising alarms one after another; measured from the press to the centre's ack.
///
/// Used by `devicesim demo --bench`. A benchmark, not a test: the figures depend on the machine.
public struct AlarmLatencyBenchmark: Sendable {
    public var alarms: Int
    public var devices: Int

    public init(alarms: Int = 1000, devices: Int = 20) {
        self.alarms = alarms
        self.devices = max(1, min(devices, alarms))
    }

    public struct Result: Sendable {
        public var latencies: [Duration]
        public func percentile(_ p: Double) -> Duration {
            let sorted = latencies.sorted()
            guard !sorted.isEmpty else { return .zero }
            return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p / 100).rounded(.up)) - 1)]
        }
    }

    public func run() async throws -> Result {
        let directory = NSTemporaryDirectory() + "devicesim-bench-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let master = try FleetMasterKey(bytes: Array(repeating: 7, count: 32))
        let centre = CenterServer(
            configuration: CenterConfiguration(
                host: "127.0.0.1", tcpPort: 0, udpPort: 0, journalPath: directory + "/centre.sqlite",
                session: .init(heartbeatIntervalSeconds: 30, rate: 1000, burst: 1000),
                cases: .init(autoEngageAfter: .zero, autoCloseAfter: .zero)),
            registry: DeviceRegistry(master: master), logger: logger)
        let centreTask = Task { try await centre.run() }
        defer { centreTask.cancel() }
        let ports = try await centre.listening()
        let perDevice = (alarms + devices - 1) / devices
        let latencies = LatencyLog()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<devices {
                let count = min(perDevice, alarms - index * perDevice)
                guard count > 0 else { continue }
                let id = UInt32(index + 1)
                let counter = CounterReservationFile(path: directory + "/device\(id).counter")
                try counter.provision()  // a new key, just provisioned
                let runtime = try DeviceRuntime(
                    configuration: DeviceRuntimeConfiguration(
                        key: DeviceKey(deviceID: id, master: master),
                        primary: try SocketAddress(ipAddress: "127.0.0.1", port: ports.tcp)),
                    outbox: try SQLiteOutbox(path: directory + "/device\(id).sqlite"),
                    counterStore: counter,
                    indicators: RecordingIndicators(), eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
                    logger: logger)
                group.addTask {
                    var iterator = runtime.observations.makeAsyncIterator()
                    runtime.start()
                    while let o = await iterator.next() { if case .sessionEstablished = o.kind { break } }
                    for _ in 0..<count {
                        let pressed = ContinuousClock.now
                        runtime.raiseAlarm()
                        var delivered = false
                        while let o = await iterator.next() {
                            if case .story(.delivered) = o.kind, !delivered {
                                delivered = true
                                let latency = ContinuousClock.now - pressed
                                latencies.append(latency)
                            }
                            if case .story(.closed) = o.kind { break }
                        }
                    }
                    await runtime.stop()
                }
            }
            try await group.waitForAll()
        }
        return Result(latencies: latencies.all)
    }
}

private final class LatencyLog: Sendable {
    private let values = Mutex<[Duration]>([])
    func append(_ d: Duration) { values.withLock { $0.append(d) } }
    var all: [Duration] { values.withLock { $0 } }
}
