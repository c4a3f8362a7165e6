import Glibc
import NIOCore

/// The address and port of a UDP peer as the kernel gives and takes it: a `sockaddr_in6`, which holds a
/// `sockaddr_in` at its start for IPv4. A plain value (28 bytes, nothing counted by reference), so that a
/// million sessions' reply paths cost no retains and no allocations, and a datagram's sender is read out of
/// `recvmmsg`'s array without making a `SocketAddress` (whose storage NIO allocates).
struct DatagramPeer: Hashable, Sendable {
    /// An IPv4 peer's `sockaddr_in` in the first 16 bytes, the rest zero; or an IPv6 peer's `sockaddr_in6`.
    private(set) var storage: sockaddr_in6

    /// A peer as `recvmmsg` wrote it: only the bytes of its family are kept, so that equal peers compare equal.
    init(raw: sockaddr_in6) {
        if raw.sin6_family == sa_family_t(AF_INET) {
            var v4 = withUnsafeBytes(of: raw) { $0.loadUnaligned(as: sockaddr_in.self) }
            v4.sin_zero = (0, 0, 0, 0, 0, 0, 0, 0)
            storage = Self.storage(v4: v4)
        } else {
            storage = raw
        }
    }

    init(v4: sockaddr_in) {
        storage = Self.storage(v4: v4)
    }

    private static func storage(v4: sockaddr_in) -> sockaddr_in6 {
        var storage = sockaddr_in6()
        withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: v4, as: sockaddr_in.self) }
        return storage
    }

    /// `nil` for an address that is not IP (a Unix socket's).
    init?(_ address: SocketAddress) {
        switch address {
        case .v4(let v4): storage = Self.storage(v4: v4.address)
        case .v6(let v6): storage = v6.address
        case .unixDomainSocket: return nil
        }
    }

    var isIPv4: Bool { storage.sin6_family == sa_family_t(AF_INET) }

    /// NIO's form, for what is not on the per-frame path (a call's media address, logs). Allocates.
    var socketAddress: SocketAddress {
        if isIPv4 {
            return SocketAddress(withUnsafeBytes(of: storage) { $0.loadUnaligned(as: sockaddr_in.self) }, host: "")
        }
        return SocketAddress(storage, host: "")
    }

    /// The peer's address without its port, which the centre's per-source limits count by.
    var source: SourceAddress {
        withUnsafeBytes(of: storage) { bytes in
            if isIPv4 { return .v4(bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) }
            return .v6(bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        }
    }

    static func == (lhs: DatagramPeer, rhs: DatagramPeer) -> Bool {
        withUnsafeBytes(of: lhs.storage) { l in withUnsafeBytes(of: rhs.storage) { r in l.elementsEqual(r) } }
    }

    func hash(into hasher: inout Hasher) {
        withUnsafeBytes(of: storage) { hasher.combine(bytes: $0) }
    }
}
