import Foundation
import Logging
import Testing

@testable import DeviceKit

/// `SerialButtonSource` end to end over real pseudo-terminals (box mode, hang-ups and reopening, contact mode
/// refused on a pty), and contact mode against a recording double of the modem-line ioctls.
@Suite struct SerialButtonSourceTests {
    static let logger = Logger(label: "test.serial")
    static let fast = SerialButtonSource.Timing(
        heartbeatTimeout: .seconds(60), reopenInterval: .milliseconds(50), pollInterval: .milliseconds(5),
        slice: .milliseconds(20)
    )

    static func box(_ path: String, timing: SerialButtonSource.Timing = fast) -> SerialButtonSource {
        SerialButtonSource(settings: .init(device: path, mode: .box(speed: 9600)), timing: timing, logger: logger)
    }

    static func contact(
        _ path: String, line: ModemLine = .cts, lines: any SerialLineControl = LinuxSerialLineControl()
    ) -> SerialButtonSource {
        SerialButtonSource(settings: .init(device: path, mode: .contact(line: line)), timing: fast, lineControl: lines, logger: logger)
    }

    // MARK: Box mode over a pseudo-terminal

    @Test func aBoxReportsItsLevelChangesInOrderAndIgnoresGarbage() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        try await withRunningSource(Self.box(pty.path)) { log, _ in
            try await pty.send("R\n", until: log, count: 1)
            #expect(await log.wait(forCount: 1) == [.present(initiallyDown: false)])
            try pty.send("P\r\n")
            try pty.send("R\n")
            #expect(await log.wait(forCount: 3) == [.present(initiallyDown: false), .level(down: true), .level(down: false)])
            try pty.send("garbage\n\u{1}\u{2}\nR\nH\nB77\nT\n" + String(repeating: "P", count: 50) + "\n")
            try pty.send("P")
            try pty.send("\r")
            try pty.send("\n")
            try pty.send("R\n")
            #expect(await log.wait(forCount: 6) == [.present(initiallyDown: false), .level(down: true), .level(down: false),
                                                    .tamper, .level(down: true), .level(down: false)])
        }
    }

    @Test func aSilentBoxIsMissingAndComesBackWithItsNextLine() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        var timing = Self.fast
        timing.heartbeatTimeout = .seconds(1)
        try await withRunningSource(Self.box(pty.path, timing: timing)) { log, _ in
            let silence = ButtonEvent.missing(reason: "no heartbeat from the serial button box for 1 s: check its cable and power")
            // Normally [present, silence]; a test held up for over a second before its first P sees a silence
            // first, so wait for the ending that matters: present with P, then silent.
            try await pty.send("P\n", until: log) { $0.contains(.present(initiallyDown: true)) }
            let settled = await log.wait { $0.suffix(2) == [.present(initiallyDown: true), silence] }
            #expect(Array(settled.suffix(2)) == [.present(initiallyDown: true), silence])
            // Missing, the button counts as released; the next valid message brings the box back.
            try pty.send("H\n")
            #expect(Array(await log.wait(forCount: settled.count + 1).dropFirst(settled.count)) == [.present(initiallyDown: false)])
        }
    }

    @Test func aHungUpPortIsMissingOnceAndPresentAgainWhenTheLinkPointsAtANewOne() async throws {
        let first = try PseudoTerminal()
        defer { withExtendedLifetime(first) {} }
        let link = try PortLink()
        try link.point(at: first.path)
        try await withRunningSource(Self.box(link.path)) { log, _ in
            try await first.send("P\n", until: log, count: 1)
            #expect(await log.wait(forCount: 1) == [.present(initiallyDown: true)])

            // Point the link away first: the freed /dev/pts number may go to a test running alongside, and the
            // reopening source must not take that test's terminal.
            try link.point(at: link.directory + "/absent")
            first.hangUp()
            let lost = await log.wait(forCount: 2)
            try #require(lost.count == 2)
            guard case .missing(let reason) = lost[1] else {
                Issue.record("expected missing, got \(lost[1])")
                return
            }
            #expect(reason.hasPrefix("\(link.path) is gone ("))
            #expect(reason.hasSuffix("the adapter was unplugged or its driver let go of it; trying again every 50 ms"))

            // Reopen attempts fail against the dangling link before it is re-pointed: still one report.
            try await Task.sleep(for: .milliseconds(200))
            let second = try PseudoTerminal()
            try link.point(at: second.path)
            try await second.send("R\n", until: log, count: 3)
            #expect(await log.wait(forCount: 3) == [lost[0], lost[1], .present(initiallyDown: false)])
            try second.send("P\n")
            #expect(await log.wait(forCount: 4).last == .level(down: true))
            #expect(log.events.count == 4)
            // `second` goes away with this closure, before the source stops: leave it nothing to reopen.
            try link.point(at: link.directory + "/absent")
        }
    }

    @Test func aPortAbsentAtStartIsMissingUntilItAppears() async throws {
        let link = try PortLink()
        try await withRunningSource(Self.box(link.path)) { log, _ in
            let events = await log.wait(forCount: 1)
            #expect(events == [.missing(reason: "\(link.path) does not exist: is the serial adapter plugged in and is the name right? (ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/ lists the ports); trying again every 50 ms")])
            let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
            try link.point(at: pty.path)
            try await pty.send("R\n", until: log, count: 2)
            #expect(await log.wait(forCount: 2).last == .present(initiallyDown: false))
            try link.point(at: link.directory + "/absent")
        }
    }

    @Test func aFileThatIsNoPortStopsTheSourceWithTheReason() async throws {
        let log = EventLog()
        let error = await #expect(throws: ButtonSourceError.self) { try await Self.box("/dev/null").run(log.append) }
        #expect(error?.description == "/dev/null is not a serial port (tcgetattr: Inappropriate ioctl for device): name a tty such as /dev/ttyUSB0")
        #expect(log.events.isEmpty)
    }

    @Test func cancellingTheTaskEndsTheLoopPromptly() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let log = EventLog()
        let task = Task { try await Self.box(pty.path).run(log.append) }
        try await pty.send("R\n", until: log, count: 1)
        task.cancel()
        let result = await task.result
        #expect(throws: CancellationError.self) { try result.get() }
    }

    /// Press-edge latency through a pty, write to `ButtonEvent`, over 100 presses (200 edges). It asserts only
    /// that every edge arrives in order; the numbers are printed for the report (timing goals belong in
    /// benchmarks, not in tests).
    @Test func everyEdgeOfAHundredPressesArrivesInOrder() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        try await withRunningSource(Self.box(pty.path)) { log, _ in
            try await pty.send("R\n", until: log, count: 1)
            #expect(log.events == [.present(initiallyDown: false)])
            var latencies: [Duration] = []
            for index in 0..<200 {
                let down = index % 2 == 0
                let sent = ContinuousClock.now
                try pty.send(down ? "P\n" : "R\n")
                let events = await log.wait(forCount: index + 2)
                try #require(events.count == index + 2, "edge \(index) did not arrive")
                #expect(events[index + 1] == .level(down: down))
                latencies.append(log.times[index + 1] - sent)
            }
            func ms(_ q: Double) -> String { String(format: "%.3f ms", Double(quantile(latencies, q).nanoseconds) / 1e6) }
            print("serial box press-edge latency over 200 edges (pty write -> ButtonEvent): p50 \(ms(0.5)), p99 \(ms(0.99)), max \(ms(1))")
        }
    }

    // MARK: Contact mode

    @Test func contactModeOnAPseudoTerminalSaysToWireARealPort() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let log = EventLog()
        let error = await #expect(throws: ButtonSourceError.self) { try await Self.contact(pty.path).run(log.append) }
        #expect(error?.description == "\(pty.path) is a pseudo-terminal, which has no modem lines; wire the contact to a real serial port (/dev/ttyS*, /dev/ttyUSB*, /dev/ttyACM*) between DTR or RTS and CTS, or use mode = \"box\" for a button box")
        #expect(log.events.isEmpty)
    }

    @Test func contactModeRaisesDTRAndRTSThenPollsCountersAroundTheLevel() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let lines = RecordingSerialLines()
        try await withRunningSource(Self.contact(pty.path, lines: lines)) { log, _ in
            #expect(await log.wait(forCount: 1) == [.present(initiallyDown: false)])
            // Wait for a second poll, then compare the opening of the transcript.
            await log.wait { _ in lines.calls.count >= 7 }
            let calls = lines.calls
            try #require(calls.count >= 7)
            #expect(Array(calls.prefix(7)) == [.assertModemLines([.dtr, .rts]),
                                               .interruptCounters, .modemLines, .interruptCounters,
                                               .interruptCounters, .modemLines, .interruptCounters])
            #expect(!calls.contains(.waitForModemLineChange(.cts)))
        }
    }

    @Test(arguments: [ModemLine.cts, .dsr, .dcd])
    func aContactReportsLevelsAndPressesShorterThanThePolling(line: ModemLine) async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let lines = RecordingSerialLines()
        try await withRunningSource(Self.contact(pty.path, line: line, lines: lines)) { log, _ in
            try #require(await log.wait(forCount: 1) == [.present(initiallyDown: false)])
            lines.set(line, asserted: true)
            #expect(await log.wait(forCount: 2).last == .level(down: true))
            lines.set(line, asserted: false)
            #expect(await log.wait(forCount: 3).last == .level(down: false))
            // Another line moving means nothing.
            lines.set(line == .cts ? .dsr : .cts, asserted: true)
            lines.pulse(line, changes: 2)
            #expect(await log.wait(forCount: 5) == [.present(initiallyDown: false), .level(down: true), .level(down: false),
                                                    .level(down: true), .level(down: false)])
        }
    }

    @Test func aRingIndicatorPressCountsOnceAndIsStillAPress() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let lines = RecordingSerialLines()
        try await withRunningSource(Self.contact(pty.path, line: .ri, lines: lines)) { log, _ in
            try #require(await log.wait(forCount: 1) == [.present(initiallyDown: false)])
            lines.pulse(.ri, changes: 1)
            #expect(await log.wait(forCount: 3) == [.present(initiallyDown: false), .level(down: true), .level(down: false)])
        }
    }

    @Test func withoutInterruptCountersTheSourcePollsTheLevelAlone() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let lines = RecordingSerialLines(countersError: .noModemLines(call: "TIOCGICOUNT", errno: .invalidArgument))
        try await withRunningSource(Self.contact(pty.path, lines: lines)) { log, _ in
            #expect(await log.wait(forCount: 1) == [.present(initiallyDown: false)])
            lines.set(.cts, asserted: true)
            #expect(await log.wait(forCount: 2).last == .level(down: true))
            lines.set(.cts, asserted: false)
            #expect(await log.wait(forCount: 3).last == .level(down: false))
            let calls = lines.calls
            #expect(Array(calls.prefix(3)) == [.assertModemLines([.dtr, .rts]), .interruptCounters, .modemLines])
            #expect(calls.dropFirst(2).allSatisfy { $0 == .modemLines }, "TIOCGICOUNT is not asked again")
        }
    }

    @Test func aPortWhoseDriverHasNoModemLinesStopsContactModeWithTheReason() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let lines = RecordingSerialLines(
            countersError: .noModemLines(call: "TIOCGICOUNT", errno: .inappropriateIOCTLForDevice),
            linesError: .noModemLines(call: "TIOCMGET", errno: .inappropriateIOCTLForDevice)
        )
        let error = await #expect(throws: ButtonSourceError.self) { try await Self.contact(pty.path, lines: lines).run { _ in } }
        #expect(error?.description == "\(pty.path) reports no modem lines (TIOCMGET: Inappropriate ioctl for device): its driver cannot read CTS, so contact mode cannot work on it; use an adapter with modem lines or mode = \"box\"")
    }

    @Test func aContactPortThatGoesAwayIsMissingOnceAndPresentWhenBack() async throws {
        let pty = try PseudoTerminal()
        // Alive until the source has stopped: a freed /dev/pts number goes to the next test that opens one.
        defer { withExtendedLifetime(pty) {} }
        let lines = RecordingSerialLines()
        try await withRunningSource(Self.contact(pty.path, lines: lines)) { log, _ in
            try #require(await log.wait(forCount: 1) == [.present(initiallyDown: false)])
            lines.failLines(with: .deviceGone(call: "TIOCMGET", errno: .noSuchDevice))
            let events = await log.wait(forCount: 2)
            #expect(events.last == .missing(reason: "\(pty.path) is gone (No such device): the adapter was unplugged or its driver let go of it; trying again every 50 ms"))
            // Some reopen attempts fail the same way, reported once; then the port works again.
            await log.wait { _ in lines.calls.filter { $0 == .assertModemLines([.dtr, .rts]) }.count >= 3 }
            lines.set(.cts, asserted: true)
            lines.failLines(with: nil)
            #expect(await log.wait(forCount: 3) == [.present(initiallyDown: false), events[1], .present(initiallyDown: true)])
        }
    }
}
