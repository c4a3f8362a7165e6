import DeviceKit
import NIOCore

// The fuzzing oracle for the DeviceKit wire codec (protocol.md §2–§4).
//
// Bad input must only ever make the codec *throw* a `ProtocolError`. `fatalError` below fires only when an
// invariant of our own code breaks: a decoder that disagrees with itself, a decoded message that does not
// re-encode to the same message, a frame that seals but does not open, and so on. A libFuzzer crash is
// therefore always a bug in DeviceKit (or in this oracle), never merely "bad bytes".

/// The keys of protocol.md §7 (root key 00 01 … 1f, device 1, session anchor 65536), so the seed frames taken
/// from the test vectors really authenticate and the successful `open` path is covered as well.
/// (Typed by inference, so this target needs no direct dependency on swift-crypto.)
enum FuzzKeys {
    static let deviceID: UInt32 = 1
    static let anchor: UInt64 = 65536
}

let fuzzDeviceKey: DeviceKey = {
    do {
        return try DeviceKey(deviceID: FuzzKeys.deviceID, rootKey: Array(0..<32))
    } catch {
        fatalError("test key refused: \(error)")
    }
}()
let fuzzUpKey = fuzzDeviceKey.upKey
let fuzzDownKey = fuzzDeviceKey.downKey(anchor: FuzzKeys.anchor)

/// What a stream decoder produced, in order: frames (as header and bytes) and at most one final error.
enum StreamOutcome: Equatable {
    case frame(FrameHeader, [UInt8])
    case error(ProtocolError)
}

/// The result of cutting one byte stream into frames.
struct StreamResult: Equatable {
    var outcomes: [StreamOutcome] = []
    /// Bytes left unconsumed at the end (0 after an error: the connection is closed).
    var leftover = 0
}

/// Runs every check on one input. Never traps on bad input; traps only when an invariant of our code breaks.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    let input = ByteBuffer(bytes: data)

    // (1) TCP stream: the whole input at once, and split in two at a point chosen by the first byte. A valid
    // stream's first byte is 0x10...0x1f, so that point always falls in the first frame; a second split, chosen
    // by the last two bytes (a tag, on a valid stream: uniform), also reaches later frames and their boundaries.
    let whole = decodeStreamInOnePiece(input)
    var splits = [data.isEmpty ? 0 : Int(data[0]) % (data.count + 1)]
    if data.count >= 2 {
        splits.append((Int(data[data.count - 2]) << 8 | Int(data[data.count - 1])) % (data.count + 1))
    }
    for split in splits {
        let pieces = decodeStreamInTwoPieces(input, splitAt: split)
        if whole != pieces {
            fatalError("stream decoder depends on how the bytes arrive (split at \(split) of \(data.count)):\n"
                + "  one piece:  \(whole)\n  two pieces: \(pieces)")
        }
    }

    // (2) UDP datagram: one whole frame or nothing.
    var datagramFrame: SealedFrame?
    do {
        let frame = try SealedFrame(datagram: input)
        checkFrameHeader(frame, origin: "datagram")
        guard frame.header.length == data.count else {
            fatalError("datagram of \(data.count) bytes accepted with length \(frame.header.length)")
        }
        datagramFrame = frame
    } catch {
        _ = error.category
        _ = error.description
        // The stream decoder reads the same three bytes first, so it must refuse them the same way.
        switch error {
        case .unsupportedVersion, .frameTooShort, .frameTooLong:
            guard whole.outcomes.first == .error(error) else {
                fatalError("datagram refused with \(error) but the stream decoder gave \(whole)")
            }
        default: break
        }
    }
    // A datagram parses exactly when the stream is that one frame and nothing more.
    let streamIsOneWholeFrame: Bool = {
        guard whole.outcomes.count == 1, whole.leftover == 0, case .frame(let h, _) = whole.outcomes[0] else {
            return false
        }
        return h.length == data.count
    }()
    if let datagramFrame {
        guard streamIsOneWholeFrame,
            whole.outcomes[0] == .frame(datagramFrame.header, Array(datagramFrame.bytes.readableBytesView))
        else { fatalError("datagram parses as \(datagramFrame.header) but the stream decoder gave \(whole)") }
    } else if streamIsOneWholeFrame {
        fatalError("the stream decoder cut one whole frame but the datagram parser refused it: \(whole)")
    }

    // (3) The raw input as a plaintext body.
    do {
        let message = try Message(body: input)
        checkMessage(message, origin: "raw body")
    } catch {
        _ = error.category
    }

    // (4) Every frame that parsed: open with the test key (almost always the fast rejection path).
    if let datagramFrame { checkOpen(datagramFrame) }
    // The stream's frames, unless that was the same frame (at most 8: beyond that it is the same code again).
    if datagramFrame == nil {
        for case .frame(let header, let bytes) in whole.outcomes.prefix(8) {
            do {
                let frame = try SealedFrame(datagram: ByteBuffer(bytes: bytes))
                guard frame.header == header else {
                    fatalError("a frame cut from the stream re-parses with another header: \(frame.header) vs \(header)")
                }
                checkOpen(frame)
            } catch {
                fatalError("a frame cut from the stream does not parse as a datagram: \(error)")
            }
        }
    }
}

