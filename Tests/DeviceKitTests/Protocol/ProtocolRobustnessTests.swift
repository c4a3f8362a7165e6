import Foundation
import NIOCore
import PropertyBased
import Testing

@testable import DeviceKit

/// Hostile and broken input: nothing crashes, nothing mutated authenticates, and every refusal says why
/// (protocol.md §2, §3.1, §4.1, §6).
///
/// The fuzzing tests draw from a seeded SplitMix64 (`ProtocolTestRNG`), so a failure is reproducible: every
/// failure message names the seed and the iteration.
@Suite struct ProtocolRobustnessTests {
    typealias F = ProtocolFixtures

    // MARK: Corpus

    /// A valid frame, its plaintext body, and its direction (which selects the receiver's key).
    struct Sample {
        var frame: [UInt8]
        var body: [UInt8]
        var direction: Wire.Direction
    }

    static let upKey = F.key().upKey
    static let downKey = F.key().downKey(anchor: F.anchor)

    /// Every message of the fixtures in every direction it may travel, and 300 arbitrary valid messages.
    static let samples: [Sample] = {
        var messages = F.minimal + F.full
        var rng = Xoshiro(seed: (0x5eed, 1, 2, 3))
        for _ in 0..<300 { messages.append(MessageGen.message.run(using: &rng)) }
        var samples: [Sample] = []
        var counter: UInt64 = 1
        for message in messages {
            for direction in [Wire.Direction.up, .down] where message.kind.directions.contains(direction) {
                counter += 1
                let frame = try! F.seal(message, direction: direction, counter: direction == .up ? F.anchor + counter : F.downCounter(counter))
                samples.append(Sample(frame: frame, body: try! F.body(message), direction: direction))
            }
        }
        return samples
    }()

    enum Mutation: CaseIterable {
        case flipBits, overwriteByte, insertBytes, deleteBytes, truncate, appendBytes, appendExtension, twoMutations
        /// `allCases`, built once (the synthesized property builds an array at every call).
        static let all = allCases
    }

