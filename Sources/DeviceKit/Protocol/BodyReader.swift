import NIOCore

/// Reads the fields of one message body, throwing a typed error that names the field that is missing.
///
/// It owns a slice of exactly one body, so no read can run past the frame.
struct BodyReader {
    private(set) var buffer: ByteBuffer
    /// Named only when an error is thrown: building strings on the good path would cost more than decoding.
    let kind: Message.Kind
    var message: String { kind.name }

    init(_ buffer: ByteBuffer, message: Message.Kind) {
        self.buffer = buffer
        self.kind = message
    }

    mutating func u8(_ field: String) throws(ProtocolError) -> UInt8 {
        guard let v = buffer.readInteger(as: UInt8.self) else { throw truncated(field) }
        return v
    }

    mutating func u16(_ field: String) throws(ProtocolError) -> UInt16 {
        guard let v = buffer.readInteger(as: UInt16.self) else { throw truncated(field) }
        return v
    }

    mutating func u32(_ field: String) throws(ProtocolError) -> UInt32 {
        guard let v = buffer.readInteger(as: UInt32.self) else { throw truncated(field) }
        return v
    }

    mutating func u48(_ field: String) throws(ProtocolError) -> UInt64 {
        guard let v = buffer.readUInt48() else { throw truncated(field) }
        return v
    }

    mutating func u64(_ field: String) throws(ProtocolError) -> UInt64 {
        guard let v = buffer.readInteger(as: UInt64.self) else { throw truncated(field) }
        return v
    }

    mutating func bytes(_ count: Int, _ field: String) throws(ProtocolError) -> [UInt8] {
        guard let v = buffer.readBytes(length: count) else { throw truncated(field) }
        return v
    }

    /// An address family byte (4 or 6), the address, then the port.
    mutating func endpoint(_ field: String) throws(ProtocolError) -> Endpoint {
        let family = try u8(field)
        let length: Int
        switch family {
        case 4: length = 4
        case 6: length = 16
        default: throw invalid(field, "address family \(family) is neither 4 nor 6")
        }
        let address = try bytes(length, field)
        return Endpoint(address: address, port: try u16(field))
    }

    /// Reads the extension area: `tag, length, value` triples up to the end of the body (protocol.md §4.1).
    ///
    /// `handle` returns `false` for a tag it does not know. An unknown tag with the critical bit (0x80) set
    /// makes the whole message undecodable; other unknown tags are skipped, so a v1.1 sender works with a
    /// v1 receiver. Tags must ascend, so a tag cannot appear twice and every body has one meaning.
    mutating func extensions(
        _ handle: (UInt8, inout BodyReader) throws(ProtocolError) -> Bool
    ) throws(ProtocolError) {
        var previous = -1
        while buffer.readableBytes > 0 {
            let tag = try u8("extension tag")
            let length = Int(try u8("extension length"))
            guard let value = buffer.readSlice(length: length) else { throw truncated("extension 0x\(hex(tag))") }
            guard Int(tag) > previous else {
                throw invalid("extension 0x\(hex(tag))", "repeated or out of ascending order")
            }
            previous = Int(tag)
            var valueReader = BodyReader(value, message: kind)
            if try handle(tag, &valueReader) {
                guard valueReader.buffer.readableBytes == 0 else {
                    throw invalid("extension 0x\(hex(tag))", "\(length) bytes is longer than its value")
                }
            } else if tag & 0x80 != 0 {
                throw .unknownCriticalExtension(message: message, tag: tag)
            }
        }
    }

    /// The whole remaining value as UTF-8 text.
    mutating func text(_ field: String, maximum: Int) throws(ProtocolError) -> String {
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        guard bytes.count <= maximum else { throw invalid(field, "longer than \(maximum) bytes") }
        guard let s = String(validating: bytes, as: UTF8.self) else { throw invalid(field, "not UTF-8") }
        return s
    }

    func truncated(_ field: String) -> ProtocolError { .truncatedBody(message: message, field: field) }
    func invalid(_ field: String, _ reason: String) -> ProtocolError {
        .invalidField(message: message, field: field, reason: reason)
    }

    private func hex(_ v: UInt8) -> String { String(v, radix: 16) }
}

/// Writes extension triples in ascending tag order.
struct ExtensionWriter {
    var buffer: ByteBuffer

    mutating func write(_ tag: UInt8, _ body: (inout ByteBuffer) -> Void) {
        buffer.writeInteger(tag)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt8(0))
        let start = buffer.writerIndex
        body(&buffer)
        buffer.setInteger(UInt8(truncatingIfNeeded: buffer.writerIndex - start), at: lengthIndex)
    }

    mutating func u8(_ tag: UInt8, _ value: UInt8?) {
        if let value { write(tag) { $0.writeInteger(value) } }
    }
    mutating func u16(_ tag: UInt8, _ value: UInt16?) {
        if let value { write(tag) { $0.writeInteger(value) } }
    }
    mutating func u32(_ tag: UInt8, _ value: UInt32?) {
        if let value { write(tag) { $0.writeInteger(value) } }
    }
    mutating func bool(_ tag: UInt8, _ value: Bool?) {
        if let value { write(tag) { $0.writeInteger(UInt8(value ? 1 : 0)) } }
    }
    mutating func text(_ tag: UInt8, _ value: String?) {
        if let value { write(tag) { $0.writeBytes(Array(value.utf8)) } }
    }
    mutating func endpoint(_ tag: UInt8, _ value: Endpoint?) {
        if let value { write(tag) { $0.writeEndpoint(value) } }
    }
}

extension ByteBuffer {
    mutating func writeEndpoint(_ endpoint: Endpoint) {
        writeInteger(UInt8(endpoint.address.count == 16 ? 6 : 4))
        writeBytes(endpoint.address)
        writeInteger(endpoint.port)
    }
}

extension BodyReader {
    mutating func bool(_ field: String) throws(ProtocolError) -> Bool {
        switch try u8(field) {
        case 0: return false
        case 1: return true
        case let v: throw invalid(field, "\(v) is neither 0 nor 1")
        }
    }
}
