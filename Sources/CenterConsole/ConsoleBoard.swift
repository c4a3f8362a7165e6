import DeviceKit

/// The live queue every console shows, kept from the centre's events (pure: no clock, no I/O).
///
/// It holds every open case as a `CaseRow`, and sends consoles a view of the `viewLimit` most urgent (not yet
/// taken first, then oldest first) with counts of the rest: a storm of alarms costs a browser a bounded
/// table, however many cases are open. `nextBatch()` says what changed in that view since it was last
/// called (rows to draw, rows to remove), so that many consoles share one encoding of each change.
///
/// Facts the events do not carry come from their owners: who took a case through the console
/// (`taken(_:by:)`), residents from the registry (`residents`), a device's model and online state from the
/// centre (`describe(_:)`).
struct ConsoleBoard {
    /// At most this many cases are in the view; `more` counts the others.
    let viewLimit: Int
    private(set) var rows: [Int64: CaseRow] = [:]
    /// Facts of alarms whose case has not opened yet, by device and alarm id (the centre emits the alarm, then
    /// its case): bounded, oldest dropped.
    private var pendingAlarms: [AlarmKey: AlarmFacts] = [:]
    private var pendingOrder: [AlarmKey] = []
    private var casesOfDevice: [UInt32: Set<Int64>] = [:]
    /// The view last handed out, and whether anything may have changed since.
    private var sent: [Int64: CaseRow] = [:]
    private var changed = true
    private(set) var seq = 0
    var residents: [UInt32: ResidentSummary] = [:] {
        didSet { refreshResidents() }
    }
    /// Devices online and supervised, as the centre counts them.
    var deviceCounts = DeviceCounts(online: 0, offline: 0) {
        didSet { if deviceCounts != oldValue { changed = true } }
    }

    struct AlarmKey: Hashable {
        var device: UInt32
        var alarm: UInt32
    }

    struct AlarmFacts {
        var alarm: Alarm
        var late: Int64
        var receivedAt: WireTime
    }

    var pendingAlarmCount: Int { pendingAlarms.count }

    init(viewLimit: Int = 200) {
        self.viewLimit = max(1, viewLimit)
    }

    /// Devices that have open cases whose row lacks the model: the owner asks the centre and calls `describe`.
    var devicesToDescribe: [UInt32] {
        Array(Set(rows.values.lazy.filter { $0.model == nil && !$0.described }.map(\.device)))
    }

    // MARK: Events

    /// An event of the centre, emitted at `at` (milliseconds since the Unix epoch).
    mutating func apply(_ event: CenterEvent, at: WireTime) {
        switch event {
        case .alarm(let device, let alarm, let late, _):
            let key = AlarmKey(device: device, alarm: alarm.id)
            if pendingAlarms[key] == nil { pendingOrder.append(key) }
            pendingAlarms[key] = AlarmFacts(alarm: alarm, late: late, receivedAt: at)
            if pendingOrder.count > 4 * viewLimit + 1024 {
                let dropped = pendingOrder.prefix(pendingOrder.count / 2)
                pendingOrder.removeFirst(dropped.count)
                for key in dropped {
                    pendingAlarms[key] = nil
                    pendingFlags[key] = nil
                }
            }
        case .caseUpdate(let id, let device, let alarmID, let state):
            update(case: id, device: device, alarmID: alarmID, state: state, at: at)
        case .online(let device), .offline(let device):
            let online = { if case .online = event { true } else { false } }()
            modifyRows(of: device) { $0.online = online }
        case .callOffered(let device, _, _):
            modifyRows(of: device) { $0.call = "offered" }
        case .callStarted(let device, _):
            modifyRows(of: device) { $0.call = "connected" }
        case .callEnded(let device, _, _, _, _), .mediaSilent(let device, _, _):
            modifyRows(of: device) { $0.call = "none" }
        case .operatorCall(let device, _, let stage):
            switch stage {
            case .ringing: modifyRows(of: device) { $0.call = "ringing" }
            case .answered: modifyRows(of: device) { $0.call = "placing" }
            case .bridged: modifyRows(of: device) { $0.call = "bridged" }
            case .notAnswered, .waiting, .ended: modifyRows(of: device) { $0.call = "none" }
            }
        case .alarmFlagged(let device, let alarmID, let flags):
            if let id = casesOfDevice[device]?.first(where: { rows[$0]?.alarm == alarmID }) {
                rows[id]?.flags = flags
                changed = true
            } else if pendingAlarms[AlarmKey(device: device, alarm: alarmID)] != nil {
                // Told once the case opens.
                pendingFlags[AlarmKey(device: device, alarm: alarmID)] = flags
            }
        default:
            break
        }
    }

    private var pendingFlags: [AlarmKey: [String]] = [:]

