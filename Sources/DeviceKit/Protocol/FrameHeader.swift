import NIOCore

/// Constants of the wire format (protocol.md §2). All integers are big-endian.
public enum Wire {
    /// The major version this code speaks, in the high nibble of the first byte.
    public static let version: UInt8 = 1
    /// No frame, in either direction, is ever longer. Enforced before buffering.
    public static let maximumFrameLength = 1024
    /// The Poly1305 tag at the end of every frame.
    public static let tagLength = 16
    /// Up counters are 48-bit.
    public static let maximumUpCounter: UInt64 = (1 << 48) - 1

    /// Which way a frame travels. It selects the header layout and the key.
    public enum Direction: UInt8, Sendable, Hashable, Codable {
        /// Device to centre.
        case up = 0
        /// Centre to device.
        case down = 1
    }

    /// Bit 3 of the first byte: set on centre-to-device frames.
    static let directionDownFlag: UInt8 = 0x08
    /// Bits 0–2 of the first byte of an up frame: the key epoch, modulo 8 (protocol.md §3.2).
    static let keyEpochMask: UInt8 = 0x07
}

/// The cleartext, authenticated start of every frame.
///
/// ```
/// up (device → centre), 13 bytes            down (centre → device), 15 bytes
///  0       version<<4 | 0<<3 | epoch%8       0       version<<4 | 1<<3 | 000
///  1..2    frame length (whole frame)        1..2    frame length
///  3..6    device id                         3..6    device id
///  7..12   counter (48 bits)                 7..10   session salt (32 bits)
///                                            11..14  sequence (32 bits)
/// then the encrypted body, then the 16-byte tag.
/// ```
/// The whole header is the AEAD's associated data, so none of it can be altered.
public struct FrameHeader: Hashable, Sendable {
    public var direction: Wire.Direction
    /// Whole frame length, header and tag included.
    public var length: Int
    public var deviceID: UInt32
    /// Up: the 48-bit frame counter. Down: `salt << 32 | sequence`.
    public var counter: UInt64
    /// Up: the low 3 bits of the key epoch the frame is sealed under, so a receiver picks the key before
    /// opening it. Down: 0 (reserved).
    public var keyEpochBits: UInt8

    public init(direction: Wire.Direction, length: Int, deviceID: UInt32, counter: UInt64, keyEpochBits: UInt8 = 0) {
        self.direction = direction
        self.length = length
        self.deviceID = deviceID
        self.counter = counter
        self.keyEpochBits = direction == .up ? keyEpochBits & Wire.keyEpochMask : 0
    }

    /// Bytes before the body.
    public static func size(_ direction: Wire.Direction) -> Int {
        switch direction {
        case .up: return 13
        case .down: return 15
        }
    }

    /// The smallest frame: a header, a type byte and a tag.
    public static func minimumFrameLength(_ direction: Wire.Direction) -> Int {
        size(direction) + 1 + Wire.tagLength
    }

    /// The AEAD nonce is the last 12 bytes of the header (protocol.md §3.3), so the frame's tail from there
    /// on is exactly ChaCha20-Poly1305's "combined" form (nonce ‖ ciphertext ‖ tag) and no nonce is copied.
    ///
    /// Up: length ‖ device id ‖ 48-bit counter. Down: device id ‖ salt ‖ sequence.
    static let nonceLength = 12

    /// Reads the first three bytes: enough to know how long the frame is.
    ///
    /// Returns `nil` when fewer than three bytes are readable; throws when the length can never be valid,
    /// so a stream decoder can refuse before buffering anything more.
    static func peekLength(_ buffer: ByteBuffer) throws(ProtocolError) -> (Wire.Direction, Int)? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        guard first >> 4 == Wire.version else { throw .unsupportedVersion(first >> 4) }
        guard let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self) else { return nil }
        let direction: Wire.Direction = first & Wire.directionDownFlag != 0 ? .down : .up
        let minimum = minimumFrameLength(direction)
        guard Int(length) >= minimum else { throw .frameTooShort(length: Int(length), minimum: minimum) }
        guard Int(length) <= Wire.maximumFrameLength else {
            throw .frameTooLong(length: Int(length), maximum: Wire.maximumFrameLength)
        }
        return (direction, Int(length))
    }

    /// Parses a header from the start of a buffer that holds at least the whole header.
    static func read(from buffer: inout ByteBuffer) throws(ProtocolError) -> FrameHeader {
        let available = buffer.readableBytes
        guard let (direction, length) = try peekLength(buffer), available >= size(direction) else {
            throw .truncatedHeader(received: available)
        }
        let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) ?? 0
        buffer.moveReaderIndex(forwardBy: 3)
        // The sizes were checked above, so these reads cannot fail.
        let deviceID = buffer.readInteger(as: UInt32.self) ?? 0
        let counter: UInt64
        switch direction {
        case .up: counter = buffer.readUInt48() ?? 0
        case .down: counter = buffer.readInteger(as: UInt64.self) ?? 0
        }
        return FrameHeader(direction: direction, length: length, deviceID: deviceID, counter: counter, keyEpochBits: first)
    }

    func write(to buffer: inout ByteBuffer) {
        let flags: UInt8 = direction == .down ? Wire.directionDownFlag : keyEpochBits & Wire.keyEpochMask
        buffer.writeInteger(Wire.version << 4 | flags)
        buffer.writeInteger(UInt16(length))
        buffer.writeInteger(deviceID)
        switch direction {
        case .up: buffer.writeUInt48(counter)
        case .down: buffer.writeInteger(counter)
        }
    }
}

extension ByteBuffer {
    /// Reads a big-endian 48-bit unsigned integer.
    mutating func readUInt48() -> UInt64? {
        guard let high = readInteger(as: UInt16.self), let low = readInteger(as: UInt32.self) else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }

    /// Writes the low 48 bits of `value`, big-endian.
    mutating func writeUInt48(_ value: UInt64) {
        writeInteger(UInt16(truncatingIfNeeded: value >> 32))
        writeInteger(UInt32(truncatingIfNeeded: value))
    }
}
