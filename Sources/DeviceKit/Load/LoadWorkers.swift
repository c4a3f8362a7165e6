import Foundation
import NIOCore

/// How one `devicesim load` process spreads its part of the fleet over worker processes. Pure: no processes.
///
/// A process may open at most 20,000 files here, so it holds at most about 19,000 TCP devices; more TCP
/// devices need more processes. Each worker runs a shard of the whole fleet: worker j of n, in a process
/// that runs shard I/N, runs shard (I·n + j)/(N·n). `FleetShard.ids` cuts the fleet at ⌊fleet·k/(N·n)⌋, so
/// the workers' blocks of ids are contiguous, disjoint, and together exactly the process's block
/// (⌊fleet·I·n/(N·n)⌋ = ⌊fleet·I/N⌋); a worker's report names its shard as a process's does, so `load merge`
/// of several machines' reports sees every worker's shard once.
public enum LoadWorkers {
    /// The most TCP devices one process is allowed (the open-file limit, less room for the rest).
    public static let maximumTCPDevicesPerProcess = 19_000
    /// What the automatic worker count aims at per process, below the maximum.
    public static let tcpDevicesPerWorker = 18_000

    /// Workers when `--workers` is not given: over TCP one for each 18,000 devices, over UDP one (devices
    /// share sockets, so one process goes much further).
    public static func automaticCount(transport: Transport, devices: Int) -> Int {
        switch transport {
        case .tcp: max(1, (devices + tcpDevicesPerWorker - 1) / tcpDevicesPerWorker)
        case .udp: 1
        }
    }
}

extension FleetShard {
    /// The shards of the whole fleet that split this one into `n` workers: (I·n + j)/(N·n) for j in 0..<n.
    public func split(into n: Int) -> [FleetShard] {
        (0..<n).map { FleetShard(index: index * n + $0, count: count * n) }
    }
}

extension LoadPlan {
    /// The plans of `n` worker processes that together run this one: each its sub-shard of the ids, and its
    /// part of this process's ramp, so that all workers' ramps take as long as this plan's and their steady
    /// phases begin together. Fleet-wide rates (alarms, events, link drops) need no change: each plan takes
    /// its part of them from its ids (`processShare`).
    public func workerPlans(_ n: Int) -> [LoadPlan] {
        let total = ids.count
        return shard.split(into: n).map { sub in
            var plan = self
            plan.shard = sub
            plan.rampRate = total == 0 ? rampRate : rampRate * Double(plan.ids.count) / Double(total)
            return plan
        }
    }
}

/// The local addresses TCP devices connect from, device id by id in turn (id modulo the count).
///
/// One source address reaches one centre address and port from at most the ephemeral ports
/// (`net.ipv4.ip_local_port_range`, about 28,000 here), so a fleet larger than that connects from several.
/// Each socket is bound with IP_BIND_ADDRESS_NO_PORT before `bind`, so the kernel picks the port at
/// `connect` from the whole 4-tuple rather than reserving one per bind.
///
/// The tool uses many more addresses than the ports require: the kernel's port search at `connect`
/// (`__inet_hash_connect`, `__inet_check_established`) steps over the ports the address already uses toward
/// that destination, so its cost grows with the connections per address. Measured with 36,000 TCP devices
/// at a ramp of 1,000/s: from 2 addresses the two load processes spent 78 % of their time in that search,
/// set-ups passed the centre's 5 s authentication timeout and 26,000 attempts failed; from 16 addresses all
/// 36,000 connected at once, set-up p99 0.3 s, no failure.
public struct SourceAddresses: Hashable, Sendable, CustomStringConvertible {
    /// Devices per source address when the tool chooses: a few percent of the ports one address has.
    public static let devicesPerAddress = 1_000
    /// The most addresses a range may name.
    public static let maximumCount = 1_024
    /// Linux's IP_BIND_ADDRESS_NO_PORT (IPPROTO_IP level).
    public static let bindAddressNoPort = NIOBSDSocket.Option(rawValue: 24)

    public let addresses: [SocketAddress]

    public init(_ addresses: [SocketAddress]) { self.addresses = addresses }

    /// Parses `127.0.0.1-127.0.0.8` (an IPv4 range, both ends included) or `10.0.0.5,10.0.0.6` (a list,
    /// IPv4 or IPv6).
    public init(parsing text: String) throws(LoadError) {
        let problem = LoadError(
            "--source-addresses '\(text)' is not a range or a list of local addresses: write for example 127.0.0.1-127.0.0.8 or 10.0.0.5,10.0.0.6")
        let ends = text.split(separator: "-", omittingEmptySubsequences: false)
        if ends.count == 2 {
            guard let low = Self.ipv4(ends[0]), let high = Self.ipv4(ends[1]), low <= high else { throw problem }
            guard high - low < UInt32(Self.maximumCount) else {
                throw LoadError("--source-addresses '\(text)' names more than \(Self.maximumCount) addresses: give a shorter range")
            }
            addresses = (low...high).compactMap { Self.address(ipv4: $0) }
        } else {
            var parsed: [SocketAddress] = []
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard let address = try? SocketAddress(ipAddress: part.trimmingCharacters(in: .whitespaces), port: 0) else { throw problem }
                parsed.append(address)
            }
            guard !parsed.isEmpty, parsed.count <= Self.maximumCount else { throw problem }
            addresses = parsed
        }
    }

    /// What the tool chooses without `--source-addresses`: for a centre on IPv4 loopback (127.0.0.0/8) and more
    /// TCP devices than one address serves, 127.0.0.1, 127.0.0.2, … one per 1,000 devices; otherwise none
    /// (the kernel chooses, as for one address it would).
    public static func automatic(centre: SocketAddress, devices: Int) -> SourceAddresses? {
        let needed = (devices + devicesPerAddress - 1) / devicesPerAddress
        guard needed > 1, case .v4 = centre, let host = centre.ipAddress, let first = ipv4(Substring(host)), first >> 24 == 127 else {
            return nil
        }
        return SourceAddresses((0..<UInt32(min(needed, maximumCount))).compactMap { address(ipv4: (127 << 24) + 1 + $0) })
    }

    /// The address device `id` connects from.
    public func address(for id: UInt32) -> SocketAddress { addresses[Int(id % UInt32(addresses.count))] }

    /// A comma list that `init(parsing:)` reads back, for the workers' command lines.
    public var description: String { addresses.compactMap(\.ipAddress).joined(separator: ",") }

    private static func ipv4(_ text: Substring) -> UInt32? {
        let octets = text.trimmingCharacters(in: .whitespaces).split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var value: UInt32 = 0
        for octet in octets {
            guard let byte = UInt8(octet) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    private static func address(ipv4 value: UInt32) -> SocketAddress? {
        try? SocketAddress(ipAddress: "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)", port: 0)
    }
}
