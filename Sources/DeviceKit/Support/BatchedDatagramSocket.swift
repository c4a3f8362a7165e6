import CDeviceSys
import Glibc
import NIOCore

/// A UDP socket read and written in batches through buffers allocated once: one `recvmmsg` takes up to
/// `batch` datagrams into one receive buffer, and the datagrams queued in a turn of the loop leave in one
/// `sendmmsg` from one send buffer. Nothing is allocated per datagram: a received datagram is a slice of the
/// receive buffer (a retain, no copy), its sender a `DatagramPeer` (a plain value), and a sent one is
/// written (sealed) straight into the send buffer.
///
/// This is the per-frame path of the centre's UDP port and of the load tool's sockets (issue 19): NIO's
/// `DatagramChannel` gives each datagram its own envelope, `SocketAddress` and write-queue entry, a few
/// allocations and a pipeline each way, which at 10,000 frames a second cost more than the frames' work.
/// NIO still owns the descriptor (a `DatagramChannel` made with `withBoundSocket`): it closes it, and it
/// waits for the socket to become readable when this side found it empty, which is the only time the
/// owner's loop sleeps on it. Not thread-safe: used on the loop of the channel that owns the descriptor,
/// and told `closed()` when that channel closes, after which it neither reads nor writes.
///
/// Sends are not blocking: when the kernel's send buffer is full (`EAGAIN`) the rest stays queued for
/// the next `flush()`, up to `queueLimit` bytes; past that `enqueue` refuses (UDP may lose a datagram,
/// and the caller counts it). A datagram the kernel refuses for any other reason (no route, a peer
/// address of the wrong family) is dropped and counted in the flush's result.
final class BatchedDatagramSocket {
    /// The socket's descriptor, owned by NIO's channel.
    let descriptor: CInt
    /// The bytes of each receive slot: a datagram longer than this arrives cut to it (`receive`).
    let slot: Int
    /// The most datagrams one `recvmmsg` or `sendmmsg` takes.
    let batch: Int
    /// Bytes queued for sending past which `enqueue` refuses.
    let queueLimit: Int
    private(set) var isOpen = true

    private var inbound: ByteBuffer
    private let headers: UnsafeMutablePointer<cdevicesys_mmsghdr>
    private let vectors: UnsafeMutablePointer<iovec>
    private let peers: UnsafeMutablePointer<sockaddr_in6>
    private let lengths: UnsafeMutablePointer<UInt32>

    private var outbound: ByteBuffer
    private var outOffsets: [UInt32] = []
    private var outLengths: [UInt32] = []
    private var outPeers: [sockaddr_in6] = []
    /// The first queued datagram not yet sent.
    private var nextOut = 0

    init(descriptor: CInt, slot: Int, batch: Int, queueLimit: Int) {
        precondition(slot > 0 && batch > 0 && queueLimit > 0)
        self.descriptor = descriptor
        self.slot = slot
        self.batch = batch
        self.queueLimit = queueLimit
        inbound = ByteBufferAllocator().buffer(capacity: slot * batch)
        headers = .allocate(capacity: batch)
        vectors = .allocate(capacity: batch)
        peers = .allocate(capacity: batch)
        lengths = .allocate(capacity: batch)
        outbound = ByteBufferAllocator().buffer(capacity: 64 * batch)
        outOffsets.reserveCapacity(batch)
        outLengths.reserveCapacity(batch)
        outPeers.reserveCapacity(batch)
    }

    deinit {
        headers.deallocate()
        vectors.deallocate()
        peers.deallocate()
        lengths.deallocate()
    }

    /// The channel that owned the descriptor closed it: nothing more is read or sent.
    func closed() {
        isOpen = false
        discardQueue()
    }

    // MARK: Receiving

    /// What one `receive` found.
    enum Received: Equatable {
        /// This many datagrams, each given to the caller (`batch` of them: more may be queued).
        case datagrams(Int)
        /// None queued (`EAGAIN`), or the socket is closed.
        case empty
        /// `recvmmsg` failed with this errno (a pending ICMP error, for instance): nothing was read.
        case failed(CInt)
    }

