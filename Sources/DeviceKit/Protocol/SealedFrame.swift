import Crypto
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

    /// Seals `message` into one frame appended to `buffer` (protocol.md §3).
    ///
    /// - Parameters:
    ///   - counter: up: the device's next 48-bit counter, which must never have been used with this key;
    ///     down: `salt << 32 | sequence` of the session.
    public static func seal(
        _ message: Message, direction: Wire.Direction, deviceID: UInt32, counter: UInt64, key: SymmetricKey,
        into buffer: inout ByteBuffer
    ) throws(ProtocolError) {
        if direction == .up, counter > Wire.maximumUpCounter { throw .counterExhausted }
        var body = ByteBuffer()
        try message.encodeBody(into: &body)
        let headerSize = FrameHeader.size(direction)
        let maximumBody = Wire.maximumFrameLength - headerSize - Wire.tagLength
        guard body.readableBytes <= maximumBody else {
            throw .messageTooLarge(bodyLength: body.readableBytes, maximum: maximumBody)
        }
        let header = FrameHeader(
            direction: direction, length: headerSize + body.readableBytes + Wire.tagLength,
            deviceID: deviceID, counter: counter)
        let start = buffer.writerIndex
        header.write(to: &buffer)
        let aad = buffer.getBytes(at: start, length: headerSize) ?? []
        let plaintext = body.readBytes(length: body.readableBytes) ?? []
        do {
            let box = try ChaChaPoly.seal(
                plaintext, using: key, nonce: try ChaChaPoly.Nonce(data: header.nonce), authenticating: aad)
            buffer.writeBytes(box.ciphertext)
            buffer.writeBytes(box.tag)
        } catch {
            // Only a wrong nonce or key size can fail here, and both are fixed by construction.
            preconditionFailure("ChaChaPoly.seal failed: \(error)")
        }
    }

    /// Authenticates, decrypts and decodes the frame with `key`.
    ///
    /// Does not check the counter: that is the receiving session's job (`ReplayWindow`), after this succeeds.
    public func open(with key: SymmetricKey) throws(ProtocolError) -> Message {
        let headerSize = FrameHeader.size(header.direction)
        let total = bytes.readableBytes
        let start = bytes.readerIndex
        guard let aad = bytes.getBytes(at: start, length: headerSize),
            let ciphertext = bytes.getBytes(at: start + headerSize, length: total - headerSize - Wire.tagLength),
            let tag = bytes.getBytes(at: start + total - Wire.tagLength, length: Wire.tagLength)
        else { throw .truncatedHeader(received: total) }
        let plaintext: [UInt8]
        do {
            let box = try ChaChaPoly.SealedBox(
                nonce: try ChaChaPoly.Nonce(data: header.nonce), ciphertext: ciphertext, tag: tag)
            plaintext = Array(try ChaChaPoly.open(box, using: key, authenticating: aad))
        } catch {
            throw .authenticationFailed
        }
        return try Message(body: ByteBuffer(bytes: plaintext))
    }

    /// The frame as lowercase hex, for logs and `devicesim protocol decode`.
    public var hex: String { Hex.encode(bytes.readableBytesView) }
}
