import Foundation
import Testing

@testable import DeviceKit

/// `diag serial` over a real pseudo-terminal, and its advice for what it saw.
@Suite struct SerialPortDiagnosticsTests {
    final class Output: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        func append(_ line: String) { lock.withLock { stored.append(line) } }
        var lines: [String] { lock.withLock { stored } }
    }

    @Test func aPseudoTerminalShowsSettingsNoModemLinesAndAHexDumpWithDecodedMessages() async throws {
        let pty = try PseudoTerminal()
        defer { withExtendedLifetime(pty) {} }
        let output = Output()
        let diagnostics = SerialPortDiagnostics(path: pty.path, duration: .seconds(30))
        let task = Task { try await diagnostics.run(output: output.append) }
        // Send once the dump has started, then stop by cancelling, as Ctrl-C does.
        await poll { output.lines.contains { $0.hasPrefix("time ") } }
        try pty.send("R\nP\r\nB15\nhello\n")
        await poll { output.lines.filter { $0.contains("= ") }.count >= 3 }
        task.cancel()
        let summary = try await task.value
        let lines = output.lines
        #expect(lines[0] == "port      \(pty.path) (a pseudo-terminal)")
        #expect(lines[1] == "settings  9600 8N1, no flow control (raw; carrier ignored)")
        #expect(lines[2] == "lines     not available on this port: it is a pseudo-terminal")
        #expect(lines[3] == "changes   not available on this port: it is a pseudo-terminal")
        let dump = lines.filter { $0.hasPrefix("+") }.map { String($0.dropFirst(13)) }
        #expect(dump.first == "00000000  52 0a 50 0d 0a 42 31 35 0a 68 65 6c 6c 6f 0a      R.P..B15.hello.")
        #expect(lines.contains("                       = R: button released"))
        #expect(lines.contains("                       = P: button pressed"))
        #expect(lines.contains("                       = B: box battery 15 %"))
        #expect(lines.contains("                       ! 1 unknown line(s) ignored"))
        #expect(summary.bytes == 15)
        #expect(summary.pressed == 1 && summary.released == 1 && summary.lastBattery == 15)
        #expect(summary.counters == .init(unknownLines: 1))
        #expect(summary.report.contains("advice    the box's battery is at 15 %: replace it"))
    }

    @Test func aPortThatCannotBeOpenedThrowsItsReason() async {
        let error = await #expect(throws: SerialPortError.self) {
            try await SerialPortDiagnostics(path: "/dev/null").run { _ in }
        }
        #expect(error?.kind == .notATerminal)
    }

    @Test func hexRowsHoldSixteenBytesWithTheirOffset() {
        let rows = SerialPortDiagnostics.hexDump(Array(0..<20).map(UInt8.init) + Array("AB".utf8), offset: 0x30)
        #expect(rows == [
            "00000030  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f   ................",
            "00000040  10 11 12 13 41 42                                 ....AB",
        ])
    }

    @Test func silenceAdvisesPowerAndSpeed() {
        var summary = SerialDiagnosticsSummary()
        summary.listened = .seconds(10)
        #expect(summary.report == [
            "summary   10.0 s, 0 bytes: pressed 0, released 0, heartbeats 0, tamper 0, battery not reported; lines ignored: unknown 0, overlong 0, bad battery 0",
            "advice    no bytes received in 10 s: is the box powered and its cable plugged in? is the speed right (try 9600)?",
        ])
    }

    @Test func bytesWithoutAnyValidLineAdviseTheSpeed() {
        var summary = SerialDiagnosticsSummary()
        summary.record(bytes: 40, messages: [], at: .seconds(1))
        summary.counters = .init(unknownLines: 3)
        summary.listened = .seconds(5)
        #expect(summary.report.last == "advice    bytes arrive but none is a valid line: the speed is probably wrong (the box uses 9600 8N1, try --speed 9600), or this is not a button box")
    }

    @Test func missingHeartbeatsAndTamperAreReported() {
        var summary = SerialDiagnosticsSummary()
        summary.record(bytes: 2, messages: [.heartbeat], at: .seconds(1))
        summary.record(bytes: 2, messages: [.tamper], at: .seconds(2))
        summary.listened = .seconds(15)
        #expect(Array(summary.report.dropFirst()) == [
            "advice    a gap of 14 s without a heartbeat in 15 s: the box must send H at least every 10 s; check its power and cable",
            "advice    the box reported tamper: its case was opened; check it is closed and intact",
        ])
    }

    @Test func aHealthyBoxSaysSo() {
        var summary = SerialDiagnosticsSummary()
        for second in [0, 9, 18] {
            summary.record(bytes: 2, messages: [.heartbeat], at: .seconds(second))
        }
        summary.record(bytes: 4, messages: [.pressed, .released], at: .seconds(20))
        summary.listened = .seconds(25)
        #expect(summary.report.last == "advice    the box looks healthy: every line was understood and heartbeats arrive in time")
    }
}