    /// Reads the datagrams queued, up to `batch`, without blocking, and gives each to `each` with its
    /// sender, in the order received. A datagram longer than `slot` is given cut to `slot` bytes. The
    /// buffer given is a slice of the receive buffer: kept past `each`, it costs a copy at the next receive.
    func receive(_ each: (ByteBuffer, DatagramPeer) -> Void) -> Received {
        guard isOpen else { return .empty }
        inbound.clear()
        let (slot, batch) = (self.slot, self.batch)
        let count = inbound.withUnsafeMutableWritableBytes { raw in
            cdevicesys_receive_batch(
                descriptor, headers, vectors, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), slot, peers, lengths,
                UInt32(batch))
        }
        guard count > 0 else {
            if count == 0 { return .empty }
            let error = errno
            return error == EAGAIN || error == EWOULDBLOCK || error == EINTR ? .empty : .failed(error)
        }
        inbound.moveWriterIndex(forwardBy: Int(count) * slot)
        for i in 0..<Int(count) {
            let length = lengths[i] == CDEVICESYS_TRUNCATED ? slot : Int(lengths[i])
            each(inbound.getSlice(at: i * slot, length: length)!, DatagramPeer(raw: peers[i]))
        }
        return .datagrams(Int(count))
    }

    // MARK: Sending

    /// Whether datagrams wait for the next `flush()`.
    var hasQueued: Bool { nextOut < outOffsets.count }

    /// Queues one datagram to `peer`, written by `write` at the end of the send buffer. Returns false,
    /// queueing nothing, when the socket is closed or `queueLimit` bytes wait already. If `write` throws,
    /// nothing is queued and the error is rethrown.
    func enqueue<E: Error>(to peer: DatagramPeer, _ write: (inout ByteBuffer) throws(E) -> Void) throws(E) -> Bool {
        guard isOpen, outbound.readableBytes < queueLimit else { return false }
        let start = outbound.writerIndex
        do {
            try write(&outbound)
        } catch {
            outbound.moveWriterIndex(to: start)
            throw error
        }
        outOffsets.append(UInt32(start))
        outLengths.append(UInt32(outbound.writerIndex - start))
        outPeers.append(peer.storage)
        return true
    }

    /// What one `flush` did.
    struct Flushed: Equatable {
        var sent = 0
        /// Refused by the kernel for another reason than a full buffer, and dropped.
        var dropped = 0
        /// The send buffer is full: the rest waits for the next `flush()`.
        var blocked = false
    }

    /// Sends what is queued, `batch` datagrams a `sendmmsg`, until it is all sent or the kernel's send
    /// buffer is full.
    func flush() -> Flushed {
        var result = Flushed()
        guard isOpen else { return result }
        while nextOut < outOffsets.count {
            let count = min(batch, outOffsets.count - nextOut)
            let first = nextOut
            let sent = outbound.withUnsafeReadableBytes { data in
                outOffsets.withUnsafeBufferPointer { offsets in
                    outLengths.withUnsafeBufferPointer { lengths in
                        outPeers.withUnsafeBufferPointer { peers in
                            cdevicesys_send_batch(
                                descriptor, headers, vectors, data.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                offsets.baseAddress! + first, lengths.baseAddress! + first, peers.baseAddress! + first,
                                UInt32(count))
                        }
                    }
                }
            }
            if sent > 0 {
                nextOut += Int(sent)
                result.sent += Int(sent)
                continue
            }
            let error = errno
            if sent == 0 || error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS {
                result.blocked = true
                break
            }
            if error == EINTR { continue }
            // The first datagram was refused on its own account: it is dropped, the others go on.
            nextOut += 1
            result.dropped += 1
        }
        if nextOut == outOffsets.count { discardQueue() }
        return result
    }

    private func discardQueue() {
        outbound.clear()
        outOffsets.removeAll(keepingCapacity: true)
        outLengths.removeAll(keepingCapacity: true)
        outPeers.removeAll(keepingCapacity: true)
        nextOut = 0
    }

    // MARK: Opening

    /// A UDP socket bound to `host` (a name or an address) and `port`, non-blocking, for a
    /// `DatagramChannel` to own (`DatagramBootstrap.withBoundSocket`). `SO_REUSEADDR` is set for a port
    /// given (a centre restarting binds its port again at once), never for port 0: Linux may give sockets
    /// that all set it the same ephemeral port, and then only one of them receives (a million-device load
    /// run lost 9 of its 1,000 sockets' answers so). `SO_REUSEPORT` when `reusePort`. Throws NIO's
    /// `IOError` with the errno, as NIO's own bind does.
    static func bound(host: String, port: Int, reusePort: Bool) throws -> CInt {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let fd = socket(address.protocol.rawValue, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let size = socklen_t(MemoryLayout<CInt>.size)
        guard port == 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, size) == 0,
            !reusePort || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, size) == 0
        else {
            let error = IOError(errnoCode: errno, reason: "setsockopt")
            close(fd)
            throw error
        }
        let bound = address.withSockAddr { pointer, length in Glibc.bind(fd, pointer, socklen_t(length)) }
        guard bound == 0 else {
            let error = IOError(errnoCode: errno, reason: "bind")
            close(fd)
            throw error
        }
        return fd
    }
}
