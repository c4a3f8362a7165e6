import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import DeviceKit

/// A centre on loopback with ephemeral ports and a journal in a temporary directory, plus what it emitted.
struct RunningCentre {
    let server: CenterServer
    let task: Task<Void, any Error>
    let ports: CenterPorts
    let events: Collected<CenterEvent>

    static let rootKey: [UInt8] = Array(0x00...0x1f)
    static let registry = try! DeviceRegistry(keys: [1: rootKey, 2: rootKey.reversed(), 3: Array(repeating: 3, count: 32)])

    static func start(
        journal: String, metricsPort: Int? = nil, registry: DeviceRegistry = RunningCentre.registry,
        attachments: [any CenterAttachment] = [],
        _ configure: (inout CenterConfiguration) -> Void = { _ in }
    ) async throws -> RunningCentre {
        var configuration = CenterConfiguration(
            host: "127.0.0.1", tcpPort: 0, udpPort: 0, metricsPort: metricsPort, journalPath: journal)
        configure(&configuration)
        // Metrics in a registry of this centre's own (the default), read through `metric(_:)`.
        let server = CenterServer(
            configuration: configuration, registry: registry,
            logger: Logger(label: "test.center", factory: { _ in SwiftLogNoOpLogHandler() }), attachments: attachments)
        let events = Collected<CenterEvent>()
        let stream = server.events()
        Task { for await event in stream { events.append(event) } }
        let task = Task { try await server.run() }
        let ports = try await server.listening()
        return RunningCentre(server: server, task: task, ports: ports, events: events)
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    /// The value of one sample line of the metrics text, e.g. `center_frames_refused_total{category="forged"}`.
    func metric(_ sample: String) -> Double { metricValue(sample, in: server.metricsText()) }
}

/// A journal in a fresh directory of its own (`ScratchDirectory`: removed when the test process exits).
func temporaryJournal() -> String {
    ScratchDirectory.make("center") + "/journal.sqlite"
}

/// Values appended by one task, awaited by another: a test asks "until something like this arrived".
final class Collected<Element: Sendable>: Sendable {
    private let items = Mutex<[Element]>([])

    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }

    /// The first element matching, waiting up to `deadline` (generous: it is a bound, not a measurement).
    @discardableResult
    func first(within deadline: Duration = patience, where match: (Element) -> Bool) async throws -> Element? {
        var found: Element?
        await poll(within: deadline) { found = all.first(where: match); return found != nil }
        return found
    }
}

/// A device played by the test over a real socket, speaking the codec directly.
final class TestDevice: Sendable {
    enum Transport { case stream, datagram }

    let id: UInt32
    let key: DeviceKey
    let channel: any Channel
    let remote: SocketAddress
    let transport: Transport
    /// Raw down frames received (TCP: cut by FrameDecoder), and errors.
    let inbound = Collected<SealedFrame>()
    let closed = Mutex(false)
    private let state = Mutex<(counter: UInt64, anchor: UInt64?)>((65_536, nil))

    init(id: UInt32, key: DeviceKey, channel: any Channel, remote: SocketAddress, transport: Transport) {
        self.id = id
        self.key = key
        self.channel = channel
        self.remote = remote
        self.transport = transport
    }

