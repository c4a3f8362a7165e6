// ordo-one/benchmark over the hot-path workloads (Sources/HotPaths): wall-clock time and mallocs per step.
// `make bench` runs it; instruction counts, the figures to compare across commits, come from
// tools/bench_instructions.py.
import Benchmark
import HotPaths

let benchmarks: @Sendable () -> Void = {
    // 1,000 steps a sample, so that a sample's time is far above the clock's resolution; the mallocs and
    // times reported are per step (`scalingFactor`).
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds, scalingFactor: .kilo, maxDuration: .seconds(2), maxIterations: 1_000)
    for workload in Workloads.all {
        register(workload)
    }
}

func register<W: Workload>(_ type: W.Type) {
    Benchmark(W.name) { benchmark in
        var workload = try W()
        try workload.prepare(steps: benchmark.scaledIterations.count)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            try workload.step()
        }
        benchmark.stopMeasurement()
    }
}
