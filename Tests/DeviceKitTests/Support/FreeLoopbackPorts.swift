import NIOCore
import NIOPosix

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
        let first = Int.random(in: 20_000...(32_000 - span))
        for port in first..<(first + span) where !(await bindable(port)) { continue search }
        return first
    }
    throw HarnessError("no \(span) free consecutive ports found from 20000 to 32000")
}
