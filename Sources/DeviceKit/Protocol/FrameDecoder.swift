import NIOCore

/// Cuts a TCP byte stream into frames (protocol.md §2.2).
///
/// Returns `nil` until a whole frame is buffered; refuses a bad version or an impossible length as soon as
/// the first three bytes arrive, so a hostile peer cannot make it buffer more than `Wire.maximumFrameLength`.
/// There is no resynchronisation: after an error the connection must be closed.
public struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = SealedFrame

    public init() {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> SealedFrame? {
        guard let (_, length) = try FrameHeader.peekLength(buffer), let frame = buffer.readSlice(length: length)
        else { return nil }
        return try SealedFrame(datagram: frame)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> SealedFrame? {
        try decode(buffer: &buffer)
    }
}
