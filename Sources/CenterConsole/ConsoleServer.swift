import DeviceKit
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Where and how the console is served (`devicesim center --web-port`, `--web-host`, `--web-secure-cookie`).
public struct ConsoleConfiguration: Sendable {
    public var host: String
    /// 0: a free port, which `CenterPorts.web` then names.
    public var port: Int
    /// Marks the session cookie `Secure`: for a console behind a TLS reverse proxy.
    public var secureCookie: Bool
    public var sessionLifetime: Duration
    /// Connections at once (each console holds one for its stream).
    public var connectionLimit: Int

    public init(host: String = "127.0.0.1", port: Int, secureCookie: Bool = false, sessionLifetime: Duration = .seconds(12 * 3600), connectionLimit: Int = 512) {
        self.host = host
        self.port = port
        self.secureCookie = secureCookie
        self.sessionLifetime = sessionLifetime
        self.connectionLimit = connectionLimit
    }
}

/// The operators' web console, served by the centre (docs/console.md): an attachment of `CenterServer`,
/// started once the centre's runtime and journal are up and stopped before they close.
///
/// Hummingbird 2 serves the routes (ConsoleRoutes.swift) over HTTP/1.1; `ConsoleFeed` keeps the live queue
/// from the centre's events and streams it to every console; bcrypt runs on a thread pool of its own so that
/// a login never holds an event loop.
public final class ConsoleServer: CenterAttachment {
    public let configuration: ConsoleConfiguration
    let logger: Logger
    let sessions: ConsoleSessions
    let feed: ConsoleFeed
    let pages = ConsolePages()
    let throttle = Mutex(LoginThrottle())
    let passwords = NIOThreadPool(numberOfThreads: 2)
    private let startedAt = ContinuousClock.now
    private let running = Mutex<Running?>(nil)

    private struct Running {
        var group: ServiceGroup
        /// The HTTP server's group, and the tasks that feed the board from the centre and send its changes.
        var serving: Task<Void, Never>
        var feeding: Task<Void, Never>
        var ticking: Task<Void, Never>
    }

    public init(configuration: ConsoleConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        sessions = ConsoleSessions(lifetime: configuration.sessionLifetime)
        feed = ConsoleFeed()
    }

    /// The console's monotonic clock.
    var now: Duration { ContinuousClock.now - startedAt }

    /// A hash checked against when a name has no account, so that such a login costs what any other does.
    /// Made on first use, on the password pool.
    static let unknownAccountHash = (try? OperatorPassword.hash(ConsoleSessions.randomToken())) ?? ""

    /// Open cases whose alarm is read back from the journal when the board is rebuilt, times four.
    static let restoredDetailLimit = 250

    /// Milliseconds since the Unix epoch.
    static var wallClock: WireTime { UInt64(max(0, Date().timeIntervalSince1970 * 1000)) }

