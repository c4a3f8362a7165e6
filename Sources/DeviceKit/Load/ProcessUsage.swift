import Foundation

/// This process's resident memory and CPU time, read from /proc (Linux); `nil` where /proc is missing.
///
/// For the report's memory per device (resident bytes holding the fleet minus before it) and CPU time per
/// heartbeat round trip (CPU seconds of the steady phase divided by the heartbeats answered in it).
public struct ProcessUsage: Hashable, Sendable {
    public var residentBytes: Int
    /// User plus system time.
    public var cpuSeconds: Double

    public static func current(procRoot: String = "/proc/self") -> ProcessUsage? {
        guard let status = KernelFile.text(procRoot + "/status"), let stat = KernelFile.text(procRoot + "/stat") else { return nil }
        return parse(status: status, stat: stat, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// Parses `VmRSS:  1234 kB` from status and fields 14 and 15 (utime, stime, in clock ticks) from stat.
    static func parse(status: String, stat: String, ticksPerSecond: Double) -> ProcessUsage? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return nil }
        // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ")", field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]), ticksPerSecond > 0 else { return nil }
        return ProcessUsage(residentBytes: kilobytes * 1024, cpuSeconds: (user + system) / ticksPerSecond)
    }
}
