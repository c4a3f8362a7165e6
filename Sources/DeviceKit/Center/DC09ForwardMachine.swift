import DequeModule

/// The gateway's sender (`devicesim center --forward`, docs/dc09.md "The centre as a gateway"): it takes the
/// journal's queue of case events (`CenterJournal.ForwardRow`, oldest first) to a DC-09 receiver and its
/// backup, and says when a row may leave the queue (`remove`, on the receiver's `ACK` only).
///
/// - Each device's events go in order: a device has at most one frame in flight, its oldest queued row;
///   several devices' frames are in flight together (up to `window`), so one slow device stalls no other.
/// - A row's sequence number is drawn from its queue id as `DC09FrameSession.sequence(of:)` draws it from a
///   message id: the same on every retransmission, and across restarts (the id is durable). A row whose
///   sequence another row in flight holds (ids 9,999 apart) waits.
/// - `ACK` → `remove`; `NAK` → the clock offset its time teaches, and the frame again at once; `DUH` →
///   reported with the frame's data, the row kept (never dropped) and sent again after the longest backoff,
///   its device's later rows waiting behind it; no answer within `answerTimeout` → the frame again, same
///   sequence. A `NAK` or `DUH` of sequence 0000 answers the oldest frame without an answer (receivers answer
///   in order).
/// - A receiver that refuses the connection, drops it, or leaves `failuresBeforeFailover` frames in a row
///   unanswered is down: reported once per outage, reconnected after a `Backoff` delay with jitter, and
///   after `failuresBeforeFailover` failures in a row the backup takes over; the primary is tried again
///   `failbackAfter` later. Up again is reported at its first answer.
///
/// Pure: no clock (the wall clock comes with each event, timers as `timerFired`), no I/O; randomness (the
/// backoff's jitter, the pad of encrypted frames) from a seeded generator.
public struct DC09ForwardMachine: Sendable {
    public struct Parameters: Hashable, Sendable {
        /// Frames in flight at once, over all devices, to a receiver whose target names no window. 1 by default:
        /// many receivers (pysiaalarm's TCP server among them) read one frame per read.
        public var window: Int
        public var answerTimeout: Duration
        public var failuresBeforeFailover: Int
        public var failbackAfter: Duration
        /// Between reconnections to a receiver that is down; its cap is also the wait after a `DUH`. 15 s at
        /// most: with 60 s, the queue of a 13 s pysiaalarm outage took 32 s to drain after it came back, 29 of
        /// them waiting to reconnect (the drain itself: 3 s); a refused connection costs the ARC little.
        public var backoff: Backoff
        /// Queued rows held in memory; more stay in the journal until these drain.
        public var bufferLimit: Int

        public init(
            window: Int = 1, answerTimeout: Duration = .seconds(10), failuresBeforeFailover: Int = 3,
            failbackAfter: Duration = .seconds(300), backoff: Backoff = Backoff(base: .seconds(1), cap: .seconds(15)),
            bufferLimit: Int = 2_048
        ) {
            self.window = max(1, window)
            self.answerTimeout = answerTimeout
            self.failuresBeforeFailover = max(1, failuresBeforeFailover)
            self.failbackAfter = failbackAfter
            self.backoff = backoff
            self.bufferLimit = max(1, bufferLimit)
        }
    }

    public enum Timer: Hashable, Sendable {
        case answerTimeout(row: Int64, generation: UInt64)
        case reconnect(generation: UInt64)
        case failback(generation: UInt64)
        case retryNotUnderstood(row: Int64, generation: UInt64)
    }

    /// What the driver logs and counts. Receivers are numbered as given: 0 the primary, 1 the backup.
    public enum Report: Hashable, Sendable {
        /// Once per outage.
        case receiverDown(receiver: Int, reason: String)
        /// Its first answer after an outage.
        case receiverUp(receiver: Int)
        case failover(from: Int, to: Int)
        case acknowledged(receiver: Int, row: Int64)
        case retransmitted(receiver: Int, row: Int64)
        /// A `NAK`; `clockOffset` is the receiver's time minus ours, in seconds, from now on.
        case refused(receiver: Int, row: Int64?, clockOffset: Int64)
        /// A `DUH`, with the data of the frame it answered (no key: the clear content).
        case notUnderstood(receiver: Int, row: Int64?, data: String)
        /// Bytes from the receiver that are no answer we can read.
        case unreadable(receiver: Int, DC09Error)
        /// An answer to no frame in flight (late, or after a restart).
        case unmatched(receiver: Int, DC09Frame.ID, sequence: String)
        /// A row that cannot be written as a frame (cannot happen with a checked target); kept, as after a `DUH`.
        case unencodable(row: Int64, DC09Error)
    }

