import Testing

@testable import DeviceKit

/// Hostile and broken SIP from outside: the parser returns or throws, never crashes; whatever parses serialises
/// and parses again to the same message; `badRequest` and the stream framer never crash either. Like
/// `ProtocolRobustnessTests` for frames, from a seeded generator, so a failure names its seed and iteration.
@Suite struct SIPMessageRobustnessTests {
    typealias S = SIPMessageSamples

    static let corpus: [[UInt8]] = S.rfc3261Flow.map(\.1) + S.rfc4475Valid.map(\.1) + [S.longreq] + S.rfc4475Invalid.map(\.1)

    /// Bytes that mean something to the grammar, so that mutations reach past the first check.
    static let interesting: [UInt8] = Array(":;,\"<>@=/ \t\r\n\\%[]?*0123456789".utf8)

    enum Mutation: CaseIterable {
        case flipBits, overwriteWithInteresting, insertBytes, deleteBytes, truncate, repeatLine, deleteLine, swapLines

        static let all = allCases
    }

    /// The lines of `bytes`, each with its LF.
    static func lines(_ bytes: [UInt8]) -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for index in bytes.indices where bytes[index] == .lineFeed {
            lines.append(bytes[start...index])
            start = index + 1
        }
        if start < bytes.count { lines.append(bytes[start...]) }
        return lines
    }

    static func mutate(_ bytes: [UInt8], _ mutation: Mutation, rng: inout ProtocolTestRNG) -> [UInt8] {
        guard !bytes.isEmpty else { return rng.bytes(1 + rng.below(16)) }
        var out = bytes
        switch mutation {
        case .flipBits:
            for _ in 0...rng.below(4) { out[rng.below(out.count)] ^= 1 << UInt8(rng.below(8)) }
        case .overwriteWithInteresting:
            for _ in 0...rng.below(4) { out[rng.below(out.count)] = interesting[rng.below(interesting.count)] }
        case .insertBytes:
            let insert = rng.chance(2) ? rng.bytes(1 + rng.below(8)) : (0...rng.below(8)).map { _ in interesting[rng.below(interesting.count)] }
            out.insert(contentsOf: insert, at: rng.below(out.count + 1))
        case .deleteBytes:
            let start = rng.below(out.count)
            out.removeSubrange(start..<min(out.count, start + 1 + rng.below(8)))
        case .truncate:
            out.removeLast(1 + rng.below(out.count))
        case .repeatLine, .deleteLine, .swapLines:
            var lines = Self.lines(bytes)
            let a = rng.below(lines.count)
            let b = rng.below(lines.count)
            switch mutation {
            case .repeatLine: lines.insert(lines[a], at: b)
            case .deleteLine: lines.remove(at: a)
            default: lines.swapAt(a, b)
            }
            out = lines.flatMap { $0 }
        }
        return out
    }

    struct Tally {
        var inputs = 0
        var parsed = 0
        var refused = 0
        var answered = 0
        var framed = 0
    }

    /// Parses `bytes` as a datagram; what parses must come back the same from its own bytes; what is refused
    /// goes to `badRequest`, whose answer (if any) must serialise.
    static func check(_ bytes: [UInt8], tally: inout Tally, context: @autoclosure () -> String) {
        tally.inputs += 1
        do {
            let message = try SIPMessage(parsing: bytes)
            tally.parsed += 1
            var expected = message.headers
            let body: [UInt8]
            switch message {
            case .request(let request): body = request.body
            case .response(let response): body = response.body
            }
            expected.set("Content-Length", String(body.count))
            do {
                let again = try SIPMessage(parsing: message.serialized())
                if again.headers != expected || again.serialized() != message.serialized() {
                    Issue.record("\(message) comes back as \(again); \(context())")
                }
            } catch {
                Issue.record("parsed, but its serialisation is refused: \(error); \(context())")
            }
        } catch {
            tally.refused += 1
            if let answer = SIPResponse.badRequest(answering: bytes, because: error) {
                tally.answered += 1
                if answer.statusCode != 400 || answer.serialized().isEmpty { Issue.record("bad answer \(answer); \(context())") }
            }
        }
    }

    /// 2 × 12,000 mutated messages (one to three mutations each) and 2 × 2,000 random inputs, in two shards
    /// run in parallel; a stream of mutated messages through the framer for each shard.
    @Test(arguments: 0..<2)
    func mutatedAndRandomMessagesNeverCrashAndWhatParsesRoundTrips(shard: Int) async {
        let seed: UInt64 = 0x51D0_0000 &+ UInt64(shard)
        var rng = ProtocolTestRNG(seed: seed)
        var tally = Tally()
        var stream: [UInt8] = []
        var framer = SIPStreamFramer()
        for iteration in 0..<14_000 {
            if iteration % 256 == 0 { await Task.yield() }
            let input: [UInt8]
            if iteration % 7 == 6 {
                // Random bytes, half of them behind a plausible start line.
                var random = rng.bytes(rng.chance(8) ? rng.below(2_000) : rng.below(120))
                if rng.chance(2) { random = Array("INVITE sip:a@b SIP/2.0\r\n".utf8) + random }
                input = random
            } else {
                var mutated = Self.corpus[rng.below(Self.corpus.count)]
                for _ in 0...rng.below(3) { mutated = Self.mutate(mutated, Mutation.all[rng.below(Mutation.all.count)], rng: &rng) }
                input = mutated
            }
            Self.check(input, tally: &tally, context: "seed \(seed), iteration \(iteration)")

            // The same inputs as one TCP stream: the framer cuts or refuses; after a refusal a new connection.
            stream += input
            if stream.count > 4_096 || iteration % 50 == 49 {
                var rest = stream[...]
                while !rest.isEmpty {
                    let chunk = rest.prefix(1 + rng.below(700))
                    rest = rest.dropFirst(chunk.count)
                    framer.append(chunk)
                    do {
                        while let message = try framer.next() {
                            tally.framed += 1
                            if message.count > SIPParseError.maximumMessageBytes { Issue.record("cut \(message.count) bytes; seed \(seed), iteration \(iteration)") }
                            _ = try? SIPMessage(parsing: message)
                        }
                    } catch {
                        framer = SIPStreamFramer()
                    }
                }
                stream = []
            }
        }
        // The corpus reaches every stage: messages parse, are refused, answered with a 400, and cut from streams.
        #expect(tally.inputs == 14_000)
        #expect(tally.parsed > 700 && tally.refused > 1_000 && tally.answered > 1_000 && tally.framed > 100)
        print("SIPMessageRobustnessTests shard \(shard): \(tally.inputs) inputs, \(tally.parsed) parsed, \(tally.refused) refused, \(tally.answered) answered with 400, \(tally.framed) cut from streams")
    }

    @Test func everyPrefixOfEveryCorpusMessageParsesOrThrows() {
        var tally = Tally()
        for (index, message) in Self.corpus.enumerated() where message.count < 1_200 {
            for end in 0...message.count { Self.check(Array(message[..<end]), tally: &tally, context: "corpus \(index), prefix \(end)") }
        }
        #expect(tally.refused > tally.parsed)
    }
}
