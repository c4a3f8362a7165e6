import Crypto
import NIOCore

/// Opens the frames of one session in one direction: right device, right direction, authentic, fresh.
///
/// A frame that fails any check is refused with a `ProtocolError` and counted by category; it never reaches
/// the state machines. Pure: no clock, no I/O.
public struct FrameOpener: Sendable {
    public let deviceID: UInt32
    public let direction: Wire.Direction
    private let key: InlineKey
    public private(set) var window: ReplayWindow
    /// Where each frame's body is decrypted: one buffer for the session, rewritten frame after frame (a new
    /// one only while a decoded message still holds the last body's bytes).
    private var plaintext = ByteBuffer()
    /// Refused frames, by why.
    public private(set) var refused: [ProtocolError.Category: Int] = [:]

    /// - Parameter floor: counters at or below it are stale (the session anchor, for up frames).
    public init(deviceID: UInt32, direction: Wire.Direction, key: SymmetricKey, floor: UInt64) {
        self.deviceID = deviceID
        self.direction = direction
        self.key = InlineKey(key)
        self.window = ReplayWindow(floor: floor)
    }

    public mutating func open(_ frame: SealedFrame) throws(ProtocolError) -> Message {
        do throws(ProtocolError) {
            guard frame.header.deviceID == deviceID else {
                throw .wrongDevice(expected: deviceID, received: frame.header.deviceID)
            }
            guard frame.header.direction == direction else { throw .wrongDirection(frame.header.direction) }
            try window.check(frame.header.counter)
            try frame.authenticatedBody(with: key, into: &plaintext)
            let body = plaintext
            if let type = body.getInteger(at: body.readerIndex, as: UInt8.self), let kind = Message.Kind(rawValue: type),
                !kind.travels(direction)
            {
                throw .wrongDirection(frame.header.direction)
            }
            // Authentic: the counter is used up before the body is read, so a body this version cannot read
            // is refused once and its copies as replayed, and its sender can be answered (§4.1).
            try window.accept(frame.header.counter)
            do throws(ProtocolError) {
                return try Message(body: body)
            } catch {
                throw .undecodable(UndecodableMessage(body: body, cause: error))
            }
        } catch {
            refused[error.category, default: 0] += 1
            throw error
        }
    }
}
