import Foundation
import Logging

/// The call button on a serial port: a button box speaking hardware/serial-box-protocol.md, or a switch
/// wired across a modem-control line (contact mode).
///
/// The loop runs on a thread of its own (`onDedicatedThread`) and waits in slices of at most
/// `Timing.slice`, so cancelling the task ends it within one slice.
///
/// **Box mode** (hardware/serial-box-protocol.md) raises DTR and RTS where the port has them, reads and
/// parses lines (`SerialBoxParser`) and leaves presence and level to `SerialBoxMonitor`: `.present` at the
/// first valid message, `.level` on changes, `.missing` after `Timing.heartbeatTimeout` without an `H`.
///
/// **Contact mode** asserts DTR and RTS (`TIOCMBIS`), so a closed contact from DTR or RTS to the configured
/// input line (CTS, DSR, DCD or RI) asserts that line: asserted = pressed. It polls the line every
/// `Timing.pollInterval` (10 ms) with `TIOCMGET`, bracketed by `TIOCGICOUNT` reads so that a press shorter
/// than the interval still shows as two counted changes (`SerialContactMonitor`). Where the driver has no
/// `TIOCGICOUNT` (some USB adapters) it polls `TIOCMGET` alone.
///
/// Why polling and not `TIOCMIWAIT`: `TIOCMIWAIT` blocks in the kernel until a line changes, and only a
/// signal ends it early. A thread left blocked there on cancellation keeps the port open, DTR high and the
/// next open of the port failing; a process-wide signal handler is no business of a library. Counters make
/// polling lose nothing: every edge the UART saw is counted, at a cost of about 300 cheap ioctls a second
/// and at most one interval (10 ms) of latency, well inside any debounce window.
///
/// In both modes a port that is absent, gone (`ENOENT`, `EIO`, `ENODEV`) or busy is reported `.missing` once
/// and opened again every `Timing.reopenInterval` until it is back. A port that cannot work at all (no
/// permission, not a terminal, a pseudo-terminal in contact mode) throws a `ButtonSourceError`.
public struct SerialButtonSource: ButtonSource {
    /// The waits of the loop; tests shorten them.
    public struct Timing: Hashable, Sendable {
        /// Box mode: this long without a heartbeat and the box is missing (3 missed heartbeats).
        public var heartbeatTimeout: Duration
        /// How often a missing port is opened again.
        public var reopenInterval: Duration
        /// Contact mode: how often the line is read.
        public var pollInterval: Duration
        /// The longest wait between two checks for cancellation.
        public var slice: Duration

        public init(
            heartbeatTimeout: Duration = .seconds(30), reopenInterval: Duration = .seconds(1),
            pollInterval: Duration = .milliseconds(10), slice: Duration = .milliseconds(100)
        ) {
            self.heartbeatTimeout = heartbeatTimeout
            self.reopenInterval = reopenInterval
            self.pollInterval = pollInterval
            self.slice = slice
        }
    }

    public let settings: SerialButtonSettings
    public let timing: Timing
    private let lineControl: any SerialLineControl
    private let logger: Logger

    public init(
        settings: SerialButtonSettings, timing: Timing = Timing(),
        lineControl: any SerialLineControl = LinuxSerialLineControl(), logger: Logger
    ) {
        self.settings = settings
        self.timing = timing
        self.lineControl = lineControl
        self.logger = logger
    }

    public var description: String {
        switch settings.mode {
        case .box(let speed): "serial \(settings.device) box \(speed) 8N1"
        case .contact(let line): "serial \(settings.device) contact \(line.rawValue.uppercased())"
        }
    }

    public func run(_ emit: @escaping @Sendable (ButtonEvent) -> Void) async throws {
        let source = self
        try await onDedicatedThread(name: "serial-button") { flag in
            switch source.settings.mode {
            case .box(let speed): try source.runBox(speed: speed, flag: flag, emit: emit)
            case .contact(let line): try source.runContact(line: line, flag: flag, emit: emit)
            }
        }
    }

