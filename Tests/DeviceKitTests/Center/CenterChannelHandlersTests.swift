import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import Prometheus
import Testing

@testable import DeviceKit

/// The centre's channel handlers on `EmbeddedChannel`s with a manual clock (`EmbeddedEventLoop.advanceTime`):
/// the authentication timeout to the nanosecond, its one extension for a `sessionStart` being stored, and
/// the other reasons a device's connection is closed, with no real time passing.
@Suite struct CenterChannelHandlersTests {
    /// A centre's runtime on an embedded loop. The journal's thread pool is never started, so every journal
    /// write fails at once, on the loop: a `sessionStart` stays pending and is never answered, and no thread
    /// but the test's touches the loop.
    struct Centre {
        let loop = EmbeddedEventLoop()
        let runtime: CenterRuntime
        let metrics = PrometheusCollectorRegistry()

        init(authenticationTimeout: Duration = .seconds(5), offencesBeforeClose: Int = 16) throws {
            let configuration = CenterConfiguration(
                host: "127.0.0.1", tcpPort: 0, udpPort: 0, journalPath: temporaryJournal(),
                authenticationTimeout: authenticationTimeout, offencesBeforeClose: offencesBeforeClose)
            runtime = CenterRuntime(
                loop: loop, configuration: configuration, registry: RunningCentre.registry,
                journal: try CenterJournal(path: configuration.journalPath), pool: NIOThreadPool(numberOfThreads: 1),
                metrics: CenterMetrics(factory: PrometheusMetricsFactory(registry: metrics)), hub: CenterEventHub(limit: 100),
                logger: Logger(label: "test.center", factory: { _ in SwiftLogNoOpLogHandler() }),
                restored: .init(anchors: [:], openCases: [], undelivered: []))
        }

