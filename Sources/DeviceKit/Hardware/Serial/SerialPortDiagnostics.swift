import Foundation

/// `devicesim diag serial`: what a technician needs to see of a serial port, in plain words.
///
/// Opens the port raw, prints its settings and modem lines (or why it has none), then a live hex dump of
/// every byte received with the box messages decoded, and modem line changes as they happen; on the end
/// (cancellation or `duration`), a summary with advice (`SerialDiagnosticsSummary`).
public struct SerialPortDiagnostics: Sendable {
    public let path: String
    public let speed: Int
    /// How long to listen; `nil` until cancelled.
    public let duration: Duration?
    private let lineControl: any SerialLineControl

    public init(
        path: String, speed: Int = 9600, duration: Duration? = nil,
        lineControl: any SerialLineControl = LinuxSerialLineControl()
    ) {
        self.path = path
        self.speed = speed
        self.duration = duration
        self.lineControl = lineControl
    }

    /// Runs until `duration` passes or the task is cancelled; every line of the report goes to `output`.
    /// Throws `SerialPortError` when the port cannot be opened.
    public func run(output: @escaping @Sendable (String) -> Void) async throws -> SerialDiagnosticsSummary {
        let diagnostics = self
        return try await onDedicatedThread(name: "diag-serial") { flag in
            try diagnostics.listen(flag: flag, output: output)
        }
    }

    private func listen(flag: CancellationFlag, output: (String) -> Void) throws -> SerialDiagnosticsSummary {
        let port = try SerialPort.open(path, speed: speed)
        defer { port.close() }
        output("port      \(path)\(port.isPseudoTerminal ? " (a pseudo-terminal)" : "")")
        output("settings  \(port.settings) (raw; carrier \(port.settings.ignoresCarrier ? "ignored" : "watched"))")
        if port.settings.speed != speed {
            output("warning   asked for \(speed) baud, the driver reports \(port.settings.speed.map(String.init) ?? "an unknown speed")")
        }
        // As the device does: DTR and RTS up, so a contact wired from them shows on CTS/DSR/DCD/RI below.
        try? lineControl.assertModemLines(port.descriptor, [.dtr, .rts])
        var lines = readLines(port)
        output(lines.now)
        output(lines.counters)

        let clock = ContinuousClock()
        let start = clock.now
        output("listening \(duration.map { "for \($0.plainWords)" } ?? "until Ctrl-C") at \(speed) baud; the box sends P, R, H (every 10 s), B<n>, T")
        output("time         offset    hex                                               ascii")
        var summary = SerialDiagnosticsSummary()
        var parser = SerialBoxParser()
        var offset = 0
        while !flag.isCancelled {
            let elapsed = clock.now - start
            if let duration, elapsed >= duration { break }
            var wait = Duration.milliseconds(100)
            if let duration { wait = min(wait, duration - elapsed) }
            var bytes: [UInt8] = []
            do {
                if try port.waitReadable(timeout: wait) { bytes = try port.read() }
            } catch {
                guard error.kind == .gone else { throw error }
                output("the port went away: \(error)")
                summary.portLost = true
                break
            }
            let now = clock.now - start
            if !bytes.isEmpty {
                for row in Self.hexDump(bytes, offset: offset) {
                    output("\(Self.stamp(now))  \(row)")
                }
                offset += bytes.count
                let before = parser.counters
                let messages = parser.parse(bytes)
                for message in messages {
                    output("                       = \(Self.explain(message))")
                }
                let after = parser.counters
                if after.unknownLines > before.unknownLines {
                    output("                       ! \(after.unknownLines - before.unknownLines) unknown line(s) ignored")
                }
                if after.overlongLines > before.overlongLines {
                    output("                       ! \(after.overlongLines - before.overlongLines) line(s) over \(SerialBoxParser.maximumLineLength) bytes discarded")
                }
                if after.badBattery > before.badBattery {
                    output("                       ! \(after.badBattery - before.badBattery) battery line(s) with no percentage 0-100 ignored")
                }
                summary.record(bytes: bytes.count, messages: messages, at: now)
            }
            if let change = lines.update(readLines(port)) {
                output("\(Self.stamp(now))  modem lines: \(change)")
            }
        }
        summary.listened = clock.now - start
        summary.counters = parser.counters
        return summary
    }

    // MARK: Modem lines

    /// The modem lines as last read, for printing and for spotting changes.
    private struct LineReport {
        var state: ModemLines?
        var now: String
        var counters: String

        /// A description of what changed since `self`, if anything; adopts `next`.
        mutating func update(_ next: LineReport) -> String? {
            defer { self = next }
            guard let old = state, let new = next.state, old != new else { return nil }
            return SerialPortDiagnostics.names.compactMap { line, name in
                old.contains(line) == new.contains(line) ? nil : "\(name) \(new.contains(line) ? "on" : "off")"
            }.joined(separator: ", ")
        }
    }

    static let names: [(ModemLines, String)] = [(.cts, "CTS"), (.dsr, "DSR"), (.dcd, "DCD"), (.ri, "RI"), (.rts, "RTS"), (.dtr, "DTR")]

