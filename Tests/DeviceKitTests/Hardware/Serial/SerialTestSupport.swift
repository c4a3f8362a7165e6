/// Pseudo-terminals, an event log that tests can wait on, and a recording double of the modem-line ioctls.

import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DeviceKit
import Testing

/// A real pseudo-terminal pair: tests write what a button box would send into `controller`; the code under
/// test opens `path` (the `/dev/pts/N` side). The test's own descriptor of that side is set raw and kept open
/// so that bytes written before the code under test opens the port are not translated or lost.
final class PseudoTerminal: @unchecked Sendable {
    private(set) var controller: CInt = -1
    private(set) var terminal: CInt = -1
    let path: String

    init() throws {
        var controller: CInt = -1
        var terminal: CInt = -1
        try #require(openpty(&controller, &terminal, nil, nil, nil) == 0, "openpty failed: \(Errno.current)")
        self.controller = controller
        self.terminal = terminal
        var options = termios()
        _ = tcgetattr(terminal, &options)
        cfmakeraw(&options)
        _ = tcsetattr(terminal, TCSANOW, &options)
        var name = [CChar](repeating: 0, count: 128)
        let result = ttyname_r(terminal, &name, name.count)
        path = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        try #require(result == 0, "ttyname_r failed: \(Errno(rawValue: result))")
    }

    /// Writes `text` as the box would send it.
    func send(_ text: String) throws {
        try DeviceFile.write(controller, Array(text.utf8))
    }

    func send(_ bytes: [UInt8]) throws {
        try DeviceFile.write(controller, bytes)
    }

    /// Sends `text` every 20 ms until `log` holds `count` events, as a box repeats its state before each
    /// heartbeat: the port discards what arrived before it was opened, and the test cannot see the opening.
    func send(_ text: String, until log: EventLog, count: Int) async throws {
        try await send(text, until: log) { $0.count >= count }
    }

    /// Sends `text` every 20 ms until the events in `log` satisfy `condition`, or `patience` passes.
    func send(_ text: String, until log: EventLog, _ condition: @escaping ([ButtonEvent]) -> Bool) async throws {
        let end = ContinuousClock.now + patience
        while !condition(log.events) && ContinuousClock.now < end {
            try send(text)
            await log.wait(timeout: .milliseconds(20), until: condition)
        }
    }

    /// Closes both of the test's ends: the port hangs up for everyone who has it open, as when an adapter
    /// is pulled out.
    func hangUp() {
        if controller >= 0 { close(controller) }
        if terminal >= 0 { close(terminal) }
        controller = -1
        terminal = -1
    }

    deinit { hangUp() }
}

/// A temporary directory with a symlink that tests point at one pseudo-terminal after another, as udev
/// points `/dev/serial/by-id/…` at whatever ttyUSB the adapter got this time.
final class PortLink: @unchecked Sendable {
    let directory: String
    var path: String { directory + "/port" }

    init() throws {
        var template = Array("/tmp/devicekit-serial-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        try #require(made != nil, "mkdtemp failed: \(Errno.current)")
        directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Replaces the link atomically (a new link, then rename over the old one).
    func point(at target: String) throws {
        let next = directory + "/port.next"
        unlink(next)
        try #require(symlink(target, next) == 0, "symlink failed: \(Errno.current)")
        try #require(rename(next, path) == 0, "rename failed: \(Errno.current)")
    }

    deinit {
        unlink(path)
        unlink(directory + "/port.next")
        rmdir(directory)
    }
}

/// Every event a source emitted, with the time it was emitted; tests wait for conditions on it.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(event: ButtonEvent, at: ContinuousClock.Instant)] = []

    func append(_ event: ButtonEvent) {
        let now = ContinuousClock.now
        lock.withLock { entries.append((event, now)) }
    }

    var events: [ButtonEvent] { lock.withLock { entries.map(\.event) } }
    var times: [ContinuousClock.Instant] { lock.withLock { entries.map(\.at) } }

    /// Waits until `condition` holds for the events so far, or `timeout` passes; returns the events either
    /// way, so the caller's `#expect` fails with what did arrive.
    @discardableResult
    func wait(
        timeout: Duration = patience, until condition: ([ButtonEvent]) -> Bool
    ) async -> [ButtonEvent] {
        await poll(within: timeout) { condition(events) }
        return events
    }

    /// Waits until at least `count` events arrived.
    @discardableResult
    func wait(forCount count: Int, timeout: Duration = patience) async -> [ButtonEvent] {
        await wait(timeout: timeout) { $0.count >= count }
    }
}

/// Runs `source` in a task that logs its events, and stops it at the end of `body`.
func withRunningSource<Result>(
    _ source: some ButtonSource, _ body: (EventLog, Task<Void, Error>) async throws -> Result
) async throws -> Result {
    let log = EventLog()
    let task = Task { try await source.run(log.append) }
    let result: Result
    do {
        result = try await body(log, task)
    } catch {
        task.cancel()
        _ = await task.result
        throw error
    }
    task.cancel()
    _ = await task.result
    return result
}

/// A `SerialLineControl` that records every call and answers from lines and counters the test sets.
final class RecordingSerialLines: SerialLineControl, @unchecked Sendable {
    enum Call: Hashable, CustomStringConvertible {
        case modemLines, waitForModemLineChange(ModemLines), interruptCounters, assertModemLines(ModemLines)