    public enum Action: Hashable, Sendable {
        /// Read up to `limit` queued rows after id `after`, then `rowsLoaded` (or `rowsLoadFailed`).
        case loadRows(after: Int64, limit: Int)
        /// Open a link to receiver `receiver`, then `connected(link:)` or `linkFailed(link:)`.
        case connect(receiver: Int, link: UInt64)
        case close(link: UInt64)
        case send([UInt8], row: Int64, link: UInt64)
        /// The receiver acknowledged the row: delete it from the journal's queue.
        case remove(row: Int64)
        case scheduleTimer(Timer, after: Duration)
        case report(Report)
    }

    private enum Link: Hashable {
        case connecting(UInt64)
        case up(UInt64)
        case waiting(UInt64)
        case idle
    }

    private enum FlightState: Hashable {
        case awaiting(generation: UInt64)
        case held(generation: UInt64)
    }

    private struct Flight: Hashable {
        var device: UInt32
        var sequence: String
        var data: String
        var state: FlightState
    }

    public let receivers: [DC09ForwardTarget]
    public let parameters: Parameters
    private var random: SplitMix64
    private var queues: [UInt32: Deque<CenterJournal.ForwardRow>] = [:]
    public private(set) var buffered = 0
    private var highestLoaded: Int64 = 0
    private var loading = false
    /// Whether the journal may hold rows not loaded yet: at the start, what a previous run left queued.
    private var rowsWaiting = true
    private var flights: [Int64: Flight] = [:]
    private var bySequence: [String: Int64] = [:]
    /// Rows sent on the current link without an answer yet, in the order sent.
    private var awaiting: Deque<Int64> = []
    private var link = Link.idle
    private var nextGeneration: UInt64 = 0
    /// The receiver in use: 0 the primary, 1 the backup.
    public private(set) var active = 0
    private var failures = 0
    private var down: [Bool]
    /// Per receiver: its time minus ours, in seconds, as its last `NAK` with a time said.
    public private(set) var clockOffsets: [Int64]
    private var failback: UInt64?

    /// - Parameter receivers: the primary, then optionally its backup.
    public init(receivers: [DC09ForwardTarget], parameters: Parameters = .init(), seed: UInt64) {
        // Cannot happen: `CenterServer` refuses more than two before it starts a forwarder, and makes none without one.
        precondition((1...2).contains(receivers.count), "a primary receiver and at most one backup")
        self.receivers = receivers
        self.parameters = parameters
        random = SplitMix64(seed: seed)
        down = Array(repeating: false, count: receivers.count)
        clockOffsets = Array(repeating: 0, count: receivers.count)
    }

    /// Rows in flight (sent, or held after a `DUH`).
    public var inFlight: Int { flights.count }

    // MARK: Events

    public mutating func start() -> [Action] {
        load() + connect()
    }

    /// Rows were added to the journal's queue (here, or by another process sharing it).
    public mutating func rowsQueued() -> [Action] {
        rowsWaiting = true
        return load()
    }

    /// - Parameter late: ids below the highest loaded that the read found now, never loaded before: rows another
    ///   node's transaction had taken its id for but not yet committed when later rows were read (PostgreSQL).
    public mutating func rowsLoaded(_ rows: [CenterJournal.ForwardRow], limit: Int, wall: UInt64, late: Set<Int64> = []) -> [Action] {
        loading = false
        for row in rows where row.id > highestLoaded || late.contains(row.id) {
            queues[row.device, default: []].append(row)
            buffered += 1
            highestLoaded = max(highestLoaded, row.id)
        }
        if rows.count >= limit { rowsWaiting = true }
        return pump(wall: wall) + load()
    }

    public mutating func rowsLoadFailed() -> [Action] {
        loading = false
        rowsWaiting = true
        return []
    }

    public mutating func connected(link id: UInt64, wall: UInt64) -> [Action] {
        guard link == .connecting(id) else { return [.close(link: id)] }
        link = .up(id)
        return pump(wall: wall)
    }

    /// The link could not be opened, or closed, or failed.
    public mutating func linkFailed(link id: UInt64, reason: String) -> [Action] {
        guard link == .connecting(id) || link == .up(id) else { return [] }
        return failed(reason: reason)
    }

