import Crypto
import DeviceKit
import NIOCore

/// The centre's pure per-frame path for a heartbeat of an open session: the datagram parsed and opened by the
/// device's `CenterSession`, its actions (the `heartbeatAck`) sealed under the session's down key into a new
/// buffer, as `CenterRuntime.send` does. Not in it: the runtime's session table, supervision and metrics, and
/// the socket (`tools/load_bench.py` measures those end to end).
public struct CentreHeartbeat: Workload {
    public static let name = "centre.heartbeat"
    public static let summary = "the centre's session takes a heartbeat datagram and seals its acknowledgement"
    var session: CenterSession
    var frames = ByteBuffer()
    var downKey: SymmetricKey
    var now = CenterInstant(wall: 1_795_000_000_000, monotonic: .seconds(1))
    let anchor: UInt64 = 1

    public init() throws {
        let key = try benchKey()
        session = CenterSession(key: key, parameters: .init(), storedAnchor: nil)
        downKey = key.downKey(anchor: anchor)
        // The session opens: its sessionStart (counter 1), stored, accepted.
        var start = try sealedStream(sessionStartMessage, steps: 1, firstCounter: anchor)
        let opened = session.frameReceived(try SealedFrame(datagram: nextDatagram(&start)), now: now, mayOpenSession: true)
        guard opened == [.persistAnchor(anchor, epoch: 0)] else { throw WorkloadError("sessionStart answered \(opened)") }
        _ = session.anchorPersisted(anchor, salt: 0x5a17_c0de, now: now)
        guard session.hasSession else { throw WorkloadError("no session opened") }
    }

    public mutating func prepare(steps: Int) throws {
        frames = try sealedStream(heartbeatMessage, steps: steps, firstCounter: anchor + 1)
    }

    public mutating func step() throws {
        // One heartbeat a device per second: within its rate, whatever the number of steps.
        now.monotonic += .seconds(1)
        now.wall += 1000
        let frame = try SealedFrame(datagram: nextDatagram(&frames))
        var answered = false
        for action in session.frameReceived(frame, now: now, mayOpenSession: true) {
            switch action {
            case .send(let down):
                var buffer = ByteBufferAllocator().buffer(capacity: 64)
                try SealedFrame.seal(
                    down.message, direction: .down, deviceID: benchDeviceID, counter: down.counter, key: downKey, into: &buffer)
                answered = true
            case .refuse(let error): throw WorkloadError("heartbeat refused: \(error)")
            default: break
            }
        }
        guard answered else { throw WorkloadError("heartbeat not answered") }
    }
}

let sessionStartMessage = Message.sessionStart(
    SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1))

/// The centre's pure part of a handshake with a device it has not seen since it started: the device's key
/// derived from the fleet master key (HKDF, as the runtime does on a device's first frame), its
/// `sessionStart` opened, the anchor stored (here: at once), the session's down key derived and the
/// `sessionAccept` sealed. Not in it: the journal's write of the anchor, which the runtime batches.
public struct CentreHandshake: Workload {
    public static let name = "centre.handshake"
    public static let summary = "the centre derives a new device's key, opens its sessionStart and seals the accept"
    let master: FleetMasterKey
    var starts: [ByteBuffer] = []
    var next = 0
    let now = CenterInstant(wall: 1_795_000_000_000, monotonic: .seconds(1))

    public init() throws { master = try FleetMasterKey(bytes: Array(100..<132)) }

    /// A `sessionStart` of each of `steps` devices, sealed under its own key.
    public mutating func prepare(steps: Int) throws {
        starts = try (0..<steps).map { index in
            let key = DeviceKey(deviceID: UInt32(index + 1), master: master)
            var frame = ByteBuffer()
            try SealedFrame.seal(sessionStartMessage, direction: .up, deviceID: key.deviceID, counter: 1, key: key.upKey, into: &frame)
            return frame
        }
    }

    public mutating func step() throws {
        let frame = try SealedFrame(datagram: starts[next])
        next += 1
        let key = DeviceKey(deviceID: frame.header.deviceID, master: master)
        var session = CenterSession(key: key, parameters: .init(), storedAnchor: nil)
        guard case .persistAnchor(let anchor, let epoch) = session.frameReceived(frame, now: now, mayOpenSession: true).first
        else { throw WorkloadError("sessionStart not taken") }
        var sealed = false
        for case .send(let down) in session.anchorPersisted(anchor, epoch: epoch, salt: 0x5a17_c0de, now: now) {
            var buffer = ByteBufferAllocator().buffer(capacity: 64)
            try SealedFrame.seal(
                down.message, direction: .down, deviceID: key.deviceID, counter: down.counter,
                key: key.downKey(anchor: anchor), into: &buffer)
            sealed = true
        }
        guard sealed else { throw WorkloadError("no sessionAccept sealed") }
    }
}
