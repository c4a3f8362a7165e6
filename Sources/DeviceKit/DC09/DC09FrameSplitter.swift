/// Cuts a DC-09 byte stream (TCP) into frames: each begins with a line feed and ends with a carriage
/// return; several may come in one read and one may span reads. Bytes outside a frame are skipped and
/// counted; a frame longer than the length field allows is dropped, so a peer that never sends the
/// carriage return cannot grow the buffer. Pure.
public struct DC09FrameSplitter: Sendable {
    public enum Piece: Hashable, Sendable {
        /// A frame, line feed to carriage return inclusive.
        case frame([UInt8])
        /// Bytes that belong to no frame (noise, or a frame cut short by the next line feed).
        case skipped(Int)
        /// A frame longer than `maximumFrameLength`, dropped.
        case overlong
    }

    /// Line feed, CRC, length, the longest message, carriage return.
    public static let maximumFrameLength = 1 + 8 + DC09Frame.maximumMessageLength + 1

    private var frame: [UInt8] = []
    private var inFrame = false
    private var overlong = false

    public init() {}

    /// The frames completed by `bytes`, and what was skipped, in order.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Piece] {
        var pieces: [Piece] = []
        var skipped = 0
        func flushSkipped() {
            if skipped > 0 { pieces.append(.skipped(skipped)) }
            skipped = 0
        }
        for byte in bytes {
            if byte == 0x0A {
                if inFrame, !overlong { skipped += frame.count }  // a frame cut short by the next one
                flushSkipped()
                frame = [0x0A]
                inFrame = true
                overlong = false
                continue
            }
            guard inFrame else {
                skipped += 1
                continue
            }
            if overlong {
                if byte == 0x0D { inFrame = false }
                continue
            }
            frame.append(byte)
            if byte == 0x0D {
                flushSkipped()
                pieces.append(.frame(frame))
                frame = []
                inFrame = false
            } else if frame.count >= Self.maximumFrameLength {
                flushSkipped()
                pieces.append(.overlong)
                frame = []
                overlong = true
            }
        }
        flushSkipped()
        return pieces
    }
}