        /// A device's connection as the centre accepts it: the frame decoder and the stream handler, active.
        func connection() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(loop: loop)
            try channel.pipeline.syncOperations.addHandlers(
                ByteToMessageHandler(FrameDecoder()),
                CenterStreamHandler(
                    runtime: runtime, authenticationTimeout: .nanoseconds(runtime.configuration.authenticationTimeout.nanoseconds),
                    offencesBeforeClose: runtime.configuration.offencesBeforeClose))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40_000)).wait()
            return channel
        }

        /// The centre's UDP reader on an embedded channel, answering through a real socket on loopback (the
        /// caller closes its `descriptor`).
        func datagramPort(
            startsWaiting: Int = SessionStartQueue.defaultLimit
        ) throws -> (channel: EmbeddedChannel, socket: BatchedDatagramSocket, descriptor: CInt) {
            let descriptor = try BatchedDatagramSocket.bound(host: "127.0.0.1", port: 0, reusePort: false)
            let socket = BatchedDatagramSocket(descriptor: descriptor, slot: 2048, batch: 8, queueLimit: 1 << 16)
            runtime.datagramSocket = socket
            let reader = CenterDatagrams.reader(runtime: runtime, socket: socket, startsWaiting: startsWaiting)
            return (EmbeddedChannel(handler: reader, loop: loop), socket, descriptor)
        }

        func metric(_ sample: String) -> Double { metricValue(sample, in: metrics.emitToString()) }

        func closed(_ reason: String) -> Double { metric(#"center_connections_closed_total{reason="\#(reason)"}"#) }
    }

    /// A frame sealed for `device` with the test registry's key of device 1 (a forgery for any other id).
    static func frame(_ message: Message, device: UInt32 = 1, counter: UInt64) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try SealedFrame.seal(
            message, direction: .up, deviceID: device, counter: counter,
            key: try DeviceKey(deviceID: device, rootKey: RunningCentre.rootKey).upKey, into: &buffer)
        return buffer
    }

    static let sessionStart = Message.sessionStart(SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1))

    @Test func aConnectionThatSendsNothingIsClosedWhenItsAuthenticationTimeoutRunsOut() throws {
        let centre = try Centre(authenticationTimeout: .seconds(5))
        let channel = try centre.connection()
        #expect(centre.metric("center_connections_open") == 1)
        centre.loop.advanceTime(by: .seconds(5) - .nanoseconds(1))
        #expect(channel.isActive, "not a nanosecond early")
        centre.loop.advanceTime(by: .nanoseconds(1))
        #expect(!channel.isActive)
        #expect(centre.closed("authTimeout") == 1)
        #expect(centre.metric("center_connections_open") == 0)
        _ = try? channel.finish()
    }

    @Test func aConnectionItsPeerClosedLeavesNoTimerBehind() throws {
        let centre = try Centre(authenticationTimeout: .seconds(5))
        let channel = try centre.connection()
        centre.loop.advanceTime(by: .seconds(1))
        try channel.close().wait()
        centre.loop.advanceTime(by: .seconds(60))
        #expect(centre.closed("authTimeout") == 0)
        #expect(centre.metric("center_connections_open") == 0)
    }

    @Test func aSessionStartBeingStoredRestartsTheTimeoutOnceOnly() throws {
        let centre = try Centre(authenticationTimeout: .seconds(5))
        let channel = try centre.connection()
        centre.loop.advanceTime(by: .seconds(4))
        // A slow journal must not cost the device its connection: the timeout starts again from here...
        try channel.writeInbound(try Self.frame(Self.sessionStart, counter: 65_536))
        centre.loop.advanceTime(by: .seconds(3))
        #expect(channel.isActive, "7 s after it opened, 3 s after the sessionStart")
        // ...once: a second sessionStart (the first was never answered) buys no more time.
        try channel.writeInbound(try Self.frame(Self.sessionStart, counter: 65_537))
        centre.loop.advanceTime(by: .seconds(2) - .nanoseconds(1))
        #expect(channel.isActive)
        centre.loop.advanceTime(by: .nanoseconds(1))
        #expect(!channel.isActive, "5 s after the first sessionStart")
        #expect(centre.closed("authTimeout") == 1)
        #expect(centre.metric("center_journal_failures_total") == 2, "both anchors failed to be stored, as set up")
        _ = try? channel.finish()
    }

    @Test func repeatedRefusedFramesCloseTheConnection() throws {
        let centre = try Centre(offencesBeforeClose: 3)
        let channel = try centre.connection()
        // Frames under an id the registry does not know: refused, each an offence.
        for counter: UInt64 in 1...2 { try channel.writeInbound(try Self.frame(.testHeartbeat, device: 99, counter: counter)) }
        #expect(channel.isActive)
        try channel.writeInbound(try Self.frame(.testHeartbeat, device: 99, counter: 3))
        #expect(!channel.isActive)
        #expect(centre.closed("offences") == 1)
        #expect(centre.metric("center_frames_unknown_device_total") == 3)
        _ = try? channel.finish()
    }

    @Test func aStreamThatCannotBeCutIntoFramesIsClosedWithItsCategory() throws {
        let centre = try Centre()
        let channel = try centre.connection()
        // Version 1, up, length 2000: refused on its third byte, before anything is buffered.
        try channel.writeInbound(ByteBuffer(bytes: [0x10, 0x07, 0xd0]))
        #expect(!channel.isActive)
        #expect(centre.closed("oversized") == 1)
        #expect(centre.metric(#"center_frames_refused_total{category="oversized"}"#) == 1)
        centre.loop.advanceTime(by: .seconds(60))
        #expect(centre.closed("authTimeout") == 0, "closed once")
        _ = try? channel.finish()
    }

    @Test func aDatagramThatIsNoFrameIsCountedAndAnsweredWithNothing() throws {
        let centre = try Centre()
        // The answers' socket, a real one on loopback: nothing may be queued on it.
        let (channel, socket, descriptor) = try centre.datagramPort()
        defer { close(descriptor) }
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 40_001)
        try channel.writeInbound(AddressedEnvelope(remoteAddress: peer, data: ByteBuffer(bytes: [0x70, 0x00, 0x20])))
        try channel.writeInbound(AddressedEnvelope(remoteAddress: peer, data: try Self.frame(.testHeartbeat, device: 99, counter: 1)))
        #expect(centre.metric(#"center_frames_refused_total{category="unsupported"}"#) == 1)
        #expect(centre.metric("center_frames_unknown_device_total") == 1)
        #expect(!socket.hasQueued)
        #expect(try channel.readOutbound(as: AddressedEnvelope<ByteBuffer>.self) == nil)
        _ = try? channel.finish()
    }

    /// Over UDP, the frames of devices without a session are put off as they are read (`SessionStartQueue`):
    /// past the queue's limit they are shed; after the read, a batch (32) is worked on, and the rest in the
    /// loop's next turns, a batch each. Their source's checks run again when they are worked on.
    @Test func sessionStartsArePutOffAndWorkedOnABatchAtATimeAfterTheRead() throws {
        let centre = try Centre()
        let (channel, _, descriptor) = try centre.datagramPort(startsWaiting: 150)
        defer { close(descriptor) }
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: 40_001)
        // One read of 200 session starts of ids the registry does not hold: each is refused once worked on.
        for n in 0..<200 {
            let frame = try Self.frame(Self.sessionStart, device: 5_000 + UInt32(n), counter: 1)
            channel.pipeline.fireChannelRead(NIOAny(AddressedEnvelope(remoteAddress: peer, data: frame)))
        }
        let unknown = "center_frames_unknown_device_total"
        #expect(centre.metric("center_frames_received_total") == 200)
        #expect(centre.metric(#"center_frames_dropped_total{reason="shed"}"#) == 50, "past the limit of 150")
        #expect(centre.metric(unknown) == 0, "put off, not worked on yet")
        channel.pipeline.fireChannelReadComplete()
        #expect(centre.metric(unknown) == 32, "one batch after the read")
        centre.loop.run()
        #expect(centre.metric(unknown) == 150, "the rest in the next turns")
        #expect(centre.metric("center_frames_received_total") == 200, "counted once, when read")
        _ = try? channel.finish()
    }
}

@Suite struct SessionStartQueueTests {
    @Test func startsAreKeptInOrderUpToTheLimitInStorageOfTheirOwn() throws {
        let queue = SessionStartQueue(limit: 2)
        let frame = try SealedFrame(datagram: CenterChannelHandlersTests.frame(.testHeartbeat, device: 7, counter: 1))
        let path = ReplyPath.datagram(DatagramPeer(try SocketAddress(ipAddress: "127.0.0.1", port: 40_001))!)
        let source = SourceAddress(try SocketAddress(ipAddress: "127.0.0.1", port: 40_001))
        #expect(queue.putOff(frame, path: path, source: source))
        #expect(queue.putOff(try SealedFrame(datagram: CenterChannelHandlersTests.frame(.testHeartbeat, device: 8, counter: 1)), path: path, source: source))
        #expect(!queue.putOff(frame, path: path, source: source), "full")
        #expect(queue.count == 2)
        // Not a view of the socket's receive buffer, which the next read would then have to allocate anew.
        let first = try #require(queue.next())
        #expect(Array(first.frame.bytes.readableBytesView) == Array(frame.bytes.readableBytesView))
        #expect(first.frame.header == frame.header)
        let address = { (bytes: ByteBuffer) in bytes.withUnsafeReadableBytes { $0.baseAddress } }
        #expect(address(first.frame.bytes) != address(frame.bytes))
        #expect(queue.next()?.frame.header.deviceID == 8)
        #expect(queue.next() == nil && queue.isEmpty)
    }
}
