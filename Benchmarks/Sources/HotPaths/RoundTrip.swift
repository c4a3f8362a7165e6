import Crypto
import DeviceKit
import NIOCore

/// A heartbeat round trip through both pure machines, as a load run's device and the centre make it, minus
/// their sockets: the device's heartbeat timer fires and it seals the heartbeat (`DeviceMachine`); the centre's
/// session opens it and answers (`CenterSession`, the answer sealed); the device opens the acknowledgement and
/// sets its next timers. What `devicesim load` and `devicesim center` each pay per heartbeat beyond I/O.
public struct HeartbeatRoundTrip: Workload {
    public static let name = "machines.heartbeat-round-trip"
    public static let summary = "device timer -> heartbeat sealed -> centre session -> ack sealed -> device opens it"
    var device: DeviceMachine
    var centre: CenterSession
    var centreDownKey: SymmetricKey?
    var now = DeviceMachine.Instant(wall: 1_795_000_000_000, monotonic: .seconds(1))
    var generation = 0
    var heartbeatTimer: DeviceMachine.Timer?
    var heartbeatsAnswered = 0

    public init() throws {
        let key = try benchKey()
        let configuration = DeviceMachine.Configuration(
            link: .init(
                hasSecondary: false,
                sessionStart: SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1)),
            primaryName: "bench")
        device = DeviceMachine(configuration: configuration, key: key, storedCounterLimit: 1 << 40, seed: 1)
        centre = CenterSession(key: key, parameters: .init(), storedAnchor: nil)
        try runDevice(device.start(pending: [], bootCount: 1, reportsRestart: false, now: now))
        try runDevice(device.connected(generation: generation, now: now))
        guard centre.hasSession, heartbeatTimer != nil else { throw WorkloadError("the session did not open") }
    }

    public mutating func prepare(steps: Int) throws {}

    public mutating func step() throws {
        guard let timer = heartbeatTimer else { throw WorkloadError("no heartbeat timer set") }
        heartbeatTimer = nil
        now.monotonic += .seconds(30)
        now.wall += 30_000
        let answered = heartbeatsAnswered
        try runDevice(device.timerFired(timer, now: now))
        guard heartbeatsAnswered == answered + 1 else { throw WorkloadError("the heartbeat was not answered") }
    }

    /// Runs the device's actions as its driver would, its transmissions straight into the centre's session.
    mutating func runDevice(_ actions: [DeviceMachine.Action]) throws {
        for action in actions {
            switch action {
            case .connect(_, let generation): self.generation = generation
            case .transmit(let buffer, _): try centreReceives(buffer)
            case .reserveCounters(let limit): try runDevice(device.countersReserved(limit, now: now))
            case .schedule(let timer, _):
                if case .link(.heartbeat) = timer { heartbeatTimer = timer }
            case .store, .remove, .disconnect, .indicate, .observe, .bindMedia, .startMedia, .stopMedia, .placeSIPCall,
                .hangUpSIPCall:
                break
            }
        }
    }

    /// The centre's session takes an up frame; the anchor is stored at once; its answers go to the device.
    mutating func centreReceives(_ datagram: ByteBuffer) throws {
        let frame = try SealedFrame(datagram: datagram)
        var pending = centre.frameReceived(frame, now: now, mayOpenSession: true)
        while !pending.isEmpty {
            let action = pending.removeFirst()
            switch action {
            case .persistAnchor(let anchor, let epoch):
                pending += centre.anchorPersisted(anchor, epoch: epoch, salt: 0x5a17_c0de, now: now)
            case .send(let down):
                if centreDownKey == nil || down.sequence == 0 { centreDownKey = centre.key.downKey(anchor: down.anchor) }
                var buffer = ByteBufferAllocator().buffer(capacity: 64)
                try SealedFrame.seal(
                    down.message, direction: .down, deviceID: benchDeviceID, counter: down.counter, key: centreDownKey!,
                    into: &buffer)
                if case .heartbeatAck = down.message { heartbeatsAnswered += 1 }
                try runDevice(device.frameReceived(try SealedFrame(datagram: buffer), generation: generation, now: now))
            case .refuse(let error): throw WorkloadError("the centre refused a frame: \(error)")
            default: break
            }
        }
    }
}
