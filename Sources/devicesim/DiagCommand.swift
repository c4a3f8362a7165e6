import ArgumentParser
import DeviceKit
import Foundation
import Synchronization

/// `devicesim diag`: the field technician's tools, in plain words.
struct DiagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diag",
        abstract: "Check a device in someone's home: the button, its wiring, the power, the link to the centre.",
        discussion: """
            Every line says what was found and what to do next. Start with `devicesim diag selftest`, or \
            `devicesim diag list` to find the button. Each command's --help lists its exit status: 1 when \
            it found a problem (a PROBLEM or FAIL line says which), the codes of sysexits(3) when it could \
            not run.
            """,
        subcommands: [
            DiagListCommand.self, DiagWatchCommand.self, DiagRecordCommand.self, DiagAnalyzeCommand.self, DiagSerialCommand.self,
            DiagLinkCommand.self, DiagSelftestCommand.self,
        ]
    )
}

/// Runs `body` until it returns or the user presses Ctrl-C (SIGINT) or `seconds` pass; then returns, so
/// the caller can print its summary.
func untilInterrupted(seconds: Double?, _ body: @escaping @Sendable () async throws -> Void) async throws {
    signal(SIGINT, SIG_IGN)
    let interrupt = DispatchSource.makeSignalSource(signal: SIGINT)
    defer {
        interrupt.cancel()
        signal(SIGINT, SIG_DFL)
    }
    let task = Task { try await body() }
    interrupt.setEventHandler { task.cancel() }
    interrupt.resume()
    let timer = seconds.map { seconds in
        Task {
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            task.cancel()
        }
    }
    defer { timer?.cancel() }
    do { try await task.value } catch is CancellationError {}
}

/// `--seconds` of the diag commands that listen until Ctrl-C: more than 0, at most a day.
func checkListeningSeconds(_ seconds: Double?) throws {
    if let seconds, !(seconds > 0 && seconds <= 86_400) {
        throw ValidationError("--seconds must be more than 0 and at most 86400 (a day); leave it out to listen until Ctrl-C.")
    }
}

/// What exit status 1 means for the diag commands that open a device: it could not be read, or went away.
let diagDeviceProblem = "the device cannot be read (missing, not an input event device, no permission, grabbed by another program) or went away: the PROBLEM line says which"

/// Flushes standard output after each line, so a technician watching over SSH sees events at once.
func say(_ line: String) {
    print(line)
    fflush(nil)
}

/// The identity lines printed before watching or recording.
func describe(_ info: EvdevDeviceInfo) -> [String] {
    var lines = ["\(info.path): \"\(info.name)\", \(info.busDescription)"]
    if let phys = info.physicalLocation, !phys.isEmpty { lines.append("  location: \(phys)") }
    let keys = info.keys.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) }
    lines.append(keys.count <= 8 ? "  keys: \(keys.joined(separator: ", "))" : "  \(keys.count) keys (a keyboard or similar)")
    for key in info.keys {
        if let action = InputEventNames.systemKeys[key] {
            lines.append("  WARNING: \(InputEventNames.code(type: 1, code: key)) is a key the system acts on (\(action)); never wire the call button to it")
        }
    }
    if let pointing = info.pointing {
        lines.append("  WARNING: it is \(pointing), not a button: never taken as the call button by itself (button.allow_pointer_device)")
    }
    return lines
}

struct DiagWatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Show a button's events live: presses, how long they were held, bounces, lost events.",
        discussion: """
            Times are seconds from the first event, on the monotonic clock. Glitches (presses shorter than \
            --debounce-ms, which the device ignores) and bounces are counted as the device's own press \
            detector counts them. Press Ctrl-C to stop and see a summary with advice. Needs read access to the \
            device (group input).

            \(ExitStatus.help([.verdict], [.success: "stopped by Ctrl-C or --seconds", .verdict: diagDeviceProblem]))
            """)

    @Argument(help: "The input device, e.g. /dev/input/sos-button or /dev/input/event3.")
    var device: String

    @Option(name: .customLong("debounce-ms"), parsing: .unconditional, help: "Edges closer than this are reported as bounces.")
    var debounceMilliseconds = 30

    @Option(name: .customLong("hold-ms"), parsing: .unconditional, help: "The device's hold time: shorter presses would not raise an alarm.")
    var holdMilliseconds = 100

    @Flag(help: "Take the device for this program alone while watching (EVIOCGRAB).")
    var grab = false

    @Option(parsing: .unconditional, help: "Stop after this many seconds instead of waiting for Ctrl-C.")
    var seconds: Double?

    func validate() throws {
        guard debounceMilliseconds >= 0, holdMilliseconds >= 0 else {
            throw ValidationError("--debounce-ms and --hold-ms are milliseconds, 0 or more: e.g. --debounce-ms 30 --hold-ms 100.")
        }
        try checkListeningSeconds(seconds)
    }

    func run() async throws {
        let ok = try await Self.watch(
            EvdevSession(path: device, grab: grab, pathSetting: nil), seconds: seconds,
            debounce: .milliseconds(debounceMilliseconds), hold: .milliseconds(holdMilliseconds), say: say)
        if !ok { throw ExitCode(ExitStatus.verdict.rawValue) }
    }

    /// Watches until Ctrl-C or `seconds`, printing through `say`; `false` when the device could not be
    /// watched or went away. A device that never opened gets the problem alone: no summary of presses that
    /// could not have been seen.
    static func watch(
        _ session: EvdevSession, seconds: Double?, debounce: Duration, hold: Duration, say: @escaping @Sendable (String) -> Void
    ) async throws -> Bool {
        let summary = Locked<[String]>([])
        let opened = Locked(false)
        let result = Locked<EvdevSession.End?>(nil)
        try await untilInterrupted(seconds: seconds) {
            result.value = try await onDedicatedThread(name: "diag watch") { flag in
                var watch = ButtonWatch(debounce: debounce, hold: hold)
                defer { summary.value = watch.summary() }
                return try session.run(flag) { device, info in
                    describe(info).forEach(say)
                    let held = try device.heldKeys().codes.map { UInt16($0) }
                    watch.start(held: held).map(ButtonWatch.line).forEach(say)
                    opened.value = true
                    say("Watching; press the button (Ctrl-C to stop).")
                } events: { device, events in
                    for event in events {
                        watch.feed(event).map(ButtonWatch.line).forEach(say)
                        if watch.needsKeyState {
                            let held = try device.heldKeys().codes.map { UInt16($0) }
                            watch.resynchronised(held: held).map(ButtonWatch.line).forEach(say)
                        }
                    }
                    summary.value = watch.summary()
                }
            }
        }
        let end = result.value ?? .cancelled
        if case .gone(let reason) = end { say("PROBLEM: \(reason)") }
        if opened.value { summary.value.forEach(say) }
        if case .gone = end { return false }
        return true
    }
}

