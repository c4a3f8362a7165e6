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
        /// Online by the journal's word, not yet heard here (`adopt`).
        var adopted = false
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

    /// An authenticated frame of `device` arrived. Reports it online if it was not, or if it was adopted and
    /// this is the first frame heard of it here (the device came to this node: its online report says so, as
    /// any device's that moves between nodes).
    public mutating func deviceSeen(_ device: UInt32, now: Duration) -> Report? {
        let was = devices[device]
        devices[device] = Watched(lastSeen: now, online: true)
        if was?.online == true { return was?.adopted == true ? .online(device) : nil }
        onlineCount += 1
        return .online(device)
    }

    /// Supervises `device` as if it had just been heard, without reporting it: another node supervised it and
    /// died, or this node's previous run did (CenterJournal+Presence.swift); the journal says it is online.
    /// Reported offline if not heard within `offlineAfter`; reported online when first heard here.
    /// Returns false if it was already online here.
    @discardableResult
    public mutating func adopt(_ device: UInt32, now: Duration) -> Bool {
        guard devices[device]?.online != true else { return false }
        devices[device] = Watched(lastSeen: now, online: true, adopted: true)
        onlineCount += 1
        return true
    }

    /// The devices that have been silent for longer than `offlineAfter`, each reported once.
    /// One walk of every device where it lies (`DeviceTable.updateEach`): the centre ticks every second.
    public mutating func tick(now: Duration) -> [Report] {
        var reports: [Report] = []
        let heardBefore = now - offlineAfter
        devices.updateEach { device, watched in
            guard watched.online, watched.lastSeen < heardBefore else { return }
            watched.online = false
            reports.append(.offline(device))
        }
        onlineCount -= reports.count
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
