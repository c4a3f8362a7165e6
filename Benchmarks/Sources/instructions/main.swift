// Runs one workload's steps in `measuredSteps`, for callgrind: `instructions NAME STEPS`, or `--list`.
// tools/bench_instructions.py runs it under `valgrind --tool=callgrind --toggle-collect=*measuredSteps*`.
import Glibc
import HotPaths

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "--list" {
    for workload in Workloads.all { print("\(workload.name)\t\(workload.summary)") }
} else if arguments.count == 2, let workload = Workloads.named(arguments.first!), let steps = Int(arguments.last!), steps > 0 {
    do {
        try workload.runMeasured(steps: steps)
    } catch {
        print("\(workload.name): \(error)")
        exit(1)
    }
} else {
    print("usage: instructions --list | instructions WORKLOAD STEPS")
    exit(2)
}