        var description: String {
            switch self {
            case .modemLines: "TIOCMGET"
            case .waitForModemLineChange: "TIOCMIWAIT"
            case .interruptCounters: "TIOCGICOUNT"
            case .assertModemLines: "TIOCMBIS"
            }
        }
    }

    private let lock = NSLock()
    private var recorded: [Call] = []
    private var lines: ModemLines = []
    private var counters = SerialInterruptCounters(cts: 0, dsr: 0, rng: 0, dcd: 0)
    private var countersError: DeviceControlError?
    private var linesError: DeviceControlError?

    init(countersError: DeviceControlError? = nil, linesError: DeviceControlError? = nil) {
        self.countersError = countersError
        self.linesError = linesError
    }

    var calls: [Call] { lock.withLock { recorded } }

    /// Asserts or clears `line`, counting the change as the UART would.
    func set(_ line: ModemLine, asserted: Bool) {
        lock.withLock {
            guard lines.contains(line.lines) != asserted else { return }
            if asserted { lines.insert(line.lines) } else { lines.remove(line.lines) }
            count(line, by: 1)
        }
    }

    /// A press and release faster than the polling: the level stays, the counter moves by `changes`.
    func pulse(_ line: ModemLine, changes: Int = 2) {
        lock.withLock { count(line, by: changes) }
    }

    /// From now on `TIOCMGET` fails with `error` (or works again with `nil`).
    func failLines(with error: DeviceControlError?) {
        lock.withLock { linesError = error }
    }

    private func count(_ line: ModemLine, by changes: Int) {
        switch line {
        case .cts: counters.cts += changes
        case .dsr: counters.dsr += changes
        case .dcd: counters.dcd += changes
        case .ri: counters.rng += changes
        }
    }

    func modemLines(_ fd: CInt) throws(DeviceControlError) -> ModemLines {
        let (lines, error) = lock.withLock {
            recorded.append(.modemLines)
            return (self.lines, linesError)
        }
        if let error { throw error }
        return lines
    }

    func waitForModemLineChange(_ fd: CInt, mask: ModemLines) throws(DeviceControlError) {
        lock.withLock { recorded.append(.waitForModemLineChange(mask)) }
        throw .noModemLines(call: "TIOCMIWAIT", errno: .inappropriateIOCTLForDevice)
    }

    func interruptCounters(_ fd: CInt) throws(DeviceControlError) -> SerialInterruptCounters {
        let (counters, error) = lock.withLock {
            recorded.append(.interruptCounters)
            return (self.counters, countersError)
        }
        if let error { throw error }
        return counters
    }

    func assertModemLines(_ fd: CInt, _ lines: ModemLines) throws(DeviceControlError) {
        lock.withLock {
            recorded.append(.assertModemLines(lines))
            self.lines.formUnion(lines)
        }
    }
}

/// Nanoseconds of `durations` at the given quantile (0…1), nearest rank.
func quantile(_ durations: [Duration], _ q: Double) -> Duration {
    let sorted = durations.sorted()
    guard !sorted.isEmpty else { return .zero }
    let rank = min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[rank]
}
