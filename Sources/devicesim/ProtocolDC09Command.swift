import ArgumentParser
import DeviceKit
import Foundation

/// The key option of the DC-09 commands: an account's AES key in hex, from a file.
struct DC09KeyOptions: ParsableArguments {
    @Option(help: "A file holding the DC-09 account's AES key in hex (32, 48 or 64 digits); without it, frames are not encrypted.")
    var keyFile: String?

    func key() throws -> DC09Key? {
        guard let keyFile else { return nil }
        return try DC09Key(bytes: try GivenKey.file(keyFile, what: "the DC-09 key file").bytes(.dc09))
    }
}

extension ProtocolCommand {
    /// `devicesim protocol dc09-frame`: one DC-09 frame, as our devices send it, on standard output.
    struct DC09FrameCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dc09-frame",
            abstract: "Write one SIA DC-09 frame (an event as our devices report it, supervision, or an answer) to standard output.",
            discussion: """
                EVENT is alarm:KIND (button, pendant, fall, inactivity, test), cancel:KIND, a device event \
                (mainsLost, mainsRestored, lowBattery, batteryOK, buttonMissing, buttonRestored, tamper, \
                restart), null (supervision), or an answer: ack, nak, duh. docs/dc09.md has the codes. The \
                frame goes out as bytes, line feed to carriage return: pipe it to a receiver (socat, nc).

                \(ExitStatus.help([.noInput, .configuration], [.noInput: "the key file is missing", .configuration: "the key file holds no DC-09 key"]))
                """)

        @Argument(help: "What the frame reports or answers.")
        var event: String

        @Option(help: "The account, 3 to 16 hex digits.")
        var account = "1234"

        @Option(help: "The payload: sia (SIA-DCS) or cid (ADM-CID, Contact ID).")
        var format = "sia"

        @Option(parsing: .unconditional, help: "The sequence number, 0 to 9999.")
        var sequence = 1

        @Option(help: "The receiver number (hex digits), if the receiving centre wants one.")
        var receiver: String?

        @Option(help: "The line (account prefix), hex digits.")
        var line = "0"

        @Option(parsing: .unconditional, help: "The timestamp, seconds since 1970 (UTC); default now.")
        var time: Int64?

        @OptionGroup var keyOptions: DC09KeyOptions

        func validate() throws {
            guard (0...9999).contains(sequence) else { throw ValidationError("--sequence must be 0 to 9999, not \(sequence)") }
            guard ["sia", "cid"].contains(format) else { throw ValidationError("--format must be sia or cid, not \(format)") }
        }

        func run() throws {
            let key = try keyOptions.key()
            let timestamp = DC09Timestamp(secondsSince1970: time ?? Int64(Date().timeIntervalSince1970))
            let id: DC09Frame.ID = format == "cid" ? .contactID : .siaDCS
            var frame = DC09Frame(
                id: id, sequence: DC09Frame.sequence(sequence), receiver: receiver, line: line, account: account,
                timestamp: timestamp)
            switch event {
            case "null": frame.id = .null
            case "ack": frame.id = .ack
            case "duh": frame.id = .duh
            case "nak":
                frame.id = .nak
                frame.sequence = "0000"
                frame.account = nil
            default:
                guard let code = Self.code(event) else {
                    throw ValidationError("unknown event \"\(event)\": see --help for the events")
                }
                frame.data = code.data(id, account: account)
            }
            if frame.id.isAnswer, key == nil, frame.id != .nak { frame.timestamp = nil }
            var random = SystemRandomNumberGenerator()
            FileHandle.standardOutput.write(Data(try frame.encoded(key: key, random: &random)))
        }

        static func code(_ event: String) -> DC09EventCode? {
            let parts = event.split(separator: ":", maxSplits: 1).map(String.init)
            let kinds = Dictionary(uniqueKeysWithValues: AlarmKind.names.map { ($0.value, AlarmKind(rawValue: $0.key)) })
            if parts.count == 2, let kind = kinds[parts[1]] {
                if parts[0] == "alarm" { return DC09EventCodes.alarm(kind) }
                if parts[0] == "cancel" { return DC09EventCodes.cancel(kind) }
                return nil
            }
            guard let raw = DeviceEventKind.names.first(where: { $0.value == event })?.key else { return nil }
            return DC09EventCodes.event(DeviceEventKind(rawValue: raw))
        }
    }

    /// `devicesim protocol dc09-decode`: DC-09 frames from standard input, one JSON line each.
    struct DC09DecodeCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dc09-decode",
            abstract: "Read SIA DC-09 frames from standard input and print each as a JSON line, or what is wrong with it.",
            discussion: """
                Frames may come several in one read or split across reads, as over TCP. With --key-file, \
                encrypted frames of any account are decrypted with that key.

                \(ExitStatus.help([.verdict], [.verdict: "a frame could not be read (its line says why)"]))
                """)

        @OptionGroup var keyOptions: DC09KeyOptions

        struct Line: Encodable {
            var id: String?
            var encrypted: Bool?
            var sequence: String?
            var receiver: String?
            var line: String?
            var account: String?
            var data: String?
            var extended: [String]?
            var timestamp: Int64?
            var time: String?
            var error: String?
        }

        func run() throws {
            let key = try keyOptions.key()
            var splitter = DC09FrameSplitter()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var failed = false
            func say(_ line: Line) {
                // Cannot fail: strings, numbers and booleans only.
                FileHandle.standardOutput.write((try! encoder.encode(line)) + Data("\n".utf8))
            }
            while let chunk = try FileHandle.standardInput.read(upToCount: 65_536), !chunk.isEmpty {
                for piece in splitter.feed(chunk) {
                    switch piece {
                    case .frame(let bytes):
                        do {
                            let frame = try DC09Frame.decode(bytes) { _ in key }
                            say(Line(
                                id: frame.id.rawValue, encrypted: frame.encrypted, sequence: frame.sequence, receiver: frame.receiver,
                                line: frame.line, account: frame.account, data: frame.data, extended: frame.extended,
                                timestamp: frame.timestamp?.secondsSince1970, time: frame.timestamp?.description))
                        } catch {
                            failed = true
                            say(Line(error: "\(error)"))
                        }
                    case .skipped(let count):
                        failed = true
                        say(Line(error: "\(count) bytes outside a frame (a frame begins with a line feed)"))
                    case .overlong:
                        failed = true
                        say(Line(error: "a frame longer than \(DC09FrameSplitter.maximumFrameLength) bytes, dropped"))
                    }
                }
            }
            if failed { throw ExitCode(ExitStatus.verdict.rawValue) }
        }
    }
}
