import NIOCore

/// The address of a peer without its port: what the centre's per-source limits count by, since one host can
/// use any number of ports. Cheap to hash: no string is made for it.
enum SourceAddress: Hashable, Sendable {
    case v4(UInt32)
    case v6(UInt64, UInt64)
    /// A Unix socket or an address NIO could not tell: all such peers share one budget.
    case other

    init(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4)?:
            self = .v4(v4.address.sin_addr.s_addr)
        case .v6(let v6)?:
            var raw = v6.address.sin6_addr
            self = withUnsafeBytes(of: &raw) { bytes in
                .v6(bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self), bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        case .unixDomainSocket?, nil:
            self = .other
        }
    }
}
