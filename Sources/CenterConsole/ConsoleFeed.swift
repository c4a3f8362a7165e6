import DeviceKit
import Foundation
import NIOCore
import Synchronization

/// Feeds every console's stream (`GET /api/stream`) from one `ConsoleBoard`: it reads the centre's events
/// as they come, and every `interval` (250 ms) encodes what changed in the view once and hands the same bytes
/// to each console, so that ten consoles cost little more than one and a storm costs each a few messages a
/// second. A console whose buffer is full (it does not read) loses batches and gets a whole snapshot when it
/// has room again; a feed that lost centre events rebuilds the board from the centre.
final class ConsoleFeed: Sendable {
    private struct State: ~Copyable {
        var board: ConsoleBoard
        var clients: [Int: Client] = [:]
        var nextClient = 0
        var finished = false
    }

    private struct Client {
        var continuation: AsyncStream<ByteBuffer>.Continuation
        /// It lost a batch: it gets a snapshot next.
        var behind = false
    }

    let interval: Duration
    let keepAliveEvery: Duration
    /// Messages buffered per console before it falls behind.
    let clientBuffer: Int
    private let state: Mutex<State>

    init(viewLimit: Int = 200, interval: Duration = .milliseconds(250), keepAliveEvery: Duration = .seconds(15), clientBuffer: Int = 64) {
        self.interval = interval
        self.keepAliveEvery = keepAliveEvery
        self.clientBuffer = clientBuffer
        state = Mutex(State(board: ConsoleBoard(viewLimit: viewLimit)))
    }

    // MARK: Consoles

    /// A console's stream: a snapshot first, then batches; ends when the feed stops.
    func subscribe() -> AsyncStream<ByteBuffer> {
        let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .bufferingOldest(clientBuffer))
        let id: Int? = state.withLock { state in
            guard !state.finished else { return nil }
            let id = state.nextClient
            state.nextClient += 1
            continuation.yield(Self.event("snapshot", state.board.snapshot()))
            state.clients[id] = Client(continuation: continuation)
            return id
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.clients.removeValue(forKey: id) }
        }
        return stream
    }

    var consoles: Int { state.withLock { $0.clients.count } }

    /// Ends every console's stream.
    func finish() {
        let continuations = state.withLock { state in
            state.finished = true
            defer { state.clients = [:] }
            return state.clients.values.map(\.continuation)
        }
        for continuation in continuations { continuation.finish() }
    }

    // MARK: What the board learns

    func apply(_ event: TimedCenterEvent) {
        state.withLock { $0.board.apply(event.event, at: event.at) }
    }

    func taken(_ id: Int64, by name: String) {
        state.withLock { $0.board.taken(id, by: name) }
    }

    func setResidents(_ residents: [UInt32: ResidentSummary]) {
        state.withLock { $0.board.residents = residents }
    }

    func setDeviceCounts(_ counts: DeviceCounts) {
        state.withLock { $0.board.deviceCounts = counts }
    }

    func describe(_ snapshots: [DeviceSnapshot]) {
        state.withLock { state in
            for snapshot in snapshots { state.board.describe(snapshot) }
        }
    }

    var devicesToDescribe: [UInt32] { state.withLock { $0.board.devicesToDescribe } }

    /// Replaces the board's cases with `rows` (at start, and after the feed lost events).
    func restore(_ rows: [CaseRow]) {
        state.withLock { state in
            state.board.reset()
            for row in rows { state.board.restore(row) }
        }
    }

    /// The open case `id` as the board has it.
    func row(_ id: Int64) -> CaseRow? { state.withLock { $0.board.rows[id] } }

    // MARK: Sending

    /// Sends what changed since the last call to every console (and a snapshot to those behind); with
    /// `keepAlive`, a comment line to each, which also finds consoles that went away.
    func flush(keepAlive: Bool) {
        state.withLock { state in
            let batch = state.board.nextBatch().map { Self.event("batch", $0) }
            var snapshot: ByteBuffer?
            for id in state.clients.keys {
                guard var client = state.clients[id] else { continue }
                if client.behind {
                    let whole = snapshot ?? Self.event("snapshot", state.board.snapshot())
                    snapshot = whole
                    if case .enqueued = client.continuation.yield(whole) { client.behind = false }
                } else if let batch {
                    if case .dropped = client.continuation.yield(batch) { client.behind = true }
                }
                if keepAlive { _ = client.continuation.yield(Self.keepAlive) }
                state.clients[id] = client
            }
        }
    }

    static let keepAlive = ByteBuffer(string: ": keep-alive\n\n")

    /// One server-sent event: `event: NAME`, its JSON on one `data:` line.
    static func event(_ name: String, _ value: some Encodable) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.count + name.count + 16)
        buffer.writeString("event: \(name)\ndata: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }
}
