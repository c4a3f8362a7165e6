import ArgumentParser
import DeviceKit
import Foundation
import NIOCore

/// `devicesim protocol`: decode frames, check the vectors of protocol.md, measure the codec.
struct ProtocolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protocol",
        abstract: "Decode frames, check the test vectors, measure the codec.",
        discussion: "Each command's --help lists its exit status.",
        subcommands: [Decode.self, Vectors.self, Bench.self, DC09FrameCommand.self, DC09DecodeCommand.self]
    )
}

/// The key options shared by commands that open frames: a device's root key from a file, or the fleet
/// master key (`MasterKeyOptions`), each frame's key then derived from its device id. Without either, only
/// the frames' clear headers can be shown.
struct KeyOptions: ParsableArguments {
    @Option(help: "A file holding the device's root key in hex (32 to 128 digits), as device.toml's key_file.")
    var keyFile: String?

    @Option(help: ArgumentHelp("The device's root key in hex. Avoid it: every user sees it in the process list; use --key-file.", visibility: .hidden))
    var key: String?

    @Option(parsing: .unconditional, help: "The key epoch of the key (protocol.md §3.2).")
    var epoch: UInt16 = 0

    @OptionGroup var masterKey: MasterKeyOptions

    func validate() throws {
        guard [keyFile != nil, key != nil, masterKey.isGiven()].filter({ $0 }).count <= 1 else {
            throw ValidationError(
                "Give one key: --key-file FILE (a device's key) or the fleet master key (--master-file FILE, $\(MasterKeyOptions.environmentVariable) or systemd credentials \(MasterKeyOptions.credentialName)), not both.")
        }
        if key != nil {
            FileHandle.standardError.write(Data("devicesim: warning: --key puts the device's key in the process list, where every user of this machine can read it; use --key-file FILE\n".utf8))
        }
    }

    /// The key to derive each frame's key from, read and checked once; `nil` when none is given. Errors say
    /// what is wrong with the key and where it came from, never the key.
    func keys() throws -> FrameKeys? {
        if let master = try masterKey.key() { return .master(master, epoch: epoch) }
        let given: GivenKey
        if let keyFile {
            given = try .file(keyFile, what: "the device key file")
        } else if let key {
            given = GivenKey(text: key, source: "--key", onCommandLine: true)
        } else {
            return nil
        }
        return .root(try given.bytes(.device), epoch: epoch)
    }
}

/// Where each frame's key comes from: one device's root key, or the fleet master key.
enum FrameKeys {
    case root([UInt8], epoch: UInt16)
    case master(FleetMasterKey, epoch: UInt16)

    func key(for deviceID: UInt32) throws -> DeviceKey {
        switch self {
        case .root(let bytes, let epoch): try DeviceKey(deviceID: deviceID, rootKey: bytes, epoch: epoch)
        case .master(let master, let epoch): DeviceKey(deviceID: deviceID, master: master, epoch: epoch)
        }
    }
}

