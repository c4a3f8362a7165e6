import NIOCore

/// The device's half of protocol.md §3.3–3.4: seals up frames with counters that never repeat, and opens
/// down frames only of its own current session.
///
/// `sessionStart`'s counter becomes the pending anchor; a `sessionAccept` is accepted only when it opens
/// under `down(anchor)` of the latest `sessionStart` with sequence 0 (§3.4: an accept for an earlier one is
/// stale), and it fixes the session's salt (a `nak busy` there instead says the centre is full, §5); later down frames must carry that salt and pass the replay
/// window. Pure: counter reservations are returned for the owner to store.
public struct DeviceFrameSession: Sendable {
    public let key: DeviceKey
    public private(set) var counter: UpCounter
    /// The anchor of the latest `sessionStart` sent in the current connection, until its accept arrives.
    private var pendingAnchor: UInt64?
    private var down: (salt: UInt64, opener: FrameOpener)?
    /// Refused down frames, by why.
    public private(set) var refused: [ProtocolError.Category: Int] = [:]

    public init(key: DeviceKey, storedCounterLimit: UInt64) {
        self.key = key
        self.counter = UpCounter(storedLimit: storedCounterLimit)
    }

    /// What sealing needs first.
    public enum SealResult: Hashable, Sendable {
        /// Sealed with this counter.
        case sealed(counter: UInt64)
        /// Store this counter limit durably, call `counterReservationStored`, then seal again.
        case reserveCounters(limit: UInt64)
    }

    /// Seals `message` into `buffer`, or asks for a counter reservation first (nothing is written then).
    public mutating func seal(_ message: Message, into buffer: inout ByteBuffer) throws(ProtocolError) -> SealResult {
        switch try counter.take() {
        case .reserve(let limit):
            return .reserveCounters(limit: limit)
        case .counter(let c):
            try SealedFrame.seal(
                message, direction: .up, deviceID: key.deviceID, counter: c, key: key.upInlineKey, keyEpoch: key.epoch,
                into: &buffer)
            if case .sessionStart = message { pendingAnchor = c }
            return .sealed(counter: c)
        }
    }

    public mutating func counterReservationStored(_ limit: UInt64) {
        counter.reservationStored(limit)
    }

    /// The connection ended: no session, nothing pending.
    public mutating func reset() {
        pendingAnchor = nil
        down = nil
    }

    /// Authenticates and decodes a frame from the centre.
    public mutating func open(_ frame: SealedFrame) throws(ProtocolError) -> Message {
        do throws(ProtocolError) {
            guard frame.header.deviceID == key.deviceID else {
                throw .wrongDevice(expected: key.deviceID, received: frame.header.deviceID)
            }
            guard frame.header.direction == .down else { throw .wrongDirection(frame.header.direction) }
            let salt = frame.header.counter >> 32
            if down?.salt == salt {
                // In place: a copy of the opener would copy the plaintext buffer it reuses, every frame.
                let message = try down!.opener.open(frame)
                if case .sessionAccept = message { throw ProtocolError.replayed(counter: frame.header.counter) }
                return message
            }
            // Not the current session: only a sessionAccept (sequence 0) for the latest anchor may open one.
            guard frame.header.counter & 0xFFFF_FFFF == 0, let anchor = pendingAnchor else {
                throw .stale(counter: frame.header.counter)
            }
            let downKey = key.downKey(anchor: anchor)
            let message = try frame.open(with: downKey)
            switch message {
            case .sessionAccept:
                down = (salt, FrameOpener(deviceID: key.deviceID, direction: .down, key: downKey, floor: salt << 32))
            case .nak(let nak) where nak.reason == .busy:
                break  // the centre is full: no session opens (protocol.md §5)
            default:
                throw .stale(counter: frame.header.counter)
            }
            pendingAnchor = nil
            return message
        } catch {
            refused[error.category, default: 0] += 1
            throw error
        }
    }
}
