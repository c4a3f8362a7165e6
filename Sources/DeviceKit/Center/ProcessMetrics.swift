#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The `process_*` metrics every Prometheus client exports (CPU time, memory, descriptors, start time), read
/// from `/proc` at each scrape, so that a dashboard sees the centre's own cost beside its work.
///
/// The parsing is pure (`parse`), the reading takes the proc root as a parameter, so tests point it at a tree
/// of their own.
struct ProcessMetrics: Equatable {
    var cpuSeconds: Double
    var residentBytes: Int
    var virtualBytes: Int
    var openDescriptors: Int
    var maximumDescriptors: Int
    /// Seconds since the Unix epoch.
    var startTime: Double

    /// The metrics of `/proc/self` under `procRoot`; `nil` where /proc cannot be read (not Linux).
    static func read(procRoot: String = "/proc") -> ProcessMetrics? {
        guard let stat = KernelFile.text(procRoot + "/self/stat"), let systemStat = KernelFile.text(procRoot + "/stat") else { return nil }
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: procRoot + "/self/fd").count) ?? 0
        var limit = rlimit()
        let maximum = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
        return parse(
            stat: stat, systemStat: systemStat, openDescriptors: descriptors, maximumDescriptors: maximum,
            ticksPerSecond: Int(sysconf(Int32(_SC_CLK_TCK))), pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
    }

    /// From `/proc/self/stat` (proc(5): utime 14, stime 15, starttime 22 in clock ticks since boot, vsize 23 in
    /// bytes, rss 24 in pages) and `/proc/stat`'s `btime` (boot, seconds since the epoch).
    static func parse(
        stat: String, systemStat: String, openDescriptors: Int, maximumDescriptors: Int, ticksPerSecond: Int, pageSize: Int
    ) -> ProcessMetrics? {
        // The command name (field 2) is in parentheses and may hold spaces: fields are counted after its ')'.
        guard let close = stat.lastIndex(of: ")"), ticksPerSecond > 0 else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        // fields[0] is field 3 (state), so field n is fields[n - 3].
        func field(_ n: Int) -> Double? { fields.count > n - 3 ? Double(fields[n - 3]) : nil }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23), let rss = field(24),
            let bootLine = systemStat.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
            let boot = Double(bootLine.dropFirst("btime ".count).trimmingCharacters(in: .whitespaces))
        else { return nil }
        let ticks = Double(ticksPerSecond)
        return ProcessMetrics(
            cpuSeconds: (user + system) / ticks, residentBytes: Int(rss) * pageSize, virtualBytes: Int(virtual),
            openDescriptors: openDescriptors, maximumDescriptors: maximumDescriptors, startTime: boot + start / ticks)
    }

    /// The metrics in Prometheus's text format, with the names and help of the official clients.
    var text: String {
        func metric(_ name: String, _ type: String, _ help: String, _ value: String) -> String {
            "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
        }
        return metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", "\(cpuSeconds)")
            + metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", "\(residentBytes)")
            + metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", "\(virtualBytes)")
            + metric("process_open_fds", "gauge", "Number of open file descriptors.", "\(openDescriptors)")
            + metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", "\(maximumDescriptors)")
            + metric("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", String(format: "%.2f", startTime))
    }
}
