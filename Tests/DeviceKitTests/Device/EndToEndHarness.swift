import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import DeviceKit

/// A reference centre and devices on loopback, for end-to-end tests.
final class EndToEndHarness: Sendable {
    static let master = try! FleetMasterKey(bytes: Array(repeating: 0x42, count: 32))
    let directory: String
    let heartbeatSeconds: UInt16
    let cases: CasePolicy.Configuration
    private let state = Mutex<(centre: CenterServer?, task: Task<Void, any Error>?, events: [CenterEvent], ports: CenterPorts?)>((nil, nil, [], nil))

    init(heartbeatSeconds: UInt16 = 1, cases: CasePolicy.Configuration = .init(autoEngageAfter: .milliseconds(100), autoCloseAfter: .milliseconds(300))) throws {
        directory = NSTemporaryDirectory() + "e2e-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.heartbeatSeconds = heartbeatSeconds
        self.cases = cases
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Starts (or restarts, on the same journal and ports) the centre.
    @discardableResult
    func startCentre() async throws -> CenterPorts {
        // Fixed ports below the ephemeral range: a restart binds them again, and no client socket of the
        // tests beside this one can have taken them while the centre was down.
        var previous = state.withLock { $0.ports }
        if previous == nil {
            let port = try await freeLoopbackPorts()
            previous = CenterPorts(tcp: port, udp: port, metrics: nil)
        }
        let configuration = CenterConfiguration(
            host: "127.0.0.1", tcpPort: previous?.tcp ?? 0, udpPort: previous?.udp ?? 0,
            journalPath: directory + "/centre.sqlite",
            session: .init(heartbeatIntervalSeconds: heartbeatSeconds), cases: cases,
            callOnEngage: false)  // these tests are about alarms; the voice tests make calls
        let centre = CenterServer(configuration: configuration, registry: DeviceRegistry(master: Self.master), logger: Logger(label: "test.centre"))
        let events = centre.events()
        let task = Task { try await centre.run() }
        Task { [weak self] in
            for await event in events { self?.state.withLock { $0.events.append(event) } }
        }
        let ports = try await centre.listening()
        state.withLock { $0 = (centre, task, $0.events, ports) }
        return ports
    }

    func stopCentre() async {
        let task = state.withLock { s -> Task<Void, any Error>? in
            let t = s.task
            s.task = nil
            s.centre = nil
            return t
        }
        task?.cancel()
        _ = await task?.result
    }

    var centreEvents: [CenterEvent] { state.withLock { $0.events } }

    func alarmsRecorded(device: UInt32) -> [UInt32] {
        centreEvents.compactMap { if case .alarm(device, let a, _, _) = $0 { a.id } else { nil } }
    }

    func device(
        id: UInt32, transport: DeviceRuntimeConfiguration.Transport = .tcp, outbox: (any Outbox)? = nil,
        counter: (any CounterStore)? = nil, indicators: RecordingIndicators = RecordingIndicators()
    ) throws -> DeviceRuntime {
        guard let ports = state.withLock({ $0.ports }) else { throw HarnessError("start the centre first") }
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: transport == .tcp ? ports.tcp : ports.udp)
        let configuration = DeviceRuntimeConfiguration(
            key: DeviceKey(deviceID: id, master: Self.master), primary: address, transport: transport,
            handshakeTimeout: .seconds(2), connectTimeout: .seconds(1),
            backoff: Backoff(base: .milliseconds(100), cap: .milliseconds(500)),
            delivery: .init(initialTimeout: .milliseconds(300), maximumTimeout: .seconds(1)))
        return try DeviceRuntime(
            configuration: configuration, outbox: outbox ?? InMemoryOutbox(), counterStore: counter ?? InMemoryCounterStore(),
            indicators: indicators, eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test.device"))
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Waits, up to `timeout`, for an observation that `match` accepts; returns everything seen meanwhile.
func waitFor(
    _ device: DeviceRuntime, within timeout: Duration = .seconds(120), _ what: String,
    _ match: @escaping @Sendable (DeviceObservation.Kind) -> Bool
) async throws -> DeviceObservation {
    try await withThrowingTaskGroup(of: DeviceObservation?.self) { group in
        group.addTask {
            for await o in device.observations where match(o.kind) { return o }
            return nil
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let found = first else { throw HarnessError("timed out waiting for \(what)") }
        return found
    }
}

/// Waits until `condition` holds, polling; fails the test after `timeout`.
func eventually(within timeout: Duration = .seconds(120), _ what: String, _ condition: () -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while !condition() {
        guard clock.now < deadline else { throw HarnessError("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