    // MARK: Box mode

    private func runBox(speed: Int, flag: CancellationFlag, emit: (ButtonEvent) -> Void) throws {
        var monitor = SerialBoxMonitor(heartbeatTimeout: timing.heartbeatTimeout)
        let clock = ContinuousClock()
        var openedBefore = false
        while true {
            guard let port = try open(speed: speed, flag: flag, openedBefore: openedBefore, onUnavailable: {
                monitor.portUnavailable(reason: $0).forEach(emit)
            }) else { continue }
            defer { port.close() }
            openedBefore = true
            logger.debug("serial box port open", metadata: ["serial.settings": "\(port.settings)"])
            // The protocol's §1: DTR and RTS stay asserted while the port is open, so a box may see that the
            // device listens. Nothing depends on it: a port without modem lines (a pty) just has none to raise,
            // and a port that is gone says so at the next read.
            try? lineControl.assertModemLines(port.descriptor, [.dtr, .rts])
            monitor.portOpened(now: clock.now).forEach(emit)
            var parser = SerialBoxParser()
            do {
                while true {
                    try checkCancellation(flag)
                    var wait = timing.slice
                    if let deadline = monitor.deadline { wait = min(wait, max(.zero, deadline - clock.now)) }
                    if try port.waitReadable(timeout: wait) {
                        let messages = parser.parse(try port.read())
                        monitor.received(messages, now: clock.now).forEach(emit)
                    }
                    monitor.tick(now: clock.now).forEach(emit)
                }
            } catch let error as SerialPortError where error.isTransient {
                logger.debug("serial box port lost", metadata: ["error": "\(error)"])
                monitor.portUnavailable(reason: lostReason(error)).forEach(emit)
            } catch let error as SerialPortError {
                throw ButtonSourceError(error.description)
            }
            port.close()
            try pause(timing.reopenInterval, flag: flag)
        }
    }

    // MARK: Contact mode

    private func runContact(line: ModemLine, flag: CancellationFlag, emit: (ButtonEvent) -> Void) throws {
        var monitor = SerialContactMonitor()
        var reportedMissing = false
        var openedBefore = false
        while true {
            // The speed is irrelevant to the modem lines; 9600 is a valid one for every port.
            guard let port = try open(speed: 9600, flag: flag, openedBefore: openedBefore, onUnavailable: { reason in
                if !reportedMissing { emit(.missing(reason: reason)) }
                reportedMissing = true
            }) else { continue }
            defer { port.close() }
            openedBefore = true
            do {
                try assertOutputs(port, for: line)
                var countsChanges = true
                while true {
                    try checkCancellation(flag)
                    let (down, count) = try snapshot(port.descriptor, line: line, countsChanges: &countsChanges)
                    monitor.observe(down: down, count: count).forEach(emit)
                    reportedMissing = false
                    try pause(timing.pollInterval, flag: flag)
                }
            } catch DeviceControlError.deviceGone(let call, let errno) {
                let error = SerialPortError(.gone, path: settings.device, call: call, errno: errno)
                if !reportedMissing { emit(.missing(reason: lostReason(error))) }
                reportedMissing = true
            } catch let error as DeviceControlError {
                throw ButtonSourceError("\(settings.device): \(error)")
            }
            monitor.reset()
            port.close()
            try pause(timing.reopenInterval, flag: flag)
        }
    }

    /// Raises DTR and RTS, the supply of the contact; says plainly when the port has no modem lines.
    private func assertOutputs(_ port: SerialPort, for line: ModemLine) throws {
        do {
            try lineControl.assertModemLines(port.descriptor, [.dtr, .rts])
        } catch DeviceControlError.noModemLines(_, let errno) {
            if port.isPseudoTerminal {
                throw ButtonSourceError(
                    "\(settings.device) is a pseudo-terminal, which has no modem lines; wire the contact to a real "
                        + "serial port (/dev/ttyS*, /dev/ttyUSB*, /dev/ttyACM*) between DTR or RTS and "
                        + "\(Self.lineName(line)), or use mode = \"box\" for a button box"
                )
            }
            throw ButtonSourceError(
                "\(settings.device) cannot set DTR and RTS (TIOCMBIS: \(errno)): its driver has no modem-line "
                    + "control, so a contact cannot be powered from it; use an adapter with modem lines "
                    + "(FTDI, PL2303, CP210x) or a UART with CTS/DSR/DCD/RI"
            )
        }
    }

