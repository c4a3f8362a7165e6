import Crypto
import DequeModule
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Where a device's answers go: the source of its latest authenticated frame (protocol.md §2.2).
enum ReplyPath {
    case stream(any Channel)
    case datagram(DatagramPeer)
}

/// What became of a frame, for the connection it came on (protocol.md §3.4).
enum FrameVerdict: Equatable {
    /// Authentic and of the device's current session: the connection is authenticated.
    case authenticated
    /// An authentic `sessionStart` whose anchor the journal is storing: the session, and with it the
    /// connection, is authenticated once it opens (`CenterRuntime` tells the connection then).
    case pending
    /// Refused or dropped: no proof of anything.
    case refused
    /// Over UDP, a frame of a device without a session: put off behind the frames of sessions, worked on soon
    /// after (`SessionStartQueue`).
    case putOff
}

/// The one owner of the centre's state machines: it feeds them frames, journal outcomes and timers, and runs
/// their actions. Bound to one event loop, on which every channel of the centre lives, so nothing is shared.
///
/// Journal writes go through `JournalBatcher` (group commit; each answer — `ack`, `nak busy`,
/// `sessionAccept` — runs only after its own batch committed or failed), keys and anchors through
/// `CenterKeys`, each TCP connection's life through its `CenterConnectionMachine`. Calls are in
/// CenterRuntime+Calls.swift (the shared `CallMachine`), supervision in `Supervision` (pure).
///
/// Several centre processes may share the journal (`devicesim center --workers`, SO_REUSEPORT): what is in
/// memory here (anchors, sessions, cases) then covers only this process's devices and may be stale, so the
/// decisions that must hold across processes come from the journal's answers: whether an anchor rose,
/// whether a message is new.
final class CenterRuntime {
    let loop: any EventLoop
    let configuration: CenterConfiguration
    let registry: DeviceRegistry
    let journal: JournalBatcher
    let metrics: CenterMetrics
    let hub: CenterEventHub
    let logger: Logger
    let startedAt = ContinuousClock.now

    /// Each device's session machine, with its reply path and down key (`SessionEntry` says why together).
    var sessions = DeviceTable<SessionEntry>()
    /// Where the `sessionStart` being stored came from: the session's reply path once it opens.
    private var pendingPaths: [UInt32: (anchor: UInt64, path: ReplyPath)] = [:]
    /// TCP connections: which to evict (ConnectionTable), and their handlers by id and by channel.
    private var connectionTable: ConnectionTable
    private var streams: [UInt64: CenterStreamHandler] = [:]
    private var streamIDs: [ObjectIdentifier: UInt64] = [:]
    private var nextStreamID: UInt64 = 0
    /// Refused and dropped frames since the last report, by reason.
    private var refusals: [String: Int] = [:]
    /// Devices turned away at the session limit, and frames shed while behind, since each was last said in
    /// the log (at most once a minute, with the count).
    private var turnAwayLog = CountedLog()
    private var shedLog = CountedLog()
    private var refusalReportTask: RepeatedTask?
    /// Forgeries under ids without a key at hand, per source, before any derivation.
    private var forgeryBudget: ForgeryBudget
    /// Device keys and the anchors this process knows (the journal decides).
    private var keys: CenterKeys
    private var activeSessions = 0
    private(set) var supervision: Supervision
    var cases: CasePolicy
    /// The automatic operator's timers for cases restored from the journal, started by `start()`.
    private var restoredCaseTimers: [CasePolicy.Action] = []
    private var restoredCases: [CasePolicy.Case] = []
    /// Case and retransmission timers, through one task of the loop (`LoopTimers`): a retransmission
    /// timer is current while `retransmitTimers` holds its token, so removing the token cancels it.
    let timers: ClosureTimers
    private var retransmitTimers: [UInt64: UInt64] = [:]
    private var nextTimerToken: UInt64 = 0
    private var supervisionTask: RepeatedTask?
    /// Counts the media of calls in progress into the metrics each second.
    private var mediaCountTask: RepeatedTask?
    /// Renews the node's case lease every quarter of it (CenterRuntime+Lease.swift), one renewal at a time.
    var leaseTask: RepeatedTask?
    var leaseRenewing = false
    var leaseLog = CountedLog()
    var nameSharedLog = CountedLog()
    /// Following the other nodes' cases (CenterRuntime+Follow.swift).
    var followTask: RepeatedTask?
    var followCursor: FollowCursor?
    var following = false
    /// Whether another node (not a worker of this centre) held a lease at the last renewal: the follower reads
    /// only then. True until the first renewal says.
    var otherNodesLive = true
    /// The follower skipped reads while no other node lived: it starts again after the first update of another.
    var followPaused = false
    var stopped = false
    /// Calls by device (CenterRuntime+Calls.swift), and the ids of our call messages in flight.
    var calls: [UInt32: CenterCall] = [:]
    /// Engaged cases waiting for their call, oldest first, the pace they are called at, and whether a wake-up
    /// for the next is set (CenterRuntime+Calls.swift).
    var engageCalls = Deque<CasePolicy.Case>()
    var engageCallPace: TokenBucket
    var engageCallWakeUpSet = false
    var callMessageIDs: Set<UInt32> = []
    var nextCallMessageID = UInt32.random(in: 0xC000_0000...0xE000_0000)
    /// The UDP port's socket, through which every datagram answer goes (`CenterServer` sets it).
    var datagramSocket: BatchedDatagramSocket?
    /// Told when a new message is recorded: the DC-09 forwarder (`--forward`) reads its queue.
    var messageRecorded: (() -> Void)?
    var forwarder: DC09Forwarder?
    /// The operators' SIP phones, when the centre has them (`--operator`): engaged cases are bridged to them.
    var bridge: OperatorBridge?
    private var datagramFlushPending = false
    /// The devices that report over DC-09 (`--dc09-accounts`): no session of ours carries their case updates,
    /// so none are queued for them (they would wait for a session that never comes).
    let dc09Devices: Set<UInt32>

