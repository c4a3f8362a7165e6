import PropertyBased
import Testing

@testable import DeviceKit

/// The serial box byte protocol (hardware/serial-box-protocol.md): exact lines, counted refusals, and bytes
/// split anywhere.
@Suite struct SerialBoxParserTests {
    /// Parses `bytes` in pieces cut at `cuts` (sorted offsets); returns the messages and the counters.
    static func parse(_ bytes: [UInt8], cuts: [Int] = []) -> ([SerialBoxMessage], SerialBoxParser.Counters) {
        var parser = SerialBoxParser()
        var messages: [SerialBoxMessage] = []
        var start = 0
        for cut in cuts.map({ min($0, bytes.count) }) + [bytes.count] where cut >= start {
            messages += parser.parse(bytes[start..<cut])
            start = cut
        }
        return (messages, parser.counters)
    }

    static func parse(_ text: String) -> ([SerialBoxMessage], SerialBoxParser.Counters) {
        parse(Array(text.utf8))
    }

    @Test func everyMessageDecodes() {
        let (messages, counters) = Self.parse("P\nR\nH\nT\nB0\nB7\nB42\nB100\nB007\n")
        #expect(messages == [.pressed, .released, .heartbeat, .tamper, .battery(percent: 0), .battery(percent: 7),
                             .battery(percent: 42), .battery(percent: 100), .battery(percent: 7)])
        #expect(counters == .init())
    }

    @Test func aCarriageReturnBeforeTheNewlineIsAllowed() {
        let (messages, counters) = Self.parse("P\r\nR\r\nB55\r\n")
        #expect(messages == [.pressed, .released, .battery(percent: 55)])
        #expect(counters == .init())
    }

    @Test func theExamplesOfTheProtocolDocumentDecode() {
        // §6, each line's bytes as they go over the line.
        let lines: [([UInt8], SerialBoxMessage)] = [
            ([0x50, 0x0D, 0x0A], .pressed), ([0x52, 0x0D, 0x0A], .released), ([0x48, 0x0D, 0x0A], .heartbeat),
            ([0x42, 0x38, 0x37, 0x0D, 0x0A], .battery(percent: 87)), ([0x42, 0x31, 0x30, 0x30, 0x0A], .battery(percent: 100)),
            ([0x54, 0x0D, 0x0A], .tamper),
        ]
        for (bytes, message) in lines {
            #expect(Self.parse(bytes) == ([message], .init()))
        }
        // §6, what the device makes of faulty input.
        let faulty: [UInt8] = [0x70, 0x0D, 0x0A] + [0x50, 0x20, 0x0D, 0x0A] + [0x42, 0x31, 0x30, 0x31, 0x0D, 0x0A]
            + [0x0D, 0x0A] + [UInt8](repeating: 0x58, count: 40) + [0x0D, 0x0A]
        #expect(Self.parse(faulty) == ([], .init(unknownLines: 3, overlongLines: 1, badBattery: 1)))
    }

    @Test func aLineWithoutItsNewlineIsNotYetAMessage() {
        var parser = SerialBoxParser()
        #expect(parser.parse(Array("P".utf8)).isEmpty)
        #expect(parser.parse(Array("\r".utf8)).isEmpty)
        #expect(parser.parse(Array("\n".utf8)) == [.pressed])
    }

    @Test func unknownLinesAreCountedAndIgnored() {
        let (messages, counters) = Self.parse("X\np\nPP\nP \n P\nH\r\r\nR\u{7}\n\u{FF}\nR\n")
        #expect(messages == [.released])
        #expect(counters == .init(unknownLines: 8))
    }

    @Test func emptyLinesAreIgnoredAndNotCounted() {
        let (messages, counters) = Self.parse("\n\r\n\n\nH\r\n\r\n")
        #expect(messages == [.heartbeat])
        #expect(counters == .init())
    }

    @Test func badBatteryLinesAreCountedApart() {
        let (messages, counters) = Self.parse("B\nB101\nB1000\nB-1\nB5%\nB 5\nB50\n")
        #expect(messages == [.battery(percent: 50)])
        #expect(counters == .init(unknownLines: 6, badBattery: 6))
    }

    @Test func thirtyTwoBytesFitAndThirtyThreeAreTooLong() {
        let fits = "B" + String(repeating: "0", count: 31)
        let tooLong = "B" + String(repeating: "0", count: 32)
        // 32 bytes: a line, but no valid battery (more than 3 digits); 33 bytes: overlong.
        #expect(Self.parse(fits + "\n").1 == .init(unknownLines: 1, badBattery: 1))
        #expect(Self.parse(fits + "\r\n").1 == .init(unknownLines: 1, badBattery: 1))
        #expect(Self.parse(tooLong + "\n").1 == .init(overlongLines: 1))
        #expect(Self.parse(tooLong + "\r\n").1 == .init(overlongLines: 1))
    }

    @Test func anOverlongLineIsDiscardedUpToItsNewline() {
        // The tail of the long line ends in "P": it must not be taken for a press.
        let long = String(repeating: "x", count: 100) + "P"
        let (messages, counters) = Self.parse("R\n" + long + "\nP\n" + long + "\r\nH\n")
        #expect(messages == [.released, .pressed, .heartbeat])
        #expect(counters == .init(overlongLines: 2))
    }

    @Test func oneByteAtATimeGivesTheSameAsAllAtOnce() {
        let bytes = Array("R\nP\r\nxx\nB42\n\(String(repeating: "y", count: 40))\nT\nH\n".utf8)
        let whole = Self.parse(bytes)
        let single = Self.parse(bytes, cuts: Array(0..<bytes.count))
        #expect(single.0 == whole.0)
        #expect(single.1 == whole.1)
        #expect(whole.0 == [.released, .pressed, .battery(percent: 42), .tamper, .heartbeat])
        #expect(whole.1 == .init(unknownLines: 1, overlongLines: 1))
    }

    @Test func aSplitAtEveryPositionGivesTheSameResult() {
        let bytes = Array("P\r\nR\nB100\n\(String(repeating: "z", count: 33))\r\nH\nQ\n".utf8)
        let whole = Self.parse(bytes)
        for cut in 0...bytes.count {
            let split = Self.parse(bytes, cuts: [cut])
            #expect(split.0 == whole.0, "cut at \(cut)")
            #expect(split.1 == whole.1, "cut at \(cut)")
        }
    }

    /// Bytes biased towards the protocol's own, so lines and near-misses are common.
    static let protocolishByte = Gen<UInt8?>.element(of: Array("PRHTB0123456789\r\n\r\n\n x".utf8) + [0, 0x7F, 0xFF])
        .map { $0 ?? 0x0A }

    @Test func randomBytesNeverCrashAndSplitsNeverMatter() async {
        let input = Gen<[UInt8]>.oneOf(Gen.uint8().array(of: 0...300), Self.protocolishByte.array(of: 0...300))
        await propertyCheck(count: 500, input: input, Gen.int(in: 0...300), Gen.int(in: 0...300)) { bytes, a, b in
            let whole = Self.parse(bytes)
            let split = Self.parse(bytes, cuts: [min(a, b), max(a, b)])
            #expect(split.0 == whole.0)
            #expect(split.1 == whole.1)
            // Every newline ends exactly one line: a message, a counted refusal, or an empty line.
            let newlines = bytes.indices.filter { bytes[$0] == 0x0A }
            let empty = newlines.filter { i in
                i == 0 || bytes[i - 1] == 0x0A || (bytes[i - 1] == 0x0D && (i == 1 || bytes[i - 2] == 0x0A))
            }
            #expect(whole.0.count + whole.1.total + empty.count == newlines.count)
        }
    }
}
