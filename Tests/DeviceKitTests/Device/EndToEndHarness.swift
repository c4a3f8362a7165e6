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
    /// What each device made here observed, by device id.
    private let logs = Mutex<[UInt32: ObservationLog]>([:])

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
        if let previous = state.withLock({ $0.ports }) { return try await startCentre(on: previous) }
        // The first start: a port found free can still be taken by another process before the centre binds
        // it (CI saw "port 6876 (UDP) is already in use" twice); the test is not about ports, so another is
        // drawn then. A restart keeps its ports, and fails if they are gone.
        for attempt in 1...5 {
            let port = try await freeLoopbackPorts()
            do {
                return try await startCentre(on: CenterPorts(tcp: port, udp: port, metrics: nil))
            } catch let error as CenterBindError where error.errno == EADDRINUSE && attempt < 5 {
                continue
            }
        }
        throw HarnessError("no free port for the centre after 5 draws")
    }

    private func startCentre(on previous: CenterPorts?) async throws -> CenterPorts {
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

    /// An operator closes `device`'s open case; false if it has none.
    func closeCase(of device: UInt32) async throws -> Bool {
        guard let centre = state.withLock({ $0.centre }) else { throw HarnessError("start the centre first") }
        guard let open = try await centre.caseOverviews().first(where: { $0.case.device == device }) else { return false }
        return try await centre.close(case: open.case.id)
    }

    /// One sample of the running centre's metrics (`center_frames_received_total`); 0 when it has none yet.
    func centreMetric(_ sample: String) throws -> Double {
        guard let centre = state.withLock({ $0.centre }) else { throw HarnessError("start the centre first") }
        return metricValue(sample, in: centre.metricsText())
    }

    func alarmsRecorded(device: UInt32) -> [UInt32] {
        centreEvents.compactMap { if case .alarm(device, let a, _, _) = $0 { a.id } else { nil } }
    }

    /// The ids of `device`'s alarms in the centre's journal, read-only, whether or not a centre runs.
    func journalAlarms(device: UInt32) throws -> [UInt32] {
        try CenterJournal.recordedAlarms(readOnly: directory + "/centre.sqlite").filter { $0.device == device }.map(\.alarmID)
    }

    func device(
        id: UInt32, transport: DeviceRuntimeConfiguration.Transport = .tcp, outbox: (any Outbox)? = nil,
        counter: (any CounterStore)? = nil, indicators: RecordingIndicators = RecordingIndicators(),
        eventLoop: (any EventLoop)? = nil, sip: DeviceSIPSettings? = nil
    ) throws -> DeviceRuntime {
        guard let ports = state.withLock({ $0.ports }) else { throw HarnessError("start the centre first") }
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: transport == .tcp ? ports.tcp : ports.udp)
        var configuration = DeviceRuntimeConfiguration(
            key: DeviceKey(deviceID: id, master: Self.master), primary: address, transport: transport,
            handshakeTimeout: .seconds(2), connectTimeout: .seconds(1),
            backoff: Backoff(base: .milliseconds(100), cap: .milliseconds(500)),
            delivery: .init(initialTimeout: .milliseconds(300), maximumTimeout: .seconds(1)))
        configuration.sip = sip
        let device = try DeviceRuntime(
            configuration: configuration, outbox: outbox ?? InMemoryOutbox(), counterStore: counter ?? InMemoryCounterStore(),
            indicators: indicators, eventLoop: eventLoop ?? MultiThreadedEventLoopGroup.singleton.next(),
            logger: Logger(label: "test.device"))
        let log = ObservationLog()
        logs.withLock { $0[id] = log }
        let observations = device.observations
        Task { for await o in observations { log.append(o) } }
        return device
    }

    /// Waits for the next observation of `device` that `match` accepts (after the one the previous wait
    /// returned), and returns it. A failure lists what the device did observe.
    @discardableResult
    func waitFor(
        _ device: DeviceRuntime, within timeout: Duration = patience, _ what: String,
        _ match: (DeviceObservation.Kind) -> Bool
    ) async throws -> DeviceObservation {
        let id = device.configuration.key.deviceID
        guard let log = logs.withLock({ $0[id] }) else { throw HarnessError("device \(id) was not made by this harness") }
        var found: DeviceObservation?
        guard await poll(within: timeout, until: { found = log.next(where: match); return found != nil }), let found else {
            throw HarnessError("timed out waiting for \(what); device \(id) observed: \(log.summary)")
        }
        return found
    }

    /// Presses `device`'s button and releases it once the device has judged it a press, as a person holds
    /// the button until it shows the call: never after a fixed time. The device stamps an edge when its loop
    /// gets to it, so a loop held up by other work for longer than a fixed hold stamps the press and the
    /// release together, a glitch that raises no alarm (issue 13: a case never closed).
    func press(_ device: DeviceRuntime) async throws {
        device.buttonEdge(down: true)
        try await waitFor(device, "the press judged") { if case .story(.pressed) = $0 { true } else { false } }
        device.buttonEdge(down: false)
    }

    /// Shows that the centre has handled everything `device` sent so far, with a later message and its effect:
    /// the device reports tamper (a reliable event it sends at once, once a minute at most) and this waits
    /// until the centre has recorded it. Whatever the device sent before went the same way (one connection,
    /// or one socket on loopback) and through the same in-order journal, so it was handled first: a test
    /// then asserts that something did not happen without guessing how long it would take.
    func everythingSentSoFarIsHandled(by device: DeviceRuntime) async throws {
        let id = device.configuration.key.deviceID
        device.tamperDetected()
        try await eventually("device \(id)'s tamper report recorded") {
            centreEvents.contains { if case .recorded(id, .event(let event)) = $0 { event.kind == .tamper } else { false } }
        }
    }
}

/// Everything one device observed, from its creation, for tests to wait on: nothing is missed however late
/// a test looks (the runtime's own stream is consumed here as it comes).
final class ObservationLog: Sendable {
    private let state = Mutex<(all: [DeviceObservation], next: Int)>(([], 0))

    func append(_ observation: DeviceObservation) { state.withLock { $0.all.append(observation) } }

    /// The first observation `match` accepts after the last one returned; the wait starts after it next time.
    func next(where match: (DeviceObservation.Kind) -> Bool) -> DeviceObservation? {
        state.withLock { state in
            guard let index = state.all[state.next...].firstIndex(where: { match($0.kind) }) else { return nil }
            state.next = index + 1
            return state.all[index]
        }
    }

    /// What was observed, for a failure's message (the last 100).
    var summary: String {
        state.withLock { $0.all.suffix(100).map { "\($0.at) \($0.kind)" }.joined(separator: " | ") }
    }
}