    /// - Parameter source: the local address to connect from (any of 127.0.0.0/8), for per-address limits.
    static func connect(
        _ id: UInt32 = 1, rootKey: [UInt8] = RunningCentre.rootKey, masterKey: FleetMasterKey? = nil, to centre: RunningCentre,
        over transport: Transport = .stream, from source: String = "127.0.0.1"
    ) async throws -> TestDevice {
        let remote = try SocketAddress(ipAddress: "127.0.0.1", port: transport == .stream ? centre.ports.tcp : centre.ports.udp)
        let channel: any Channel
        let sink = TestSink()
        switch transport {
        case .stream:
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(FrameDecoder()), StreamCollector(sink: sink))
                    }
                }
                .bind(to: try SocketAddress(ipAddress: source, port: 0))
                .connect(to: remote).get()
        case .datagram:
            channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramCollector(sink: sink))
                    }
                }
                .bind(host: source, port: 0).get()
        }
        let device = TestDevice(
            id: id, key: try masterKey.map { DeviceKey(deviceID: id, master: $0) } ?? DeviceKey(deviceID: id, rootKey: rootKey),
            channel: channel, remote: remote, transport: transport)
        sink.attach(device)
        return device
    }

    var counter: UInt64 { state.withLock { $0.counter } }

    /// Sets the next counter, e.g. to replay a device restored from an old image.
    func setCounter(_ counter: UInt64) { state.withLock { $0.counter = counter } }

    /// Seals `message` with the next counter (or `counter`) and sends it; returns the bytes sent.
    @discardableResult
    func send(_ message: Message, counter fixed: UInt64? = nil, key sealKey: DeviceKey? = nil) async throws -> ByteBuffer {
        let counter = fixed ?? state.withLock { state in
            defer { state.counter += 1 }
            return state.counter
        }
        var buffer = ByteBuffer()
        let sealKey = sealKey ?? key
        try SealedFrame.seal(message, direction: .up, deviceID: id, counter: counter, key: sealKey.upKey, keyEpoch: sealKey.epoch, into: &buffer)
        try await sendRaw(buffer)
        return buffer
    }

    func sendRaw(_ bytes: ByteBuffer) async throws {
        switch transport {
        case .stream: try await channel.writeAndFlush(bytes)
        case .datagram: try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: bytes))
        }
    }

    /// Opens a session: sends `sessionStart`, waits for `sessionAccept`.
    @discardableResult
    func handshake() async throws -> SessionAccept? {
        guard case .sessionAccept(let accept)? = try await startSession() else { return nil }
        return accept
    }

    /// Sends a `sessionStart` and returns its answer: a `sessionAccept`, or a `nak` (busy: the centre is full).
    func startSession() async throws -> Message? {
        let anchor = counter
        try await send(.sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1)))
        state.withLock { $0.anchor = anchor }
        return try await received(where: { $0.kind == .sessionAccept || $0.kind == .nak })
    }

    /// Down messages of the current session received so far, in order.
    var messages: [Message] {
        guard let anchor = state.withLock({ $0.anchor }) else { return [] }
        let downKey = key.downKey(anchor: anchor)
        return inbound.all.compactMap { try? $0.open(with: downKey) }
    }

    /// The first down message matching, waiting up to `deadline`.
    func received(within deadline: Duration = patience, where match: (Message) -> Bool) async throws -> Message? {
        var found: Message?
        await poll(within: deadline) { found = messages.first(where: match); return found != nil }
        return found
    }

    func acks(of id: UInt32) -> Int {
        messages.count { if case .ack(let ack) = $0 { ack.id == id } else { false } }
    }

    func close() async {
        try? await channel.close()
    }
}

/// Hands inbound frames of the test device's channel, and its close, to the device once it exists: a centre
/// may answer, or close the connection (a short authentication timeout), before the device is made. Under
/// one lock, so that frames keep their order and none is lost while the device is attached.
final class TestSink: Sendable {
    private let state = Mutex<(device: TestDevice?, early: [SealedFrame], closedEarly: Bool)>((nil, [], false))

    func attach(_ device: TestDevice) {
        state.withLock { state in
            for frame in state.early { device.inbound.append(frame) }
            if state.closedEarly { device.closed.withLock { $0 = true } }
            (state.device, state.early) = (device, [])
        }
    }

    func deliver(_ frame: SealedFrame) {
        state.withLock { state in
            if let device = state.device { device.inbound.append(frame) } else { state.early.append(frame) }
        }
    }

    func closed() {
        state.withLock { state in
            if let device = state.device { device.closed.withLock { $0 = true } } else { state.closedEarly = true }
        }
    }
}

final class StreamCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = SealedFrame
    let sink: TestSink
    init(sink: TestSink) { self.sink = sink }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { sink.deliver(unwrapInboundIn(data)) }
    func channelInactive(context: ChannelHandlerContext) { sink.closed() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

final class DatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let sink: TestSink
    init(sink: TestSink) { self.sink = sink }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let frame = try? SealedFrame(datagram: unwrapInboundIn(data).data) { sink.deliver(frame) }
    }
}

extension Message {
    static func testAlarm(_ id: UInt32, kind: AlarmKind = .button) -> Message {
        .alarm(Alarm(id: id, kind: kind, triggeredAt: 1_795_000_000_000, battery: 87, flags: [.clockSynchronised]))
    }
    static let testHeartbeat = Message.heartbeat(Heartbeat(status: [.mainsPresent], battery: 90))
}
