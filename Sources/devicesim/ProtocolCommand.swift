import ArgumentParser
import DeviceKit
import Foundation

/// `devicesim protocol`: decode frames, check the vectors of protocol.md, measure the codec.
struct ProtocolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protocol",
        abstract: "Decode frames, check the test vectors, measure the codec.",
        subcommands: [Bench.self]
    )

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure seal+encode and decode+open of heartbeat and alarm frames on one core.")

        @Option(help: "Frames per measurement.")
        var frames = 1_000_000

        @Flag(help: "Print the results as JSON.")
        var json = false

        func run() async throws {
            let results = try CodecBenchmark(frames: frames).run()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(results), as: UTF8.self))
                return
            }
            print("measurement".padding(toLength: 26, withPad: " ", startingAt: 0), "bytes", "   frames/s", "  ns/frame")
            for r in results {
                print(
                    r.name.padding(toLength: 26, withPad: " ", startingAt: 0),
                    String(r.frameBytes).leftPadded(5), String(Int(r.framesPerSecond)).leftPadded(11),
                    String(format: "%10.0f", r.nanosecondsPerFrame))
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
