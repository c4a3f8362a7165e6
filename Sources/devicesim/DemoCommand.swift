import ArgumentParser
import CenterConsole
import DeviceKit
import Foundation
import Logging

/// `devicesim demo`: the product working end to end on loopback, with no configuration.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a centre and three simulated homes on loopback; press one red button, call the home, tell the story.",
        discussion: ExitStatus.help(
            [.verdict, .software],
            [.verdict: "the story did not complete: the alarm was not delivered once, the case not closed or no voice reached the home"]))

    @Option(parsing: .unconditional, help: "How many simulated homes.")
    var homes = 3

    @Option(parsing: .unconditional, help: "Instead of the story, measure press-to-ack latency over this many alarms (a benchmark).")
    var bench: Int?

    @Option(parsing: .unconditional, help: "With --bench: how many devices raise the alarms, concurrently, each one after another.")
    var benchDevices = 20

    @Option(parsing: .unconditional, help: "The port of the operators' web console (0: a free one; the demo prints its address and a login).")
    var webPort = 0

    @Flag(help: "Without the operators' web console.")
    var noWeb = false

    @Flag(help: "After the story, keep the centre, the homes and the web console running until Ctrl-C, to try the console.")
    var stay = false

    func validate() throws {
        guard (1...50).contains(homes) else { throw ValidationError("--homes must be 1 to 50.") }
        if let bench, bench < 1 { throw ValidationError("--bench must be at least 1 alarm, e.g. --bench 1000.") }
        guard benchDevices >= 1 else { throw ValidationError("--bench-devices must be at least 1, e.g. --bench-devices 20.") }
        guard (0...65535).contains(webPort) else { throw ValidationError("--web-port must be from 0 to 65535, e.g. --web-port 8080.") }
        if stay && noWeb { throw ValidationError("--stay keeps the demo running for the web console: use it without --no-web.") }
    }

    func run() async throws {
        if let bench {
            let started = ContinuousClock.now
            let result = try await AlarmLatencyBenchmark(alarms: bench, devices: benchDevices).run()
            func ms(_ d: Duration) -> String { String(format: "%.2f ms", Double(d.nanoseconds) / 1e6) }
            print("press → ack over \(result.latencies.count) alarms from \(benchDevices) devices (\(ContinuousClock.now - started)):")
            for p in [50.0, 90, 99, 99.9, 100] { print("  p\(p == 100 ? "max" : String(format: "%g", p))  \(ms(result.percentile(p)))") }
            return
        }
        var story = DemoStory(homes: homes, pressedHome: min(2, homes))
        if !noWeb {
            // A supervisor account of this demo's own, with a password made for this run.
            let password = ConsoleServer.makePassword()
            let hash = try OperatorPassword.hash(password)
            story.prepareJournal = { journal in
                try journal.addOperator(
                    OperatorAccount(name: "demo", passwordHash: hash, role: .supervisor, createdAt: UInt64(Date().timeIntervalSince1970 * 1000)))
            }
            story.consoleNote = "log in as demo, password \(password)" + (stay ? "" : " (add --stay to keep it running after the story)")
            var logger = Logger(label: "demo.console")
            logger.logLevel = .critical
            story.attachments = [ConsoleServer(configuration: ConsoleConfiguration(port: webPort), logger: logger)]
        }
        if stay {
            story.afterStory = { summary in
                Self.printSummary(summary)
                print("\nThe centre, the homes and the operators' web console keep running: press Ctrl-C to stop.")
                await Self.waitForInterrupt()
            }
        }
        let summary = try await story.run { print($0) }
        if !stay { Self.printSummary(summary) }
        if !summary.succeeded { throw ExitCode(ExitStatus.verdict.rawValue) }
    }

    private static func printSummary(_ summary: DemoStory.Summary) {
        func ms(_ d: Duration?) -> String { d.map { String(format: "%.1f ms", Double($0.nanoseconds) / 1e6) } ?? "—" }
        print("""

            Summary
              press → stored on the device      \(ms(summary.pressToStored))  (after the 100 ms hold time)
              press → delivered (centre ack)    \(ms(summary.pressToDelivered))
              press → operator engaged          \(ms(summary.pressToEngaged))
              press → case closed               \(ms(summary.pressToClosed))
              alarms recorded by the centre     \(summary.alarmsRecorded) (dispatched once)
              frames refused                    \(summary.refusedFrames)
              operator engaged → call connected \(ms(summary.engagedToCallStarted))
            """)
        for (who, media) in [("centre", summary.centreMedia), ("home", summary.homeMedia)] {
            guard let media else { continue }
            let lost = "\(media.audio.cumulativeLost) of \(media.audio.expected) (\(String(format: "%.2f", media.audio.lossRatio * 100)) %)"
            print("""
                  \("voice received at the \(who)".padding(toLength: 34, withPad: " ", startingAt: 0))\(media.audio.received) packets, lost \(lost), jitter \(String(format: "%.2f", media.audio.jitterMilliseconds)) ms (RFC 3550)
                """)
        }
        if let media = summary.homeMedia ?? summary.centreMedia {
            print("  one voice packet on the wire      \(media.audioDatagramBytes) bytes of SRTP (12 RTP header + 160 µ-law + 10 tag) + UDP/IP")
        }
    }

    /// Returns on SIGINT or SIGTERM.
    private static func waitForInterrupt() async {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.finish() }
            source.resume()
            return source
        }
        for await _ in stream {}
        for source in sources { source.cancel() }
    }
}
