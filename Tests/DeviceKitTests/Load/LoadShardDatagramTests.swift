import Glibc
import NIOCore
import NIOEmbedded
import Testing

@testable import DeviceKit

/// A load shard's shared UDP socket: what its devices send leaves through its `BatchedDatagramSocket` (a real
/// one on loopback, to a real socket standing for the centre), and each datagram read (here given through an
/// `EmbeddedChannel`) goes to the device its header names, and only to a device of this shard.
@Suite struct LoadShardDatagramTests {
    static let centre = try! SocketAddress(ipAddress: "127.0.0.1", port: 7730)

    /// The centre's `sessionAccept` to `device`, sealed with `device`'s keys for `anchor` (or with `sealedFor`'s,
    /// as a frame under the wrong id would be).
    static func accept(to device: UInt32, anchor: UInt64, sealedFor: UInt32? = nil) throws -> AddressedEnvelope<ByteBuffer> {
        let key = DeviceKey(deviceID: sealedFor ?? device, master: LoadRunnerTests.master)
        var buffer = ByteBuffer()
        try SealedFrame.seal(
            .sessionAccept(SessionAccept(centreTime: 1_795_000_000_000, heartbeatIntervalSeconds: 30)), direction: .down,
            deviceID: device, counter: 0x5a17_c0de << 32, key: key.downKey(anchor: anchor), into: &buffer)
        return AddressedEnvelope(remoteAddress: centre, data: buffer)
    }

    @Test func eachDatagramGoesToTheDeviceItsHeaderNamesAndOnlyToTheShardsDevices() throws {
        let centreSocket = try BatchedDatagramSocketTests.Endpoint()
        let shardDescriptor = try BatchedDatagramSocket.bound(host: "127.0.0.1", port: 0, reusePort: false)
        defer { centreSocket.close(); close(shardDescriptor) }
        let loop = EmbeddedEventLoop()
        let plan = LoadPlan(centre: centreSocket.address, master: LoadRunnerTests.master, transport: .udp, fleetSize: 3, rampRate: 1000, seed: 1)
        // Devices 500, 502 and 504 (every other id: a shard of two), all due at once.
        let shard = LoadShard(
            loop: loop, plan: plan, firstID: 500, stride: 2, count: 3, share: 1, seed: 1,
            start: .now() - .seconds(60), wallAtStart: 1_795_000_000_000)
        let batched = BatchedDatagramSocket(descriptor: shardDescriptor, slot: 2048, batch: 32, queueLimit: 1 << 16)
        let socket = EmbeddedChannel(
            handler: BatchedDatagramReader(socket: batched, readInterval: .zero, readsPerTurn: 1) { datagram, _ in shard.route(datagram) },
            loop: loop)
        shard.sockets = [socket]
        shard.datagramSockets = [batched]
        shard.startDue()
        #expect(batched.hasQueued, "nothing leaves before the turn ends")
        // The shard flushes its sockets once at the end of the loop's turn: let the turn end.
        loop.run()
        #expect(!batched.hasQueued)

        // Each device opened its session with a sessionStart on the shared socket, to the centre's address.
        var anchors: [UInt32: UInt64] = [:]
        for _ in 0..<3 {
            let frame = try SealedFrame(datagram: ByteBuffer(bytes: try #require(centreSocket.receive())))
            if anchors[frame.header.deviceID] == nil { anchors[frame.header.deviceID] = frame.header.counter }
        }
        #expect(anchors.keys.sorted() == [500, 502, 504])

        // The centre answers 502: its session opens, no other.
        try socket.writeInbound(try Self.accept(to: 502, anchor: anchors[502] ?? 0))
        #expect(shard.counts.sessionsOpened == 1)
        #expect(shard.online == 1)
        #expect(shard.counts.refusedFrames == 0)

        // Ids that are not this shard's (another shard's 501, 498 below, 506 beyond) and a datagram that is no
        // frame are refused, each once; so is an answer under 500's id sealed for 504, by 500 itself.
        for id: UInt32 in [501, 498, 506] { try socket.writeInbound(try Self.accept(to: id, anchor: 0)) }
        try socket.writeInbound(AddressedEnvelope(remoteAddress: Self.centre, data: ByteBuffer(bytes: [0x10, 0x00])))
        try socket.writeInbound(try Self.accept(to: 500, anchor: anchors[500] ?? 0, sealedFor: 504))
        #expect(shard.counts.refusedFrames == 5)
        #expect(shard.counts.sessionsOpened == 1)

        // Then 500's and 504's own answers open theirs.
        try socket.writeInbound(try Self.accept(to: 500, anchor: anchors[500] ?? 0))
        try socket.writeInbound(try Self.accept(to: 504, anchor: anchors[504] ?? 0))
        #expect(shard.counts.sessionsOpened == 3)
        #expect(shard.online == 3)
        _ = shard.stop()
        _ = try? socket.finish()
    }
}
