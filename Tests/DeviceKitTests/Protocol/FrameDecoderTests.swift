import NIOCore
import Testing

@testable import DeviceKit

/// Cutting a TCP byte stream into frames, and UDP datagrams into one frame each (protocol.md §2.1, §2.2).
@Suite struct FrameDecoderTests {
    typealias F = ProtocolFixtures

    /// A conversation as it could appear on one TCP stream: up and down frames of every size, with both extremes.
    static func frames() throws -> [(bytes: [UInt8], message: Message, direction: Wire.Direction)] {
        var out: [(bytes: [UInt8], message: Message, direction: Wire.Direction)] = []
        var up = F.anchor
        var sequence: UInt64 = 0
        for message in F.minimal + F.full {
            let direction = F.direction(of: message.kind)
            let counter: UInt64
            if direction == .up {
                up += 1
                counter = up
            } else {
                counter = F.downCounter(sequence)
                sequence += 1
            }
            out.append((try F.seal(message, direction: direction, counter: counter), message, direction))
        }
        return out
    }

    /// Feeds `chunks` one after the other, draining the decoder after each; returns the frames with the index
    /// of the chunk after which each came out.
    static func feed(_ chunks: [[UInt8]]) throws -> [(frame: SealedFrame, afterChunk: Int)] {
        var decoder = FrameDecoder()
        var buffer = ByteBuffer()
        var out: [(frame: SealedFrame, afterChunk: Int)] = []
        for (index, chunk) in chunks.enumerated() {
            buffer.writeBytes(chunk)
            while let frame = try decoder.decode(buffer: &buffer) { out.append((frame, index)) }
        }
        let rest = try decoder.decode(buffer: &buffer)
        #expect(rest == nil)
        #expect(buffer.readableBytes == 0)
        return out
    }

    static func check(_ decoded: [SealedFrame], against frames: [(bytes: [UInt8], message: Message, direction: Wire.Direction)]) throws {
        try #require(decoded.count == frames.count)
        let key = F.key()
        for (frame, expected) in zip(decoded, frames) {
            #expect(Array(frame.bytes.readableBytesView) == expected.bytes)
            #expect(frame.header.direction == expected.direction)
            #expect(frame.header.length == expected.bytes.count)
            #expect(frame.header.deviceID == F.deviceID)
            let message = try frame.open(with: expected.direction == .up ? key.upKey : key.downKey(anchor: F.anchor))
            #expect(message == expected.message)
        }
    }

    @Test func framesFedOneByteAtATimeComeOutInOrderEachExactlyWhenItsLastByteArrives() throws {
        let frames = try Self.frames()
        let stream = frames.flatMap(\.bytes)
        let out = try Self.feed(stream.map { [$0] })
        try Self.check(out.map(\.frame), against: frames)
        // Frame i comes out on its last byte, and nothing comes out on any other byte.
        var end = -1
        for (i, frame) in frames.enumerated() {
            end += frame.bytes.count
            #expect(out[i].afterChunk == end, "frame \(i)")
        }
        #expect(Set(out.map(\.afterChunk)).count == frames.count)
    }

    @Test func framesGivenAllAtOnceComeOutInOrderThenNil() throws {
        let frames = try Self.frames()
        var buffer = ByteBuffer(bytes: frames.flatMap(\.bytes))
        var decoder = FrameDecoder()
        var decoded: [SealedFrame] = []
        while let frame = try decoder.decode(buffer: &buffer) { decoded.append(frame) }
        try Self.check(decoded, against: frames)
        #expect(buffer.readableBytes == 0)
        let more = try decoder.decode(buffer: &buffer)
        #expect(more == nil)
        let last = try decoder.decodeLast(buffer: &buffer, seenEOF: true)
        #expect(last == nil)
    }

    @Test func framesSplitAtEveryPossiblePointComeOutTheSame() throws {
        // Three frames of different sizes and directions; every split of their concatenation into two reads.
        let all = try Self.frames()
        let frames = [all[1], all[6], all[13 + 16]]  // heartbeat (up), sessionAccept (down), callOffer IPv6 (up)
        let stream = frames.flatMap(\.bytes)
        for split in 0...stream.count {
            let out = try Self.feed([Array(stream[..<split]), Array(stream[split...])])
            try Self.check(out.map(\.frame), against: frames)
            // A frame comes out of the first read only if it was wholly in it.
            var end = 0
            for (i, frame) in frames.enumerated() {
                end += frame.bytes.count
                #expect(out[i].afterChunk == (end <= split ? 0 : 1), "split \(split), frame \(i)")
            }
        }
    }