    /// The line's level and, while the driver counts, its change counter, read so that both agree: the
    /// counter is read before and after the level, again if it moved in between.
    private func snapshot(
        _ fd: CInt, line: ModemLine, countsChanges: inout Bool
    ) throws -> (down: Bool, count: Int?) {
        if countsChanges {
            do {
                var before = try counter(fd, line)
                var down = false
                for _ in 0..<3 {
                    down = try lineControl.modemLines(fd).contains(line.lines)
                    let after = try counter(fd, line)
                    if after == before { break }
                    before = after
                }
                // A line still bouncing after three tries: its next snapshot counts what this one missed.
                return (down, before)
            } catch DeviceControlError.noModemLines {
                logger.debug("TIOCGICOUNT unsupported: polling TIOCMGET alone", metadata: ["serial.device": "\(settings.device)"])
                countsChanges = false
            }
        }
        do {
            return (try lineControl.modemLines(fd).contains(line.lines), nil)
        } catch DeviceControlError.noModemLines(let call, let errno) {
            throw ButtonSourceError(
                "\(settings.device) reports no modem lines (\(call): \(errno)): its driver cannot read "
                    + "\(Self.lineName(line)), so contact mode cannot work on it; use an adapter with modem "
                    + "lines or mode = \"box\""
            )
        }
    }

    private func counter(_ fd: CInt, _ line: ModemLine) throws -> Int {
        let counts = try lineControl.interruptCounters(fd)
        return switch line {
        case .cts: counts.cts
        case .dsr: counts.dsr
        case .dcd: counts.dcd
        case .ri: counts.rng
        }
    }

    private static func lineName(_ line: ModemLine) -> String {
        switch line {
        case .cts: "CTS"
        case .dsr: "DSR"
        case .dcd: "DCD"
        case .ri: "RI"
        }
    }

    // MARK: Shared

    /// Opens the port; `nil` after reporting it unavailable and waiting `reopenInterval`. Throws what
    /// reopening cannot fix.
    ///
    /// No permission is final at the first open (the user is not in group dialout), but not when the port
    /// has been open before: a replugged adapter's node exists for a moment before udev gives it its group.
    private func open(
        speed: Int, flag: CancellationFlag, openedBefore: Bool, onUnavailable: (String) -> Void
    ) throws -> SerialPort? {
        try checkCancellation(flag)
        do {
            return try SerialPort.open(settings.device, speed: speed)
        } catch where error.isTransient || (openedBefore && error.kind == .permissionDenied) {
            logger.debug("serial port unavailable", metadata: ["error": "\(error)"])
            onUnavailable("\(error); trying again every \(timing.reopenInterval.plainWords)")
            try pause(timing.reopenInterval, flag: flag)
            return nil
        } catch {
            throw ButtonSourceError(error.description)
        }
    }

    private func lostReason(_ error: SerialPortError) -> String {
        "\(error); trying again every \(timing.reopenInterval.plainWords)"
    }

    private func checkCancellation(_ flag: CancellationFlag) throws {
        if flag.isCancelled { throw CancellationError() }
    }

    /// Sleeps `duration` in slices, ending early with `CancellationError` when the task is cancelled.
    private func pause(_ duration: Duration, flag: CancellationFlag) throws {
        let clock = ContinuousClock()
        let end = clock.now + duration
        while true {
            try checkCancellation(flag)
            let left = end - clock.now
            if left <= .zero { return }
            Thread.sleep(forTimeInterval: min(left, timing.slice).seconds)
        }
    }
}