    /// Mutates `bytes` so that the result differs from the input. `fixLength` rewrites the frame length field
    /// to the new size, so that size checks pass and the frame reaches the tag check.
    static func mutate(_ bytes: [UInt8], _ mutation: Mutation, fixLength: Bool, rng: inout ProtocolTestRNG) -> [UInt8] {
        if bytes.isEmpty { return rng.bytes(1 + rng.below(8)) }
        var out = bytes
        switch mutation {
        case .flipBits:
            for _ in 0...rng.below(4) {
                out[rng.below(out.count)] ^= 1 << UInt8(rng.below(8))
            }
        case .overwriteByte:
            let i = rng.below(out.count)
            out[i] = out[i] &+ UInt8(1 + rng.below(255))
        case .insertBytes:
            out.insert(contentsOf: rng.bytes(1 + rng.below(8)), at: rng.below(out.count + 1))
        case .deleteBytes:
            let start = rng.below(out.count)
            out.removeSubrange(start..<min(out.count, start + 1 + rng.below(8)))
        case .truncate:
            out.removeLast(1 + rng.below(out.count))
        case .appendBytes:
            out += rng.bytes(1 + rng.below(64))
        case .appendExtension:
            let value = rng.bytes(rng.below(16))
            out += [rng.byte(), UInt8(value.count)] + value
        case .twoMutations:
            let first = Mutation.all[rng.below(Mutation.all.count - 1)]
            let second = Mutation.all[rng.below(Mutation.all.count - 1)]
            out = Self.mutate(Self.mutate(out, first, fixLength: false, rng: &rng), second, fixLength: false, rng: &rng)
        }
        if fixLength, out.count >= 3, out.count <= 0xffff {
            out[1] = UInt8(out.count >> 8)
            out[2] = UInt8(out.count & 0xff)
        }
        if out.count == bytes.count, out.withUnsafeBytes({ a in bytes.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 } }) {
            // Two flips of one bit, or a length fix that undid the change: try again.
            return Self.mutate(bytes, mutation, fixLength: fixLength, rng: &rng)
        }
        return out
    }

    // MARK: The paths

    struct Tally {
        var inputs = 0
        var framesParsed = 0
        var framesOpened = 0
        var bodiesDecoded = 0
    }

    /// Cuts `bytes` as a TCP stream and calls `body` with each frame that comes out; stops at the first refusal,
    /// as the connection would be closed.
    ///
    /// (Plain `if`s rather than `#expect` in the paths below: they run millions of times, and in a debug build
    /// `#expect` costs more than the code under test.)
    static func forEachStreamFrame(_ bytes: ByteBuffer, _ body: (SealedFrame) -> Void) {
        var decoder = FrameDecoder()
        var buffer = bytes
        var count = 0
        while true {
            let before = buffer.readableBytes
            guard let frame = try? decoder.decode(buffer: &buffer) else { break }
            count += 1
            // Every frame consumes exactly its length, which is within the protocol's bounds.
            if before - buffer.readableBytes != frame.header.length || frame.bytes.readableBytes != frame.header.length
                || frame.header.length < FrameHeader.minimumFrameLength(frame.header.direction)
                || frame.header.length > Wire.maximumFrameLength || count > bytes.readableBytes / 30
            {
                Issue.record("the decoder cut a frame of \(frame.bytes.readableBytes) bytes for header \(frame.header)")
            }
            body(frame)
        }
    }

    /// Decodes a body; whatever decodes must be sendable again and mean the same after a second round trip.
    static func decodeBody(_ bytes: ByteBuffer, tally: inout Tally, context: @autoclosure () -> String) {
        guard let message = try? Message(body: bytes) else { return }
        tally.bodiesDecoded += 1
        var again = ByteBuffer()
        do {
            try message.encodeBody(into: &again)
            let second = try Message(body: again)
            if second != message { Issue.record("\(message) decodes to \(second) after a second round trip; \(context())") }
        } catch {
            Issue.record("decoded \(message) but cannot encode it again: \(error); \(context())")
        }
    }

    /// Opens `frame` with the receiver's key: it must be refused as forged.
    static func expectRefused(_ frame: SealedFrame, direction: Wire.Direction, tally: inout Tally, context: @autoclosure () -> String) {
        tally.framesOpened += 1
        do {
            let message = try frame.open(with: direction == .up ? upKey : downKey)
            Issue.record("a mutated or random frame authenticated as \(message); \(context())")
        } catch {
            if error != .authenticationFailed { Issue.record("refused as \(error), not authenticationFailed; \(context())") }
        }
    }

    /// Whether `frame` holds exactly `bytes` (a `memcmp`: `elementsEqual` is slow in a debug build).
    static func same(_ frame: ByteBuffer, _ bytes: [UInt8]) -> Bool {
        guard frame.readableBytes == bytes.count else { return false }
        return frame.withUnsafeReadableBytes { a in bytes.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, b.count) == 0 } }
    }

    /// Replaces the content of `buffer` with `count` random bytes, without allocating.
    static func fillRandom(_ buffer: inout ByteBuffer, count: Int, rng: inout ProtocolTestRNG) {
        buffer.clear()
        appendRandom(&buffer, count: count, rng: &rng)
    }

    static func appendRandom(_ buffer: inout ByteBuffer, count: Int, rng: inout ProtocolTestRNG) {
        guard count > 0 else { return }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
            var i = 0
            while i + 8 <= count {
                pointer.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            while i < count {
                pointer.storeBytes(of: rng.byte(), toByteOffset: i, as: UInt8.self)
                i += 1
            }
            return count
        }
    }

    /// `mutate`, written straight into `out` from a stack buffer with raw memory operations: in a debug build each
    /// call into `ByteBuffer` or `Array` costs microseconds, and the million-input loop should spend its time in
    /// the code under test, not in making inputs.
    static func writeMutated(
        _ source: [UInt8], _ mutation: Mutation, fixLength: Bool, into out: inout ByteBuffer, rng: inout ProtocolTestRNG
    ) {
        if mutation == .twoMutations {
            // One input in eight: the array version is fast enough.
            out.clear()
            _ = mutate(source, .twoMutations, fixLength: fixLength, rng: &rng).withUnsafeBytes { out.writeBytes($0) }
            return
        }
        withUnsafeTemporaryAllocation(byteCount: source.count + 80, alignment: 8) { dst in
            source.withUnsafeBytes { src in
                let n = src.count
                var m = 0
                func copy(_ range: Range<Int>) {
                    (dst.baseAddress! + m).copyMemory(from: src.baseAddress! + range.lowerBound, byteCount: range.count)
                    m += range.count
                }
                func random(_ count: Int) {
                    for _ in 0..<count {
                        dst[m] = rng.byte()
                        m += 1
                    }
                }
                repeat {
                    m = 0
                    switch mutation {
                    case .flipBits:
                        copy(0..<n)
                        for _ in 0...rng.below(4) { dst[rng.below(n)] ^= 1 << UInt8(rng.below(8)) }
                    case .overwriteByte:
                        copy(0..<n)
                        let i = rng.below(n)
                        dst[i] = src[i] &+ UInt8(1 + rng.below(255))
                    case .insertBytes:
                        let at = rng.below(n + 1)
                        copy(0..<at)
                        random(1 + rng.below(8))
                        copy(at..<n)
                    case .deleteBytes:
                        let start = rng.below(n)
                        copy(0..<start)
                        copy(min(n, start + 1 + rng.below(8))..<n)
                    case .truncate:
                        copy(0..<(n - 1 - rng.below(n)))
                    case .appendBytes:
                        copy(0..<n)
                        random(1 + rng.below(64))
                    case .appendExtension:
                        copy(0..<n)
                        let length = rng.below(16)
                        random(1)
                        dst[m] = UInt8(length)
                        m += 1
                        random(length)
                    case .twoMutations:
                        preconditionFailure("handled above")
                    }
                    if fixLength, m >= 3 {
                        dst[1] = UInt8(m >> 8)
                        dst[2] = UInt8(m & 0xff)
                    }
                    // Two flips of one bit, or a length fix that undid the change: try again.
                } while m == n && memcmp(dst.baseAddress!, src.baseAddress!, n) == 0
                out.clear()
                out.writeBytes(UnsafeRawBufferPointer(rebasing: dst[..<m]))
            }
        }
    }

    // MARK: Fuzzing

    static let types = Message.Kind.allCases.map(\.rawValue)
    static let shards = 4
    static let inputsPerShard = 250_000

    /// One million inputs in four shards run in parallel (each its own seed), through the cheap paths in full and
    /// the tag check (ChaCha20-Poly1305, ~30 µs a frame in a debug build) for a sample:
    /// - 40 %: random bytes of 0...1100 (mostly short; half behind a plausible header: version 1, any direction
    ///   and reserved bits, the length field equal to the size) through the stream decoder and
    ///   `SealedFrame(datagram:)`; one datagram in 16 of those that parse is opened;
    /// - 40 %: a valid frame, mutated (bit flips, an overwritten byte, insertions, deletions, truncation, bytes or
    ///   an extension appended, two at once; half the time with the length field fixed up to the new size) through
    ///   the stream decoder and `SealedFrame(datagram:)`; for one mutated frame in four, every frame that comes out
    ///   of either (except the untouched original, which a stream yields when only its tail was extended) is
    ///   opened and must be refused as `authenticationFailed`;
    /// - 20 %: random bytes of 0...1100 (mostly short, mostly behind a known type byte) or a mutated valid body
    ///   through `Message(body:)`; what decodes must encode and decode again to the same message.
    ///
    /// `fiftyThousandForgedFramesOfTheRightSizeAreAllRefusedAsAuthenticationFailed` runs the tag check in bulk.
    @Test(arguments: 0..<shards)
    func aMillionRandomAndMutatedInputsNeverCrashAndNoMutatedFrameAuthenticates(shard: Int) async {
        let seed = 0x00C0_FFEE &+ UInt64(shard)
        var rng = ProtocolTestRNG(seed: seed)
        var tally = Tally()
        var buffer = ByteBuffer()
        buffer.reserveCapacity(2_048)
        for iteration in 0..<Self.inputsPerShard {
            // Seconds of CPU: yield now and then, so tests that wait on the shared pool are not starved.
            if iteration % 512 == 0 { await Task.yield() }
            switch iteration % 5 {
            case 0, 1:
                // Random bytes as a stream and as a datagram. (Random bodies are the last case's.)
                let long = rng.chance(8)
                let length = long ? rng.below(1_101) : rng.below(96)
                Self.fillRandom(&buffer, count: length, rng: &rng)
                if length >= 3, rng.chance(2) {
                    buffer.setInteger(0x10 | (rng.byte() & 0x0f), at: 0)
                    buffer.setInteger(UInt16(length), at: 1)
                }
                Self.forEachStreamFrame(buffer) { _ in tally.framesParsed += 1 }
                if let frame = try? SealedFrame(datagram: buffer) {
                    tally.framesParsed += 1
                    if rng.chance(16) {
                        Self.expectRefused(frame, direction: frame.header.direction, tally: &tally, context: "random datagram; seed \(seed), iteration \(iteration)")
                    }
                }
            case 2, 3:
                // A mutated valid frame, as a datagram and as a stream. Every frame that comes out of either is
                // opened, except the untouched original, which a stream yields when only its tail was extended,
                // and a stream frame identical to the datagram frame already opened.
                let sample = Self.samples[rng.below(Self.samples.count)]
                let mutation = Mutation.all[rng.below(Mutation.all.count)]
                Self.writeMutated(sample.frame, mutation, fixLength: rng.chance(2), into: &buffer, rng: &rng)
                let open = iteration % 10 == 2  // one mutated frame in four goes on to the tag check
                let datagram = try? SealedFrame(datagram: buffer)
                if let datagram {
                    tally.framesParsed += 1
                    if open {
                        Self.expectRefused(datagram, direction: sample.direction, tally: &tally, context: "\(mutation) datagram; seed \(seed), iteration \(iteration)")
                    }
                }
                Self.forEachStreamFrame(buffer) { frame in
                    tally.framesParsed += 1
                    if !open || Self.same(frame.bytes, sample.frame) { return }
                    if let datagram, frame.header.length == datagram.header.length { return }
                    Self.expectRefused(frame, direction: sample.direction, tally: &tally, context: "\(mutation) stream; seed \(seed), iteration \(iteration)")
                }
            default:
                // A random body (mostly with a known type byte), or a mutated valid body.
                if rng.chance(2) {
                    Self.fillRandom(&buffer, count: rng.chance(16) ? rng.below(1_101) : rng.below(80), rng: &rng)
                    if buffer.readableBytes > 0, !rng.chance(8) {
                        buffer.setInteger(Self.types[rng.below(Self.types.count)], at: 0)
                    }
                } else {
                    let sample = Self.samples[rng.below(Self.samples.count)]
                    let mutation = Mutation.all[rng.below(Mutation.all.count)]
                    Self.writeMutated(sample.body, mutation, fixLength: false, into: &buffer, rng: &rng)
                }
                Self.decodeBody(buffer, tally: &tally, context: "body; seed \(seed), iteration \(iteration)")
            }
            tally.inputs += 1
        }
        #expect(tally.inputs == Self.inputsPerShard)
        // The corpus reaches every stage many times: parsed frames, the tag check, successful body decodes.
        #expect(tally.framesParsed > Self.inputsPerShard / 10)
        #expect(tally.framesOpened > Self.inputsPerShard / 20)
        #expect(tally.bodiesDecoded > Self.inputsPerShard / 100)
        print("ProtocolRobustnessTests shard \(shard): \(tally.inputs) inputs, \(tally.framesParsed) frames parsed, \(tally.framesOpened) opened (all refused), \(tally.bodiesDecoded) bodies decoded")
    }

    /// The AEAD path in bulk: frames that parse and have the right size but were never sealed with the key.
    @Test func fiftyThousandForgedFramesOfTheRightSizeAreAllRefusedAsAuthenticationFailed() async {
        let seed: UInt64 = 0xF0_46E5
        var rng = ProtocolTestRNG(seed: seed)
        var tally = Tally()
        let iterations = 50_000
        var buffer = ByteBuffer()
        for iteration in 0..<iterations {
            if iteration % 256 == 0 { await Task.yield() }
            let direction: Wire.Direction
            if iteration % 2 == 0 {
                // Bit flips, overwrites, and insertions/deletions/extensions with a consistent length field.
                let sample = Self.samples[rng.below(Self.samples.count)]
                let mutations: [Mutation] = [.flipBits, .overwriteByte, .insertBytes, .deleteBytes, .appendExtension]
                Self.writeMutated(sample.frame, mutations[rng.below(mutations.count)], fixLength: true, into: &buffer, rng: &rng)
                direction = sample.direction
            } else {
                // A random body and tag behind a valid header of this device.
                let down = rng.chance(2)
                let length = (down ? 32 : 30) + rng.below(200)
                Self.fillRandom(&buffer, count: length, rng: &rng)
                buffer.setInteger(UInt8(down ? 0x18 : 0x10), at: 0)
                buffer.setInteger(UInt16(length), at: 1)
                buffer.setInteger(F.deviceID, at: 3)
                direction = down ? .down : .up
            }
            guard let frame = try? SealedFrame(datagram: buffer) else { continue }
            tally.framesParsed += 1
            Self.expectRefused(frame, direction: direction, tally: &tally, context: "seed \(seed), iteration \(iteration)")
        }
        #expect(tally.framesOpened > iterations * 3 / 4)
    }

    // MARK: Extensions (protocol.md §4.1)

    static func body(_ message: Message, appending extra: [UInt8]) throws -> ByteBuffer {
        ByteBuffer(bytes: try F.body(message) + extra)
    }

    @Test func unknownNonCriticalExtensionsAfterTheKnownFieldsAreSkipped() throws {
        for message in F.minimal + F.full {
            for extra: [UInt8] in [[0x7f, 0x00], [0x7f, 0x03, 1, 2, 3], [0x70, 0x01, 0xff, 0x7f, 0x00], [0x7f, 0xff] + [UInt8](repeating: 0xee, count: 255)] {
                #expect(try Message(body: Self.body(message, appending: extra)) == message, "\(message.kind.name) + \(extra.prefix(4))")
            }
        }
        // A v1.1 alarm tag 0x03 after both known alarm extensions.
        let alarm = Message.alarm(Alarm(id: 1, kind: .fall, triggeredAt: 5, battery: 50, flags: [], pressCount: 2, holdMilliseconds: 900))
        #expect(try Message(body: Self.body(alarm, appending: [0x03, 0x02, 0xab, 0xcd])) == alarm)
    }

    @Test func anUnknownCriticalExtensionIsRefused() throws {
        for message in F.minimal + F.full {
            for tag in UInt8(0x80)...0xff {
                #expect(throws: ProtocolError.unknownCriticalExtension(message: message.kind.name, tag: tag)) {
                    try Message(body: Self.body(message, appending: [tag, 0x01, 0x00]))
                }
            }
        }
        #expect(ProtocolError.unknownCriticalExtension(message: "alarm", tag: 0x80).category == .unsupported)
    }

    /// Expects `body` to be refused as an invalid `field` of `message`, whatever the reason's wording.
    static func expectInvalid(
        _ body: [UInt8], message: String, field: String, _ comment: Comment? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let error = #expect(throws: ProtocolError.self, comment, sourceLocation: sourceLocation) {
            try Message(body: ByteBuffer(bytes: body))
        }
        guard let error else { return }
        guard case .invalidField(let m, let f, _) = error else {
            Issue.record("refused as \(error), not as an invalid \(message) \(field)", sourceLocation: sourceLocation)
            return
        }
        #expect(m == message, comment, sourceLocation: sourceLocation)
        #expect(f == field, comment, sourceLocation: sourceLocation)
    }

    @Test func aDuplicatedExtensionTagIsRefused() throws {
        // Known tags.
        var alarm = try F.body(.alarm(Alarm(id: 1, kind: .button, triggeredAt: 5, battery: 50, flags: [], pressCount: 2)))
        alarm += [0x01, 0x02, 0x00, 0x09]
        Self.expectInvalid(alarm, message: "alarm", field: "extension 0x1")

        let report = try F.body(.diagnosticsReport(DiagnosticsReport(id: 1, requestID: 2, note: "a"))) + [0x07, 0x01, 0x62]
        Self.expectInvalid(report, message: "diagnosticsReport", field: "extension 0x7")

        let push = try F.body(.configPush(ConfigPush(id: 1, settings: Settings(secondaryCentre: F.ipv4)))) + [0x06, 0x07, 4, 10, 0, 0, 1, 0, 80]
        Self.expectInvalid(push, message: "configPush", field: "extension 0x6")

        // Unknown tags too: a body has one meaning only.
        let ack = try F.body(.ack(Ack(id: 1))) + [0x7f, 0x00, 0x7f, 0x00]
        Self.expectInvalid(ack, message: "ack", field: "extension 0x7f")
    }

    @Test func aBatteryAbove100OtherThan255IsRefusedInEveryPlaceABatteryIs() throws {
        for battery in UInt8(0)...255 {
            let valid = battery <= 100 || battery == 255
            let heartbeat: [UInt8] = [0x02, 0x05, battery]
            let alarm = try F.body(.alarm(Alarm(id: 7, kind: .button, triggeredAt: 1, battery: 0, flags: []))).enumerated().map { $0.offset == 12 ? battery : $0.element }
            let report = try F.body(.diagnosticsReport(DiagnosticsReport(id: 1, requestID: 2))) + [0x01, 0x01, battery]
            for (name, body) in [("heartbeat", heartbeat), ("alarm", alarm), ("diagnosticsReport", report)] {
                if valid {
                    #expect(throws: Never.self, "\(name) battery \(battery)") { try Message(body: ByteBuffer(bytes: body)) }
                } else {
                    Self.expectInvalid(body, message: name, field: "battery", "\(name) battery \(battery)")
                }
            }
            // Nothing unreadable is ever sent either.
            var buffer = ByteBuffer()
            if valid {
                #expect(throws: Never.self) { try Message.heartbeat(Heartbeat(status: [], battery: battery)).encodeBody(into: &buffer) }
            } else {
                let error = #expect(throws: ProtocolError.self) { try Message.heartbeat(Heartbeat(status: [], battery: battery)).encodeBody(into: &buffer) }
                if case .invalidField(let message, let field, _)? = error {
                    #expect(message == "heartbeat" && field == "battery")
                } else {
                    Issue.record("battery \(battery) refused by the encoder as \(String(describing: error))")
                }
                #expect(throws: ProtocolError.self) { try Message.alarm(Alarm(id: 1, kind: .button, triggeredAt: 1, battery: battery, flags: [])).encodeBody(into: &buffer) }
                #expect(throws: ProtocolError.self) { try Message.diagnosticsReport(DiagnosticsReport(id: 1, requestID: 1, battery: battery)).encodeBody(into: &buffer) }
            }
        }
    }

    // MARK: Truncation names the field

    static func truncatedField(_ bytes: [UInt8]) -> (message: String, field: String)? {
        do {
            _ = try Message(body: ByteBuffer(bytes: bytes))
            return nil
        } catch {
            guard case .truncatedBody(let message, let field) = error else { return nil }
            return (message, field)
        }
    }

    @Test func aTruncatedAlarmNamesTheFieldThatIsMissing() throws {
        let body = try F.body(.alarm(Alarm(id: 7, kind: .button, triggeredAt: 1, battery: 50, flags: [], pressCount: 3)))
        // type | id (4) | kind | triggeredAt (6) | battery | flags | 0x01 len=2 pressCount(2)
        let expected: [Int: String] = [
            1: "id", 2: "id", 3: "id", 4: "id", 5: "kind", 6: "triggeredAt", 7: "triggeredAt", 8: "triggeredAt",
            9: "triggeredAt", 10: "triggeredAt", 11: "triggeredAt", 12: "battery", 13: "flags",
            15: "extension length", 16: "extension 0x1", 17: "extension 0x1",
        ]
        #expect(body.count == 18)
        for (length, field) in expected {
            let missing = try #require(Self.truncatedField(Array(body.prefix(length))), "\(length) bytes")
            #expect(missing.message == "alarm")
            #expect(missing.field == field, "\(length) bytes")
        }
        // A known extension whose value is too short names the field itself.
        let short = Array(body.prefix(14)) + [0x01, 0x01, 0x00]
        #expect(Self.truncatedField(short)?.field == "pressCount")
        // And an empty body has no message type.
        #expect(Self.truncatedField([])?.message == "frame")
        #expect(Self.truncatedField([])?.field == "message type")
    }

    @Test func everyKindTruncatedAnywhereInItsFixedFieldsNamesItselfAndAField() throws {
        let first: [Message.Kind: String] = [
            .sessionStart: "firmware", .heartbeat: "status", .alarm: "id", .alarmCancel: "id", .event: "id",
            .diagnosticsReport: "id", .sessionAccept: "centerTime", .heartbeatAck: "echoedCounter", .caseUpdate: "id",
            .configPush: "id", .diagnosticsRequest: "id", .ack: "id", .nak: "id", .callOffer: "id", .callAnswer: "id",
            .callEnd: "id",
        ]
        for message in F.minimal + F.full {
            let body = try F.body(message)
            let minimalLength = try F.body(F.minimal.first { $0.kind == message.kind }!).count
            #expect(Self.truncatedField([body[0]])?.field == first[message.kind], "\(message.kind.name)")
            for length in 1..<minimalLength {
                let missing = Self.truncatedField(Array(body.prefix(length)))
                #expect(missing?.message == message.kind.name, "\(message.kind.name) cut to \(length)")
                #expect(missing.map { !$0.field.isEmpty } == true, "\(message.kind.name) cut to \(length)")
            }
        }
        // Inside a call's media description.
        let offer = try F.body(F.minimal[13])
        #expect(Self.truncatedField(Array(offer.prefix(13)))?.field == "media.endpoint")
        #expect(Self.truncatedField(Array(offer.prefix(13 + 7)))?.field == "media.audioPayloadType")
        #expect(Self.truncatedField(Array(offer.prefix(13 + 8)))?.field == "media.ssrc")
        #expect(Self.truncatedField(Array(offer.prefix(13 + 12 + 29)))?.field == "media.keyMaterial")
        #expect(Self.truncatedField(Array(offer.prefix(13 + 12 + 30)))?.field == "media.videoPayloadType")
    }

    // MARK: Types and codes

    @Test func everyUnknownMessageTypeIsRefused() throws {
        let known = Set(Message.Kind.allCases.map(\.rawValue))
        #expect(known.count == 16)
        for type in UInt8(0)...255 where !known.contains(type) {
            for tail: [UInt8] in [[], [0, 0, 0, 1], [UInt8](repeating: 0, count: 80)] {
                #expect(throws: ProtocolError.unknownMessageType(type)) { try Message(body: ByteBuffer(bytes: [type] + tail)) }
            }
        }
        #expect(ProtocolError.unknownMessageType(0x7f).category == .unsupported)
    }

    @Test func unknownAlarmKindsAndOtherCodesAreKeptNotRefused() throws {
        let key = F.key()
        for raw in UInt8(0)...255 {
            let alarm = Message.alarm(Alarm(id: 7, kind: AlarmKind(rawValue: raw), triggeredAt: F.t0, battery: 87, flags: []))
            let frame = try F.datagram(try F.seal(alarm, direction: .up, counter: F.anchor + 1))
            guard case .alarm(let opened) = try frame.open(with: key.upKey) else {
                Issue.record("alarm kind \(raw) did not open as an alarm")
                continue
            }
            #expect(opened.kind.rawValue == raw)
            #expect(opened.kind.isKnown == (1...5).contains(raw))
            if !opened.kind.isKnown { #expect(opened.kind.description == "unknown(\(raw))") }

            let others: [Message] = [
                .event(DeviceEvent(id: 1, kind: DeviceEventKind(rawValue: raw), at: 1, value: 2)),
                .caseUpdate(CaseUpdate(id: 1, alarmID: 2, state: CaseState(rawValue: raw), at: 3)),
                .nak(Nak(id: 1, reason: NakReason(rawValue: raw), senderTime: 4)),
                .callEnd(CallEnd(id: 1, callID: 2, reason: CallEndReason(rawValue: raw))),
            ]
            for message in others {
                #expect(try Message(body: ByteBuffer(bytes: F.body(message))) == message, "\(message.kind.name) code \(raw)")
            }
        }
    }

    // MARK: Other field checks

    @Test func malformedFieldValuesAreRefusedAsInvalidNotTrusted() throws {
        let report = try F.body(.diagnosticsReport(DiagnosticsReport(id: 1, requestID: 2)))
        // A boolean is 0 or 1.
        for value in UInt8(2)...255 {
            Self.expectInvalid(report + [0x02, 0x01, value], message: "diagnosticsReport", field: "mainsPresent")
        }
        // A note is UTF-8 of at most 200 bytes.
        Self.expectInvalid(report + [0x07, 0x02, 0xc3, 0x28], message: "diagnosticsReport", field: "note")
        Self.expectInvalid(report + [0x07, 201] + [UInt8](repeating: 0x61, count: 201), message: "diagnosticsReport", field: "note")
        #expect(throws: Never.self) { try Message(body: ByteBuffer(bytes: report + [0x07, 200] + [UInt8](repeating: 0x61, count: 200))) }
        // A model is at most 32 bytes.
        let start = try F.body(F.minimal[0])
        Self.expectInvalid(start + [0x01, 33] + [UInt8](repeating: 0x61, count: 33), message: "sessionStart", field: "model")
        // An address family is 4 or 6.
        var offer = try F.body(F.minimal[13])
        for family in UInt8(0)...255 where family != 4 && family != 6 {
            offer[13] = family
            Self.expectInvalid(offer, message: "callOffer", field: "media.endpoint")
        }
        // A known extension longer than its value.
        let push = try F.body(.configPush(ConfigPush(id: 1, settings: Settings()))) + [0x02, 0x03, 0, 1, 2]
        Self.expectInvalid(push, message: "configPush", field: "extension 0x2")
    }

    // MARK: Key text

    /// "not hexadecimal" said nothing of what was wrong with a key copied one digit short.
    @Test func hexThatIsWrongSaysWhy() {
        #expect(throws: HexError.oddNumberOfDigits(3)) { try Hex.parse("abc") }
        #expect(throws: HexError.notADigit(position: 3)) { try Hex.parse("ab:g0") }
        #expect(throws: HexError.notADigit(position: 1)) { try Hex.parse("-1") }
        #expect(HexError.oddNumberOfDigits(63).description == "odd number of hex digits (63): every byte is two digits, so one is missing or one too many")
        #expect(KeyError.notHex(.oddNumberOfDigits(63)).description.hasPrefix("the key is not hex: odd number of hex digits (63)"))
    }

    @Test func hexKeyTextIsRefusedUnlessItIsOnlyHexDigits() {
        #expect(Hex.decode("00 01:02") == [0, 1, 2])
        #expect(Hex.decode("0x0A0b") == [0x0a, 0x0b])
        #expect(Hex.decode("") == [])
        // Swift's `UInt8(_:radix:)` accepts a leading sign, so "+f" and "-0" must be refused before it.
        for bad in ["0", "0g", "zz", "+f", "-0", "+1+2", "0x+f", "é1", "١٢"] {
            #expect(Hex.decode(bad) == nil, "'\(bad)'")
        }
        var rng = ProtocolTestRNG(seed: 0x4E7)
        for _ in 0..<500 {
            let bytes = rng.bytes(rng.below(70))
            #expect(Hex.decode(Hex.encode(bytes)) == bytes)
            #expect(Hex.decode(Hex.encode(bytes, separator: " ")) == bytes)
        }
    }
}