struct DiagRecordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "record",
        abstract: "Record a button's events to an evemu file (format 1.3) that `backend = \"replay\"` plays back.",
        discussion: """
            The file is the same format evemu-record writes, so evemu-play and libinput tools read it too. \
            Press Ctrl-C to stop.

            \(ExitStatus.help([.verdict, .cannotCreate], [.verdict: diagDeviceProblem, .cannotCreate: "the recording cannot be written"]))
            """)

    @Argument(help: "The input device, e.g. /dev/input/sos-button.")
    var device: String

    @Option(help: "The recording to write (as OUT.partial until the recording ends; a device that cannot be recorded leaves no file).")
    var out: String

    @Flag(help: "Take the device for this program alone while recording (EVIOCGRAB).")
    var grab = false

    @Option(parsing: .unconditional, help: "Stop after this many seconds instead of waiting for Ctrl-C.")
    var seconds: Double?

    func validate() throws { try checkListeningSeconds(seconds) }

    func run() async throws {
        // Written beside `out` and moved over it at the end: a device that cannot be recorded (not there, not
        // an input device) leaves no empty file, and an earlier recording under that name intact.
        let partial = out + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: nil), let handle = FileHandle(forWritingAtPath: partial) else {
            throw CommandFailure(.cannotCreate, "cannot create the recording \(out): check that its directory exists and that you may write there")
        }
        let session = EvdevSession(path: device, grab: grab, pathSetting: nil)
        let count = Locked(0)
        let opened = Locked(false)
        let result = Locked<EvdevSession.End?>(nil)
        let kernel = ProcessInfo.processInfo.operatingSystemVersionString
        do {
            try await untilInterrupted(seconds: seconds) {
                result.value = try await onDedicatedThread(name: "diag record") { flag in
                    try session.record(flag, kernel: kernel) { info in
                        opened.value = true
                        describe(info).forEach(say)
                        say("Recording to \(out); press the button, then Ctrl-C.")
                    } write: { text in
                        handle.write(Data(text.utf8))
                        if text.hasPrefix("E:") { count.update { $0 += 1 } }
                    }
                }
            }
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        try? handle.synchronize()
        try? handle.close()
        // A device that never opened recorded nothing: no file. One that went away while recording keeps what
        // it recorded.
        if case .gone(let reason) = result.value, !opened.value {
            try? FileManager.default.removeItem(atPath: partial)
            say("PROBLEM: \(reason)")
            throw ExitCode(ExitStatus.verdict.rawValue)
        }
        guard rename(partial, out) == 0 else {
            throw CommandFailure(
                .cannotCreate, "cannot move the recording to \(out) (\(String(cString: strerror(errno)))): it is in \(partial)")
        }
        if case .gone(let reason) = result.value {
            say("PROBLEM: \(reason)")
            throw ExitCode(ExitStatus.verdict.rawValue)
        }
        say("Wrote \(count.value) events to \(out). Replay it with [button] backend = \"replay\", file = \"\(out)\".")
    }
}

/// A value a command shares with the thread that reads its device: written there, read once the reader has
/// finished (or been told to stop). Behind a lock all the same, so that the compiler checks the sharing
/// rather than a comment claiming who touches it when.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>

    init(_ value: Value) { mutex = Mutex(value) }

    var value: Value {
        get { mutex.withLock { $0 } }
        set { mutex.withLock { $0 = newValue } }
    }

    func update(_ body: @Sendable (inout Value) -> Void) {
        mutex.withLock { body(&$0) }
    }
}
