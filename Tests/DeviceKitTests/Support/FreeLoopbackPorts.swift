import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Ports handed out in this process: tests run in parallel, and two that drew the same free port would both
/// find it free, then one would fail to bind it ("port … already in use", seen once in a full run).
private let handedOut = NIOLockedValueBox<Set<Int>>([])

/// `span` consecutive loopback ports free for TCP and UDP now, for a centre that must keep its ports (a child
/// process, or a restart on the same ports). Below Linux's ephemeral range (32768 up), so that no outgoing
/// connection or client socket (load tests beside this one) takes one between this check and the bind, or
/// while the centre is down.
func freeLoopbackPorts(span: Int = 1) async throws -> Int {
    func bindable(_ port: Int) async -> Bool {
        guard let tcp = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: port).get() else { return false }
        try? await tcp.close()
        guard let udp = try? await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: port).get() else { return false }
        try? await udp.close()
        return true
    }
    search: for _ in 0..<500 {
        // Below the range a spawned centre draws its port from (`SpawnedCenter.choosePort`: the 20,000 ports
        // under the ephemeral range, 12768 up): the load tests beside this one spawn such centres, in other
        // processes (a CI run failed with "port 26478 (TCP) is already in use" when both drew it).
        let first = Int.random(in: 5_000...(12_000 - span))
        let ports = Set(first..<(first + span))
        guard handedOut.withLockedValue({ $0.isDisjoint(with: ports) }) else { continue search }
        for port in ports where !(await bindable(port)) { continue search }
        // Claimed only if no other test claimed any of them meanwhile.
        guard handedOut.withLockedValue({ taken in
            guard taken.isDisjoint(with: ports) else { return false }
            taken.formUnion(ports)
            return true
        }) else { continue search }
        return first
    }
    throw HarnessError("no \(span) free consecutive ports found from 5000 to 12000")
}

/// A loopback port where nothing answers, held for as long as the value lives: a TCP socket bound to it that
/// does not listen (a connect is refused) and a UDP socket bound to it that never reads (datagrams go
/// unanswered, with no ICMP error). Neither sets SO_REUSEADDR, so no other socket can bind the port meanwhile:
/// a port found free and let go was taken by a server of another test, whose connections the load tool then
/// reported as "the connection was closed" (seen once in a full run).
final class DeadPort: Sendable {
    let port: Int
    private let descriptors: [CInt]

    init() throws {
        for _ in 0..<100 {
            let tcp = try Self.bound(type: SOCK_STREAM, port: 0)
            let port = try Self.port(of: tcp)
            if let udp = try? Self.bound(type: SOCK_DGRAM, port: port) {
                self.port = port
                descriptors = [tcp, udp]
                return
            }
            close(tcp)
        }
        throw HarnessError("no loopback port was free for TCP and UDP at once")
    }

    deinit { for descriptor in descriptors { close(descriptor) } }

    private static func bound(type: __socket_type, port: Int) throws -> CInt {
        let descriptor = socket(AF_INET, Int32(type.rawValue), 0)
        guard descriptor >= 0 else { throw HarnessError("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw HarnessError("bind to 127.0.0.1:\(port): errno \(code)")
        }
        return descriptor
    }

    private static func port(of descriptor: CInt) throws -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { throw HarnessError("getsockname: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
