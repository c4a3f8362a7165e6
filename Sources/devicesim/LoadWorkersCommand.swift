import ArgumentParser
import DeviceKit
import Foundation
import NIOCore

/// `devicesim load run` over several worker processes: the coordinator's side and the worker's.
extension LoadRunCommand {
    /// Worker processes for `plan`: `--workers`, or by itself one per 18,000 TCP devices; a worker is one.
    func workerCount(for plan: LoadPlan) -> Int {
        guard worker == nil else { return 1 }
        return workers ?? LoadWorkers.automaticCount(transport: plan.transport, devices: plan.ids.count)
    }

    /// `--source-addresses`, or for a large TCP fleet against a loopback centre 127.0.0.1, 127.0.0.2, …
    func sourceAddresses(centre: SocketAddress, devices: Int) throws -> SourceAddresses? {
        if let sourceAddressList { return try SourceAddresses(parsing: sourceAddressList) }
        guard Transport(rawValue: planOptions.transport) == .tcp else { return nil }
        return SourceAddresses.automatic(centre: centre, devices: devices)
    }

    /// Where the run's progress goes: a line on standard error, or for a worker one line of JSON a second
    /// on standard output, for its coordinator.
    func progressOutput() -> @Sendable (LoadProgress) -> Void {
        if worker != nil {
            let encoder = JSONEncoder()
            return { progress in
                guard let line = try? encoder.encode(progress) else { return }
                FileHandle.standardOutput.write(line + Data("\n".utf8))
            }
        }
        let quiet = quiet
        return { progress in
            guard !quiet else { return }
            FileHandle.standardError.write(Data((progress.line + "\n").utf8))
        }
    }

    /// The instant a worker's run begins (its coordinator's), and the worker's ties to its coordinator:
    /// SIGINT and SIGTERM end it (a coordinator ignores them to stop its workers itself, and children
    /// inherit that), and so does its standard input closing (the coordinator is gone, even by SIGKILL).
    func workerStart() -> NIODeadline? {
        guard let worker else { return nil }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        ParentLifeline.watch {
            FileHandle.standardError.write(Data("devicesim load worker: the coordinator is gone (standard input closed); stopping\n".utf8))
            _exit(3)
        }
        return NIODeadline.uptimeNanoseconds(worker)
    }

    /// Runs `plan` as `count` worker processes of this executable, each a sub-shard, and reports as one.
    func coordinate(_ plan: LoadPlan, workers count: Int, began: Date) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("devicesim-load-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The key goes to the workers in a file of this user's, not on their command lines.
        let keyFile = masterKey.masterFile ?? directory + "/master.hex"
        if masterKey.masterFile == nil {
            guard FileManager.default.createFile(atPath: keyFile, contents: Data(try masterHex().utf8), attributes: [.posixPermissions: 0o600]) else {
                throw CommandFailure(.cannotCreate, "cannot write the key file for the workers in \(directory): check the space and permissions of the temporary directory (TMPDIR)")
            }
        }
        // Long enough for every worker to start and parse its flags; a worker later than that catches up
        // with its ramp (its devices' set-up times show it) but keeps the common time axis.
        let start = NIODeadline.now() + .seconds(2)
        let workers = plan.workerPlans(count).enumerated().map { k, sub in
            let report = directory + "/worker-\(k).json"
            return LoadWorker(
                name: "worker \(k + 1) of \(count) (shard \(sub.shard))",
                arguments: workerArguments(sub, start: start, keyFile: keyFile, report: report),
                devices: sub.ids.count, report: report, errorLog: directory + "/worker-\(k).stderr")
        }
        if !quiet {
            let split = workers.map { "\($0.devices)" }.joined(separator: " + ")
            FileHandle.standardError.write(
                Data("\(plan.ids.count) devices over \(count) worker processes (\(split))\(plan.sourceAddresses.map { ", from \($0)" } ?? "")\n".utf8))
        }
        // This executable by its name, so that `ps` shows the workers as devicesim; /proc/self/exe if it is gone.
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil } ?? "/proc/self/exe"
        let coordinator = LoadCoordinator(executable: executable, workers: workers, start: start)
        let progress = progressOutput()
        let run = Task { try await coordinator.run(progress: progress) }
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { run.cancel() }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }
        let result: (merged: LoadReport, workers: [LoadWorkerResult])
        do {
            result = try await run.value
        } catch {
            guard run.isCancelled else { throw error }
            FileHandle.standardError.write(Data("stopped by a signal: every worker process has ended\n".utf8))
            throw ExitCode(130)
        }
        for worker in result.workers { print(worker.line) }
        try output.finish(result.merged, began: began)
    }

    /// A worker's command line: this run's plan options as given, but for the worker's part of the ramp; the
    /// worker's shard, the key file, the source addresses chosen for the whole run, its report file, and the
    /// common start instant.
    private func workerArguments(_ plan: LoadPlan, start: NIODeadline, keyFile: String, report: String) -> [String] {
        var options = planOptions
        options.ramp = plan.rampRate
        var arguments = ["load", "run"] + options.arguments + [
            "--shard", plan.shard.description, "--master-file", keyFile,
            "--quiet", "--report", report, "--worker", "\(start.uptimeNanoseconds)",
        ]
        if let sources = plan.sourceAddresses { arguments += ["--source-addresses", sources.description] }
        return arguments
    }
}