    struct Restored {
        var anchors: [UInt32: CenterJournal.StoredAnchor]
        var openCases: [CasePolicy.Case]
        var undelivered: [CenterJournal.PendingUpdate]
        /// Devices the journal says are online and this node now supervises (CenterJournal+Presence.swift).
        var supervised: [UInt32] = []
    }

    init(
        loop: any EventLoop, configuration: CenterConfiguration, registry: DeviceRegistry, journal: CenterJournal,
        pool: NIOThreadPool, metrics: CenterMetrics, hub: CenterEventHub, logger: Logger, restored: Restored,
        journalHealth: JournalHealth = JournalHealth()
    ) {
        self.loop = loop
        self.timers = LoopTimers(loop: loop)
        self.configuration = configuration
        engageCallPace = TokenBucket(rate: configuration.engageCallRate, burst: max(1, configuration.engageCallRate))
        self.registry = registry
        self.journal = JournalBatcher(
            loop: loop, journal: journal, pool: pool, metrics: metrics, batchLimit: configuration.journalBatchLimit,
            health: journalHealth, logger: logger)
        self.metrics = metrics
        self.hub = hub
        self.logger = logger
        self.keys = CenterKeys(registry: registry, cacheLimit: configuration.deviceKeyCacheLimit, anchors: restored.anchors)
        self.supervision = Supervision(offlineAfter: configuration.offlineAfter)
        self.connectionTable = ConnectionTable(
            limits: .init(total: configuration.maximumConnections, unauthenticatedPerAddress: configuration.unauthenticatedPerAddress))
        self.forgeryBudget = ForgeryBudget(
            rate: configuration.forgedFrameRate, burst: max(1, 4 * configuration.forgedFrameRate), sources: configuration.forgerySources)
        self.cases = CasePolicy(configuration: configuration.cases)
        dc09Devices = Set(configuration.dc09?.accounts.accounts.values.map(\.device) ?? [])
        metrics.sessionsActive.set(Int64(0))
        metrics.sessionsLimit.set(Int64(configuration.maximumSessions))
        metrics.devicesOnline.set(Int64(0))
        // Cases left open by a previous run stay in the operator's list (an automatic operator's timers start
        // with the runtime), and updates the device never acknowledged wait for its next session.
        for open in restored.openCases { restoredCaseTimers += cases.restore(open) }
        restoredCases = restored.openCases
        for pending in restored.undelivered where !dc09Devices.contains(pending.device) {
            feed(pending.device) { $0.deliver(.caseUpdate(pending.update)) }
        }
        adopt(restored.supervised)
    }

    /// The one place the centre reads its clocks.
    var now: CenterInstant {
        CenterInstant(
            wall: UInt64(max(0, Date().timeIntervalSince1970 * 1_000)), monotonic: ContinuousClock.now - startedAt)
    }

