import ArgumentParser
import DeviceKit
import Foundation
import NIOCore

struct DiagLinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "link",
        abstract: "Reach the centre, authenticate as this device, time round trips and compare clocks.",
        discussion: """
            Uses the device's own key and frame counter, so the device must not be running at the same time \
            (systemctl stop devicekit; start it again afterwards).

            \(ExitStatus.help(
                [.verdict, .noInput, .noPermission, .configuration],
                [.verdict: "the centre cannot be reached (its name does not resolve, nothing answers) or does not accept the device, or the state directory is unusable or held",
                 .noInput: "device.toml is missing", .configuration: "device.toml is invalid"]))
            """)

    @OptionGroup var config: DeviceConfigOption

    @Option(parsing: .unconditional, help: "How many heartbeat round trips to time.")
    var count = 5

    func validate() throws {
        guard (1...1000).contains(count) else { throw ValidationError("--count must be 1 to 1000 round trips, e.g. --count 5.") }
    }

    @Flag(help: "Print the measurements as JSON.")
    var json = false

    func run() async throws {
        let device = try config.load()
        let lock: StateDirectoryLock
        let address: SocketAddress
        do {
            try StateDirectory.create(device.stateDirectory)
            lock = try StateDirectoryLock(stateDirectory: device.stateDirectory)
            // A centre whose name does not resolve cannot be reached: a finding, as one that does not answer.
            address = try device.primaryCentre.resolved()
        } catch {
            say("FAIL  link      \(error)")
            throw ExitCode(ExitStatus.verdict.rawValue)
        }
        defer { withExtendedLifetime(lock) {} }
        let boot = (try? SQLiteOutbox(path: device.outboxPath).currentBootCount()) ?? 0
        var probe = LinkProbe(
            key: try device.deviceKey(), address: address, label: device.primaryCentre.description, transport: device.transport,
            counterStore: device.counterFile, bootCount: boot)
        if let dc09 = device.dc09 { probe.dc09 = (try dc09.frameSession(), dc09.supervisionSeconds) }
        if !json { say("Contacting the centre at \(device.primaryCentre) (\(address.ipAddress ?? "?")) over \(device.transport.rawValue)…") }
        do {
            let report = try await probe.run(heartbeats: max(1, count))
            if json {
                say(String(decoding: try JSONEncoder.sorted.encode(report), as: UTF8.self))
            } else {
                SelfTest.describe(report).map(\.line).forEach(say)
                let rtts = report.roundTripMilliseconds.map { String(format: "%.2f", $0) }.joined(separator: ", ")
                say(report.dc09Account == nil
                    ? "      round trips (ms): \(rtts); the centre asks for a heartbeat every \(report.heartbeatIntervalSeconds) s"
                    : "      round trips (ms): \(rtts); the device sends a NULL every \(report.heartbeatIntervalSeconds) s (supervision_s)")
            }
        } catch {
            say("FAIL  link      \(error)")
            throw ExitCode(ExitStatus.verdict.rawValue)
        }
    }
}

struct DiagSelftestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Check everything before leaving: button, LEDs (they blink), power, storage, link to the centre.",
        discussion: """
            Prints one PASS, WARN or FAIL line per check, each saying what to do. WARN means it works but \
            needs a look. With the device running, the LED and link checks are skipped so they do not disturb it.

            \(ExitStatus.help(
                [.verdict, .noInput, .noPermission, .configuration],
                [.verdict: "a check FAILed", .noInput: "device.toml is missing", .configuration: "device.toml is invalid"]))
            """)

    @OptionGroup var config: DeviceConfigOption

    @Flag(help: "Print the results as JSON.")
    var json = false

    func run() async throws {
        let device = try config.load()
        let results = await SelfTest(config: device).run()
        if json {
            say(String(decoding: try JSONEncoder.sorted.encode(results), as: UTF8.self))
        } else {
            results.map(\.line).forEach(say)
            let worst = results.map(\.status).max() ?? .pass
            say(worst == .fail ? "Result: FAIL — fix the lines marked FAIL, then run the selftest again."
                : worst == .warn ? "Result: PASS with warnings — read the WARN lines." : "Result: PASS — the device is ready.")
        }
        if results.contains(where: { $0.status == .fail }) { throw ExitCode(ExitStatus.verdict.rawValue) }
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }
}