    /// One answer (a frame from `DC09FrameSplitter`, or a datagram) on link `id`.
    public mutating func answer(_ bytes: some Collection<UInt8>, link id: UInt64, wall: UInt64) -> [Action] {
        guard link == .up(id) else { return [] }
        let target = receivers[active]
        let frame: DC09Frame
        do {
            frame = try DC09Frame.decode(bytes) { _ in target.key }
        } catch {
            return [.report(.unreadable(receiver: active, error))]
        }
        switch frame.id {
        case .ack:
            guard let row = bySequence[frame.sequence], case .awaiting = flights[row]?.state else {
                return [.report(.unmatched(receiver: active, .ack, sequence: frame.sequence))]
            }
            var actions = answered()
            finish(row)
            actions += [.remove(row: row), .report(.acknowledged(receiver: active, row: row))]
            return actions + pump(wall: wall) + load()
        case .nak:
            var actions = answered()
            if let time = frame.timestamp {
                clockOffsets[active] = time.secondsSince1970 - DC09Timestamp(milliseconds: wall).secondsSince1970
            }
            let row = answeredRow(frame.sequence)
            actions.append(.report(.refused(receiver: active, row: row, clockOffset: clockOffsets[active])))
            guard let row, let device = flights[row]?.device else { return actions }
            return actions + send(row, device: device, wall: wall)
        case .duh:
            var actions = answered()
            let row = answeredRow(frame.sequence)
            actions.append(.report(.notUnderstood(receiver: active, row: row, data: row.flatMap { flights[$0]?.data } ?? "")))
            guard let row else { return actions }
            actions += hold(row)
            return actions + pump(wall: wall)
        default:
            return [.report(.unmatched(receiver: active, frame.id, sequence: frame.sequence))]
        }
    }

    public mutating func timerFired(_ timer: Timer, wall: UInt64) -> [Action] {
        switch timer {
        case .answerTimeout(let row, let generation):
            guard let flight = flights[row], flight.state == .awaiting(generation: generation), case .up(let id) = link
            else { return [] }
            failures += 1
            if failures >= parameters.failuresBeforeFailover {
                failures -= 1  // `failed` counts this one
                return [.close(link: id)] + failed(reason: "no answer within \(parameters.answerTimeout)")
            }
            awaiting.removeAll { $0 == row }
            return [.report(.retransmitted(receiver: active, row: row))] + send(row, device: flight.device, wall: wall)
        case .reconnect(let generation):
            guard link == .waiting(generation) else { return [] }
            return connect()
        case .failback(let generation):
            guard failback == generation, active != 0 else { return [] }
            failback = nil
            var actions = dropLink()
            actions.append(.report(.failover(from: active, to: 0)))
            active = 0
            failures = 0
            return actions + connect()
        case .retryNotUnderstood(let row, let generation):
            guard let flight = flights[row], flight.state == .held(generation: generation) else { return [] }
            flights[row] = nil
            bySequence[flight.sequence] = nil
            return pump(wall: wall)
        }
    }

    // MARK: Inside

    private mutating func generation() -> UInt64 {
        nextGeneration += 1
        return nextGeneration
    }

    /// Reads more rows once the buffer is at most half full: a backlog is read in large pages, not a row
    /// per acknowledgement.
    private mutating func load() -> [Action] {
        guard rowsWaiting, !loading, buffered <= parameters.bufferLimit / 2 else { return [] }
        loading = true
        rowsWaiting = false
        return [.loadRows(after: highestLoaded, limit: parameters.bufferLimit - buffered)]
    }

    private mutating func connect() -> [Action] {
        let id = generation()
        link = .connecting(id)
        return [.connect(receiver: active, link: id)]
    }

    /// Sends the oldest row of each device that has none in flight, oldest first, while the window allows.
    private mutating func pump(wall: UInt64) -> [Action] {
        guard case .up = link else { return [] }
        let window = receivers[active].window ?? parameters.window
        var sending = awaiting.count
        guard sending < window else { return [] }
        var heads: [CenterJournal.ForwardRow] = []
        for (_, queue) in queues {
            if let head = queue.first, flights[head.id] == nil { heads.append(head) }
        }
        heads.sort { $0.id < $1.id }
        var actions: [Action] = []
        for head in heads where sending < window {
            guard bySequence[Self.sequence(of: head.id)] == nil else { continue }
            actions += send(head.id, device: head.device, wall: wall)
            sending += 1
        }
        return actions
    }

