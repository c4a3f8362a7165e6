import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat

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

    /// Seals `message` into one frame appended to `buffer` (protocol.md §3).
    ///
    /// - Parameters:
    ///   - counter: up: the device's next 48-bit counter, which must never have been used with this key;
    ///     down: `salt << 32 | sequence` of the session.
    ///   - keyEpoch: up: the epoch of the key (its low 3 bits go in the header); ignored down.
    public static func seal(
        _ message: Message, direction: Wire.Direction, deviceID: UInt32, counter: UInt64, key: SymmetricKey,
        keyEpoch: UInt16 = 0, into buffer: inout ByteBuffer
    ) throws(ProtocolError) {
        if direction == .up, counter > Wire.maximumUpCounter { throw .counterExhausted }
        let headerSize = FrameHeader.size(direction)
        let start = buffer.writerIndex
        // Header with a provisional length, then the plaintext body in place; the length is patched once
        // known, then the body is encrypted over itself and the tag appended. No intermediate buffers.
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
        let box: ChaChaPoly.SealedBox
        do {
            box = try buffer.withUnsafeReadableBytes { bytes in
                let frame = UnsafeRawBufferPointer(rebasing: bytes[(start - buffer.readerIndex)...])
                return try ChaChaPoly.seal(
                    UnsafeRawBufferPointer(rebasing: frame[headerSize...]), using: key,
                    nonce: try ChaChaPoly.Nonce(data: UnsafeRawBufferPointer(rebasing: frame[(headerSize - FrameHeader.nonceLength)..<headerSize])),
                    authenticating: UnsafeRawBufferPointer(rebasing: frame[..<headerSize]))
            }
        } catch {
            // Only a wrong nonce or key size can fail here, and both are fixed by construction.
            preconditionFailure("ChaChaPoly.seal failed: \(error)")
        }
        buffer.moveWriterIndex(to: bodyStart)
        buffer.writeBytes(box.ciphertext)
        buffer.writeBytes(box.tag)
    }

    /// Authenticates, decrypts and decodes the frame with `key`.
    ///
    /// Does not check the counter: that is the receiving session's job (`ReplayWindow`), after this succeeds.
    public func open(with key: SymmetricKey) throws(ProtocolError) -> Message {
        try Message(body: try authenticatedBody(with: key))
    }

    /// Authenticates and decrypts the frame with `key`: the plaintext body, not yet decoded.
    public func authenticatedBody(with key: SymmetricKey) throws(ProtocolError) -> ByteBuffer {
        let headerSize = FrameHeader.size(header.direction)
        let plaintext: Data
        do {
            plaintext = try bytes.withUnsafeReadableBytes { frame in
                // nonce ‖ ciphertext ‖ tag is the frame's tail: one copy into the sealed box, none here.
                let box = try ChaChaPoly.SealedBox(
                    combined: UnsafeRawBufferPointer(rebasing: frame[(headerSize - FrameHeader.nonceLength)...]))
                return try ChaChaPoly.open(box, using: key, authenticating: UnsafeRawBufferPointer(rebasing: frame[..<headerSize]))
            }
        } catch {
            throw .authenticationFailed
        }
        return ByteBuffer(data: plaintext)
    }

    /// The frame as lowercase hex, for logs and `devicesim protocol decode`.
    public var hex: String { Hex.encode(bytes.readableBytesView) }
}
