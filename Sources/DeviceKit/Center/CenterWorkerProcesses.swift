#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// The parent of `devicesim center --workers N`: starts N worker processes of the same executable, which
/// bind the same port with SO_REUSEPORT and share one journal, waits until each listens, forwards SIGINT and
/// SIGTERM to them, and ends when they have ended.
///
/// A worker that dies while the others serve is not restarted: the parent stops the others and fails naming
/// it (`WorkerFailed`), so that a supervisor above (systemd `Restart=`) restarts the whole centre on a clean
/// journal instead of running on with a share of the devices silently unserved. (A device of the dead worker
/// would reconnect to a live one; but a worker that dies once, say on a full disk, dies again.)
///
/// Each worker gets, besides its arguments:
/// - file descriptor 3, the write end of a pipe, on which it writes one line when it listens, then closes it;
/// - a standard input that reaches end of file when the parent ends, however it ends (even SIGKILL), so a
///   worker never outlives its parent: it then stops as on SIGTERM.
public final class CenterWorkerProcesses: Sendable {
    /// A worker ended before the others were asked to stop, or before it listened.
    public struct WorkerFailed: Error, CustomStringConvertible {
        public var index: Int
        public var pid: Int32
        public var ending: String
        public var beforeListening: Bool
        /// The worker's exit status if it exited (rather than being killed by a signal).
        public var exitStatus: Int32?

        public var description: String {
            "centre worker \(index) (pid \(pid)) \(ending)\(beforeListening ? " before it listened" : " unexpectedly")"
                + ": stopped the other workers; see the worker's messages above"
        }
    }

    /// The descriptor a worker writes its "listening" line to.
    public static let readyDescriptor: Int32 = 3

    private let executable: String
    private let arguments: @Sendable (Int) -> [String]
    private let count: Int
    private let state = Mutex(State())

    private struct State: ~Copyable {
        var pids: [Int32: Int] = [:]
        var stopping = false
    }

    /// - Parameters:
    ///   - executable: the program of the workers, usually this one (`/proc/self/exe`).
    ///   - arguments: worker `index`'s arguments (without the program name).
    public init(executable: String, count: Int, arguments: @escaping @Sendable (Int) -> [String]) {
        self.executable = executable
        self.count = count
        self.arguments = arguments
    }

    /// This program's path, for workers of the same executable.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// Starts the workers, calls `listening` with their pids once each listens, and blocks until all ended.
    /// Throws `WorkerFailed` for the first worker that ended unasked (after stopping the others); returns
    /// normally when every worker ended after `stop` (SIGINT or SIGTERM to this process), with status 0.
    public func run(listening: ([Int32]) -> Void) throws {
        var lifelines: [Int32] = []
        defer { for descriptor in lifelines { close(descriptor) } }
        var failure: WorkerFailed?
        var started: [(index: Int, pid: Int32, descriptor: Int32)] = []
        for index in 0..<count {
            do {
                let (pid, descriptor, lifeline) = try spawn(index: index)
                lifelines.append(lifeline)
                started.append((index, pid, descriptor))
            } catch {
                failure = WorkerFailed(index: index, pid: 0, ending: "could not be started (\(error))", beforeListening: true, exitStatus: nil)
                stop(signal: SIGTERM)
                break
            }
        }
        // Each worker says when it listens; end of file first means it ended (its exit is reaped below).
        var listened = Set<Int>()
        for worker in started {
            if Self.readLine(worker.descriptor) != nil { listened.insert(worker.index) }
            close(worker.descriptor)
        }
        if failure == nil && listened.count == count && !state.withLock({ $0.stopping }) { listening(started.map(\.pid)) }

        // Reap every worker; the first that ends unasked stops the others.
        while state.withLock({ !$0.pids.isEmpty }) {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 {
                if errno == EINTR { continue }
                break  // ECHILD: none left
            }
            let (index, unasked): (Int?, Bool) = state.withLock { state in
                let index = state.pids.removeValue(forKey: pid)
                defer { if index != nil { state.stopping = true } }
                return (index, !state.stopping)
            }
            guard let index, unasked else { continue }
            failure = failure
                ?? WorkerFailed(
                    index: index, pid: pid, ending: Self.describe(status), beforeListening: !listened.contains(index),
                    exitStatus: status & 0x7f == 0 ? (status >> 8) & 0xff : nil)
            stop(signal: SIGTERM)
        }
        if let failure { throw failure }
    }

    /// Sends `signal` to every worker still running (SIGINT and SIGTERM are forwarded this way).
    public func stop(signal: Int32) {
        let pids = state.withLock { state in
            state.stopping = true
            return Array(state.pids.keys)
        }
        for pid in pids { kill(pid, signal) }
    }

    // MARK: Helpers

    /// Starts worker `index`; returns its pid, the read end of its "listening" pipe and the write end of its
    /// standard input, which the parent holds open for the worker's life.
    private func spawn(index: Int) throws -> (Int32, Int32, Int32) {
        var readyPipe: [Int32] = [-1, -1]
        var lifePipe: [Int32] = [-1, -1]
        guard pipe(&readyPipe) == 0 else { throw Errno.current }
        guard pipe(&lifePipe) == 0 else {
            let error = Errno.current
            close(readyPipe[0])
            close(readyPipe[1])
            throw error
        }
        // Close-on-exec (pipe2 is not visible to Swift): no worker inherits another's pipes. Only this thread
        // starts processes, so none can start between pipe and fcntl.
        for descriptor in readyPipe + lifePipe { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        defer {
            close(readyPipe[1])
            close(lifePipe[0])
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copy: the worker keeps these two, and no other worker's pipes.
        posix_spawn_file_actions_adddup2(&actions, lifePipe[0], STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, readyPipe[1], Self.readyDescriptor)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The parent's handling of SIGINT/SIGTERM (ignored, for its dispatch sources) is not the worker's.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments(index)).map { strdup($0) } + [nil]
        let envp = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = state.withLock { state -> Int32 in
            // Under the lock, so that a signal forwarded meanwhile reaches this worker too.
            let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            if result == 0 { state.pids[pid] = index }
            if result == 0 && state.stopping { kill(pid, SIGTERM) }
            return result
        }
        guard result == 0 else {
            close(readyPipe[0])
            close(lifePipe[1])
            throw Errno(rawValue: result)
        }
        return (pid, readyPipe[0], lifePipe[1])
    }

    /// Reads up to a newline; `nil` at end of file before one.
    private static func readLine(_ descriptor: Int32) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(descriptor, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }

    /// A wait status in words: "exited with status 3", "was killed by signal 9".
    static func describe(_ status: Int32) -> String {
        let signal = status & 0x7f
        return signal == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(signal)"
    }
}
