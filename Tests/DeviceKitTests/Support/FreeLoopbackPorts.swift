import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

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