    private func readLines(_ port: SerialPort) -> LineReport {
        let absent = port.isPseudoTerminal
            ? "not available on this port: it is a pseudo-terminal"
            : "not available on this port: its driver has no modem-line calls"
        let state: ModemLines
        do {
            state = try lineControl.modemLines(port.descriptor)
        } catch {
            if case .noModemLines = error {
                return LineReport(state: nil, now: "lines     \(absent)", counters: "changes   \(absent)")
            }
            return LineReport(state: nil, now: "lines     cannot be read: \(error)", counters: "changes   cannot be read")
        }
        let now = Self.names.map { line, name in "\(name) \(state.contains(line) ? "on" : "off")" }.joined(separator: "  ")
        let counters: String
        do {
            let c = try lineControl.interruptCounters(port.descriptor)
            counters = "changes   CTS \(c.cts)  DSR \(c.dsr)  DCD \(c.dcd)  RI \(c.rng) (since the driver started counting)"
        } catch {
            counters = "changes   not counted by this port's driver (TIOCGICOUNT: \(error))"
        }
        return LineReport(state: state, now: "lines     \(now)", counters: counters)
    }

    // MARK: Formatting

    /// Rows of 16 bytes: offset, hex, printable ASCII (others as `.`).
    static func hexDump(_ bytes: [UInt8], offset: Int) -> [String] {
        stride(from: 0, to: bytes.count, by: 16).map { start in
            let row = bytes[start..<min(start + 16, bytes.count)]
            let hex = row.map { String(format: "%02x", $0) }.joined(separator: " ")
            let ascii = String(row.map { (0x20...0x7E).contains($0) ? Character(UnicodeScalar($0)) : "." })
            let padded = hex.padding(toLength: 47, withPad: " ", startingAt: 0)
            return String(format: "%08x  ", offset + start) + padded + "   " + ascii
        }
    }

    static func stamp(_ elapsed: Duration) -> String {
        String(format: "+%8.3f s", elapsed.seconds)
    }

    static func explain(_ message: SerialBoxMessage) -> String {
        switch message {
        case .pressed: "P: button pressed"
        case .released: "R: button released"
        case .heartbeat: "H: heartbeat"
        case .battery(let percent): "B: box battery \(percent) %"
        case .tamper: "T: tamper, the box's case was opened"
        }
    }
}

/// What `SerialPortDiagnostics` saw, and what a technician should do about it.
public struct SerialDiagnosticsSummary: Hashable, Sendable {
    public var bytes = 0
    public var pressed = 0
    public var released = 0
    public var heartbeats = 0
    public var tamper = 0
    public var lastBattery: UInt8?
    /// The longest time without a heartbeat, counting from the start and to the end.
    public var longestHeartbeatGap: Duration = .zero
    public var listened: Duration = .zero
    public var counters = SerialBoxParser.Counters()
    public var portLost = false
    private var lastHeartbeat: Duration = .zero

    public init() {}

    mutating func record(bytes count: Int, messages: [SerialBoxMessage], at time: Duration) {
        bytes += count
        for message in messages {
            switch message {
            case .pressed: pressed += 1
            case .released: released += 1
            case .heartbeat:
                heartbeats += 1
                longestHeartbeatGap = max(longestHeartbeatGap, time - lastHeartbeat)
                lastHeartbeat = time
            case .battery(let percent): lastBattery = percent
            case .tamper: tamper += 1
            }
        }
    }

    public var messages: Int { pressed + released + heartbeats + tamper + (lastBattery == nil ? 0 : 1) }

    /// The summary line and the advice, one sentence each.
    public var report: [String] {
        let gap = max(longestHeartbeatGap, listened - lastHeartbeat)
        let lines = [
            "summary   \(String(format: "%.1f", listened.seconds)) s, \(bytes) bytes: pressed \(pressed), released \(released), "
                + "heartbeats \(heartbeats), tamper \(tamper), battery \(lastBattery.map { "\($0) %" } ?? "not reported"); "
                + "lines ignored: unknown \(counters.unknownLines), overlong \(counters.overlongLines), bad battery \(counters.badBattery)",
        ]
        var advice: [String] = []
        if portLost {
            advice.append("the port went away while listening: check the USB cable and the adapter, then run this again")
        }
        if bytes == 0 {
            advice.append("no bytes received in \(Self.seconds(listened)): is the box powered and its cable plugged in? is the speed right (try 9600)?")
        } else if pressed + released + heartbeats + tamper == 0 && lastBattery == nil {
            advice.append("bytes arrive but none is a valid line: the speed is probably wrong (the box uses 9600 8N1, try --speed 9600), or this is not a button box")
        } else if gap >= .seconds(10) {
            advice.append("\(heartbeats == 0 ? "no heartbeat" : "a gap of \(Self.seconds(gap)) without a heartbeat") in \(Self.seconds(listened)): the box must send H at least every 10 s; check its power and cable")
        }
        if counters.overlongLines > 0 {
            advice.append("\(counters.overlongLines) line(s) were longer than 32 bytes: noise on the cable, or a wrong speed")
        }
        if counters.unknownLines > 0 && messages > 0 {
            advice.append("\(counters.unknownLines) line(s) were not understood: noise on the cable, or box firmware that speaks another protocol")
        }
        if tamper > 0 {
            advice.append("the box reported tamper: its case was opened; check it is closed and intact")
        }
        if let battery = lastBattery, battery <= 20 {
            advice.append("the box's battery is at \(battery) %: replace it")
        }
        if advice.isEmpty {
            advice.append("the box looks healthy: every line was understood\(heartbeats > 0 ? " and heartbeats arrive in time" : "")")
        }
        return lines + advice.map { "advice    " + $0 }
    }

    private static func seconds(_ duration: Duration) -> String {
        String(format: "%.0f s", duration.seconds)
    }
}
