import Testing

@testable import DeviceKit

/// The `process_*` metrics from /proc's text (pure), and from this machine's /proc.
@Suite struct ProcessMetricsTests {
    /// proc(5)'s stat line, with a command name holding a space and a parenthesis.
    static let stat = "4242 (devicesim (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 633393152 10689 18446744073709551615 0 0 0 0 0 0 0 4096 0 0 0 17 1 0 0 0 0 0"

    @Test func theStatLineGivesCPUMemoryAndStartTime() throws {
        let metrics = try #require(ProcessMetrics.parse(
            stat: Self.stat, systemStat: "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n", openDescriptors: 25, maximumDescriptors: 20_000,
            ticksPerSecond: 100, pageSize: 4096))
        #expect(metrics == ProcessMetrics(
            cpuSeconds: 3, residentBytes: 10689 * 4096, virtualBytes: 633_393_152, openDescriptors: 25, maximumDescriptors: 20_000,
            startTime: 1_700_000_123.45))
        #expect(metrics.text.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 3.0\n"))
        #expect(metrics.text.contains("process_start_time_seconds 1700000123.45\n"))
    }

    @Test func aStatLineThatIsCutShortGivesNothing() {
        #expect(ProcessMetrics.parse(stat: "4242 (devicesim) S 1", systemStat: "btime 1", openDescriptors: 0, maximumDescriptors: 0, ticksPerSecond: 100, pageSize: 4096) == nil)
        #expect(ProcessMetrics.parse(stat: Self.stat, systemStat: "cpu 1", openDescriptors: 0, maximumDescriptors: 0, ticksPerSecond: 100, pageSize: 4096) == nil)
    }

    @Test func thisProcessIsRead() throws {
        let metrics = try #require(ProcessMetrics.read())
        #expect(metrics.residentBytes > 0 && metrics.openDescriptors > 0 && metrics.startTime > 1_600_000_000)
    }
}