    /// The frame of `row`, sent on the current link, with its answer timer.
    private mutating func send(_ row: Int64, device: UInt32, wall: UInt64) -> [Action] {
        guard case .up(let id) = link, let head = queues[device]?.first, head.id == row else { return [] }
        let target = receivers[active]
        let sequence = Self.sequence(of: row)
        let account = target.account(of: device)
        let data = head.code.data(target.format, account: account, user: target.account == nil ? nil : device)
        let frame = DC09Frame(
            id: target.format, sequence: sequence, receiver: target.receiver, line: target.line, account: account, data: data,
            timestamp: DC09Timestamp(secondsSince1970: DC09Timestamp(milliseconds: wall).secondsSince1970 + clockOffsets[active]))
        let bytes: [UInt8]
        do {
            bytes = try frame.encoded(key: target.key, random: &random)
        } catch {
            flights[row] = Flight(device: device, sequence: sequence, data: data, state: .awaiting(generation: 0))
            bySequence[sequence] = row
            return [.report(.unencodable(row: row, error))] + hold(row)
        }
        let generation = generation()
        flights[row] = Flight(device: device, sequence: sequence, data: data, state: .awaiting(generation: generation))
        bySequence[sequence] = row
        awaiting.append(row)
        return [.send(bytes, row: row, link: id), .scheduleTimer(.answerTimeout(row: row, generation: generation), after: parameters.answerTimeout)]
    }

    /// A `DUH`: the row stays at its device's head, out of the window, until the longest backoff passed.
    private mutating func hold(_ row: Int64) -> [Action] {
        awaiting.removeAll { $0 == row }
        let generation = generation()
        flights[row]?.state = .held(generation: generation)
        return [.scheduleTimer(.retryNotUnderstood(row: row, generation: generation), after: parameters.backoff.cap)]
    }

    /// The row an answer of `sequence` is for: the one sent with it, or for 0000 the oldest without an answer.
    private mutating func answeredRow(_ sequence: String) -> Int64? {
        let row: Int64?
        if let named = bySequence[sequence], case .awaiting = flights[named]?.state {
            row = named
        } else {
            row = awaiting.first
        }
        if let row { awaiting.removeAll { $0 == row } }
        return row
    }

    /// The receiver answered: it is up, and its failures are forgiven.
    private mutating func answered() -> [Action] {
        failures = 0
        guard down[active] else { return [] }
        down[active] = false
        return [.report(.receiverUp(receiver: active))]
    }

    /// `row` was acknowledged: it leaves its device's queue.
    private mutating func finish(_ row: Int64) {
        guard let flight = flights.removeValue(forKey: row) else { return }
        bySequence[flight.sequence] = nil
        awaiting.removeAll { $0 == row }
        guard queues[flight.device]?.first?.id == row else { return }
        queues[flight.device]?.removeFirst()
        if queues[flight.device]?.isEmpty == true { queues[flight.device] = nil }
        buffered -= 1
    }

    /// Frames sent on the link being given up will get no answer: they go again on the next link.
    private mutating func dropLink() -> [Action] {
        var actions: [Action] = []
        switch link {
        case .up(let id), .connecting(let id): actions.append(.close(link: id))
        case .waiting, .idle: break
        }
        forgetAwaiting()
        return actions
    }

    private mutating func forgetAwaiting() {
        for row in awaiting {
            if let flight = flights.removeValue(forKey: row) { bySequence[flight.sequence] = nil }
        }
        awaiting = []
        link = .idle
    }

    /// The current link failed: down (reported once), then the backup or a reconnection after a backoff.
    private mutating func failed(reason: String) -> [Action] {
        var actions: [Action] = []
        forgetAwaiting()
        failures += 1
        if !down[active] {
            down[active] = true
            actions.append(.report(.receiverDown(receiver: active, reason: reason)))
        }
        if failures >= parameters.failuresBeforeFailover, receivers.count > 1 {
            let from = active
            active = 1 - active
            failures = 0
            actions.append(.report(.failover(from: from, to: active)))
            if active != 0 {
                let generation = generation()
                failback = generation
                actions.append(.scheduleTimer(.failback(generation: generation), after: parameters.failbackAfter))
            } else {
                failback = nil
            }
            return actions + connect()
        }
        let generation = generation()
        link = .waiting(generation)
        let delay = parameters.backoff.delay(attempt: failures - 1, using: &random)
        return actions + [.scheduleTimer(.reconnect(generation: generation), after: delay)]
    }

    /// A row's sequence number: as a message's (`DC09FrameSession`), drawn from its durable queue id.
    public static func sequence(of row: Int64) -> String {
        DC09FrameSession.sequence(of: UInt32(truncatingIfNeeded: row % 9999))
    }
}
