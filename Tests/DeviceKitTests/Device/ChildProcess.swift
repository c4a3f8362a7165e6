import Foundation
import Testing

@testable import DeviceKit

/// `devicesim` as a child process, for tests of the commands as a user runs them.
enum ChildProcess {
    /// The `devicesim` built beside the tests (`swift build --build-tests` builds it), or `$DEVICESIM_UNDER_TEST`
    /// (an older build, to see a regression test fail on the code as it was).
    static var devicesim: String {
        if let given = ProcessInfo.processInfo.environment["DEVICESIM_UNDER_TEST"], !given.isEmpty { return given }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../..").standardized
        let candidates = [Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("devicesim").path]
            + [".build/debug/devicesim", ".build/release/devicesim"].map { root.appendingPathComponent($0).path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    /// Starts `devicesim arguments…`; its output goes to `output` (a file path) or nowhere, its input comes
    /// from `input` or is the tests' own; it runs in `directory`, or the tests' own.
    static func launch(
        _ arguments: [String], environment: [String: String] = [:], output: String? = nil, input: Pipe? = nil, directory: String? = nil
    ) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: devicesim)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let input { process.standardInput = input }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let output {
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// Waits for `process` to end; kills it and fails after `timeout`, so a test never hangs.
    static func exit(_ process: Process, within timeout: Duration) async throws {
        guard await poll(within: timeout, until: { !process.isRunning }) else {
            kill(process.processIdentifier, SIGKILL)
            throw HarnessError("devicesim \(process.arguments?.first ?? "") did not exit within \(timeout)")
        }
    }

    /// Runs `devicesim arguments…` to the end and returns its exit status and output.
    static func run(
        _ arguments: [String], environment: [String: String] = [:], directory: String? = nil, within timeout: Duration = .seconds(120)
    ) async throws -> (status: Int32, output: String) {
        let output = NSTemporaryDirectory() + "devicesim-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try launch(arguments, environment: environment, output: output, directory: directory)
        try await exit(process, within: timeout)
        return (process.terminationStatus, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// The fleet master key of `EndToEndHarness`, in hex.
    static let masterHex = String(repeating: "42", count: 32)

    /// Provisions device `id` for the centre at `port` into `directory`; returns the device.toml path. The
    /// master key comes from the environment, never the command line.
    static func provision(id: UInt32, port: Int, directory: String, extra: [String] = []) async throws -> String {
        let config = directory + "/device.toml"
        let result = try await run([
            "provision", "--id", "\(id)", "--center", "127.0.0.1:\(port)",
            "--state-dir", directory + "/state", "--out", config,
        ] + extra, environment: ["DEVICEKIT_MASTER_KEY": masterHex])
        #expect(result.status == 0, "\(result.output)")
        return config
    }
}