extension ProtocolCommand {
    struct Decode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode and authenticate hex frames, from arguments or standard input.",
            discussion: """
                Each argument, or each line of standard input, holds one or more frames in hex (spaces and \
                colons are ignored). Every frame is printed decoded, or with the reason it is invalid. Without \
                a key (--key-file or --master-file) only each frame's clear header is shown: direction, device, \
                counter, length; its body is sealed.

                \(ExitStatus.help([.verdict, .noInput, .noPermission, .configuration], [.verdict: "a frame is invalid"]))
                """)

        @OptionGroup var keys: KeyOptions

        @Option(parsing: .unconditional, help: "For centre-to-device frames: the session anchor (the counter of the device's sessionStart).")
        var anchor: UInt64?

        @Flag(help: "Print one JSON object per frame.")
        var json = false

        @Argument(help: "Frames in hex. Without arguments, lines are read from standard input.")
        var frames: [String] = []

        func run() async throws {
            let frameKeys = try keys.keys()
            let inputs = frames.isEmpty ? Array(AnySequence { AnyIterator { readLine() } }) : frames
            var index = 0
            var invalid = 0
            for input in inputs where !input.allSatisfy(\.isWhitespace) {
                let bytes: [UInt8]
                do throws(HexError) { bytes = try Hex.parse(input) } catch {
                    index += 1
                    invalid += 1
                    report(index, .failure(message: "not hex: \(error)", category: "malformed"))
                    continue
                }
                var buffer = ByteBuffer(bytes: bytes)
                var decoder = FrameDecoder()
                repeat {
                    index += 1
                    let outcome = decodeOne(&decoder, &buffer, keys: frameKeys)
                    if case .failure = outcome { invalid += 1 }
                    report(index, outcome)
                    if case .failure = outcome { break }  // no resynchronisation after a bad frame
                } while buffer.readableBytes > 0
            }
            if invalid > 0 { throw ExitCode(ExitStatus.verdict.rawValue) }
        }

        enum Outcome {
            case success(SealedFrame, Message)
            /// No key given: the clear header alone.
            case sealed(SealedFrame)
            case failure(message: String, category: String)
        }

        private func decodeOne(_ decoder: inout FrameDecoder, _ buffer: inout ByteBuffer, keys: FrameKeys?) -> Outcome {
            do {
                guard let frame = try decoder.decode(buffer: &buffer) else {
                    return .failure(message: "incomplete frame: \(buffer.readableBytes) bytes, the header announces more", category: "malformed")
                }
                guard let keys else { return .sealed(frame) }
                let key = try keys.key(for: frame.header.deviceID)
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
                print(#"\#(headerJSON(index, frame.header)),"message":{\#(line)}"#)
            case (.sealed(let frame), true):
                print(#"\#(headerJSON(index, frame.header)),"sealed":true}"#)
            case (.success(let frame, let message), false):
                print(headerLine(index, frame.header))
                print("  \(message.kind.name) \(message.json)")
            case (.sealed(let frame), false):
                print(headerLine(index, frame.header))
                print("  body sealed: give the key to open it (--key-file FILE with the device's key, or --master-file FILE with the fleet master key)")
            case (.failure(let message, let category), true):
                print(#"{"frame":\#(index),"error":\#(jsonString(message)),"category":"\#(category)"}"#)
            case (.failure(let message, _), false):
                print("frame \(index): INVALID: \(message)")
            }
        }

        /// The clear header as the start of a JSON object (without the closing brace).
        private func headerJSON(_ index: Int, _ h: FrameHeader) -> String {
            #"{"frame":\#(index),"direction":"\#(h.direction == .up ? "up" : "down")","device":\#(h.deviceID),"counter":\#(h.counter),"length":\#(h.length)"#
        }

        private func headerLine(_ index: Int, _ h: FrameHeader) -> String {
            let counter = h.direction == .up ? "counter \(h.counter)" : "salt 0x\(String(h.counter >> 32, radix: 16)) sequence \(h.counter & 0xFFFF_FFFF)"
            let epoch = h.direction == .up && h.keyEpochBits != 0 ? ", key epoch bits \(h.keyEpochBits)" : ""
            return "frame \(index): \(h.direction == .up ? "device → centre" : "centre → device"), device \(h.deviceID), \(counter)\(epoch), \(h.length) bytes"
        }

        private func jsonString(_ s: String) -> String {
            (try? String(decoding: JSONEncoder().encode(s), as: UTF8.self)) ?? "\"\""
        }
    }

    struct Vectors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the test vectors of protocol.md against this program's codec.",
            discussion: """
                Without --file it reads protocol.md from the current directory, else from the repository this \
                devicesim was built in (found from the executable's path), and says which.

                \(ExitStatus.help([.verdict, .noInput, .dataError], [.verdict: "a vector failed", .dataError: "the file holds no vectors or a malformed one"]))
                """)

        @Option(help: "The protocol document to read (default: ./protocol.md, else the one of the repository devicesim was built in).")
        var file: String?

        func run() async throws {
            let path = try file ?? Self.protocolDocument()
            let text = try readTextFile(path, what: "the protocol document", advice: "give --file PATH to protocol.md")
            let vectors: [ProtocolVector]
            do { vectors = try ProtocolVector.parse(markdown: text) } catch {
                throw CommandFailure(.dataError, "\(path): \(error)")
            }
            guard !vectors.isEmpty else { throw CommandFailure(.dataError, "\(path) holds no ```vector blocks: is it protocol.md?") }
            if file == nil { print("vectors of \(path)") }
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
            if failed > 0 { throw ExitCode(ExitStatus.verdict.rawValue) }
        }

        /// ./protocol.md, else the repository's beside the executable (`<repository>/.build/…/devicesim`).
        static func protocolDocument() throws(CommandFailure) -> String {
            if FileManager.default.fileExists(atPath: "protocol.md") { return "protocol.md" }
            if let repository = BuildStamp.repository(ofExecutable: BuildStamp.executablePath) {
                return repository + "/protocol.md"
            }
            throw CommandFailure(
                .noInput,
                "cannot find protocol.md: it is not in this directory, and this devicesim (\(BuildStamp.executablePath)) is not inside the repository it was built in; give --file PATH")
        }
    }

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure seal+encode and decode+open of heartbeat and alarm frames on one core.",
            discussion: ExitStatus.help([.software]))

        @Option(parsing: .unconditional, help: "Frames per measurement.")
        var frames = 1_000_000

        func validate() throws {
            guard frames >= 1 else { throw ValidationError("--frames must be at least 1, e.g. --frames 1000000.") }
        }

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
