import Foundation

/// Where a new password comes from, never the command line (it would be in `ps` and the shell's history): on
/// a terminal it is asked twice with echo off; from a pipe or file it is one line, so that scripts can give it.
struct PasswordInput {
    /// Read from here (standard input).
    var input: Int32 = STDIN_FILENO
    /// Prompts go here when `input` is a terminal (standard error, so that standard output stays the result).
    var prompt: Int32 = STDERR_FILENO

    /// The longest line read: far past any password the policy takes, short of memory trouble.
    static let maximumLine = 4_096

    func read() throws(CommandFailure) -> String {
        guard isatty(input) == 1 else {
            guard let line = try readLine() else {
                throw CommandFailure(.dataError, "no password on standard input: give it on a terminal, or as one line, e.g. printf '%s\\n' \"$PASSWORD\" | devicesim center operators add NAME")
            }
            return line
        }
        let first = try withoutEcho { () throws(CommandFailure) in try ask("Password: ") }
        let second = try withoutEcho { () throws(CommandFailure) in try ask("Repeat the password: ") }
        guard first == second else { throw CommandFailure(.dataError, "the two passwords differ: run the command again") }
        return first
    }

    private func ask(_ question: String) throws(CommandFailure) -> String {
        write(question)
        let line = try readLine()
        write("\n")  // the Enter typed was not echoed
        guard let line else { throw CommandFailure(.dataError, "no password given (end of input)") }
        return line
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Foundation.write(prompt, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }  // no terminal to prompt on: the read says what went wrong
            bytes = bytes.dropFirst(written)
        }
    }

    /// One line without its line ending; nil at end of input before any byte.
    private func readLine() throws(CommandFailure) -> String? {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        // Byte by byte: nothing after the line is taken from the input.
        while true {
            let count = Foundation.read(input, &byte, 1)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw CommandFailure(.ioError, "cannot read the password from standard input: \(String(cString: strerror(errno)))") }
            if count == 0 {
                if line.isEmpty { return nil }
                break
            }
            if byte == UInt8(ascii: "\n") { break }
            line.append(byte)
            guard line.count <= Self.maximumLine else {
                throw CommandFailure(.dataError, "the password line is over \(Self.maximumLine) bytes: give one line of at most 72 bytes")
            }
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        guard let text = String(validating: line, as: UTF8.self) else {
            throw CommandFailure(.dataError, "the password is not UTF-8 text: set the terminal or the file to UTF-8")
        }
        return text
    }

    /// Runs `body` with the terminal's echo off, and turns it back on after, also when interrupted (Ctrl-C).
    private func withoutEcho<T>(_ body: () throws(CommandFailure) -> T) throws(CommandFailure) -> T {
        var saved = termios()
        guard tcgetattr(input, &saved) == 0 else { return try body() }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        TerminalRestore.save(saved, descriptor: input)
        tcsetattr(input, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(input, TCSAFLUSH, &saved)
            TerminalRestore.clear()
        }
        return try body()
    }
}

/// The terminal settings to put back if the user interrupts the prompt: a signal handler may not capture
/// anything, so they are kept here. Touched only by the one thread that prompts and by that handler, which
/// only reads them after `save` wrote them and calls async-signal-safe functions.
private enum TerminalRestore {
    nonisolated(unsafe) static var settings = termios()
    nonisolated(unsafe) static var descriptor: Int32 = -1

    static func save(_ saved: termios, descriptor: Int32) {
        settings = saved
        Self.descriptor = descriptor
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number) { number in
                if TerminalRestore.descriptor >= 0 { tcsetattr(TerminalRestore.descriptor, TCSANOW, &TerminalRestore.settings) }
                _exit(128 + number)
            }
        }
    }

    static func clear() {
        for number in [SIGINT, SIGTERM, SIGHUP] { signal(number, SIG_DFL) }
        descriptor = -1
    }
}