    @Test func framesSplitIntoRandomChunksComeOutTheSame() throws {
        let frames = try Self.frames()
        let stream = frames.flatMap(\.bytes)
        var rng = ProtocolTestRNG(seed: 0xDEC0_DE)
        for _ in 0..<50 {
            var chunks: [[UInt8]] = []
            var i = 0
            while i < stream.count {
                let n = min(stream.count - i, 1 + rng.below(120))
                chunks.append(Array(stream[i..<i + n]))
                i += n
            }
            try Self.check(try Self.feed(chunks).map(\.frame), against: frames)
        }
    }

    @Test func aPartialFrameWaitsWithoutConsumingAnything() throws {
        let frame = try F.seal(F.minimal[2], direction: .up, counter: F.anchor + 1)
        var decoder = FrameDecoder()
        for count in 0..<frame.count {
            var buffer = ByteBuffer(bytes: frame[..<count])
            let decoded = try decoder.decode(buffer: &buffer)
            #expect(decoded == nil, "\(count) bytes")
            #expect(buffer.readableBytes == count, "\(count) bytes")
            let last = try decoder.decodeLast(buffer: &buffer, seenEOF: true)
            #expect(last == nil, "\(count) bytes at EOF")
        }
    }

    // MARK: Refusing before buffering

    /// Feeds `bytes` one at a time; returns how many were in the buffer when the decoder threw, and the error.
    static func refusal(of bytes: [UInt8]) -> (at: Int, error: ProtocolError)? {
        var decoder = FrameDecoder()
        var buffer = ByteBuffer()
        for (i, byte) in bytes.enumerated() {
            buffer.writeInteger(byte)
            do {
                if try decoder.decode(buffer: &buffer) != nil { return nil }
            } catch let error as ProtocolError {
                return (i + 1, error)
            } catch {
                Issue.record("untyped error \(error)")
                return nil
            }
        }
        return nil
    }

    @Test(arguments: [UInt8(0x00), 0x08, 0x20, 0x28, 0x30, 0x70, 0xf0, 0xff, 0x0f])
    func aBadVersionIsRefusedByTheThirdByte(first: UInt8) throws {
        let refusal = try #require(Self.refusal(of: [first, 0x00, 0x20] + [UInt8](repeating: 0, count: 29)))
        #expect(refusal.at <= 3)
        #expect(refusal.error == .unsupportedVersion(first >> 4))
        #expect(refusal.error.category == .unsupported)
    }

    @Test(arguments: [
        // (first byte, length, minimum): up frames need 30 bytes, down frames 32.
        (UInt8(0x10), 0, 30), (0x10, 1, 30), (0x10, 13, 30), (0x10, 29, 30),
        (0x18, 0, 32), (0x18, 30, 32), (0x18, 31, 32),
        // Reserved bits do not change the minimum.
        (0x17, 29, 30), (0x1f, 31, 32),
    ])
    func aTooShortLengthIsRefusedOnTheThirdByte(first: UInt8, length: Int, minimum: Int) throws {
        let bytes = [first, UInt8(length >> 8), UInt8(length & 0xff)] + [UInt8](repeating: 0, count: 64)
        let refusal = try #require(Self.refusal(of: bytes))
        #expect(refusal.at == 3)
        #expect(refusal.error == .frameTooShort(length: length, minimum: minimum))
        #expect(refusal.error.category == .malformed)
    }

    @Test(arguments: [(UInt8(0x10), 1025), (0x18, 1025), (0x10, 0x1000), (0x18, 0xffff), (0x10, 0xffff)])
    func aTooLongLengthIsRefusedOnTheThirdByte(first: UInt8, length: Int) throws {
        let bytes = [first, UInt8(length >> 8), UInt8(length & 0xff)] + [UInt8](repeating: 0, count: 64)
        let refusal = try #require(Self.refusal(of: bytes))
        #expect(refusal.at == 3)
        #expect(refusal.error == .frameTooLong(length: length, maximum: 1024))
        #expect(refusal.error.category == .oversized)
    }

    @Test(arguments: [(UInt8(0x10), 30), (0x18, 32), (0x10, 1024), (0x18, 1024), (0x17, 30)])
    func theExtremeValidLengthsAreWaitedFor(first: UInt8, length: Int) throws {
        // Nothing is refused for the length, and the decoder waits for exactly `length` bytes.
        var decoder = FrameDecoder()
        var buffer = ByteBuffer(bytes: [first, UInt8(length >> 8), UInt8(length & 0xff)])
        let early = try decoder.decode(buffer: &buffer)
        #expect(early == nil)
        buffer.writeBytes([UInt8](repeating: 0, count: length - 4))
        let almost = try decoder.decode(buffer: &buffer)
        #expect(almost == nil)
        buffer.writeBytes([0, 0xAA])
        let frame = try #require(try decoder.decode(buffer: &buffer))
        #expect(frame.header.length == length)
        #expect(frame.bytes.readableBytes == length)
        #expect(buffer.readableBytes == 1)
    }

