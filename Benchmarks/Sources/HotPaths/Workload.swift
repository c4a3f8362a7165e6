/// The hot paths of the device, the load tool and the centre, as workloads that two runners share: ordo-one's
/// benchmark (time and mallocs per step) and `instructions` (callgrind's instruction count per step).
///
/// A workload readies everything its steps need in `prepare(steps:)` (frames sealed ahead, sessions open), so
/// that a step is only the operation named: what one frame, one event or one handshake costs. Everything goes
/// through DeviceKit's public API, as the drivers call it; the drivers' own I/O (sockets, the journal, timers
/// on an event loop) is what `tools/load_bench.py` measures end to end.
public protocol Workload {
    /// As `make bench` and `instructions` name it: `area.operation`.
    static var name: String { get }
    /// One line: what a step does.
    static var summary: String { get }
    init() throws
    /// Readies `steps` steps; the steps that follow may be fewer, never more.
    mutating func prepare(steps: Int) throws
    mutating func step() throws
}

/// The steps measured: callgrind counts the instructions executed inside this function alone
/// (`--toggle-collect=*measuredSteps*`), so set-up is not counted.
@inline(never)
public func measuredSteps<W: Workload>(_ workload: inout W, count: Int) throws {
    for _ in 0..<count { try workload.step() }
}

extension Workload {
    /// Readies and runs `steps` steps of a new workload: what `instructions` runs under callgrind.
    public static func runMeasured(steps: Int) throws {
        var workload = try Self()
        try workload.prepare(steps: steps)
        try measuredSteps(&workload, count: steps)
    }
}

public enum Workloads {
    /// In the order `make bench` prints them.
    public static let all: [any Workload.Type] = [
        SealHeartbeat.self, OpenHeartbeat.self, SealAlarm.self, OpenAlarm.self,
        CentreHeartbeat.self, CentreHandshake.self, HeartbeatRoundTrip.self,
    ]

    public static func named(_ name: String) -> (any Workload.Type)? {
        all.first { $0.name == name }
    }
}

/// A workload failed in a way that means the benchmark measures something else than it says.
public struct WorkloadError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