    private mutating func update(case id: Int64, device: UInt32, alarmID: UInt32, state: CaseState, at: WireTime) {
        changed = true
        guard state != .closed else {
            remove(id)
            return
        }
        if var row = rows[id] {
            row.state = state.description
            rows[id] = row
            return
        }
        let key = AlarmKey(device: device, alarm: alarmID)
        let facts = pendingAlarms.removeValue(forKey: key)
        if facts != nil { pendingOrder.removeAll { $0 == key } }
        var row = CaseRow(id: id, device: device, alarm: alarmID, state: state.description, receivedAt: facts?.receivedAt ?? at)
        if let facts { row.fill(from: facts.alarm, late: facts.late) }
        row.flags = pendingFlags.removeValue(forKey: key) ?? []
        row.online = true  // its alarm just arrived
        row.resident = residents[device]
        rows[id] = row
        casesOfDevice[device, default: []].insert(id)
    }

    /// A case open before the console started (or before it lost events), from the centre and the journal.
    mutating func restore(_ row: CaseRow) {
        var row = row
        row.resident = residents[row.device]
        rows[row.id] = row
        casesOfDevice[row.device, default: []].insert(row.id)
        changed = true
    }

    /// Forgets every case: the owner restores them again (it lost events).
    mutating func reset() {
        rows = [:]
        casesOfDevice = [:]
        pendingAlarms = [:]
        pendingOrder = []
        pendingFlags = [:]
        changed = true
    }

    private mutating func remove(_ id: Int64) {
        guard let row = rows.removeValue(forKey: id) else { return }
        casesOfDevice[row.device]?.remove(id)
        if casesOfDevice[row.device]?.isEmpty == true { casesOfDevice[row.device] = nil }
    }

    private mutating func modifyRows(of device: UInt32, _ change: (inout CaseRow) -> Void) {
        guard let ids = casesOfDevice[device] else { return }
        for id in ids {
            guard var row = rows[id] else { continue }
            change(&row)
            rows[id] = row
        }
        changed = true
    }

    // MARK: Facts from elsewhere

    /// Someone took case `id` through the console.
    mutating func taken(_ id: Int64, by name: String) {
        guard rows[id] != nil else { return }
        rows[id]?.takenBy = name
        changed = true
    }

    /// What the centre knows of a device with open cases: its model and whether it is online.
    mutating func describe(_ snapshot: DeviceSnapshot) {
        modifyRows(of: snapshot.device) { row in
            row.described = true
            row.model = snapshot.report?.model
            row.online = snapshot.online
            if row.battery == nil, let battery = snapshot.report?.battery { row.battery = Int(battery) }
        }
    }

    private mutating func refreshResidents() {
        for (id, row) in rows where rows[id]?.resident != residents[row.device] {
            rows[id]?.resident = residents[row.device]
            changed = true
        }
    }

    // MARK: The view

    /// The view now, whole: what a console that just connected (or fell behind) gets.
    func snapshot() -> ConsoleSnapshot {
        let view = self.view()
        return ConsoleSnapshot(seq: seq, cases: view, more: rows.count - view.count, counts: counts(), devices: deviceCounts)
    }

    /// What changed in the view since the last call, or `nil` if nothing did.
    mutating func nextBatch() -> ConsoleBatch? {
        guard changed else { return nil }
        changed = false
        let view = self.view()
        var now: [Int64: CaseRow] = [:]
        now.reserveCapacity(view.count)
        var upsert: [CaseRow] = []
        for row in view {
            now[row.id] = row
            if sent[row.id] != row { upsert.append(row) }
        }
        let remove = sent.keys.filter { now[$0] == nil }.sorted()
        let previousCounts = lastCounts
        let counts = self.counts()
        lastCounts = counts
        let previousMore = lastMore
        lastMore = rows.count - view.count
        let previousDevices = lastDevices
        lastDevices = deviceCounts
        sent = now
        guard !upsert.isEmpty || !remove.isEmpty || counts != previousCounts || lastMore != previousMore
            || deviceCounts != previousDevices
        else { return nil }
        seq += 1
        return ConsoleBatch(seq: seq, upsert: upsert, remove: remove, more: lastMore, counts: counts, devices: deviceCounts)
    }

    private var lastCounts: StateCounts?
    private var lastMore = 0
    private var lastDevices: DeviceCounts?

    private func counts() -> StateCounts {
        var counts = StateCounts()
        for row in rows.values {
            switch row.state {
            case "received": counts.received += 1
            case "operatorEngaged": counts.operatorEngaged += 1
            default: counts.helpDispatched += 1
            }
        }
        return counts
    }

    /// The `viewLimit` most urgent open cases: not yet taken first, then oldest (lowest id) first. One pass
    /// with a bounded selection, not a sort of every open case: a storm may leave a hundred thousand open.
    func view() -> [CaseRow] {
        // Case ids are positive and far below 2^62.
        func rank(_ row: CaseRow) -> Int64 { (row.state == "received" ? 0 : 1 << 62) | row.id }
        var chosen: [CaseRow] = []
        chosen.reserveCapacity(min(rows.count, viewLimit))
        var worst: Int64?
        for row in rows.values {
            let key = rank(row)
            if chosen.count < viewLimit {
                chosen.append(row)
                if worst.map({ key > $0 }) ?? true { worst = key }
                continue
            }
            guard let current = worst, key < current else { continue }
            // Replace the least urgent chosen row, then find the new least urgent.
            if let index = chosen.firstIndex(where: { rank($0) == current }) { chosen[index] = row }
            worst = chosen.map(rank).max()
        }
        return chosen.sorted { rank($0) < rank($1) }
    }
}
