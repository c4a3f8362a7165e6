import Glibc
import NIOCore
import NIOConcurrencyHelpers
import NIOPosix
import Testing
@testable import DeviceKit

/// `BatchedDatagramSocket` over real loopback sockets: what recvmmsg gives and sendmmsg sends, in batches.
@Suite struct BatchedDatagramSocketTests {
    /// A bound socket of the family of `host` and its port, closed by `close()`.
    struct Endpoint {
        let descriptor: CInt
        let address: SocketAddress

        init(_ host: String = "127.0.0.1") throws {
            let descriptor = try BatchedDatagramSocket.bound(host: host, port: 0, reusePort: false)
            self.descriptor = descriptor
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            address = withUnsafeBytes(of: storage) { bytes in
                storage.ss_family == sa_family_t(AF_INET)
                    ? SocketAddress(bytes.loadUnaligned(as: sockaddr_in.self), host: host)
                    : SocketAddress(bytes.loadUnaligned(as: sockaddr_in6.self), host: host)
            }
        }

        var peer: DatagramPeer { DatagramPeer(address)! }

        /// Sends `bytes` to `to` with plain sendto.
        func send(_ bytes: [UInt8], to: SocketAddress) {
            let sent = to.withSockAddr { address, length in
                bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, address, socklen_t(length)) }
            }
            #expect(sent == bytes.count)
        }

        /// The next datagram queued, waiting up to 2 s for it; `nil` if none came.
        func receive() -> [UInt8]? {
            var poll = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard Glibc.poll(&poll, 1, 2000) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            return count < 0 ? nil : Array(buffer.prefix(count))
        }

        func close() { _ = Glibc.close(descriptor) }
    }

    /// Waits until `descriptor` has something to read (datagrams sent on loopback are queued at once, but
    /// the test does not rely on it).
    static func readable(_ descriptor: CInt) -> Bool {
        var poll = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&poll, 1, 2000) == 1
    }

    @Test func aBatchIsReceivedInOrderWithEachSenderAndMoreAreLeftForTheNextCall() throws {
        let (server, client) = (try Endpoint(), try Endpoint())
        defer { server.close(); client.close() }
        let socket = BatchedDatagramSocket(descriptor: server.descriptor, slot: 64, batch: 8, queueLimit: 1 << 16)
        for n in 0..<11 { client.send([UInt8](repeating: UInt8(n), count: n + 1), to: server.address) }
        #expect(Self.readable(server.descriptor))
        var got: [[UInt8]] = []
        var senders: Set<DatagramPeer> = []
        let first = socket.receive { datagram, peer in
            got.append(Array(datagram.readableBytesView))
            senders.insert(peer)
        }
        #expect(first == .datagrams(8))
        let second = socket.receive { datagram, _ in got.append(Array(datagram.readableBytesView)) }
        #expect(second == .datagrams(3))
        #expect(socket.receive { _, _ in Issue.record("nothing is left") } == .empty)
        #expect(got == (0..<11).map { [UInt8](repeating: UInt8($0), count: $0 + 1) })
        #expect(senders == [client.peer])
        #expect(client.peer.socketAddress.port == client.address.port)
    }

    @Test func aDatagramLongerThanItsSlotArrivesCutToTheSlot() throws {
        let (server, client) = (try Endpoint(), try Endpoint())
        defer { server.close(); client.close() }
        let socket = BatchedDatagramSocket(descriptor: server.descriptor, slot: 16, batch: 4, queueLimit: 1 << 16)
        client.send(Array(0..<40), to: server.address)
        client.send([7], to: server.address)
        #expect(Self.readable(server.descriptor))
        var got: [[UInt8]] = []
        _ = socket.receive { datagram, _ in got.append(Array(datagram.readableBytesView)) }
        #expect(got == [Array(0..<16), [7]])
    }

    @Test func queuedDatagramsLeaveInOneFlushToEachPeerIPv4AndIPv6() throws {
        let server = try Endpoint()
        let (one, two) = (try Endpoint(), try Endpoint())
        defer { server.close(); one.close(); two.close() }
        let socket = BatchedDatagramSocket(descriptor: server.descriptor, slot: 64, batch: 4, queueLimit: 1 << 16)
        // Ten datagrams in three sendmmsg calls of at most 4, alternating between two peers.
        for n in 0..<10 {
            let queued = socket.enqueue(to: n % 2 == 0 ? one.peer : two.peer) { (buffer: inout ByteBuffer) in
                buffer.writeBytes([UInt8(n), UInt8(n)])
            }
            #expect(queued)
        }
        #expect(socket.hasQueued)
        #expect(socket.flush() == .init(sent: 10, dropped: 0, blocked: false))
        #expect(!socket.hasQueued)
        for n in stride(from: 0, to: 10, by: 2) { #expect(one.receive() == [UInt8(n), UInt8(n)]) }
        for n in stride(from: 1, to: 10, by: 2) { #expect(two.receive() == [UInt8(n), UInt8(n)]) }
        #expect(socket.flush() == .init(), "nothing left")

        // The same over IPv6, where the machine has it.
        guard let server6 = try? Endpoint("::1"), let client6 = try? Endpoint("::1") else { return }
        defer { server6.close(); client6.close() }
        let socket6 = BatchedDatagramSocket(descriptor: server6.descriptor, slot: 64, batch: 4, queueLimit: 1 << 16)
        client6.send([1, 2, 3], to: server6.address)
        #expect(Self.readable(server6.descriptor))
        var sender: DatagramPeer?
        _ = socket6.receive { _, peer in sender = peer }
        #expect(sender == client6.peer)
        #expect(sender?.isIPv4 == false)
        _ = socket6.enqueue(to: try #require(sender)) { (buffer: inout ByteBuffer) in buffer.writeBytes([9, 8]) }
        #expect(socket6.flush().sent == 1)
        #expect(client6.receive() == [9, 8])
    }

    @Test func aDatagramTheKernelRefusesIsDroppedAndTheRestAreSent() throws {
        let (server, client) = (try Endpoint(), try Endpoint())
        defer { server.close(); client.close() }
        let socket = BatchedDatagramSocket(descriptor: server.descriptor, slot: 64, batch: 8, queueLimit: 1 << 16)
        // An IPv6 peer on an IPv4 socket: sendmmsg fails on it alone (EAFNOSUPPORT or EINVAL).
        let wrongFamily = DatagramPeer(try SocketAddress(ipAddress: "::1", port: 9))!
        for (n, peer) in [client.peer, wrongFamily, client.peer].enumerated() {
            _ = socket.enqueue(to: peer) { (buffer: inout ByteBuffer) in buffer.writeInteger(UInt8(n)) }
        }
        #expect(socket.flush() == .init(sent: 2, dropped: 1, blocked: false))
        #expect(client.receive() == [0])
        #expect(client.receive() == [2])
    }

    @Test func aWriteThatThrowsQueuesNothingAndTheLimitRefuses() throws {
        struct Refused: Error {}
        let (server, client) = (try Endpoint(), try Endpoint())
        defer { server.close(); client.close() }
        let socket = BatchedDatagramSocket(descriptor: server.descriptor, slot: 64, batch: 8, queueLimit: 100)
        #expect(throws: Refused.self) {
            _ = try socket.enqueue(to: client.peer) { (buffer: inout ByteBuffer) throws(Refused) in
                buffer.writeBytes([1, 2, 3])
                throw Refused()
            }
        }
        #expect(!socket.hasQueued)
        // 60 bytes, then 60 more (the limit is checked before a write), then refused.
        let sixty = [UInt8](repeating: 5, count: 60)
        #expect(socket.enqueue(to: client.peer) { (buffer: inout ByteBuffer) in buffer.writeBytes(sixty) })
        #expect(socket.enqueue(to: client.peer) { (buffer: inout ByteBuffer) in buffer.writeBytes(sixty) })
        #expect(!socket.enqueue(to: client.peer) { (buffer: inout ByteBuffer) in buffer.writeBytes([1]) })
        #expect(socket.flush().sent == 2)
        #expect(client.receive() == sixty)
        #expect(client.receive() == sixty)
        #expect(socket.enqueue(to: client.peer) { (buffer: inout ByteBuffer) in buffer.writeBytes([1]) }, "room again")
    }

    @Test func aClosedSocketNeitherReadsNorWrites() throws {
        let (server, client) = (try Endpoint(), try Endpoint())
        defer { server.close(); client.close() }
        let socket = BatchedDatagramSocket(descriptor: server.descriptor, slot: 64, batch: 8, queueLimit: 1 << 16)
        _ = socket.enqueue(to: client.peer) { (buffer: inout ByteBuffer) in buffer.writeBytes([1]) }
        client.send([1], to: server.address)
        #expect(Self.readable(server.descriptor))
        socket.closed()
        #expect(!socket.hasQueued, "the queue is discarded")
        #expect(socket.receive { _, _ in Issue.record("read after close") } == .empty)
        #expect(!socket.enqueue(to: client.peer) { (buffer: inout ByteBuffer) in buffer.writeBytes([1]) })
        #expect(socket.flush() == .init())
    }

    /// Sockets bound to port 0 each get a port of their own: with SO_REUSEADDR set on all of them, Linux
    /// hands some the same ephemeral port, and only one of those receives (a load run's lost answers).
    @Test func socketsBoundToPortZeroNeverShareAPort() throws {
        var endpoints: [Endpoint] = []
        defer { for endpoint in endpoints { endpoint.close() } }
        for _ in 0..<2_000 { endpoints.append(try Endpoint()) }
        let ports = endpoints.compactMap(\.address.port)
        #expect(ports.count == 2_000)
        #expect(Set(ports).count == 2_000)
    }

    @Test func aPeerIsAPlainValueThatRoundTripsNIOsAddress() throws {
        let v4 = try SocketAddress(ipAddress: "192.0.2.7", port: 4_000)
        let peer = try #require(DatagramPeer(v4))
        #expect(peer.isIPv4)
        #expect(peer.socketAddress.port == 4_000)
        #expect(peer.socketAddress.ipAddress == "192.0.2.7")
        #expect(peer.source == SourceAddress(v4))
        #expect(peer == DatagramPeer(try SocketAddress(ipAddress: "192.0.2.7", port: 4_000)))
        #expect(peer != DatagramPeer(try SocketAddress(ipAddress: "192.0.2.7", port: 4_001)))
        #expect(Set([peer, DatagramPeer(v4)!]).count == 1)
        let v6 = try SocketAddress(ipAddress: "2001:db8::5", port: 53)
        let peer6 = try #require(DatagramPeer(v6))
        #expect(!peer6.isIPv4)
        #expect(peer6.socketAddress.ipAddress == "2001:db8::5")
        #expect(peer6.source == SourceAddress(v6))
        #expect(DatagramPeer(try SocketAddress(unixDomainSocketPath: "/tmp/x")) == nil)
    }
}

/// `BatchedDatagramReader` on a real NIO channel and loopback socket: a burst is read whole and in order,
/// coalesced, and after the socket was found empty NIO waits for the next burst.
@Suite struct BatchedDatagramReaderTests {
    @Test func burstsAreReadWholeInOrderAndAfterIdleTheNextOneToo() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try BatchedDatagramSocketTests.Endpoint()
        defer { client.close() }
        let descriptor = try BatchedDatagramSocket.bound(host: "127.0.0.1", port: 0, reusePort: false)
        let got = NIOLockedValueBox<(datagrams: [UInt32], drains: [Int])>(([], []))
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let socket = BatchedDatagramSocket(descriptor: descriptor, slot: 64, batch: 8, queueLimit: 1 << 16)
                    try channel.pipeline.syncOperations.addHandler(BatchedDatagramReader(
                        socket: socket, readInterval: .milliseconds(2), readsPerTurn: 2,
                        received: { datagram, _ in got.withLockedValue { $0.datagrams.append(datagram.getInteger(at: 0, endianness: .little)!) } },
                        drained: { count in
                            got.withLockedValue { $0.drains.append(count) }
                            return false
                        }))
                }
            }
            .withBoundSocket(descriptor).get()
        let server = try #require(channel.localAddress)
        func burst(_ numbers: Range<UInt32>) {
            for n in numbers { client.send(withUnsafeBytes(of: n) { Array($0) }, to: server) }
        }
        burst(0..<100)
        try await eventually("the first burst is read") { got.withLockedValue { $0.datagrams.count } == 100 }
        // Idle: the reader finds the socket empty and hands it to NIO, which waits for the next burst.
        try await eventually("a drain finds the socket empty") { got.withLockedValue { $0.drains.contains(0) } }
        burst(100..<200)
        try await eventually("the second burst is read") { got.withLockedValue { $0.datagrams.count } == 200 }
        let (datagrams, drains) = got.withLockedValue { $0 }
        #expect(datagrams == Array(0..<200))
        #expect(drains.reduce(0, +) == 200)
        #expect(drains.contains { $0 > 1 }, "reads were coalesced")
        try await channel.close()
        try await group.shutdownGracefully()
    }

    /// The owner's work left from a read (the centre's put-off session starts) goes on in the next turns of
    /// the loop, each a drain of its own, though the socket is empty and the read interval is long; once done,
    /// the socket goes back to NIO, which reads the next datagram when it comes.
    @Test func workLeftFromAReadGoesOnAtOnceAndThenTheReaderWaitsForNIO() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = try BatchedDatagramSocketTests.Endpoint()
        defer { client.close() }
        let descriptor = try BatchedDatagramSocket.bound(host: "127.0.0.1", port: 0, reusePort: false)
        let got = NIOLockedValueBox<(datagrams: Int, drains: [Int], work: Int)>((0, [], 3))
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let socket = BatchedDatagramSocket(descriptor: descriptor, slot: 64, batch: 8, queueLimit: 1 << 16)
                    try channel.pipeline.syncOperations.addHandler(BatchedDatagramReader(
                        socket: socket, readInterval: .seconds(60), readsPerTurn: 2,
                        received: { _, _ in got.withLockedValue { $0.datagrams += 1 } },
                        drained: { count in
                            got.withLockedValue {
                                $0.drains.append(count)
                                $0.work -= 1
                                return $0.work > 0
                            }
                        }))
                }
            }
            .withBoundSocket(descriptor).get()
        let server = try #require(channel.localAddress)
        client.send([1], to: server)
        try await eventually("the work is done") { got.withLockedValue { $0.work } == 0 }
        #expect(got.withLockedValue { $0.drains } == [1, 0, 0], "two drains of their own, not 60 s apart")
        client.send([2], to: server)
        try await eventually("NIO reads the next datagram") { got.withLockedValue { $0.datagrams } == 2 }
        try await channel.close()
        try await group.shutdownGracefully()
    }
}