// MARK: Stream decoding

/// Feeds `input` to a bare `FrameDecoder` in one piece, as NIO's `ByteToMessageHandler` would: `decode` until
/// it asks for more bytes, then `decodeLast` at EOF. Stops at the first error (no resynchronisation, §2.2).
func decodeStreamInOnePiece(_ input: ByteBuffer) -> StreamResult {
    var decoder = FrameDecoder()
    var buffer = input
    var result = StreamResult()
    var atEOF = false
    while true {
        let before = buffer.readableBytes
        let frame: SealedFrame?
        do {
            frame = atEOF ? try decoder.decodeLast(buffer: &buffer, seenEOF: true) : try decoder.decode(buffer: &buffer)
        } catch let error as ProtocolError {
            checkStreamError(error)
            result.outcomes.append(.error(error))
            return result
        } catch {
            fatalError("FrameDecoder threw a non-ProtocolError: \(error)")
        }
        guard let frame else {
            guard buffer.readableBytes == before else {
                fatalError("FrameDecoder consumed \(before - buffer.readableBytes) bytes without producing a frame")
            }
            checkWaitingIsJustified(buffer)
            if atEOF || before == 0 { break }
            atEOF = true
            continue
        }
        checkFrameHeader(frame, origin: "stream")
        guard before - buffer.readableBytes == frame.header.length else {
            fatalError("FrameDecoder consumed \(before - buffer.readableBytes) bytes for a \(frame.header.length)-byte frame")
        }
        result.outcomes.append(.frame(frame.header, Array(frame.bytes.readableBytesView)))
    }
    result.leftover = buffer.readableBytes
    return result
}

/// Feeds `input` in two reads through NIO's own `NIOSingleStepByteToMessageProcessor`, then signals EOF.
func decodeStreamInTwoPieces(_ input: ByteBuffer, splitAt split: Int) -> StreamResult {
    let processor = NIOSingleStepByteToMessageProcessor(FrameDecoder())
    var result = StreamResult()
    let first = input.getSlice(at: input.readerIndex, length: split) ?? ByteBuffer()
    let second = input.getSlice(at: input.readerIndex + split, length: input.readableBytes - split) ?? ByteBuffer()
    do {
        let receive = { (frame: SealedFrame) in
            checkFrameHeader(frame, origin: "stream (two pieces)")
            result.outcomes.append(.frame(frame.header, Array(frame.bytes.readableBytesView)))
        }
        try processor.process(buffer: first, receive)
        try processor.process(buffer: second, receive)
        try processor.finishProcessing(seenEOF: true, receive)
    } catch let error as ProtocolError {
        checkStreamError(error)
        result.outcomes.append(.error(error))
        return result
    } catch {
        fatalError("FrameDecoder (through NIO) threw a non-ProtocolError: \(error)")
    }
    result.leftover = processor.unprocessedBytes
    return result
}

/// The stream decoder hands `SealedFrame(datagram:)` a slice of exactly the announced length, so the only
/// refusals it can produce are the three-byte ones: version and length bounds.
func checkStreamError(_ error: ProtocolError) {
    switch error {
    case .unsupportedVersion, .frameTooShort, .frameTooLong: break
    default: fatalError("the stream decoder refused a frame cut to its own length: \(error)")
    }
}

