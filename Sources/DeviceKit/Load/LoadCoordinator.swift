import Foundation
import NIOCore
import Synchronization

/// One worker process of a load run: its command line, its part of the fleet, where its report goes.
public struct LoadWorker: Sendable {
    /// How errors and the summary name it, for example `worker 2 of 6 (shard 1/6)`.
    public var name: String
    public var arguments: [String]
    public var devices: Int
    /// The worker's `--json` report, and the file its standard error goes to.
    public var report: String
    public var errorLog: String

    public init(name: String, arguments: [String], devices: Int, report: String, errorLog: String) {
        self.name = name
        self.arguments = arguments
        self.devices = devices
        self.report = report
        self.errorLog = errorLog
    }
}

/// What one worker measured, for a line of its own under the merged table.
public struct LoadWorkerResult: Sendable {
    public var worker: LoadWorker
    public var processID: Int32
    public var report: LoadReport

    public var line: String {
        var line = "\(worker.name), process \(processID): \(report.devices) devices"
        if let online = report.allOnlineSeconds { line += String(format: ", all online after %.1f s", online) }
        if let holding = report.residentBytesHolding {
            line += String(format: ", %.1f MB resident holding them", Double(holding) / 1e6)
            if let perDevice = report.residentBytesPerDevice { line += String(format: " (%.0f bytes a device)", perDevice) }
        }
        return line
    }
}

/// Runs a load test as worker processes of this executable and adds up what they measured.
///
/// Each worker is `devicesim load run … --worker START`: it starts its clock at the coordinator's instant
/// START (CLOCK_MONOTONIC, which every process of the machine shares), writes its progress as one line of
/// JSON a second on standard output and its report to `--json`, and ends if its standard input closes (the
/// coordinator is gone). The coordinator prints one progress line for all of them, with the p99 of the
/// alarms of the last second over all workers (their histograms added), and at the end merges the reports
/// exactly, as `load merge` does. A worker that fails ends the run: the others are stopped, and the error
/// names the worker and quotes the end of its standard error.
public final class LoadCoordinator: Sendable {
    public let executable: String
    public let workers: [LoadWorker]
    /// When every worker's run begins.
    public let start: NIODeadline
    private let board: ProgressBoard

    public init(executable: String, workers: [LoadWorker], start: NIODeadline) {
        self.executable = executable
        self.workers = workers
        self.start = start
        board = ProgressBoard(workers: workers.count)
    }