    func start() {
        _ = runCases(restoredCaseTimers)
        restoredCaseTimers = []
        callAgain(restoredCases)
        restoredCases = []
        let tick = min(configuration.offlineAfter / 4, .seconds(1))
        let nanoseconds = max(tick.nanoseconds, 1_000_000)
        let bound = NIOLoopBound(self, eventLoop: loop)
        supervisionTask = loop.scheduleRepeatedTask(initialDelay: .nanoseconds(nanoseconds), delay: .nanoseconds(nanoseconds)) { _ in
            bound.value.superviseTick()
        }
        let report = TimeAmount.nanoseconds(max(configuration.refusalReportInterval.nanoseconds, 1_000_000))
        refusalReportTask = loop.scheduleRepeatedTask(initialDelay: report, delay: report) { _ in
            bound.value.reportRefusals()
        }
        startLeaseRenewals()
        startFollowing()
        mediaCountTask = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            bound.value.countMediaProgress()
        }
    }

    func stop() {
        stopped = true
        supervisionTask?.cancel()
        refusalReportTask?.cancel()
        mediaCountTask?.cancel()
        leaseTask?.cancel()
        followTask?.cancel()
        reportRefusals()
        timers.stop()
        journal.stop()
        forwarder?.stop()
        retransmitTimers = [:]
        stopAllCalls()
        bridge?.stop()
    }

    // MARK: Frames

    /// A frame arrived on a connection or as a datagram from `source`.
    ///
    /// - Parameter startsWaiting: the UDP socket's queue of session starts (`SessionStartQueue`): a frame of a
    ///   device without a session, which can only be a `sessionStart` (a key derivation, a handshake and a
    ///   journal write), is put there once its checks that cost nothing passed, and worked on (through this
    ///   method, without a queue) after the frames of sessions read with it; with the queue full it is shed.
    func frameReceived(
        _ frame: SealedFrame, from path: ReplyPath, source: SourceAddress, startsWaiting: SessionStartQueue? = nil
    ) -> FrameVerdict {
        guard !stopped else { return .refused }
        metrics.framesReceived.increment()
        return frameArrived(frame, from: path, source: source, startsWaiting: startsWaiting)
    }

    /// A session start put off (`SessionStartQueue`) is worked on now: its checks run again (its source's
    /// budget may be spent by now). It was counted when it was read.
    func putOffStartDue(_ start: SessionStartQueue.Start) {
        guard !stopped else { return }
        _ = frameArrived(start.frame, from: start.path, source: start.source, startsWaiting: nil)
    }

    private func frameArrived(
        _ frame: SealedFrame, from path: ReplyPath, source: SourceAddress, startsWaiting: SessionStartQueue?
    ) -> FrameVerdict {
        let device = frame.header.deviceID
        // A down frame is never for the centre: refused before it can cost a key derivation.
        guard frame.header.direction == .up else {
            frameCounted(.wrongDirection(frame.header.direction))
            return .refused
        }
        // What the device's machine says, read once in place: whether there is one, its session, its key epoch.
        let machine = sessions.withValue(device) { $0.machine.facts }
        // A frame under an id with neither a session nor a cached key costs a key derivation: only while its
        // source's forgeries stay within their budget (protocol.md §6.1).
        let derives = machine == nil && !keys.hasKey(device)
        let monotonic = derives ? ContinuousClock.now - startedAt : .zero
        if derives && !forgeryBudget.allows(source, now: monotonic) {
            metrics.sourceLimited.increment()
            countRefusal("sourceLimited")
            return .refused
        }
        if let startsWaiting, machine?.hasSession != true {
            if startsWaiting.putOff(frame, path: path, source: source) { return .putOff }
            shed()
            return .refused
        }
        guard machine != nil || deviceKey(device) != nil else {
            metrics.unknownDevice.increment()
            countRefusal("unknownDevice")
            logger.debug("frame for an unknown device", metadata: ["device.id": "\(device)"])
            return .refused
        }
        // Bits naming another key epoch than the current one: the key of the later epoch they would name,
        // for a re-provisioned device's sessionStart (protocol.md §3.4). A derivation: within the budget.
        var laterKey: DeviceKey?
        let current = machine?.epoch ?? keys.currentEpoch(device)
        let ahead = (frame.header.keyEpochBits &- UInt8(truncatingIfNeeded: current)) & 0x07
        if ahead != 0, current <= UInt16.max - UInt16(ahead) {
            let monotonic = ContinuousClock.now - startedAt
            guard forgeryBudget.allows(source, now: monotonic) else {
                metrics.sourceLimited.increment()
                countRefusal("sourceLimited")
                return .refused
            }
            laterKey = keys.laterKey(device, epoch: current + UInt16(ahead))
        }
        // Sessions being opened (their anchors on the way to the journal) count too: a burst of session starts
        // would otherwise all pass the limit before the first one opened. This device's own counts once.
        let opening = pendingPaths.isEmpty ? 0 : pendingPaths.count - (pendingPaths[device] == nil ? 0 : 1)
        let mayOpen = activeSessions + opening < configuration.maximumSessions
        let now = self.now
        let actions = feed(device, path: path) {
            $0.frameReceived(frame, now: now, mayOpenSession: mayOpen, laterEpochKey: laterKey)
        }
        if actions.contains(.authenticated) { return .authenticated }
        if actions.contains(where: { if case .persistAnchor = $0 { true } else { false } }) { return .pending }
        // An authentic session start turned away at the session limit was answered: no forgery, not charged
        // (devices behind one address would otherwise go unanswered once the centre is full).
        if actions.contains(where: { if case .turnAway = $0 { true } else { false } }) { return .refused }
        // A derivation that bought nothing (a forgery, or any frame refused or dropped) is charged.
        if derives { forgeryBudget.charge(source, now: monotonic) }
        if laterKey != nil { forgeryBudget.charge(source, now: ContinuousClock.now - startedAt) }
        return .refused
    }

    private func shed() {
        metrics.framesShed.increment()
        countRefusal("shed")
        if let count = shedLog.count(now: ContinuousClock.now - startedAt) {
            logger.warning(
                "behind on session starts over UDP: past the queue's limit they are shed (the devices ask again)",
                metadata: ["shed": "\(count)"])
        }
    }

    /// A frame refused before it could be routed to a device (bad length, version, datagram size).
    func frameRefused(_ error: ProtocolError) {
        metrics.framesReceived.increment()
        frameCounted(error)
    }

    private func frameCounted(_ error: ProtocolError) {
        metrics.refused(error.category)
        countRefusal(error.category.rawValue)
    }

    /// Counted now, reported as one event per reason at the next `reportRefusals`.
    func countRefusal(_ reason: String) {
        refusals[reason, default: 0] += 1
    }

    /// One `refused` event per reason for the frames refused since the last report; and tells observers that
    /// fell behind how many events they lost.
    private func reportRefusals() {
        for (reason, count) in refusals.sorted(by: { $0.key < $1.key }) { hub.emit(.refused(reason: reason, count: count)) }
        refusals = [:]
        hub.reportDrops()
    }

    // MARK: Connections

    /// A TCP connection was accepted: it is admitted within the limits, possibly evicting older
    /// unauthenticated connections, or refused when every connection held is authenticated.
    func streamOpened(_ handler: CenterStreamHandler, channel: any Channel) -> CenterConnectionMachine.Admission {
        metrics.connectionsAccepted.increment()
        nextStreamID += 1
        let id = nextStreamID
        switch connectionTable.opened(id, from: SourceAddress(channel.remoteAddress)) {
        case .refuse:
            return .refused
        case .admit(let evicting):
            streams[id] = handler
            streamIDs[ObjectIdentifier(channel)] = id
            for old in evicting { streams[old]?.evict() }
            metrics.connectionsOpen.set(Int64(connectionTable.count))
            return .admitted
        }
    }

    /// A frame of a current session arrived on `channel`: it is never evicted from now on.
    func streamAuthenticated(_ channel: any Channel) {
        guard let id = streamIDs[ObjectIdentifier(channel)] else { return }
        connectionTable.authenticated(id)
    }

    /// The connection ended (its handler saw it inactive).
    func streamClosed(_ channel: any Channel) {
        guard let id = streamIDs.removeValue(forKey: ObjectIdentifier(channel)) else { return }
        streams[id] = nil
        connectionTable.closed(id)
        metrics.connectionsOpen.set(Int64(connectionTable.count))
    }

    /// accept(2) failed for want of descriptors (or memory): accepting pauses (AcceptBackoffHandler), the
    /// connection limit comes down to what the descriptors allow (less a few, for the journal and calls), and
    /// the oldest unauthenticated connections over it are closed, so that whoever waits in the backlog is
    /// accepted next, at the price of an unauthenticated connection each.
    func descriptorsExhausted() {
        metrics.acceptBackoffs.increment()
        let evicting = connectionTable.descriptorsExhausted(spare: 16)
        logger.debug("out of descriptors", metadata: ["connections.limit": "\(connectionTable.limits.total)"])
        for id in evicting { streams[id]?.evict() }
    }

    func connectionClosed(reason: String) {
        metrics.connectionClosed(reason)
        hub.emit(.connectionClosed(reason: reason))
    }

    // MARK: Operator

    func engage(_ caseID: Int64) -> Bool { runCases(cases.engage(caseID)) }
    func dispatch(_ caseID: Int64) -> Bool { runCases(cases.dispatch(caseID)) }
    func close(_ caseID: Int64) -> Bool { runCases(cases.close(caseID)) }

    /// What the centre knows of `device` now: online, and what it last said in this process's sessions.
    func snapshot(_ device: UInt32) -> DeviceSnapshot {
        DeviceSnapshot(device: device, online: supervision.isOnline(device), report: sessions.withValue(device) { $0.machine.report })
    }

    /// Every device supervised since this process started.
    var snapshots: [DeviceSnapshot] { supervision.supervised.map { snapshot($0.device) } }
    var openCases: [CasePolicy.Case] { cases.openCases }

    /// The open cases as an operator's list shows them: each with its device's online state and its call.
    var caseOverviews: [CaseOverview] {
        cases.openCases.map { open in
            let call: CaseOverview.Call
            switch calls[open.device]?.machine.stage {
            case .binding?: call = .placing
            case .offered?: call = .offered
            case .active?: call = .connected
            case nil: call = engageCalls.contains { $0.id == open.id } ? .waiting : .none
            }
            return CaseOverview(case: open, deviceOnline: supervision.isOnline(open.device), call: call)
        }
    }

    // MARK: Feeding the machines

    /// Runs one event on `device`'s machine (made from the registry and journal if it has none) and its actions.
    @discardableResult
    func feed(
        _ device: UInt32, path: ReplyPath? = nil, _ event: (inout CenterSession) -> [CenterSession.Action]
    ) -> [CenterSession.Action] {
        // In place, where the table keeps it: a copy taken out and written back would share the session's
        // buffers (its opener's plaintext) with the one left in the table, and copy them every frame. One
        // lookup for a device the table holds. `event` must not touch `sessions` (an overlapping access): the
        // call sites only use their argument.
        var stepped = sessions.withValue(device) { Self.step(&$0, event, path: path) }
        if stepped == nil {
            guard let key = deviceKey(device) else { return [] }
            var entry = SessionEntry(machine: CenterSession(
                key: key, parameters: configuration.session, storedAnchor: keys.storedAnchor(device, epoch: key.epoch)))
            stepped = Self.step(&entry, event, path: path)
            if stepped?.holdsState == true { sessions[device] = entry }
        }
        guard let (hadSession, actions, hasSession, holdsState) = stepped else { return [] }
        if hasSession != hadSession {
            activeSessions += hasSession ? 1 : -1
            metrics.sessionsActive.set(Int64(activeSessions))
        }
        // A machine that holds nothing is not kept, so that frames under made-up device ids cost no memory.
        if !holdsState { sessions[device] = nil }
        run(actions, device: device, path: path)
        return actions
    }

    /// One event on a machine, with what it was and is: one access to the table for all of it. A frame of
    /// the session that came by `path` makes it the session's reply path here, in the same access.
    private static func step(
        _ entry: inout SessionEntry, _ event: (inout CenterSession) -> [CenterSession.Action], path: ReplyPath?
    ) -> (hadSession: Bool, actions: [CenterSession.Action], hasSession: Bool, holdsState: Bool) {
        let hadSession = entry.machine.hasSession
        let actions = event(&entry.machine)
        if let path, actions.contains(.authenticated) { entry.path = path }
        return (hadSession, actions, entry.machine.hasSession, entry.machine.holdsState)
    }

    private func run(_ actions: [CenterSession.Action], device: UInt32, path: ReplyPath?) {
        for action in actions {
            switch action {
            case .refuse(let error):
                metrics.refused(error.category)
                countRefusal(error.category.rawValue)
                logger.debug("frame refused", metadata: ["device.id": "\(device)", "reason": "\(error)"])
            case .drop(let reason):
                metrics.dropped(reason)
                countRefusal(reason.rawValue)
            case .authenticated:
                if let path { authenticated(path) }
                if let report = supervision.deviceSeen(device, now: now.monotonic) { supervisionReported(report) }
            case .persistAnchor(let anchor, let epoch):
                if let path { pendingPaths[device] = (anchor, path) }
                persistAnchor(anchor, epoch: epoch, device: device)
            case .sessionOpened(let anchor):
                // The journal found the sessionStart fresh (with processes sharing it, a replay of an old one is
                // found out only there): now it is the session's first frame, and proof of life.
                if let pending = pendingPaths[device], pending.anchor == anchor {
                    pendingPaths[device] = nil
                    sessions.withValue(device) { $0.path = pending.path }
                    authenticated(pending.path)
                }
                if let report = supervision.deviceSeen(device, now: now.monotonic) { supervisionReported(report) }
                metrics.sessionsOpened.increment()
                hub.emit(.sessionOpened(device: device, anchor: anchor))
                logger.debug("session opened", metadata: ["device.id": "\(device)", "anchor": "\(anchor)"])
            case .record(let message, let note):
                record(message, note: note, device: device)
            case .send(let frame):
                send(frame, to: device)
            case .turnAway(let anchor, let epoch):
                turnAway(device, anchor: anchor, epoch: epoch, path: path)
            case .scheduleRetransmit(let id, let attempt, let after):
                scheduleRetransmit(id: id, attempt: attempt, after: after, device: device)
            case .delivered(let id):
                retransmitTimers[UInt64(device) << 32 | UInt64(id)] = nil
                if callMessageIDs.remove(id) != nil { continue }  // a call message, not a case update
                hub.emit(.caseUpdateDelivered(device: device, updateID: id))
                journal.write(.caseUpdateDelivered(id, at: now.wall)) { _ in }
            case .deliveryRefused(let id, let reason):
                retransmitTimers[UInt64(device) << 32 | UInt64(id)] = nil
                if callMessageIDs.remove(id) != nil { callRefused(device: device, messageID: id, reason: reason) }
                logger.debug("device refused a message", metadata: ["device.id": "\(device)", "message.id": "\(id)", "reason": "\(reason)"])
            }
        }
    }

    /// A frame of a device's current session came by `path` (its session entry has it as its reply path now):
    /// a connection is authenticated.
    private func authenticated(_ path: ReplyPath) {
        if case .stream(let channel) = path, let id = streamIDs[ObjectIdentifier(channel)] {
            connectionTable.authenticated(id)
            streams[id]?.sessionAuthenticated()
        }
    }

    /// The `sessionStart` that asked for `anchor` will not open a session: forget where it came from.
    private func forgetPendingPath(_ device: UInt32, anchor: UInt64) {
        if pendingPaths[device]?.anchor == anchor { pendingPaths[device] = nil }
    }

    private func persistAnchor(_ anchor: UInt64, epoch: UInt16, device: UInt32) {
        journal.write(.anchor(device: device, anchor: anchor, epoch: epoch)) { result in
            switch result {
            case .success(.anchor(let outcome)) where outcome.raised:
                let previous = self.keys.storedEpoch(device)
                self.keys.remember(CenterJournal.StoredAnchor(epoch: epoch, anchor: anchor), device: device)
                let salt = UInt32.random(in: .min ... .max)
                let now = self.now
                self.feed(device) { $0.anchorPersisted(anchor, epoch: epoch, salt: salt, now: now) }
                if epoch > previous ?? 0, let key = self.sessions.withValue(device, { $0.machine.key }), key.epoch == epoch {
                    // The device moved to a later key epoch: its old key is retired here too.
                    self.keys.adopt(key, for: device)
                    self.metrics.keyEpochsChanged.increment()
                    self.hub.emit(.keyEpochChanged(device: device, epoch: epoch))
                }
                self.forgetPendingPath(device, anchor: anchor)
            case .success(.anchor(let outcome)):
                // Another process sharing the journal stored this anchor or a higher one: the copy in memory
                // was stale. The journal decides, and the session is refused as stale.
                self.keys.remember(CenterJournal.StoredAnchor(epoch: outcome.epoch, anchor: outcome.stored), device: device)
                self.feed(device) { $0.anchorRefused(anchor, stored: outcome.stored, storedEpoch: outcome.epoch) }
                self.forgetPendingPath(device, anchor: anchor)
            case .success:
                // Cannot happen: an anchor write reports `.anchor`. Not answered, as a failed write.
                self.feed(device) { $0.anchorPersistFailed(anchor) }
                self.forgetPendingPath(device, anchor: anchor)
            case .failure(let error):
                self.journalFailed(error)
                self.feed(device) { $0.anchorPersistFailed(anchor) }
                self.forgetPendingPath(device, anchor: anchor)
            }
        }
    }

    private func record(_ message: Message, note: String?, device: UInt32) {
        guard let id = message.reliableID else { return }
        let arrived = now
        var dispatchable = false
        if case .alarm(let alarm) = message { dispatchable = alarm.kind != .test }
        // Media keys are for the call only: the journal keeps the call's signalling without them.
        let write = CenterJournal.Write.message(
            device: device, message: message.withoutMediaKeys, at: arrived.wall, opensCase: dispatchable, note: note)
        record(write, message: message, note: note, device: device, arrived: arrived) { answer in
            let now = self.now
            switch answer {
            case .recorded: self.feed(device) { $0.recorded(id, now: now) }
            case .conflicted: self.feed(device) { $0.recordConflicted(id, now: now) }
            case .failed: self.feed(device) { $0.recordFailed(id, now: now) }
            }
        }
    }

    /// What the journal made of a reliable message, for the side that answers its sender.
    enum RecordAnswer {
        /// Durable (new, or a retransmission of what the journal holds): acknowledge.
        case recorded(Message, isNew: Bool)
        /// The same id with other content, not an alarm: refused (protocol.md §4.7).
        case conflicted
        /// Not durable (the write failed): never acknowledged.
        case failed
    }

    /// Writes a reliable message (`write`: our own, or a DC-09 event) through the journal's group commit; once
    /// its batch committed or failed, `answer` tells the sender's side, and then a new message is acted on
    /// once: events to observers, cases opened or closed. `message` is the message as received (with its
    /// media keys), or `nil` when the journal makes it (`.dc09Event`).
    func record(
        _ write: CenterJournal.Write, message: Message?, note: String?, device: UInt32, arrived: CenterInstant,
        answer: @escaping (RecordAnswer) -> Void
    ) {
        let at = arrived.wall
        journal.write(write) { result in
            let recorded: Message
            let outcome: CenterJournal.RecordOutcome
            switch result {
            case .success(.recorded(let found)):
                guard let message else {
                    answer(.failed)  // cannot happen: only a DC-09 event comes without its message
                    return
                }
                (recorded, outcome) = (message, found)
            case .success(.dc09Recorded(let made, let found)):
                (recorded, outcome) = (made, found)
            case .success:
                // Cannot happen: a message write reports `.recorded`, a DC-09 event `.dc09Recorded`. Never acknowledged.
                answer(.failed)
                return
            case .failure(let error):
                self.journalFailed(error)
                answer(.failed)
                return
            }
            let now = self.now
            if let reuse = outcome.idReused, recorded.kind != .alarm, let id = recorded.reliableID {
                // The same id with other content: refused, so the device can report it (protocol.md §4.7).
                answer(.conflicted)
                self.metrics.idConflicts.increment()
                if reuse > 0 { self.hub.emit(.idConflict(device: device, id: id, kind: recorded.kind.name)) }
                return
            }
            answer(.recorded(recorded, isNew: outcome.isNew))
            if outcome.isNew, recorded.kind == .alarm { self.metrics.alarmAckDuration.record(duration: now.monotonic - arrived.monotonic) }
            self.recorded(recorded, device: device, outcome: outcome, at: at)
            if outcome.isNew, case .alarm(let alarm) = recorded {
                var flags: [String] = []
                if let reuse = outcome.idReused {
                    self.metrics.idConflicts.increment()
                    flags.append("alarm id \(alarm.id) reused (\(reuse == 1 ? "once" : "\(reuse) times")): a new call for help, dispatched as a case of its own; the device's ids restarted (check its state directory)")
                }
                if let note { flags.append(note) }
                if !flags.isEmpty { self.hub.emit(.alarmFlagged(device: device, alarmID: alarm.id, flags: flags)) }
            }
        }
    }

    /// Acts on a message the journal now holds: once, however often the device sent it.
    private func recorded(_ message: Message, device: UInt32, outcome: CenterJournal.RecordOutcome, at: WireTime) {
        guard outcome.isNew else {
            if case .alarm(let alarm) = message {
                metrics.alarmsDuplicate.increment()
                hub.emit(.duplicateAlarm(device: device, alarmID: alarm.id))
            }
            return
        }
        metrics.messagesRecorded.increment()
        messageRecorded?()
        switch message {
        case .alarm(let alarm):
            metrics.alarmsRecorded.increment()
            let late = Int64(clamping: at) - Int64(clamping: alarm.triggeredAt)
            hub.emit(.alarm(device: device, alarm: alarm, lateMilliseconds: late, dispatched: outcome.openedCase != nil))
            logger.debug("alarm recorded", metadata: ["device.id": "\(device)", "alarm.id": "\(alarm.id)"])
            if outcome.earlierCancel != nil { hub.emit(.alarmCancelled(device: device, alarmID: alarm.id)) }
        case .alarmCancel(let cancel):
            if outcome.alarmRecorded { hub.emit(.alarmCancelled(device: device, alarmID: cancel.alarmID)) }
        case .callAnswer(let answer):
            hub.emit(.recorded(device: device, message: message.withoutMediaKeys))
            callAnswered(answer, device: device)
        case .callEnd(let end):
            hub.emit(.recorded(device: device, message: message))
            callEndedByDevice(end, device: device)
        default:
            hub.emit(.recorded(device: device, message: message.withoutMediaKeys))
        }
        if let (opened, update) = outcome.openedCase {
            caseChanged(opened, update: update)
            runCases(cases.caseOpened(opened))
        }
        if let (closed, update) = outcome.closedCase {
            cases.forget(closed.id)
            caseChanged(closed, update: update)
        }
    }

    // MARK: Cases

    @discardableResult
    func runCases(_ actions: [CasePolicy.Action]) -> Bool {
        for action in actions {
            switch action {
            case .transition(let changed):
                journalCaseChange(changed, retries: 0)
            case .scheduleTimer(let timer, let after):
                timers.schedule(in: after) { [self] in runCases(cases.timerFired(timer)) }
            }
        }
        return !actions.isEmpty
    }

    /// Journals an operator's (or the automatic operator's) change of a case, then tells the device. A failed
    /// write is tried again (1 s, doubling to 30 s) until the journal takes it: the decision was taken and is
    /// not lost with a busy or full disk. A retry that comes after a later state of the case was written
    /// changes nothing (the journal's state never goes back).
    private func journalCaseChange(_ changed: CasePolicy.Case, retries: Int) {
        journal.write(.caseUpdate(changed, at: now.wall)) { result in
            switch result {
            case .success(.caseUpdate(let update?)): self.caseChanged(changed, update: update)
            case .success: break  // the case is already in this state or a later one
            case .failure(let error):
                self.journalFailed(error)
                let wait = min(Duration.seconds(1) * (1 << min(retries, 5)), .seconds(30))
                self.timers.schedule(in: wait) { [self] in journalCaseChange(changed, retries: retries + 1) }
            }
        }
    }

    /// A case's new state is journalled: tell the device, reliably, and the observers. A DC-09 device is
    /// told nothing and not called: DC-09 carries neither (its operator phones the person, as ARCs do).
    private func caseChanged(_ changed: CasePolicy.Case, update: CaseUpdate) {
        hub.emit(.caseUpdate(caseID: changed.id, device: changed.device, alarmID: changed.alarmID, state: changed.state))
        guard !dc09Devices.contains(changed.device) else { return }
        feed(changed.device) { $0.deliver(.caseUpdate(update)) }
        // The operator who takes a case speaks with the person at once; a closed case ends its call.
        switch changed.state {
        case .operatorEngaged where configuration.callOnEngage:
            callOnEngagement(changed)
        case .closed:
            if callAlarm(device: changed.device) == changed.alarmID { endCall(device: changed.device) }
            bridge?.caseClosed(caseID: changed.id)
        default:
            break
        }
    }

    // MARK: Sending

    private func send(_ frame: CenterSession.DownFrame, to device: UInt32) {
        // Read where they lie, the down key derived there once a session: `sessions[device]` would copy the
        // whole session out.
        let answer = sessions.withValue(device) { entry in entry.path.map { ($0, entry.downKey(anchor: frame.anchor)) } }
        guard !stopped, let (path, key) = answer ?? nil else { return }
        send(frame, to: device, key: key, path: path)
    }

    /// The centre is full: `nak(0, busy)` answers the `sessionStart` under `anchor`, sealed under its key `epoch`,
    /// on the path it came by (the device has no session, so no path of its own here). Counted and said in the log, at most once a
    /// minute with the count since.
    private func turnAway(_ device: UInt32, anchor: UInt64, epoch: UInt16, path: ReplyPath?) {
        metrics.sessionsTurnedAway.increment()
        if let count = turnAwayLog.count(now: ContinuousClock.now - startedAt) {
            logger.warning(
                "at the session limit: devices are turned away (they try their secondary centre)",
                metadata: ["limit": "\(configuration.maximumSessions)", "turned.away": "\(count)"])
        }
        guard !stopped, let path, let current = sessions.withValue(device, { $0.machine.key }) ?? deviceKey(device),
            let deviceKey = current.epoch == epoch ? current : keys.laterKey(device, epoch: epoch)
        else { return }
        let salt = UInt32.random(in: .min ... .max)
        let refusal = CenterSession.DownFrame(
            anchor: anchor, salt: salt, sequence: 0, message: .nak(Nak(id: 0, reason: .busy, senderTime: now.wall)))
        send(refusal, to: device, key: deviceKey.downKey(anchor: anchor), path: path)
    }

    private func send(_ frame: CenterSession.DownFrame, to device: UInt32, key: SymmetricKey, path: ReplyPath) {
        let seal = { (buffer: inout ByteBuffer) throws(ProtocolError) in
            try SealedFrame.seal(frame.message, direction: .down, deviceID: device, counter: frame.counter, key: key, into: &buffer)
        }
        do throws(ProtocolError) {
            switch path {
            case .stream(let channel):
                guard channel.isActive else { return }
                // A peer that does not read would have its answers queue here without bound.
                guard channel.isWritable else {
                    metrics.framesUnsent.increment()
                    if let id = streamIDs[ObjectIdentifier(channel)] { streams[id]?.closeSlowReader() }
                    return
                }
                var buffer = ByteBufferAllocator().buffer(capacity: 64)
                try seal(&buffer)
                channel.writeAndFlush(buffer, promise: nil)
            case .datagram(let peer):
                guard let socket = datagramSocket else { return }
                // Sealed straight into the socket's send buffer. Refused when the kernel's send buffer has
                // been full for a while and the queue behind it is at its limit: UDP may lose it.
                guard try socket.enqueue(to: peer, seal) else {
                    metrics.framesUnsent.increment()
                    return
                }
                scheduleDatagramFlush()
            }
        } catch {
            logger.debug("could not seal a down frame", metadata: ["device.id": "\(device)", "reason": "\(error)"])
            return
        }
        switch frame.message {
        case .ack: metrics.acksSent.increment()
        case .nak: metrics.naksSent.increment()
        case .caseUpdate: metrics.caseUpdatesSent.increment()
        default: break
        }
    }

    /// One `sendmmsg` for everything answered in this turn of the loop (the acks of a read's datagrams, of a
    /// journal batch); while the kernel's send buffer is full, again every millisecond.
    private func scheduleDatagramFlush(after delay: Duration = .zero) {
        guard !datagramFlushPending else { return }
        datagramFlushPending = true
        let bound = NIOLoopBound(self, eventLoop: loop)
        if delay == .zero {
            loop.execute { bound.value.flushDatagrams() }
        } else {
            loop.scheduleTask(in: TimeAmount(delay)) { bound.value.flushDatagrams() }
        }
    }

    private func flushDatagrams() {
        datagramFlushPending = false
        guard let socket = datagramSocket else { return }
        let flushed = socket.flush()
        if flushed.dropped > 0 { metrics.framesUnsent.increment(by: Int64(flushed.dropped)) }
        if flushed.blocked { scheduleDatagramFlush(after: .milliseconds(1)) }
    }

    private func scheduleRetransmit(id: UInt32, attempt: Int, after: Duration, device: UInt32) {
        let key = UInt64(device) << 32 | UInt64(id)
        nextTimerToken &+= 1
        let token = nextTimerToken
        retransmitTimers[key] = token
        timers.schedule(in: after) { [self] in
            guard retransmitTimers[key] == token else { return }
            retransmitTimers[key] = nil
            let actions = feed(device) { $0.retransmitTimerFired(id: id, attempt: attempt) }
            if actions.contains(where: { if case .send = $0 { true } else { false } }) {
                metrics.retransmissions.increment()
            }
        }
    }

    // MARK: Supervision

    /// A frame of `device` that proves it alive arrived by another way than a session (a DC-09 account's).
    func deviceSeen(_ device: UInt32) {
        if let report = supervision.deviceSeen(device, now: now.monotonic) { supervisionReported(report) }
    }

    private func superviseTick() {
        guard !stopped else { return }
        for report in supervision.tick(now: now.monotonic) {
            supervisionReported(report)
            // Its session ends, freeing the slot: a device that returns re-handshakes anyway (protocol.md §4.7).
            feed(report.device) { session in
                session.supervisionLapsed()
                return []
            }
        }
    }

    /// Supervises `devices` from now on as if just heard (the journal handed them over: CenterJournal+Presence.swift).
    func adopt(_ devices: [UInt32]) {
        guard !devices.isEmpty else { return }
        let at = now.monotonic
        let adopted = devices.reduce(0) { $0 + (supervision.adopt($1, now: at) ? 1 : 0) }
        metrics.devicesOnline.set(Int64(supervision.onlineCount))
        logger.notice(
            "supervising the online devices of nodes whose lease lapsed (or of this node's previous run): each is reported offline unless heard from in time",
            metadata: ["node": "\(configuration.node)", "devices": "\(adopted)", "offline.after": "\(configuration.offlineAfter)"])
    }

    private func supervisionReported(_ report: Supervision.Report) {
        metrics.devicesOnline.set(Int64(supervision.onlineCount))
        switch report {
        case .online(let device):
            hub.emit(.online(device: device))
            journal.write(.supervision(device: device, online: true, at: now.wall)) { _ in }
        case .offline(let device):
            // The journal writes it only while no other node supervises the device, and, when this node had a
            // session of it, while that session's anchor is the stored one (the device did not open a newer
            // session at another node or process). Told even if the journal cannot be written: the centre's
            // own view is still the best it has.
            let anchor = sessions.withValue(device) { $0.machine.anchor } ?? nil
            journal.write(.supervision(device: device, online: false, at: now.wall, ifAnchor: anchor)) { result in
                if case .success(.supervision(written: false)) = result {
                    self.logger.debug("device moved to another centre node or process", metadata: ["device.id": "\(device)"])
                    return
                }
                self.hub.emit(.offline(device: device))
            }
        }
    }

    // MARK: Keys and journal failures

    /// The key of `device` from the registry, derived once and kept (at most `deviceKeyCacheLimit` keys, the
    /// least recently used forgotten first).
    func deviceKey(_ device: UInt32) -> DeviceKey? {
        guard let (key, derived) = keys.deviceKey(device) else { return nil }
        if derived {
            metrics.keyDerivations.increment()
            metrics.keyCacheEntries.set(Int64(keys.cachedKeys))
        }
        return key
    }

    private func journalFailed(_ error: any Error) {
        metrics.journalFailures.increment()
        logger.debug("journal write failed", metadata: ["reason": "\(error)"])
    }
}

