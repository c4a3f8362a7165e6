import Foundation
import Synchronization
import Testing

@testable import DeviceKit

/// `devicesim center --console` as an operator meets it: commands on standard input, a list of cases with
/// their age, state, online state and call state, `help` and `quit`, end of input said, and a console
/// started in the background (the README's `--console &` did) that takes commands once brought to the
/// foreground, on a real pseudo-terminal with a shell's job control.
@Suite(.serialized) final class CenterConsoleCommandTests {
    let directory: String

    init() throws { directory = try makeTemporaryDirectory("console") }
    deinit { try? FileManager.default.removeItem(atPath: directory) }

    static let master = ["DEVICEKIT_MASTER_KEY": ChildProcess.masterHex]

    func output(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    @Test func theConsoleListsCasesAndAnswersHelpUnknownWordsAndQuit() async throws {
        let port = try await freeLoopbackPorts()
        let input = Pipe()
        let log = directory + "/console.out"
        let centre = try ChildProcess.launch(
            ["center", "--console", "--host", "127.0.0.1", "--port", "\(port)", "--journal", directory + "/c.sqlite", "--no-call-on-engage"],
            environment: Self.master, output: log, input: input)
        defer { if centre.isRunning { centre.terminate() } }  // also when the test fails half-way
        try await eventually("the centre listens") { output(log).contains("listening for devices on TCP \(port)") }

        let config = try await ChildProcess.provision(id: 51, port: port, directory: directory)
        let text = try String(contentsOfFile: config, encoding: .utf8).replacingOccurrences(of: "presses = []", with: "presses = [\"100ms\"]")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let device = try ChildProcess.launch(["run", "--config", config])
        defer { if device.isRunning { device.terminate() } }
        try await eventually("the alarm is a case") { output(log).contains("case 1 device 51 alarm") }

        input.fileHandleForWriting.write(Data("list\n".utf8))
        try await eventually("the list") { output(log).contains("case  device  alarm  age") }
        let row = try #require(output(log).split(separator: "\n").first { $0.hasPrefix("1     51") })
        #expect(row.wholeMatch(of: /1 +51 +\d+ +\d+ s +received +online +none/) != nil, "\(row)")

        input.fileHandleForWriting.write(Data("lsit\n".utf8))
        try await eventually("the unknown word") { output(log).contains("unknown command 'lsit': type 'help' for the commands") }
        #expect(!output(log).contains("commands:"), "an unknown word gets one line, not the whole list")
        input.fileHandleForWriting.write(Data("help\n".utf8))
        try await eventually("the help") { output(log).contains("commands:\n  list ") && output(log).contains("  quit ") }

        // What the person at the console does goes to the journal's record of operators' actions, as the web
        // console's operators' does.
        input.fileHandleForWriting.write(Data("engage 1\n".utf8))
        try await eventually("the engagement") { output(log).contains("case 1: operator engaged") }
        input.fileHandleForWriting.write(Data("close 1\n".utf8))
        try await eventually("the close") { output(log).contains("case 1: closed") }

        device.terminate()
        try await ChildProcess.exit(device, within: .seconds(60))
        input.fileHandleForWriting.write(Data("quit\n".utf8))
        try await ChildProcess.exit(centre, within: .seconds(60))
        #expect(centre.terminationStatus == 0, "\(output(log))")
        #expect(output(log).contains("stopping the centre"))
        let journal = try CenterJournal(path: directory + "/c.sqlite")
        defer { try? journal.close() }
        let actions = try #require(try journal.caseRecord(id: 1)).actions
        #expect(actions.map(\.action) == ["take", "close"])
        #expect(actions.allSatisfy { $0.operatorName.hasPrefix("console:") && $0.operatorName.count > "console:".count && $0.caseID == 1 })
    }

    /// End of input ended the console without a word while the centre ran on.
    @Test func endOfInputIsSaidAndTheCentreRunsOn() async throws {
        let input = Pipe()
        let log = directory + "/console.out"
        let centre = try ChildProcess.launch(
            ["center", "--console", "--host", "127.0.0.1", "--port", "0", "--journal", directory + "/c.sqlite"],
            environment: Self.master, output: log, input: input)
        defer { if centre.isRunning { centre.terminate() } }
        try await eventually("the centre listens") { output(log).contains("listening for devices") }
        try input.fileHandleForWriting.close()
        try await eventually("end of input is said") {
            output(log).contains("console: end of input: no more commands are read; the centre runs on")
        }
        #expect(centre.isRunning)
        centre.terminate()
        try await ChildProcess.exit(centre, within: .seconds(60))
        #expect(centre.terminationStatus == 0)
    }

    /// `devicesim center --console &` in a shell with job control, then `fg`: the background read failed with
    /// EIO (SIGTTIN is blocked on threads made from the cooperative pool), the console ended as at end of
    /// input, and after `fg` commands went unread.
    @Test func aConsoleStartedInTheBackgroundTakesCommandsOnceInTheForeground() async throws {
        let go = directory + "/go"
        let script = """
            set -m
            "$DEVICESIM" center --console --host 127.0.0.1 --port 0 --journal "$DIR/c.sqlite" &
            echo $! > "$DIR/center.pid"
            while [ ! -e "$DIR/go" ]; do sleep 0.05; done
            fg %1
            """
        let shell = try TerminalShell(script: script, environment: Self.master.merging(["DEVICESIM": ChildProcess.devicesim, "DIR": directory]) { $1 })
        defer {
            // The job has a process group of its own (set -m): should the test fail half-way, it is ended by its
            // pid (a shell that ended waited for it in the foreground: then it is gone).
            if shell.exitStatus == nil,
                let pid = (try? String(contentsOfFile: directory + "/center.pid", encoding: .utf8)).flatMap({ Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
            {
                kill(pid, SIGKILL)
            }
            shell.kill()
        }
        try await eventually("the console says it is in the background") {
            shell.output.contains("console: the centre runs in the background, where its console cannot read commands; bring it to the foreground (fg)")
        }
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        try shell.type("help\n")
        try await eventually("the help, read once in the foreground") { shell.output.contains("commands:") }
        try shell.type("quit\n")
        try await eventually("the centre and the shell end") { shell.exitStatus != nil }
        #expect(shell.exitStatus == 0, "\(shell.output)")
    }
}

/// A shell running `script` in a session of its own whose controlling terminal is a new pseudo-terminal, as
/// in a terminal window: job control (`set -m`, `&`, `fg`) works, and the test types on the terminal.
final class TerminalShell: Sendable {
    private let controller: CInt
    private let pid: pid_t
    private let state = Mutex<(output: String, status: Int32?)>(("", nil))

    init(script: String, environment: [String: String]) throws {
        var controller: CInt = -1
        var terminal: CInt = -1
        guard openpty(&controller, &terminal, nil, nil, nil) == 0 else { throw HarnessError("openpty: \(Errno.current)") }
        var name = [CChar](repeating: 0, count: 128)
        guard ttyname_r(terminal, &name, name.count) == 0 else { throw HarnessError("ttyname_r failed") }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A new session; opening the terminal then makes it the session's controlling terminal.
        // POSIX_SPAWN_SETSID (glibc's 0x80), which Swift does not import: glibc calls setsid before the file actions.
        posix_spawnattr_setflags(&attributes, 0x80)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addclose(&actions, controller)
        posix_spawn_file_actions_addclose(&actions, terminal)
        posix_spawn_file_actions_addopen(&actions, 0, name, O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&actions, 0, 1)
        posix_spawn_file_actions_adddup2(&actions, 0, 2)
        let arguments = ["/bin/bash", "-c", script]
        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
        var pid: pid_t = 0
        let result = withCStrings(arguments) { argv in
            withCStrings(variables) { envp in posix_spawn(&pid, "/bin/bash", &actions, &attributes, argv, envp) }
        }
        close(terminal)
        guard result == 0 else {
            close(controller)
            throw HarnessError("posix_spawn /bin/bash: \(Errno(rawValue: result))")
        }
        self.controller = controller
        self.pid = pid
        let thread = Thread { [self] in readUntilClosed() }
        thread.start()
    }

    /// Everything the terminal showed so far.
    var output: String { state.withLock { $0.output } }

    /// The shell's exit status once it ended.
    var exitStatus: Int32? {
        state.withLock { state in
            if state.status == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid { state.status = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }
            }
            return state.status
        }
    }

    /// Types `text` on the terminal.
    func type(_ text: String) throws { try DeviceFile.write(controller, Array(text.utf8)) }

    /// Ends the shell's whole session, if still there.
    func kill() {
        if exitStatus == nil { _ = Glibc.kill(-pid, SIGKILL) }
    }

    private func readUntilClosed() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(controller, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }  // EIO once no process holds the terminal
            let text = String(decoding: buffer[..<count], as: UTF8.self)
            state.withLock { $0.output += text }
        }
        close(controller)
    }
}

/// `body` with `strings` as a NULL-terminated C array.
private func withCStrings<T>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> T) -> T {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
