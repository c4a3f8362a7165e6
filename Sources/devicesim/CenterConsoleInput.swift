import DeviceKit
import Foundation

/// Reads the `--console` commands from standard input, on a thread of its own (a read blocks, and the
/// cooperative pool has as many threads as cores), and answers on standard output.
///
/// A console started in the background (`devicesim center --console &`) must neither stop the centre nor
/// give up: a process of a background group that reads its terminal is sent SIGTTIN, which stops the whole
/// centre, or, when the signal is blocked (threads made from the cooperative pool block it) or ignored, the
/// read fails with EIO, on which a plain `readLine` ends as at end of input, and the console is gone for good
/// (after `fg`, commands went unread). So SIGTTIN and SIGTTOU are ignored, and on EIO the console says it is
/// in the background and waits to be brought to the foreground. At end of input it says that it reads no more
/// commands; the centre runs on.
enum ConsoleInput {
    static func start(centre: CenterServer) {
        signal(SIGTTIN, SIG_IGN)
        signal(SIGTTOU, SIG_IGN)
        let thread = Thread {
            var reader = StandardInputLines()
            var toldBackground = false
            while true {
                switch reader.next() {
                case .line(let line):
                    toldBackground = false
                    guard !line.allSatisfy(\.isWhitespace) else { continue }
                    let done = DispatchSemaphore(value: 0)
                    Task {
                        await execute(line, centre: centre)
                        done.signal()
                    }
                    done.wait()
                case .background:
                    if !toldBackground {
                        writeLine("console: the centre runs in the background, where its console cannot read commands; bring it to the foreground (fg) to type them")
                        toldBackground = true
                    }
                    StandardInputLines.waitForForeground()
                case .end:
                    writeLine("console: end of input: no more commands are read; the centre runs on (stop it with Ctrl-C or SIGTERM)")
                    return
                case .failed(let error):
                    writeLine("console: cannot read standard input (\(error)): no more commands are read; the centre runs on (stop it with Ctrl-C or SIGTERM)")
                    return
                }
            }
        }
        thread.name = "console"
        thread.start()
    }

    private static func execute(_ line: String, centre: CenterServer) async {
        switch ConsoleCommand.parse(line) {
        case .failure(let hint):
            writeLine(hint.description)
        case .success(.help):
            writeLine(ConsoleCommand.helpText)
        case .success(.quit):
            writeLine("stopping the centre")
            kill(getpid(), SIGTERM)
        case .success(.list):
            let cases = (try? await centre.caseOverviews()) ?? []
            writeLine(CaseOverview.table(cases, now: UInt64(max(0, Date().timeIntervalSince1970 * 1000))))
        case .success(.engage(let id)):
            let done = (try? await centre.engage(case: id)) ?? false
            writeLine(done ? "case \(id): operator engaged" : "case \(id) is not open or already engaged: type 'list'")
            if done { await journal("take", case: id, centre: centre) }
        case .success(.close(let id)):
            let done = (try? await centre.close(case: id)) ?? false
            writeLine(done ? "case \(id): closed" : "case \(id) is not open: type 'list'")
            if done { await journal("close", case: id, centre: centre) }
        case .success(.call(let id)):
            let call = (try? await centre.call(case: id)) ?? nil
            writeLine(
                call.map { $0 == 0 ? "case \(id): ringing an operator's phone, then the home" : "case \(id): calling the home (call \($0))" }
                    ?? "case \(id) is not open: type 'list'")
            if call != nil { await journal("call", case: id, centre: centre) }
        case .success(.hangUp(let id)):
            let device = ((try? await centre.openCases()) ?? []).first { $0.id == id }?.device
            let done = if let device { (try? await centre.hangUp(device: device)) ?? false } else { false }
            writeLine(done ? "case \(id): call ended" : "case \(id) has no call: type 'list'")
            if done { await journal("hangup", case: id, centre: centre) }
        }
    }

    /// What the person at the console did, in the journal's record of operators' actions, as
    /// `console:` and the login user (as the web console records its operators).
    private static func journal(_ action: String, case id: Int64, centre: CenterServer) async {
        let who = "console:" + commandLineUser().dropFirst("cli:".count)
        let entry = OperatorAction(at: UInt64(max(0, Date().timeIntervalSince1970 * 1000)), operatorName: who, action: action, caseID: id)
        do { try await centre.withJournal { try $0.recordOperatorAction(entry) } } catch {
            writeLine("could not record this in the journal: \(error)")
        }
    }
}

/// Lines of standard input read with read(2), so that a failed read is told apart from end of input.
struct StandardInputLines {
    enum Next: Equatable {
        case line(String)
        /// The terminal belongs to another process group: this one runs in the background.
        case background
        case end
        case failed(String)
    }

    private var pending: [UInt8] = []
    private var ended = false

    mutating func next() -> Next {
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return .line(line.hasSuffix("\r") ? String(line.dropLast()) : line)
            }
            if ended {
                guard !pending.isEmpty else { return .end }
                defer { pending = [] }
                return .line(String(decoding: pending, as: UTF8.self))
            }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count > 0 {
                pending += buffer[..<count]
            } else if count == 0 {
                ended = true
            } else if errno == EINTR || errno == EAGAIN {
                continue
            } else if errno == EIO && Self.inBackground {
                return .background
            } else {
                return .failed(String(cString: strerror(errno)))
            }
        }
    }

    /// Whether standard input is a terminal whose foreground process group is not this process's.
    static var inBackground: Bool {
        isatty(STDIN_FILENO) == 1 && tcgetpgrp(STDIN_FILENO) != getpgrp()
    }

    /// Returns once this process is in the foreground of its terminal again (`fg`), checking five times a
    /// second: nothing signals it to a process that ignores SIGTTIN.
    static func waitForForeground() {
        while inBackground { usleep(200_000) }
    }
}