/// When the decoder asks for more bytes, what it holds must still be a possible frame (§2.1: a receiver
/// refuses a bad version or length as soon as it has read the first three bytes, before buffering more).
func checkWaitingIsJustified(_ buffer: ByteBuffer) {
    guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return }
    guard first >> 4 == Wire.version else { fatalError("the stream decoder waits behind version \(first >> 4)") }
    guard let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self) else { return }
    let direction: Wire.Direction = first & 0x08 != 0 ? .down : .up
    guard Int(length) >= FrameHeader.minimumFrameLength(direction), Int(length) <= Wire.maximumFrameLength,
        Int(length) > buffer.readableBytes
    else {
        fatalError("the stream decoder waits for more bytes with length \(length) and \(buffer.readableBytes) buffered")
    }
}

/// A parsed header must say what the bytes say (§2.1).
func checkFrameHeader(_ frame: SealedFrame, origin: String) {
    let h = frame.header
    let b = frame.bytes
    let i = b.readerIndex
    guard b.readableBytes == h.length,
        h.length >= FrameHeader.minimumFrameLength(h.direction), h.length <= Wire.maximumFrameLength,
        let first = b.getInteger(at: i, as: UInt8.self), first >> 4 == Wire.version,
        (first & 0x08 != 0) == (h.direction == .down),
        b.getInteger(at: i + 1, as: UInt16.self) == UInt16(h.length),
        b.getInteger(at: i + 3, as: UInt32.self) == h.deviceID
    else { fatalError("\(origin): header \(h) does not match its \(b.readableBytes) bytes \(frame.hex)") }
    let counter: UInt64?
    switch h.direction {
    case .up:
        counter = b.getInteger(at: i + 7, as: UInt16.self).flatMap { high in
            b.getInteger(at: i + 9, as: UInt32.self).map { UInt64(high) << 32 | UInt64($0) }
        }
    case .down:
        counter = b.getInteger(at: i + 7, as: UInt64.self)
    }
    guard counter == h.counter else { fatalError("\(origin): header counter \(h.counter) is not in the bytes \(frame.hex)") }
}

// MARK: Opening

/// Opens `frame` with the test key, directly and through a `FrameOpener`, and checks that they agree.
func checkOpen(_ frame: SealedFrame) {
    let header = frame.header
    let key = header.direction == .up ? fuzzUpKey : fuzzDownKey
    var direct: Message?
    var directError: ProtocolError?
    do {
        direct = try frame.open(with: key)
    } catch {
        // Everything that gets past framing is either forged or a body that does not decode.
        directError = error
        _ = error.description
    }
    if let direct { checkMessage(direct, origin: "opened frame") }

    // The same frame through a session receiver (floor 0): same answer, plus the direction and window rules.
    var opener = FrameOpener(deviceID: header.deviceID, direction: header.direction, key: key, floor: 0)
    let expected: ProtocolError? =
        if header.counter == 0 { .stale(counter: 0) }
        else if let directError { directError }
        else if let direct, !direct.kind.directions.contains(header.direction) { .wrongDirection(header.direction) }
        else { nil }
    do {
        let message = try opener.open(frame)
        guard expected == nil, message == direct else {
            fatalError("FrameOpener opened \(message) where open(with:) gave \(String(describing: direct)), expected \(String(describing: expected))")
        }
        // Accepted once: the same counter again is a replay.
        do {
            let again = try opener.open(frame)
            fatalError("FrameOpener accepted counter \(header.counter) twice: \(again)")
        } catch {
            guard error == .replayed(counter: header.counter) else {
                fatalError("a replayed frame was refused as \(error), not as replayed")
            }
        }
    } catch {
        guard error == expected else {
            fatalError("FrameOpener refused with \(error), expected \(String(describing: expected))")
        }
        guard opener.refused == [error.category: 1] else {
            fatalError("FrameOpener counted \(opener.refused) for one refusal \(error)")
        }
    }

    // Another device's receiver refuses before any cryptography.
    var other = FrameOpener(deviceID: header.deviceID &+ 1, direction: header.direction, key: key, floor: 0)
    do {
        let message = try other.open(frame)
        fatalError("a frame of device \(header.deviceID) opened for device \(header.deviceID &+ 1): \(message)")
    } catch {
        guard error == .wrongDevice(expected: header.deviceID &+ 1, received: header.deviceID) else {
            fatalError("a frame for another device was refused as \(error), not wrongDevice")
        }
    }
}

// MARK: Messages