    @Test func framesBeforeABadLengthAreDeliveredThenTheStreamIsRefused() throws {
        let frames = try Self.frames()
        let good = frames[0].bytes + frames[1].bytes
        var buffer = ByteBuffer(bytes: good + [0x10, 0x04, 0x01] + [UInt8](repeating: 0, count: 2_000))
        var decoder = FrameDecoder()
        let first = try decoder.decode(buffer: &buffer)
        let second = try decoder.decode(buffer: &buffer)
        #expect(first != nil && second != nil)
        #expect(throws: ProtocolError.frameTooLong(length: 1025, maximum: 1024)) { try decoder.decode(buffer: &buffer) }
    }

    @Test func reservedBitsAreIgnoredByTheDecoderButAuthenticated() throws {
        var bytes = try F.seal(F.minimal[1], direction: .up, counter: F.anchor + 1)
        bytes[0] |= 0x07
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = FrameDecoder()
        let frame = try #require(try decoder.decode(buffer: &buffer))
        #expect(frame.header.direction == .up)
        #expect(throws: ProtocolError.authenticationFailed) { try frame.open(with: F.key().upKey) }
    }

    // MARK: Datagrams

    @Test func aDatagramWhoseSizeDiffersFromItsLengthFieldIsRefused() throws {
        for message in [F.minimal[1], F.minimal[6], F.full[13]] {
            let direction = F.direction(of: message.kind)
            let frame = try F.seal(message, direction: direction, counter: direction == .up ? F.anchor + 1 : F.downCounter(0))
            let n = frame.count
            #expect(throws: Never.self) { try F.datagram(frame) }
            #expect(throws: ProtocolError.datagramLengthMismatch(announced: n, received: n + 1)) { try F.datagram(frame + [0]) }
            #expect(throws: ProtocolError.datagramLengthMismatch(announced: n, received: n - 1)) { try F.datagram(Array(frame.dropLast())) }
            #expect(throws: ProtocolError.datagramLengthMismatch(announced: n, received: 2 * n)) { try F.datagram(frame + frame) }
            let headerSize = FrameHeader.size(direction)
            #expect(throws: ProtocolError.datagramLengthMismatch(announced: n, received: headerSize)) {
                try F.datagram(Array(frame.prefix(headerSize)))
            }
            for cut in 0..<headerSize {
                #expect(throws: ProtocolError.truncatedHeader(received: cut)) { try F.datagram(Array(frame.prefix(cut))) }
            }
            #expect(ProtocolError.datagramLengthMismatch(announced: n, received: n + 1).category == .malformed)
        }
    }

    @Test func aDatagramIsParsedFromItsReaderIndexNotFromTheStartOfItsStorage() throws {
        let frame = try F.seal(F.minimal[1], direction: .up, counter: F.anchor + 1)
        var buffer = ByteBuffer(bytes: [0xff, 0xff, 0xff] + frame)
        buffer.moveReaderIndex(forwardBy: 3)
        let parsed = try SealedFrame(datagram: buffer)
        #expect(parsed.header.length == frame.count)
        #expect(try parsed.open(with: F.key().upKey) == F.minimal[1])
    }

    @Test func aDatagramWithABadVersionOrLengthIsRefusedLikeAStream() throws {
        #expect(throws: ProtocolError.unsupportedVersion(2)) { try F.datagram([0x20, 0x00, 0x20] + [UInt8](repeating: 0, count: 29)) }
        #expect(throws: ProtocolError.frameTooShort(length: 29, minimum: 30)) { try F.datagram([0x10, 0x00, 29] + [UInt8](repeating: 0, count: 26)) }
        #expect(throws: ProtocolError.frameTooLong(length: 1025, maximum: 1024)) { try F.datagram([0x10, 0x04, 0x01] + [UInt8](repeating: 0, count: 1022)) }
        // A down header is 15 bytes: a 14-byte datagram announcing a valid length is a truncated header.
        #expect(throws: ProtocolError.truncatedHeader(received: 14)) { try F.datagram([0x18, 0x00, 32] + [UInt8](repeating: 0, count: 11)) }
    }
}
