// swift-tools-version: 6.1
// The benchmarks of the hot paths (issue 19), a package of their own so that `make test` and CI never build
// ordo-one/benchmark: `make bench` runs them (docs/benchmarks.md, "Benchmarks as code").
//
// - `HotPaths`: the workloads, on DeviceKit's public API, each a setup and one measured step.
// - `Benchmarks/HotPathBenchmarks`: ordo-one/benchmark's runner over them: time and mallocs per step
//   (`swift package benchmark`).
// - `instructions`: runs one workload's step N times in `measuredSteps`, for callgrind to count the
//   instructions of those calls alone (`tools/bench_instructions.py`). This machine's VM has no hardware
//   performance counters (`perf stat -e instructions` says "not supported"), and instruction counts, unlike
//   times, are stable on shared machines: they are the figures compared across commits.
import PackageDescription

let package = Package(
    name: "DeviceKitBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "DeviceKit", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
    ],
    targets: [
        .target(
            name: "HotPaths",
            dependencies: [
                .product(name: "DeviceKit", package: "DeviceKit"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .executableTarget(name: "instructions", dependencies: ["HotPaths"]),
        .executableTarget(
            name: "HotPathBenchmarks",
            dependencies: ["HotPaths", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/HotPathBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]),
    ]
)
