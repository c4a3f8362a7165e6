import Foundation
import NIOCore
import NIOPosix

/// A `devicesim center` that the load tool runs as a child process (`devicesim load --spawn-center`):
/// started, crashed with SIGKILL and started again on the same port and journal, stopped at the end.
///
/// The child's standard output and error go to `log`, which each start appends to. The centre is ready once
/// the line `{"event":"listening",…}` that `devicesim center` prints when it listens appears there. Its
/// standard input is a pipe that this process holds (`--stop-with-stdin`, a `ParentLifeline`): should this
/// process end without stopping it, even by SIGKILL, the centre stops by itself.
public actor SpawnedCenter {
    public struct Configuration: Sendable {
        /// The devicesim executable: the tool's own.
        public var executable: String
        public var host: String
        public var port: Int
        /// A file with the fleet master key in hex, so that the key is not in the process list.
        public var masterFile: String
        public var journal: String
        public var log: String
        public var heartbeatInterval: UInt16
        /// The automatic operator, so that cases progress as in a staffed centre.
        public var autoEngageAfter: Duration = .milliseconds(100)
        public var autoCloseAfter: Duration = .seconds(1)
        /// More arguments for the centre (`--center-arg`), last, so that they override the ones above.
        public var extraArguments: [String] = []

        public init(
            executable: String, host: String, port: Int, masterFile: String, journal: String, log: String,
            heartbeatInterval: UInt16, extraArguments: [String] = []
        ) {
            self.executable = executable
            self.host = host
            self.port = port
            self.masterFile = masterFile
            self.journal = journal
            self.log = log
            self.heartbeatInterval = heartbeatInterval
            self.extraArguments = extraArguments
        }

        public var arguments: [String] {
            [
                "center", "--host", host, "--port", "\(port)", "--master-file", masterFile, "--journal", journal,
                "--heartbeat-interval", "\(heartbeatInterval)", "--auto-engage-after", "\(autoEngageAfter.milliseconds)",
                "--auto-close-after", "\(autoCloseAfter.seconds)", "--stop-with-stdin",
            ] + extraArguments
        }
    }

    /// Bounds for waits that end by themselves unless something is wrong.
    public struct Bounds: Sendable {
        /// From start to listening (a starved machine may take seconds to load the binary and open the journal).
        public var start: Duration = .seconds(60)
        /// From SIGTERM to exit, before SIGKILL.
        public var stop: Duration = .seconds(10)
        /// From SIGKILL to the process being reaped.
        public var kill: Duration = .seconds(10)

        public init() {}
    }

    public nonisolated let configuration: Configuration
    public nonisolated let bounds: Bounds
    private var process: Process?
    /// The write end of the running centre's standard input, held open and never written to.
    private var lifeline: FileHandle?
    private var stopped = false
    /// Every process started, in order: for the tool's output and the test that no centre outlives it.
    public private(set) var pids: [Int32] = []
    public private(set) var restarts: [CenterRestart] = []

    public init(configuration: Configuration, bounds: Bounds = Bounds()) {
        self.configuration = configuration
        self.bounds = bounds
    }

    /// Starts the centre and returns once it listens; throws if it exits first, or after `bounds.start`.
    public func start() async throws {
        guard !stopped else { throw CenterStopped() }
        guard FileManager.default.fileExists(atPath: configuration.log) || FileManager.default.createFile(atPath: configuration.log, contents: nil),
            let output = FileHandle(forWritingAtPath: configuration.log)
        else { throw SpawnedCenterError("cannot write the centre's log \(configuration.log): check the directory") }
        let offset = try output.seekToEnd()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: configuration.executable)
        process.arguments = configuration.arguments
        // Foundation closes the read end here and the write end in the child once it has started.
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        defer { try? output.close() }
        try process.run()
        self.process = process
        // The previous centre's, if any, ended before this one started.
        try? lifeline?.close()
        lifeline = input.fileHandleForWriting
        pids.append(process.processIdentifier)
        let deadline = NIODeadline.now() + TimeAmount(bounds.start)
        while !logSince(offset).contains(#""event":"listening""#) {
            guard !stopped else { throw CenterStopped() }
            guard process.isRunning else {
                throw SpawnedCenterError(
                    "the centre exited with status \(process.terminationStatus) before it listened; its log, \(configuration.log), ends:\n"
                        + logSince(offset).split(separator: "\n").suffix(5).joined(separator: "\n"))
            }
            guard NIODeadline.now() < deadline else {
                await end(process, signal: SIGKILL, within: bounds.kill)
                throw SpawnedCenterError("the centre did not listen within \(bounds.start): see \(configuration.log)")
            }
            // The centre says nothing else before it listens: reading the log again costs a few bytes.
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Crashes the centre at each instant from the run's `start`, and starts it again on the same port and
    /// journal after `down`; records each in `restarts` and tells `restarted`.
    public func crashAndRestart(
        _ instants: [Duration], down: Duration, from start: NIODeadline, restarted: @Sendable (CenterRestart) -> Void = { _ in }
    ) async throws {
        func now() -> Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds) - Int64(start.uptimeNanoseconds)) }
        for instant in instants {
            try await Task.sleep(for: instant - now())
            guard !stopped, let process else { return }
            guard process.isRunning else {
                throw SpawnedCenterError("the centre exited by itself with status \(process.terminationStatus): see \(configuration.log)")
            }
            await end(process, signal: SIGKILL, within: bounds.kill)
            let killed = now()
            if down > .zero { try await Task.sleep(for: down) }
            try await self.start()
            let restart = CenterRestart(killedAt: killed.seconds, listeningAt: now().seconds)
            restarts.append(restart)
            restarted(restart)
        }
    }

    /// Stops the centre, SIGTERM then SIGKILL after `bounds.stop`, and starts none after this.
    /// Returns whether it had to be killed.
    @discardableResult
    public func stop() async -> Bool {
        stopped = true
        defer {
            try? lifeline?.close()
            lifeline = nil
        }
        guard let process, process.isRunning else { return false }
        if await end(process, signal: SIGTERM, within: bounds.stop) { return false }
        await end(process, signal: SIGKILL, within: bounds.kill)
        return true
    }

    /// Sends `signal` and waits until the process is reaped; returns whether it was within `bound`.
    @discardableResult
    private func end(_ process: Process, signal: Int32, within bound: Duration) async -> Bool {
        kill(process.processIdentifier, signal)
        let deadline = NIODeadline.now() + TimeAmount(bound)
        // Foundation reaps the child and reports it through `isRunning`. The wait must also hold in a
        // cancelled task (the run ended while a restart was under way), where Task.sleep returns at once.
        while process.isRunning {
            guard NIODeadline.now() < deadline else { return false }
            if (try? await Task.sleep(for: .milliseconds(5))) == nil { usleep(5_000) }
        }
        return true
    }

    private func logSince(_ offset: UInt64) -> String {
        guard let handle = FileHandle(forReadingAtPath: configuration.log) else { return "" }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.readToEnd() else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// A port for the centre on `host`, free for TCP and UDP now, below the system's ephemeral range: a
    /// device's outgoing connection could otherwise take it while the centre is down, and keep it from
    /// listening again.
    public static func choosePort(host: String, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> Int {
        let range = KernelFile.text("/proc/sys/net/ipv4/ip_local_port_range")?
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let ephemeral = range?.first ?? 32768
        let upper = max(ephemeral, 2048)
        var random = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let port = Int.random(in: max(1024, upper - 20_000)..<upper, using: &random)
            guard let tcp = try? await ServerBootstrap(group: group).bind(host: host, port: port).get() else { continue }
            let udp = try? await DatagramBootstrap(group: group).bind(host: host, port: port).get()
            try? await tcp.close()
            try? await udp?.close()
            if udp != nil { return port }
        }
        throw SpawnedCenterError("found no free port for the centre on \(host): give one with --center \(host):PORT")
    }
}

/// The spawned centre failed to start, or ended by itself.
public struct SpawnedCenterError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