    /// Starts the workers, reports progress once a second, and returns the merged report and each worker's.
    /// Cancelling the task (Ctrl-C, SIGTERM in `devicesim`) stops every worker before it throws.
    public func run(progress: @Sendable (LoadProgress) -> Void) async throws -> (merged: LoadReport, workers: [LoadWorkerResult]) {
        var processes: [Process] = []
        // Held open while the workers run: a worker whose standard input closes stops.
        var inputs: [Pipe] = []
        do {
            for (k, worker) in workers.enumerated() {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = worker.arguments
                let input = Pipe()
                let output = Pipe()
                process.standardInput = input
                process.standardOutput = output
                guard FileManager.default.createFile(atPath: worker.errorLog, contents: nil) else {
                    throw LoadError("cannot create \(worker.errorLog) for the standard error of \(worker.name)")
                }
                process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: worker.errorLog))
                try process.run()
                processes.append(process)
                inputs.append(input)
                board.follow(output.fileHandleForReading, worker: k)
            }
            while processes.contains(where: \.isRunning) {
                try await Task.sleep(for: .seconds(1))
                if let failure = failure(processes) { throw failure }
                let elapsed = NIODeadline.now() - start
                if elapsed > .zero {
                    progress(board.combined(elapsed: .nanoseconds(elapsed.nanoseconds), devices: workers.reduce(0) { $0 + $1.devices }))
                }
            }
            if let failure = failure(processes) { throw failure }
        } catch {
            stop(processes)
            throw error
        }
        withExtendedLifetime(inputs) {}
        var results: [LoadWorkerResult] = []
        for (worker, process) in zip(workers, processes) {
            guard let data = FileManager.default.contents(atPath: worker.report) else {
                throw LoadError("\(worker.name) ended without writing its report \(worker.report)\(tail(of: worker))")
            }
            let report = try LoadReport(json: data, name: "the report of \(worker.name)")
            guard report.devices == worker.devices else {
                throw LoadError("\(worker.name) reports \(report.devices) devices, not the \(worker.devices) it was given")
            }
            results.append(LoadWorkerResult(worker: worker, processID: process.processIdentifier, report: report))
        }
        return (try LoadReport.merge(results.map(\.report)), results)
    }

    /// The first worker that ended badly, said with the end of its standard error.
    private func failure(_ processes: [Process]) -> LoadError? {
        for (worker, process) in zip(workers, processes) where !process.isRunning {
            let status = process.terminationStatus
            switch process.terminationReason {
            case .exit where status == 0:
                continue
            case .exit:
                return LoadError("\(worker.name), process \(process.processIdentifier), failed with exit status \(status)\(tail(of: worker))")
            case .uncaughtSignal:
                return LoadError("\(worker.name), process \(process.processIdentifier), was killed by signal \(status)\(tail(of: worker))")
            @unknown default:
                return LoadError("\(worker.name), process \(process.processIdentifier), ended (status \(status))\(tail(of: worker))")
            }
        }
        return nil
    }

    /// The last lines of a worker's standard error, to quote in an error.
    private func tail(of worker: LoadWorker) -> String {
        let text = (try? String(contentsOfFile: worker.errorLog, encoding: .utf8)) ?? ""
        let lines = text.split(separator: "\n").suffix(12)
        return lines.isEmpty ? " (nothing on its standard error)" : "; the end of its standard error:\n" + lines.joined(separator: "\n")
    }

    /// Stops the workers still running: SIGTERM, then SIGKILL for any still there after 10 s.
    private func stop(_ processes: [Process]) {
        for process in processes where process.isRunning { process.terminate() }
        let deadline = NIODeadline.now() + .seconds(10)
        while processes.contains(where: \.isRunning), NIODeadline.now() < deadline { usleep(20_000) }
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// The workers' latest progress lines, read from their standard output on a thread each.
private final class ProgressBoard: Sendable {
    private struct State {
        var latest: [LoadProgress?]
        /// Alarm latencies of the lines since the last combined one, all workers.
        var recent = LatencyHistogram.compact()
        var previous: (elapsed: Duration, alarmsRaised: Int)?
    }
    private let state: Mutex<State>

    init(workers: Int) { state = Mutex(State(latest: Array(repeating: nil, count: workers))) }

    /// Reads `handle` line by line until it closes; lines that are not progress (the worker's table) are skipped.
    func follow(_ handle: FileHandle, worker: Int) {
        Thread.detachNewThread { [self] in
            let decoder = JSONDecoder()
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending.removeSubrange(pending.startIndex...newline)
                    guard line.first == UInt8(ascii: "{"), let progress = try? decoder.decode(LoadProgress.self, from: line) else { continue }
                    state.withLock {
                        $0.latest[worker] = progress
                        $0.recent.add(progress.recentAlarms)
                    }
                }
            }
        }
    }

    /// One progress line for all workers: their counts added, the earliest phase, the p99 of all their recent alarms.
    func combined(elapsed: Duration, devices: Int) -> LoadProgress {
        state.withLock { state in
            let latest = state.latest.compactMap { $0 }
            let raised = latest.reduce(0) { $0 + $1.alarmsRaised }
            var rate = 0.0
            if let previous = state.previous, elapsed > previous.elapsed {
                rate = Double(raised - previous.alarmsRaised) / (Double((elapsed - previous.elapsed).nanoseconds) / 1e9)
            }
            let recent = state.recent
            state.recent.reset()
            state.previous = (elapsed, raised)
            return LoadProgress(
                elapsed: elapsed, phase: latest.map(\.phase).min() ?? .ramp, devices: devices,
                online: latest.reduce(0) { $0 + $1.online }, alarmsPerSecond: rate, alarmsRaised: raised,
                alarmsAcknowledged: latest.reduce(0) { $0 + $1.alarmsAcknowledged },
                recentAlarmP99: recent.count > 0 ? recent.value(atPercentile: 99) : nil,
                reconnects: latest.reduce(0) { $0 + $1.reconnects }, failedAttempts: latest.reduce(0) { $0 + $1.failedAttempts },
                recentAlarms: recent)
        }
    }
}
