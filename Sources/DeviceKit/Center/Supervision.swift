/// Tells which devices have gone silent past the reporting time and which have come back (pure).
///
/// A device is supervised from its first authenticated frame on. The owner calls `tick` periodically; the
/// reporting delay is at most `offlineAfter` plus one tick interval.
public struct Supervision: Sendable {
    public enum Report: Hashable, Sendable {
        case online(UInt32)
        case offline(UInt32)
    }

    private struct Watched: Sendable {
        var lastSeen: Duration
        var online: Bool
    }

    public let offlineAfter: Duration
    private var devices = DeviceTable<Watched>()

    public init(offlineAfter: Duration) {
        self.offlineAfter = offlineAfter
    }

    /// Devices online now; kept as they come and go, since the centre reads it at every report (counting
    /// them each time made a ramp of 100,000 devices quadratic: 60 % of the centre's time).
    public private(set) var onlineCount = 0

    public func isOnline(_ device: UInt32) -> Bool { devices[device]?.online ?? false }

    public var supervisedCount: Int { devices.count }

    /// Every device supervised since the start and whether it is online.
    public var supervised: [(device: UInt32, online: Bool)] { devices.entries.map { ($0.key, $0.value.online) } }

    /// An authenticated frame of `device` arrived. Reports it online if it was not.
    public mutating func deviceSeen(_ device: UInt32, now: Duration) -> Report? {
        let wasOnline = devices[device]?.online ?? false
        devices[device] = Watched(lastSeen: now, online: true)
        if wasOnline { return nil }
        onlineCount += 1
        return .online(device)
    }

    /// The devices that have been silent for longer than `offlineAfter`, each reported once.
    public mutating func tick(now: Duration) -> [Report] {
        var reports: [Report] = []
        for (device, watched) in devices.entries where watched.online && now - watched.lastSeen > offlineAfter {
            devices[device]?.online = false
            onlineCount -= 1
            reports.append(.offline(device))
        }
        return reports.sorted { $0.device < $1.device }
    }
}

extension Supervision.Report {
    public var device: UInt32 {
        switch self {
        case .online(let id), .offline(let id): id
        }
    }
}
