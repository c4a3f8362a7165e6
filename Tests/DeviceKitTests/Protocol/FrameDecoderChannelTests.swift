import NIOCore
import NIOEmbedded
import Testing

@testable import DeviceKit

/// `FrameDecoder` in a pipeline, as the device and the centre run it over TCP (`ByteToMessageHandler`), on
/// an `EmbeddedChannel`: reads split and coalesced as a socket delivers them, and what the pipeline does
/// with a length it must refuse and with garbage (protocol.md §2.2: no resynchronisation).
@Suite struct FrameDecoderChannelTests {
    static func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder()))
        return channel
    }

    static func frames() throws -> [[UInt8]] { try FrameDecoderTests.frames().map(\.bytes) }

    /// Everything the pipeline passed on so far.
    static func decoded(_ channel: EmbeddedChannel) throws -> [[UInt8]] {
        var out: [[UInt8]] = []
        while let frame = try channel.readInbound(as: SealedFrame.self) { out.append(Array(frame.bytes.readableBytesView)) }
        return out
    }

    @Test func aFrameSplitAcrossReadsIsPassedOnOnceItsLastReadArrives() throws {
        let channel = try Self.channel()
        let frame = try Self.frames()[0]
        for split in [1, 3, 13, frame.count - 1] {
            try channel.writeInbound(ByteBuffer(bytes: frame.prefix(split)))
            #expect(try Self.decoded(channel).isEmpty, "nothing after \(split) of \(frame.count) bytes")
            try channel.writeInbound(ByteBuffer(bytes: frame.dropFirst(split)))
            #expect(try Self.decoded(channel) == [frame])
        }
        #expect(try channel.finish().isClean)
    }

    @Test func framesCoalescedInOneReadArePassedOnOneByOneInOrder() throws {
        let channel = try Self.channel()
        let frames = try Self.frames()
        // Every frame of the conversation in one read, then a read with the end of one and the start of the next.
        try channel.writeInbound(ByteBuffer(bytes: frames.joined()))
        #expect(try Self.decoded(channel) == frames)
        try channel.writeInbound(ByteBuffer(bytes: frames[0] + frames[1].prefix(5)))
        #expect(try Self.decoded(channel) == [frames[0]])
        try channel.writeInbound(ByteBuffer(bytes: frames[1].dropFirst(5)))
        #expect(try Self.decoded(channel) == [frames[1]])
        #expect(try channel.finish().isClean)
    }

    @Test func anOversizeLengthIsRefusedOnItsThirdByteAndNothingAfterItIsDecoded() throws {
        let channel = try Self.channel()
        let frames = try Self.frames()
        // A frame, then a header announcing 2,000 bytes: the frame is passed on, the stream refused at once,
        // before the 2,000 bytes could be buffered.
        #expect(throws: ProtocolError.frameTooLong(length: 2000, maximum: 1024)) {
            try channel.writeInbound(ByteBuffer(bytes: frames[0] + [0x10, 0x07, 0xd0]))
        }
        #expect(try Self.decoded(channel) == [frames[0]])
        // The stream cannot be resynchronised: a valid frame after it is not decoded.
        let error = #expect(throws: ByteToMessageDecoderError.self) { try channel.writeInbound(ByteBuffer(bytes: frames[1])) }
        guard case .dataReceivedInErrorState(let first, _)? = error else {
            Issue.record("expected data received in the error state, got \(String(describing: error))")
            return
        }
        #expect(first as? ProtocolError == .frameTooLong(length: 2000, maximum: 1024))
        #expect(try Self.decoded(channel).isEmpty)
        _ = try? channel.finish()
    }

    @Test func garbageIsRefusedAsSoonAsItsHeaderIsReadAndNeverPassedOn() throws {
        var random = SplitMix64(seed: 13)
        var refused = 0
        for _ in 0..<500 {
            let channel = try Self.channel()
            let bytes = (0..<Int(random.next() % 64 + 3)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            do {
                try channel.writeInbound(ByteBuffer(bytes: bytes))
            } catch is ProtocolError {
                refused += 1
            }
            // Whatever the bytes, nothing that is not a whole, well-formed frame comes out.
            for frame in try Self.decoded(channel) { #expect(frame.count >= 30 && frame.count <= bytes.count) }
            _ = try? channel.finish()
        }
        #expect(refused > 400, "random first bytes are mostly a bad version: \(refused) of 500 refused")
    }
}
