import Foundation
import NIOCore

/// One whole frame as received: its parsed cleartext header and its bytes, not yet authenticated.
///
/// Framing comes first and sealing second: a `SealedFrame` is cut to exactly `header.length` bytes, so
/// nothing that parses its body can read past it (protocol.md §2).
public struct SealedFrame: Sendable {
    public let header: FrameHeader
    /// The whole frame, header and tag included.
    public let bytes: ByteBuffer

    /// Parses one whole frame, as a UDP datagram carries it: its size must equal the announced length.
    public init(datagram: ByteBuffer) throws(ProtocolError) {
        var reader = datagram
        let header = try FrameHeader.read(from: &reader)
        guard header.length == datagram.readableBytes else {
            throw .datagramLengthMismatch(announced: header.length, received: datagram.readableBytes)
        }
        self.header = header
        self.bytes = datagram
    }

    private init(header: FrameHeader, bytes: ByteBuffer) {
        self.header = header
        self.bytes = bytes
    }

    /// The same frame in storage of its own: a datagram's frame is a view into the buffer it was read into, and
    /// kept, it keeps that whole buffer alive and makes the next read into it allocate a new one.
    func copied() -> SealedFrame {
        SealedFrame(header: header, bytes: ByteBuffer(bytes: bytes.readableBytesView))
    }

    /// Seals `message` into one frame appended to `buffer` (protocol.md §3), in place: the header and the
    /// plaintext body are written, the body is encrypted over itself and the tag written after it. Nothing is
    /// allocated beyond `buffer`'s own growth.
    ///
    /// - Parameters:
    ///   - counter: up: the device's next 48-bit counter, which must never have been used with this key;
    ///     down: `salt << 32 | sequence` of the session.
    ///   - key: 32 bytes (a `SymmetricKey` or an `InlineKey`).
    ///   - keyEpoch: up: the epoch of the key (its low 3 bits go in the header); ignored down.
    public static func seal(
        _ message: Message, direction: Wire.Direction, deviceID: UInt32, counter: UInt64, key: some ContiguousBytes,
        keyEpoch: UInt16 = 0, into buffer: inout ByteBuffer
    ) throws(ProtocolError) {
        if direction == .up, counter > Wire.maximumUpCounter { throw .counterExhausted }
        let headerSize = FrameHeader.size(direction)
        let start = buffer.writerIndex
        // Header with a provisional length, then the plaintext body; the length is patched once known.
        var header = FrameHeader(
            direction: direction, length: 0, deviceID: deviceID, counter: counter,
            keyEpochBits: UInt8(truncatingIfNeeded: keyEpoch))
        header.write(to: &buffer)
        let bodyStart = buffer.writerIndex
        do throws(ProtocolError) {
            try message.encodeBody(into: &buffer)
        } catch {
            buffer.moveWriterIndex(to: start)
            throw error
        }
        let bodyLength = buffer.writerIndex - bodyStart
        let maximumBody = Wire.maximumFrameLength - headerSize - Wire.tagLength
        guard bodyLength <= maximumBody else {
            buffer.moveWriterIndex(to: start)
            throw .messageTooLarge(bodyLength: bodyLength, maximum: maximumBody)
        }
        header.length = headerSize + bodyLength + Wire.tagLength
        buffer.setInteger(UInt16(header.length), at: start + 1)
        buffer.writeRepeatingByte(0, count: Wire.tagLength)
        let offset = start - buffer.readerIndex
        let layout = Layout(headerSize: headerSize, length: header.length)
        buffer.withUnsafeMutableReadableBytes { bytes in
            let frame = UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + header.length)])
            key.withUnsafeBytes { key in
                FrameAEAD.seal(
                    UnsafeMutableRawBufferPointer(rebasing: frame[layout.text]), tag: UnsafeMutableRawBufferPointer(rebasing: frame[layout.tag]),
                    additional: UnsafeRawBufferPointer(rebasing: frame[layout.header]),
                    nonce: UnsafeRawBufferPointer(rebasing: frame[layout.nonce]), key: key)
            }
        }
    }

    /// Where the AEAD's inputs lie in a frame (protocol.md §3.3): the header is the associated data and ends
    /// with the nonce; then the body, encrypted in place; then the tag.
    private struct Layout {
        let header: Range<Int>
        let nonce: Range<Int>
        let text: Range<Int>
        let tag: Range<Int>

        init(headerSize: Int, length: Int) {
            header = 0..<headerSize
            nonce = (headerSize - FrameHeader.nonceLength)..<headerSize
            text = headerSize..<(length - Wire.tagLength)
            tag = (length - Wire.tagLength)..<length
        }
    }

    /// Authenticates, decrypts and decodes the frame with `key`.
    ///
    /// Does not check the counter: that is the receiving session's job (`ReplayWindow`), after this succeeds.
    public func open(with key: some ContiguousBytes) throws(ProtocolError) -> Message {
        try Message(body: try authenticatedBody(with: key))
    }

    /// Authenticates and decrypts the frame with `key`: the plaintext body, not yet decoded, in a buffer of its
    /// own (the frame's bytes are left as they came). The tag is checked before anything is decrypted.
    public func authenticatedBody(with key: some ContiguousBytes) throws(ProtocolError) -> ByteBuffer {
        var body = ByteBuffer()
        try authenticatedBody(with: key, into: &body)
        return body
    }

    /// `authenticatedBody(with:)` into `body`, which is cleared first: a caller that opens frame after frame
    /// keeps one buffer, and nothing is allocated while it is large enough and no one else holds it.
    public func authenticatedBody(with key: some ContiguousBytes, into body: inout ByteBuffer) throws(ProtocolError) {
        let headerSize = FrameHeader.size(header.direction)
        guard bytes.readableBytes >= headerSize + Wire.tagLength else { throw .authenticationFailed }
        let layout = Layout(headerSize: headerSize, length: bytes.readableBytes)
        let textLength = layout.text.count
        body.clear(minimumCapacity: textLength)
        var authentic = false
        bytes.withUnsafeReadableBytes { frame in
            key.withUnsafeBytes { key in
                body.writeWithUnsafeMutableBytes(minimumWritableBytes: textLength) { output in
                    authentic = FrameAEAD.open(
                        UnsafeRawBufferPointer(rebasing: frame[layout.text]), tag: UnsafeRawBufferPointer(rebasing: frame[layout.tag]),
                        additional: UnsafeRawBufferPointer(rebasing: frame[layout.header]),
                        nonce: UnsafeRawBufferPointer(rebasing: frame[layout.nonce]), key: key,
                        into: UnsafeMutableRawBufferPointer(rebasing: output[..<textLength]))
                    return authentic ? textLength : 0
                }
            }
        }
        guard authentic else { throw .authenticationFailed }
    }

    /// The frame as lowercase hex, for logs and `devicesim protocol decode`.
    public var hex: String { Hex.encode(bytes.readableBytesView) }
}
