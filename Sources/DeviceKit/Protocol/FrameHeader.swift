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
        // One look at the bytes rather than one call a field: each ByteBuffer call costs an access check.
        let (first, length) = buffer.withUnsafeReadableBytes { raw -> (UInt8?, UInt16?) in
            guard !raw.isEmpty else { return (nil, nil) }
            guard raw.count >= 3 else { return (raw[0], nil) }
            return (raw[0], UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 1, as: UInt16.self)))
        }
        guard let first else { return nil }
        guard first >> 4 == Wire.version else { throw .unsupportedVersion(first >> 4) }
        guard let length else { return nil }
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
        // The sizes were checked above, so these loads are within the bytes.
        let header = buffer.withUnsafeReadableBytes { raw in
            let deviceID = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 3, as: UInt32.self))
            let counter: UInt64
            switch direction {
            case .up:
                counter = UInt64(UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: 7, as: UInt16.self))) << 32
                    | UInt64(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 9, as: UInt32.self)))
            case .down:
                counter = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 7, as: UInt64.self))
            }
            return FrameHeader(direction: direction, length: length, deviceID: deviceID, counter: counter, keyEpochBits: raw[0])
        }
        buffer.moveReaderIndex(forwardBy: size(direction))
        return header
    }

    /// Writes the header in one call (laid out on the stack first), as `read` reads it in one.
    func write(to buffer: inout ByteBuffer) {
        let flags: UInt8 = direction == .down ? Wire.directionDownFlag : keyEpochBits & Wire.keyEpochMask
        var bytes: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &bytes) { raw in
            raw[0] = Wire.version << 4 | flags
            raw.storeBytes(of: UInt16(truncatingIfNeeded: length).bigEndian, toByteOffset: 1, as: UInt16.self)
            raw.storeBytes(of: deviceID.bigEndian, toByteOffset: 3, as: UInt32.self)
            switch direction {
            case .up:
                raw.storeBytes(of: UInt16(truncatingIfNeeded: counter >> 32).bigEndian, toByteOffset: 7, as: UInt16.self)
                raw.storeBytes(of: UInt32(truncatingIfNeeded: counter).bigEndian, toByteOffset: 9, as: UInt32.self)
            case .down:
                raw.storeBytes(of: counter.bigEndian, toByteOffset: 7, as: UInt64.self)
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[..<Self.size(direction)]))
        }
    }
}

extension ByteBuffer {
    /// Reads a big-endian 48-bit unsigned integer.
    mutating func readUInt48() -> UInt64? {
        guard readableBytes >= 6 else { return nil }
        let value = withUnsafeReadableBytes { raw in
            UInt64(UInt16(bigEndian: raw.loadUnaligned(as: UInt16.self))) << 32
                | UInt64(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 2, as: UInt32.self)))
        }
        moveReaderIndex(forwardBy: 6)
        return value
    }

    /// Writes the low 48 bits of `value`, big-endian, in one call.
    mutating func writeUInt48(_ value: UInt64) {
        // Shifted to the top, the big-endian form's first six bytes are the 48 bits.
        var bytes = (value << 16).bigEndian
        Swift.withUnsafeBytes(of: &bytes) { writeBytes(UnsafeRawBufferPointer(rebasing: $0[..<6])) }
    }
}
