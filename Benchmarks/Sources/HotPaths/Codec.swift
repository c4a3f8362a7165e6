import DeviceKit
import NIOCore

/// What every workload's device is: one key, as provisioned.
let benchDeviceID: UInt32 = 0x0001_0203
func benchKey() throws -> DeviceKey { try DeviceKey(deviceID: benchDeviceID, rootKey: Array(0..<32)) }

let heartbeatMessage = Message.heartbeat(Heartbeat(status: [.mainsPresent, .buttonPresent], battery: 87))
let alarmMessage = Message.alarm(
    Alarm(id: 7, kind: .button, triggeredAt: 1_795_000_000_000, battery: 87, flags: [.clockSynchronised]))

/// The device seals an up frame, as `DeviceMachine` does: next counter, header, body, AEAD in place.
public struct SealHeartbeat: Workload {
    public static let name = "codec.seal-heartbeat"
    public static let summary = "the device seals a heartbeat frame (37 bytes) into its buffer"
    var sealer: Sealer
    public init() throws { sealer = try Sealer() }
    public mutating func prepare(steps: Int) throws {}
    public mutating func step() throws { try sealer.seal(heartbeatMessage) }
}

public struct SealAlarm: Workload {
    public static let name = "codec.seal-alarm"
    public static let summary = "the device seals an alarm frame into its buffer"
    var sealer: Sealer
    public init() throws { sealer = try Sealer() }
    public mutating func prepare(steps: Int) throws {}
    public mutating func step() throws { try sealer.seal(alarmMessage) }
}

struct Sealer {
    var session: DeviceFrameSession
    var buffer = ByteBuffer()

    init() throws {
        session = DeviceFrameSession(key: try benchKey(), storedCounterLimit: 1 << 40)
        buffer.reserveCapacity(64)
    }

    mutating func seal(_ message: Message) throws {
        buffer.clear()
        if case .reserveCounters(let limit) = try session.seal(message, into: &buffer) {
            // The counter store answers at once here; on the device it is a durable write.
            session.counterReservationStored(limit)
            _ = try session.seal(message, into: &buffer)
        }
    }
}

/// The centre opens an up frame of a session, as it does each datagram: header, replay window, AEAD, body.
public struct OpenHeartbeat: Workload {
    public static let name = "codec.open-heartbeat"
    public static let summary = "the centre parses, authenticates and decodes a heartbeat frame"
    var opener: Opener
    public init() throws { opener = try Opener(heartbeatMessage) }
    public mutating func prepare(steps: Int) throws { try opener.prepare(steps: steps) }
    public mutating func step() throws { try opener.openNext(Self.name) }
}

public struct OpenAlarm: Workload {
    public static let name = "codec.open-alarm"
    public static let summary = "the centre parses, authenticates and decodes an alarm frame"
    var opener: Opener
    public init() throws { opener = try Opener(alarmMessage) }
    public mutating func prepare(steps: Int) throws { try opener.prepare(steps: steps) }
    public mutating func step() throws { try opener.openNext(Self.name) }
}

struct Opener {
    let message: Message
    var frames = ByteBuffer()
    var opener: FrameOpener

    init(_ message: Message) throws {
        self.message = message
        let key = try benchKey()
        opener = FrameOpener(deviceID: key.deviceID, direction: .up, key: key.upKey, floor: 0)
    }

    /// Seals `steps` frames with counters 1… for `openNext` to take one by one.
    mutating func prepare(steps: Int) throws {
        frames = try sealedStream(message, steps: steps, firstCounter: 1)
    }

    mutating func openNext(_ name: String) throws {
        let frame = try SealedFrame(datagram: nextDatagram(&frames))
        guard try opener.open(frame) == message else { throw WorkloadError("\(name): the frame did not round-trip") }
    }
}

/// Up frames of `message` with counters `firstCounter`…, each behind its length: `nextDatagram` takes them
/// one by one as a socket would hand them over.
func sealedStream(_ message: Message, steps: Int, firstCounter: UInt64) throws -> ByteBuffer {
    let key = try benchKey()
    var stream = ByteBuffer()
    var frame = ByteBuffer()
    for counter in firstCounter..<(firstCounter + UInt64(steps)) {
        frame.clear()
        try SealedFrame.seal(message, direction: .up, deviceID: key.deviceID, counter: counter, key: key.upKey, into: &frame)
        stream.writeInteger(UInt16(frame.readableBytes))
        stream.writeImmutableBuffer(frame)
    }
    return stream
}

/// The next datagram of a `sealedStream`: a slice, no copy (as NIO's datagram reads are slices of one buffer).
func nextDatagram(_ stream: inout ByteBuffer) throws -> ByteBuffer {
    guard let length = stream.readInteger(as: UInt16.self), let datagram = stream.readSlice(length: Int(length)) else {
        throw WorkloadError("more steps than prepared")
    }
    return datagram
}
