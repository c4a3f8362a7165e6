import NIOCore
import NIOEmbedded
import Testing

@testable import DeviceKit

/// The device driver's inbound handler (`InboundFrames`) on an `EmbeddedChannel`, behind the frame decoder
/// as on a TCP connection: a connection's frames reach the device's machine with the connection's
/// generation, and its end is reported with it, so that a late frame or close of an earlier connection
/// changes nothing.
@Suite struct InboundFramesTests {
    static let key = try! DeviceKey(deviceID: 7, rootKey: Array(0x00...0x1f))

    /// A device driven by the one driver (`DeviceDriver`), whose environment records what it is asked to do.
    /// Its frames go out on a "shared socket" (`sendDatagram`), so the driver opens no connection itself.
    final class RecordingDevice: DeviceDriver, @unchecked Sendable {  // touched on its embedded loop only
        var driver: DeviceDriverState
        let eventLoop: any EventLoop
        var observed: [DeviceObservation.Kind] = []
        var sent: [SealedFrame] = []
        private var nextID: UInt32 = 1

        init(loop: EmbeddedEventLoop) {
            eventLoop = loop
            driver = DeviceDriverState(machine: DeviceMachine(
                configuration: .init(
                    link: .init(hasSecondary: false, sessionStart: SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1)),
                    primaryName: "127.0.0.1:7730"),
                key: InboundFramesTests.key,
                storedCounterLimit: 0, seed: 1))
        }

        func now() -> ClockReading { ClockReading(wall: 1_795_000_000_000, monotonic: .seconds(1)) }
        func schedule(_ timer: DeviceMachine.Timer, after: Duration) {
            eventLoop.scheduleTask(in: .nanoseconds(after.nanoseconds)) { [self] in timerFired(timer) }
        }
        var transport: DeviceDriverTransport { .sharedUDP }
        func address(_ path: LinkMachine.Path) -> SocketAddress { try! SocketAddress(ipAddress: "127.0.0.1", port: 7730) }
        func sendDatagram(_ buffer: ByteBuffer, to path: LinkMachine.Path) { if let frame = try? SealedFrame(datagram: buffer) { sent.append(frame) } }
        func reserveCounters(_ limit: UInt64) throws {}
        func store(_ draft: DeviceMachine.Draft) throws -> Message {
            defer { nextID += 1 }
            return draft.message(id: nextID)
        }
        func remove(id: UInt32) throws {}
        func indicate(_ state: IndicatorState) {}
        func observe(_ observation: DeviceObservation.Kind) { observed.append(observation) }
        var mediaSetup: DeviceMediaSetup { DeviceMediaSetup(cname: "test", parameters: MediaLink.Parameters(), video: false) }
        func mediaEvent(_ event: MediaLink.Event, callID: UInt32) {}
        func sipMediaHeard() {}

        var sessions: Int { observed.count { if case .sessionEstablished = $0 { true } else { false } } }
        var losses: Int { observed.count { if case .sessionLost = $0 { true } else { false } } }
    }

    /// A connection of `generation`: the frame decoder and the driver's inbound handler, as the driver
    /// sets up a TCP connection, on the device's loop.
    static func connection(of device: RecordingDevice, generation: Int, loop: EmbeddedEventLoop) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try channel.pipeline.syncOperations.addHandlers(
            ByteToMessageHandler(FrameDecoder()), InboundFrames<RecordingDevice, SealedFrame>(device: device, generation: generation) { $0 })
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7730)).wait()
        return channel
    }

    /// The centre's `sessionAccept` for the device's `sessionStart`, as bytes on the stream.
    static func accept(_ start: SealedFrame) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try SealedFrame.seal(
            .sessionAccept(SessionAccept(centreTime: 1_795_000_000_000, heartbeatIntervalSeconds: 30)), direction: .down, deviceID: 7,
            counter: 0x5a17_c0de << 32, key: key.downKey(anchor: start.header.counter), into: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// A started device: the generation of the connection it asked for, and the centre's answer to its
    /// `sessionStart`.
    static func started(on loop: EmbeddedEventLoop) throws -> (device: RecordingDevice, generation: Int, accept: [UInt8]) {
        let device = RecordingDevice(loop: loop)
        device.feed { $0.start(pending: [], bootCount: 1, now: $1) }
        let start = try #require(device.sent.first { $0.header.direction == .up })
        return (device, device.driver.generation, try accept(start))
    }

    @Test func aConnectionsFramesReachTheDeviceAndItsEndIsReportedWithItsGeneration() throws {
        let loop = EmbeddedEventLoop()
        let (device, generation, accept) = try Self.started(on: loop)

        // An earlier connection delivers the answer, then ends: neither counts.
        let earlier = try Self.connection(of: device, generation: generation - 1, loop: loop)
        try earlier.writeInbound(ByteBuffer(bytes: accept))
        try earlier.close().wait()
        #expect(device.sessions == 0 && device.losses == 0, "\(device.observed)")

        // The current connection: the answer, cut across two reads, opens the session.
        let current = try Self.connection(of: device, generation: generation, loop: loop)
        try current.writeInbound(ByteBuffer(bytes: accept.prefix(10)))
        #expect(device.sessions == 0)
        try current.writeInbound(ByteBuffer(bytes: accept.dropFirst(10)))
        #expect(device.sessions == 1, "\(device.observed)")

        // Its end is the session's end.
        try current.close().wait()
        #expect(device.losses == 1, "\(device.observed)")
    }

    @Test func aStreamThatCannotBeCutIntoFramesIsClosedAndReportedOnce() throws {
        let loop = EmbeddedEventLoop()
        let (device, generation, accept) = try Self.started(on: loop)
        let current = try Self.connection(of: device, generation: generation, loop: loop)
        try current.writeInbound(ByteBuffer(bytes: accept))
        #expect(device.sessions == 1)

        // A bad version: there is no resynchronising a stream (protocol.md §2.2), so the handler closes it.
        _ = try? current.writeInbound(ByteBuffer(bytes: [0x70, 0x00, 0x20]))
        #expect(!current.isActive)
        #expect(device.losses == 1, "\(device.observed)")
        _ = try? current.finish()
    }
}