    public func start(_ centre: CenterServer) async throws -> Int {
        passwords.start()
        // Subscribed before the board is restored, so that nothing between the two is missed.
        let events = centre.timedEvents()
        try await restoreBoard(from: centre)
        let router = ConsoleRoutes(server: self, centre: centre).router()
        let (port, portContinuation) = AsyncStream<Result<Int, any Error>>.makeStream()
        let app = Application(
            router: router,
            server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port), serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.connectionLimit)),
            onServerRunning: { channel in
                portContinuation.yield(.success(channel.localAddress?.port ?? 0))
                portContinuation.finish()
            },
            logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let serving = Task {
            do { try await group.run() } catch {
                portContinuation.yield(.failure(error))
            }
            portContinuation.finish()
        }
        var bound: Int?
        for await outcome in port {
            switch outcome {
            case .success(let port): bound = port
            case .failure(let error):
                try? await passwords.shutdownGracefully()
                throw ConsoleBindError(host: configuration.host, port: configuration.port, underlying: error)
            }
            break
        }
        guard let bound else {
            try? await passwords.shutdownGracefully()
            throw ConsoleBindError(host: configuration.host, port: configuration.port, underlying: nil)
        }
        let feeding = Task { [feed] in
            for await event in events {
                feed.apply(event)
                if case .eventsDropped = event.event {
                    // The board missed events: rebuilt from the centre, as at start.
                    try? await self.restoreBoard(from: centre)
                }
            }
        }
        let ticking = Task { [feed] in
            var sinceKeepAlive = Duration.zero
            var sinceCounts = Duration.seconds(1)
            while !Task.isCancelled {
                try? await Task.sleep(for: feed.interval)
                sinceKeepAlive += feed.interval
                sinceCounts += feed.interval
                if sinceCounts >= .seconds(1), let counts = try? await centre.deviceCounts() {
                    sinceCounts = .zero
                    feed.setDeviceCounts(DeviceCounts(online: counts.online, offline: counts.supervised - counts.online))
                }
                let unknown = feed.devicesToDescribe
                if !unknown.isEmpty, let snapshots = try? await centre.deviceSnapshots(unknown) { feed.describe(snapshots) }
                let keepAlive = sinceKeepAlive >= feed.keepAliveEvery
                if keepAlive { sinceKeepAlive = .zero }
                feed.flush(keepAlive: keepAlive)
                centre.setConsoleStreams(feed.consoles)
            }
        }
        running.withLock { $0 = Running(group: group, serving: serving, feeding: feeding, ticking: ticking) }
        logger.info("operators' web console listening", metadata: ["host": "\(configuration.host)", "port": "\(bound)"])
        return bound
    }

    public func stop() async {
        guard let running = running.withLock({ state -> Running? in defer { state = nil }; return state }) else { return }
        // Streams end first: a graceful shutdown waits for every response, and a console's never ends by itself.
        feed.finish()
        running.feeding.cancel()
        running.ticking.cancel()
        await running.group.triggerGracefulShutdown()
        await running.serving.value
        try? await passwords.shutdownGracefully()
    }

    /// The board's cases from the centre's open cases and the journal, and the registry's residents.
    func restoreBoard(from centre: CenterServer) async throws {
        let overviews = try await centre.caseOverviews()
        // The alarms of the most urgent cases from the journal (a few queries each); a storm may leave a hundred
        // thousand open, and the others are shown without them until they come into view.
        let ids = overviews.map(\.case).sorted { ($0.state == .received ? 0 : 1, $0.id) < ($1.state == .received ? 0 : 1, $1.id) }
            .prefix(4 * ConsoleServer.restoredDetailLimit).map(\.id)
        let (records, residents) = try await centre.withJournal { journal in
            (try ids.compactMap { try journal.caseRecord(id: $0) }, try journal.residents())
        }
        let byID = Dictionary(records.map { ($0.case.id, $0) }, uniquingKeysWith: { first, _ in first })
        feed.setResidents(residents.mapValues(\.summary))
        feed.restore(
            overviews.map { overview in
                var row = CaseRow(record: byID[overview.case.id], open: overview.case)
                row.online = overview.deviceOnline
                row.call = overview.call.rawValue
                return row
            })
    }

    /// Writes what an operator did to the journal; a failure is logged (the action has happened).
    func record(_ action: String, by name: String, case id: Int64? = nil, device: UInt32? = nil, note: String? = nil, centre: CenterServer) async {
        let entry = OperatorAction(at: Self.wallClock, operatorName: name, action: action, caseID: id, device: device, note: note)
        do {
            try await centre.withJournal { try $0.recordOperatorAction(entry) }
        } catch {
            logger.error("could not journal an operator's action", metadata: ["operator": "\(name)", "action": "\(action)", "reason": "\(error)"])
        }
    }
}

/// The console's port could not be bound.
public struct ConsoleBindError: Error, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var underlying: (any Error)?

    public var description: String {
        "the operators' web console could not listen on \(host) port \(port)"
            + (underlying.map { ": \($0)" } ?? "") + " (is the port in use? choose another with --web-port)"
    }
}

extension Resident {
    var summary: ResidentSummary { ResidentSummary(name: name, address: address) }
}

extension CaseRow {
    /// A case as the journal holds it (closed ones included), or as the centre holds it open.
    init(record: CaseRecord?, open: CasePolicy.Case? = nil) {
        let current = open ?? record?.case ?? CasePolicy.Case(id: 0, device: 0, alarmID: 0, state: .received)
        self.init(
            id: current.id, device: current.device, alarm: current.alarmID, state: current.state.description,
            receivedAt: record?.alarm?.receivedAt ?? current.openedAt)
        if let alarm = record?.alarm {
            kind = alarm.kind
            pressedAt = alarm.triggeredAt
            clockVerified = alarm.clockVerified
            lateMs = alarm.clockVerified
                ? (alarm.receivedAt >= alarm.triggeredAt ? Int64(clamping: alarm.receivedAt - alarm.triggeredAt) : 0) : nil
            battery = alarm.battery.map(Int.init)
            onBattery = alarm.onBattery
        }
        takenBy = record?.actions.last { $0.action == "take" }?.operatorName
    }
}
