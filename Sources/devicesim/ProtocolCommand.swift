import ArgumentParser
import DeviceKit
import Foundation
import NIOCore

/// `devicesim protocol`: decode frames, check the vectors of protocol.md, measure the codec.
struct ProtocolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protocol",
        abstract: "Decode frames, check the test vectors, measure the codec.",
        subcommands: [Decode.self, Vectors.self, Bench.self]
    )
}

/// The key options shared by commands that open frames: a device's root key from a file, or the fleet
/// master key (`MasterKeyOptions`), each frame's key then derived from its device id.
struct KeyOptions: ParsableArguments {
    @Option(help: "A file holding the device's root key in hex (32 to 128 digits), as device.toml's key_file.")
    var keyFile: String?

    @Option(help: ArgumentHelp("The device's root key in hex. Avoid it: every user sees it in the process list; use --key-file.", visibility: .hidden))
    var key: String?

    @Option(help: "The key epoch of the key (protocol.md §3.2).")
    var epoch: UInt16 = 0

    @OptionGroup var masterKey: MasterKeyOptions

    func validate() throws {
        let given = [keyFile != nil, key != nil, masterKey.isGiven()].filter { $0 }.count
        guard given == 1 else {
            throw ValidationError("Give exactly one key: --key-file FILE (a device's key) or --master-file FILE (the fleet master key).")
        }
        if key != nil {
            FileHandle.standardError.write(Data("devicesim: warning: --key puts the device's key in the process list, where every user of this machine can read it; use --key-file FILE\n".utf8))
        }
        _ = try keyFor(deviceID: 0)
    }

    /// The key for `deviceID`; throws a message that says what is wrong with the given key, never the key.
    func keyFor(deviceID: UInt32) throws -> DeviceKey {
        if let master = try masterKey.key() { return DeviceKey(deviceID: deviceID, master: master, epoch: epoch) }
        var hex = key ?? ""
        if let keyFile {
            do { hex = try String(contentsOfFile: keyFile, encoding: .utf8) } catch {
                throw ValidationError("Cannot read the key file '\(keyFile)': check the path and its permissions.")
            }
        }
        do {
            guard let bytes = Hex.decode(hex.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw KeyError.notHex }
            return try DeviceKey(deviceID: deviceID, rootKey: bytes, epoch: epoch)
        } catch let error as KeyError {
            throw ValidationError(error.description)
        }
    }
}

extension ProtocolCommand {
    struct Decode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode and authenticate hex frames, from arguments or standard input.",
            discussion: """
                Each argument, or each line of standard input, holds one or more frames in hex (spaces and \
                colons are ignored). Every frame is printed decoded, or with the reason it is invalid. \
                Exit status 1 when any frame is invalid.
                """)

        @OptionGroup var keys: KeyOptions

        @Option(help: "For centre-to-device frames: the session anchor (the counter of the device's sessionStart).")
        var anchor: UInt64?

        @Flag(help: "Print one JSON object per frame.")
        var json = false

        @Argument(help: "Frames in hex. Without arguments, lines are read from standard input.")
        var frames: [String] = []

        func run() async throws {
            let inputs = frames.isEmpty ? Array(AnySequence { AnyIterator { readLine() } }) : frames
            var index = 0
            var invalid = 0
            for input in inputs where !input.allSatisfy(\.isWhitespace) {
                guard let bytes = Hex.decode(input) else {
                    index += 1
                    invalid += 1
                    report(index, .failure(message: "not hexadecimal: use only 0-9 and a-f, an even number of digits", category: "malformed"))
                    continue
                }
                var buffer = ByteBuffer(bytes: bytes)
                var decoder = FrameDecoder()
                repeat {
                    index += 1
                    let outcome = decodeOne(&decoder, &buffer)
                    if case .failure = outcome { invalid += 1 }
                    report(index, outcome)
                    if case .failure = outcome { break }  // no resynchronisation after a bad frame
                } while buffer.readableBytes > 0
            }
            if invalid > 0 { throw ExitCode(1) }
        }

        enum Outcome {
            case success(SealedFrame, Message)
            case failure(message: String, category: String)
        }

        private func decodeOne(_ decoder: inout FrameDecoder, _ buffer: inout ByteBuffer) -> Outcome {
            do {
                guard let frame = try decoder.decode(buffer: &buffer) else {
                    return .failure(message: "incomplete frame: \(buffer.readableBytes) bytes, the header announces more", category: "malformed")
                }
                let key = try keys.keyFor(deviceID: frame.header.deviceID)
                switch frame.header.direction {
                case .up: return .success(frame, try frame.open(with: key.upKey))
                case .down:
                    guard let anchor else {
                        return .failure(message: "a centre-to-device frame: give --anchor, the counter of the device's sessionStart", category: "usage")
                    }
                    return .success(frame, try frame.open(with: key.downKey(anchor: anchor)))
                }
            } catch let error as ProtocolError {
                buffer.clear()
                return .failure(message: error.description, category: error.category.rawValue)
            } catch {
                buffer.clear()
                return .failure(message: "\(error)", category: "usage")
            }
        }

        private func report(_ index: Int, _ outcome: Outcome) {
            switch (outcome, json) {
            case (.success(let frame, let message), true):
                var line = message.json
                line.removeFirst()
                print(#"{"frame":\#(index),"direction":"\#(frame.header.direction == .up ? "up" : "down")","device":\#(frame.header.deviceID),"counter":\#(frame.header.counter),"length":\#(frame.header.length),"message":{\#(line)}"#)
            case (.success(let frame, let message), false):
                let h = frame.header
                let counter = h.direction == .up ? "counter \(h.counter)" : "salt 0x\(String(h.counter >> 32, radix: 16)) sequence \(h.counter & 0xFFFF_FFFF)"
                print("frame \(index): \(h.direction == .up ? "device → centre" : "centre → device"), device \(h.deviceID), \(counter), \(h.length) bytes")
                print("  \(message.kind.name) \(message.json)")
            case (.failure(let message, let category), true):
                print(#"{"frame":\#(index),"error":\#(jsonString(message)),"category":"\#(category)"}"#)
            case (.failure(let message, _), false):
                print("frame \(index): INVALID: \(message)")
            }
        }

        private func jsonString(_ s: String) -> String {
            (try? String(decoding: JSONEncoder().encode(s), as: UTF8.self)) ?? "\"\""
        }
    }

    struct Vectors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the test vectors of protocol.md against this program's codec.")

        @Option(help: "The protocol document to read.")
        var file = "protocol.md"

        func run() async throws {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read \(file): run from the repository root or give --file PATH")
            }
            let vectors = try ProtocolVector.parse(markdown: text)
            guard !vectors.isEmpty else { throw ValidationError("\(file) holds no ```vector blocks") }
            var failed = 0
            for vector in vectors {
                let problems = vector.check()
                if problems.isEmpty {
                    print("ok    \(vector.name) (\(vector.frame.count) bytes)")
                } else {
                    failed += 1
                    print("FAIL  \(vector.name): \(problems.joined(separator: "; "))")
                }
            }
            print("vectors: \(vectors.count - failed) passed, \(failed) failed")
            if failed > 0 { throw ExitCode(1) }
        }
    }

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