/// A decoded message must re-encode, decode to itself, encode canonically, seal and open again.
func checkMessage(_ message: Message, origin: String) {
    // encodeBody appends: put something in front to check it is kept.
    let prefix: [UInt8] = [0xA5, 0x5A]
    var buffer = ByteBuffer(bytes: prefix)
    do {
        try message.encodeBody(into: &buffer)
    } catch {
        fatalError("\(origin): decoded message \(message) does not re-encode: \(error)")
    }
    guard buffer.readBytes(length: prefix.count) == prefix else {
        fatalError("\(origin): encodeBody did not keep the bytes already in its buffer")
    }
    let encoded = Array(buffer.readableBytesView)
    guard encoded.first == message.kind.rawValue else {
        fatalError("\(origin): \(message) encodes with type byte \(String(describing: encoded.first))")
    }
    let decoded: Message
    do {
        decoded = try Message(body: buffer)
    } catch {
        fatalError("\(origin): \(message) encodes to \(Hex.encode(encoded)), which does not decode: \(error)")
    }
    guard decoded == message else {
        fatalError("\(origin): \(message) encodes to \(Hex.encode(encoded)), which decodes to \(decoded)")
    }
    var again = ByteBuffer()
    do {
        try decoded.encodeBody(into: &again)
    } catch {
        fatalError("\(origin): re-decoded message \(decoded) does not encode: \(error)")
    }
    guard Array(again.readableBytesView) == encoded else {
        fatalError("\(origin): encoding is not canonical: \(Hex.encode(encoded)) then \(Hex.encode(again.readableBytesView))")
    }
    // Printing a decoded message (devicesim protocol decode --json) must not trap either.
    guard message.json.hasPrefix("{") else { fatalError("\(origin): JSON of \(message) is \(message.json)") }

    // Seal it the way it may travel, and open it again. `seal` appends: seal once into an empty buffer and
    // once after bytes already there (some of them read), and the frames must be the same bytes.
    let direction: Wire.Direction = message.kind.directions.contains(.up) ? .up : .down
    let counter: UInt64 = direction == .up ? FuzzKeys.anchor + 1 : 0x5a17_c0de_0000_0001
    let key = direction == .up ? fuzzUpKey : fuzzDownKey
    let maximumBody = Wire.maximumFrameLength - FrameHeader.size(direction) - Wire.tagLength
    var sealed = ByteBuffer()
    var appended = ByteBuffer(bytes: [1, 2, 3, 4, 5])
    appended.moveReaderIndex(forwardBy: 2)
    for target in 0..<2 {
        do {
            if target == 0 {
                try SealedFrame.seal(
                    message, direction: direction, deviceID: FuzzKeys.deviceID, counter: counter, key: key, into: &sealed)
            } else {
                try SealedFrame.seal(
                    message, direction: direction, deviceID: FuzzKeys.deviceID, counter: counter, key: key, into: &appended)
            }
        } catch {
            guard error == .messageTooLarge(bodyLength: encoded.count, maximum: maximumBody), encoded.count > maximumBody
            else { fatalError("\(origin): \(message) does not seal: \(error)") }
            // A refused seal leaves the buffer as it was.
            guard Array(sealed.readableBytesView) == [], Array(appended.readableBytesView) == [3, 4, 5] else {
                fatalError("\(origin): a refused seal left bytes behind: \(sealed.readableBytes), \(appended.readableBytes)")
            }
            return
        }
    }
    guard encoded.count <= maximumBody else {
        fatalError("\(origin): a \(encoded.count)-byte body sealed, above the maximum of \(maximumBody)")
    }
    guard appended.readBytes(length: 3) == [3, 4, 5], appended == sealed else {
        fatalError("\(origin): sealing after other bytes gave another frame: \(Hex.encode(sealed.readableBytesView))")
    }
    do {
        let frame = try SealedFrame(datagram: sealed)
        checkFrameHeader(frame, origin: "\(origin), sealed again")
        guard frame.header.length == FrameHeader.size(direction) + encoded.count + Wire.tagLength else {
            fatalError("\(origin): a \(encoded.count)-byte body sealed into a \(frame.header.length)-byte frame")
        }
        let opened = try frame.open(with: key)
        guard opened == message else { fatalError("\(origin): \(message) seals and opens as \(opened)") }
    } catch {
        fatalError("\(origin): \(message) seals into a frame that does not open: \(error)")
    }
}
