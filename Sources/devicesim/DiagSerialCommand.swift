import ArgumentParser
import DeviceKit
import Dispatch
import Foundation

/// `devicesim diag serial PORT`: a serial port's settings, modem lines and incoming bytes, for a technician.
struct DiagSerialCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serial",
        abstract: "Show a serial port's settings and modem lines, and dump the bytes it receives.",
        discussion: """
            Opens PORT raw (8N1, no flow control) at --speed and prints its settings, which modem lines are \
            asserted now (CTS, DSR, DCD, RI, RTS, DTR) and their change counters, then every byte received as \
            a hex dump with the button box messages decoded (P pressed, R released, H heartbeat, B<n> battery, \
            T tamper; see hardware/serial-box-protocol.md) and modem line changes as they happen. Ctrl-C or \
            --seconds ends it with a summary and advice. Stop `devicesim run` first: two programs reading one \
            port each get only part of the bytes.

            \(ExitStatus.help(
                [.verdict],
                [.success: "stopped by Ctrl-C or --seconds",
                 .verdict: "the port cannot be opened (missing, not a serial port, no permission) or went away: the PROBLEM line says which"]))
            """)

    @Argument(help: "The serial port: /dev/ttyUSB0, /dev/ttyACM0, /dev/ttyS0 or a /dev/serial/by-id/ name.")
    var port: String

    @Option(parsing: .unconditional, help: "The speed in baud; a button box uses 9600.")
    var speed = 9600

    @Option(parsing: .unconditional, help: "Stop after this many seconds; without it, listen until Ctrl-C.")
    var seconds: Double?

    func validate() throws {
        guard SerialPortSettings.speeds.contains(speed) else {
            let speeds = SerialPortSettings.speeds.map(String.init).joined(separator: ", ")
            throw ValidationError("--speed \(speed) is not a serial speed: use one of \(speeds) (a button box uses 9600).")
        }
        try checkListeningSeconds(seconds)
    }

    func run() async throws {
        let diagnostics = SerialPortDiagnostics(
            path: port, speed: speed, duration: seconds.map { .milliseconds(Int64(($0 * 1000).rounded())) }
        )
        let task = Task { try await diagnostics.run { print($0) } }
        // Ctrl-C ends the listening with the summary instead of killing the process.
        signal(SIGINT, SIG_IGN)
        let interrupt = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        interrupt.setEventHandler { task.cancel() }
        interrupt.resume()
        defer {
            interrupt.cancel()
            signal(SIGINT, SIG_DFL)
        }
        // A port that cannot be opened ends here with its SerialPortError, which says what to do: a finding, as
        // a button that diag watch cannot open.
        do {
            let summary = try await task.value
            summary.report.forEach { print($0) }
        } catch let error as SerialPortError {
            say("PROBLEM: \(error)")
            throw ExitCode(ExitStatus.verdict.rawValue)
        }
    }
}
