/// The centre's side of one device: its sessions, the replay window over its frames, what to record and what
/// to answer (protocol.md §3.4, §4.7, §5). Pure: no clock, no I/O; the retransmissions' jitter comes from a
/// generator seeded with the device's id.
///
/// The owner feeds it the device's frames and the outcome of the durable writes it asked for, and runs the
/// actions it returns in order. Nothing is answered before the write it depends on is reported done:
/// `sessionAccept` waits for `anchorPersisted`, `ack` for `recorded`.
public struct CenterSession: Sendable {
    /// What the centre tells every device, and how hard it insists on its own reliable messages.
    public struct Parameters: Hashable, Sendable {
        public var heartbeatIntervalSeconds: UInt16
        public var settings: Settings
        /// Frames a second a device may send on average, and in a burst (the token bucket).
        public var rate: Double
        public var burst: Double
        /// First retransmission timeout of a reliable down message; it doubles up to `retransmitMaximum`.
        public var retransmitInitial: Duration
        public var retransmitMaximum: Duration

        public init(
            heartbeatIntervalSeconds: UInt16 = 30, settings: Settings = Settings(), rate: Double = 20,
            burst: Double = 40, retransmitInitial: Duration = .seconds(1), retransmitMaximum: Duration = .seconds(30)
        ) {
            self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
            self.settings = settings
            self.rate = rate
            self.burst = burst
            self.retransmitInitial = retransmitInitial
            self.retransmitMaximum = retransmitMaximum
        }
    }

    /// A down frame to seal under `downKey(anchor:)` with the counter `salt << 32 | sequence`.
    public struct DownFrame: Hashable, Sendable {
        public var anchor: UInt64
        public var salt: UInt32
        public var sequence: UInt32
        public var message: Message

        public init(anchor: UInt64, salt: UInt32, sequence: UInt32, message: Message) {
            self.anchor = anchor
            self.salt = salt
            self.sequence = sequence
            self.message = message
        }

        public var counter: UInt64 { UInt64(salt) << 32 | UInt64(sequence) }
    }

    /// Why a frame was not acted on although it was not refused by the codec. Counted.
    public enum Drop: String, Hashable, Sendable, CaseIterable {
        /// Over the device's rate limit.
        case rateLimited
        /// The centre already holds its maximum number of sessions.
        case tooManySessions
    }

    public enum Action: Equatable, Sendable {
        /// Drop the frame and count it by `error.category`.
        case refuse(ProtocolError)
        /// Drop the frame and count it.
        case drop(Drop)
        /// The frame is authentic and of the device's current session: the device is alive, the connection it
        /// came on is authenticated, and answers go to this frame's source from now on (protocol.md §3.4). A
        /// `sessionStart` never is: its session opens, with `sessionOpened`, only once the journal found its
        /// anchor fresh.
        case authenticated
        /// Store `anchor` durably as the device's latest session anchor, of key epoch `epoch` (a later epoch
        /// moves the device to it), then report `anchorPersisted`.
        case persistAnchor(UInt64, epoch: UInt16)
        /// A new session is open, replacing any previous one: the `sessionStart` that asked for `anchor` is the
        /// session's first frame, and counts as `authenticated` from now on (answers go to its source).
        case sessionOpened(anchor: UInt64)
        /// The centre is at its maximum number of sessions: answer the authentic `sessionStart` under `anchor`
        /// with `nak(0, busy)` in place of `sessionAccept` (sequence 0 of a fresh salt, under `down(anchor)`), so
        /// that the device tries its other centre at once rather than after a handshake timeout (protocol.md §5).
        /// Nothing is stored. `epoch`: the key epoch the `sessionStart` came under, whose key seals the answer (a
        /// re-provisioned device's later epoch, or the machine's own).
        case turnAway(anchor: UInt64, epoch: UInt16)
        /// Record `message` durably (once per device and id), with `note` (the defects of an alarm read
        /// leniently), then report `recorded`, `recordConflicted` or `recordFailed`.
        case record(Message, note: String?)
        /// Seal and send.
        case send(DownFrame)
        /// Report `retransmitTimerFired(id:attempt:)` after `after` (`RetransmitBackoff`'s wait, jitter included).
        case scheduleRetransmit(id: UInt32, attempt: Int, after: Duration)
        /// The device acknowledged our reliable message `id`.
        case delivered(id: UInt32)
        /// The device refused our reliable message `id` for good.
        case deliveryRefused(id: UInt32, reason: NakReason)
    }

    private struct Session: Sendable {
        var anchor: UInt64
        var salt: UInt32
        var opener: FrameOpener
        /// `sessionAccept` is sequence 0.
        var nextSequence: UInt32 = 1
    }

    private enum State: Sendable {
        case noSession
        case open(Session)
    }

    private struct Outgoing: Sendable {
        var message: Message
        var attempt: Int
    }

    /// The key of the device's current key epoch (protocol.md §3.2).
    public private(set) var key: DeviceKey
    public let parameters: Parameters
    private var state: State = .noSession
    /// The anchor of the latest session of the current key epoch known to be on durable storage.
    public private(set) var storedAnchor: UInt64?
    /// The anchor of a `sessionStart` whose storage is under way.
    public private(set) var pendingAnchor: UInt64?
    /// The key of a later epoch that the pending `sessionStart` was sealed with, if it was.
    private var pendingKey: DeviceKey?
    private var bucket: TokenBucket
    private var outstanding: [UInt32: Outgoing] = [:]
    /// What to answer, once recorded, instead of `ack`: `nak(unsupported)` for an alarm of a later version,
    /// recorded and dispatched all the same (protocol.md §4.1).
    private var answers: [UInt32: NakReason] = [:]
    /// The retransmissions' jitter, seeded with the device id: devices differ, and a transcript is repeatable.
    private var random: SplitMix64
    /// What the device last said about itself, from its authentic frames (the operators' console shows it).
    public private(set) var report = DeviceReport()

    /// - Parameter storedAnchor: the device's latest session anchor from the journal, `nil` if it never had one.
    public init(key: DeviceKey, parameters: Parameters, storedAnchor: UInt64?) {
        self.key = key
        self.parameters = parameters
        self.storedAnchor = storedAnchor
        self.bucket = TokenBucket(rate: parameters.rate, burst: parameters.burst)
        self.random = SplitMix64(seed: UInt64(key.deviceID) &* 0x9E37_79B9_7F4A_7C15)
    }

    public var deviceID: UInt32 { key.deviceID }

    public var hasSession: Bool {
        switch state {
        case .noSession: false
        case .open: true
        }
    }

    /// The current session's anchor.
    public var anchor: UInt64? {
        switch state {
        case .noSession: nil
        case .open(let session): session.anchor
        }
    }

    /// Ids of reliable down messages the device has not acknowledged yet.
    public var undelivered: [UInt32] { outstanding.keys.sorted() }

    /// Whether it has a session, and its key's epoch: what the runtime reads of it before every frame.
    var facts: (hasSession: Bool, epoch: UInt16) { (hasSession, key.epoch) }

    /// Whether the owner must keep this machine; one that holds nothing can be rebuilt from the journal.
    public var holdsState: Bool { hasSession || pendingAnchor != nil || !outstanding.isEmpty }

    // MARK: Events

    /// A frame of this device arrived.
    ///
    /// Only frames of the current session count (protocol.md §3.4): without a session, anything but a fresh
    /// `sessionStart` is stale, however authentic, since it belongs to a session that is over (the centre
    /// restarted, the device's supervision lapsed) or to none; a recorded frame replayed must not pass for a
    /// device that has gone silent.
    ///
    /// A frame whose header names another key epoch than the current one is stale, unless it is a
    /// `sessionStart` that opens under `laterEpochKey` (the epoch its bits name, 1 to 7 ahead, derived by
    /// the owner) and confirms that epoch: then the device moves to it once the journal stores the anchor.
    /// - Parameter mayOpenSession: false when the centre is at its maximum number of sessions.
    public mutating func frameReceived(
        _ frame: SealedFrame, now: CenterInstant, mayOpenSession: Bool, laterEpochKey: DeviceKey? = nil
    ) -> [Action] {
        guard frame.header.keyEpochBits == UInt8(truncatingIfNeeded: key.epoch) & 0x07 else {
            return laterEpochSessionStart(frame, key: laterEpochKey, now: now, mayOpenSession: mayOpenSession)
        }
        let message: Message
        switch state {
        case .open(var session):
            // Moved out of `state` while it opens the frame: shared with `state`, the opener's plaintext buffer
            // would be copied before each rewrite, an allocation a frame.
            state = .noSession
            do throws(ProtocolError) {
                message = try session.opener.open(frame)
            } catch .undecodable(let undecodable) {
                // Authentic and of this session (its counter now used): answered, never left to retry forever.
                state = .open(session)
                return undecodableReceived(undecodable, now: now)
            } catch {
                state = .open(session)
                return [.refuse(error)]
            }
            state = .open(session)
        case .noSession:
            do throws(ProtocolError) {
                message = try openWithoutSession(frame)
            } catch {
                return [.refuse(error)]
            }
            guard case .sessionStart = message else { return [.refuse(.stale(counter: frame.header.counter))] }
            guard mayOpenSession else {
                // Answered within the device's rate, so that replays of one cannot make the centre a reflector.
                guard bucket.take(now: now.monotonic) else { return [.drop(.tooManySessions)] }
                return [.drop(.tooManySessions), .turnAway(anchor: frame.header.counter, epoch: key.epoch)]
            }
        }
        if case .sessionStart(let start) = message {
            guard (start.keyEpoch ?? 0) == key.epoch else {
                return [.refuse(.invalidField(message: "sessionStart", field: "keyEpoch", reason: "\(start.keyEpoch ?? 0) is not the epoch of the key that opened it (\(key.epoch))"))]
            }
            report.heard(message, at: now.wall)
            return sessionStartReceived(counter: frame.header.counter, now: now)
        }
        report.heard(message, at: now.wall)
        return ofSession(message, counter: frame.header.counter, now: now)
    }

    /// A frame under another key epoch: only a `sessionStart` of a later epoch may open, under that epoch's
    /// key and with no floor (the new key has sealed nothing before); everything else is stale.
    private mutating func laterEpochSessionStart(
        _ frame: SealedFrame, key laterKey: DeviceKey?, now: CenterInstant, mayOpenSession: Bool
    ) -> [Action] {
        let stale = ProtocolError.stale(counter: frame.header.counter)
        guard let laterKey, laterKey.epoch > key.epoch,
            UInt8(truncatingIfNeeded: laterKey.epoch) & 0x07 == frame.header.keyEpochBits,
            frame.header.deviceID == key.deviceID, frame.header.direction == .up,
            let message = try? frame.open(with: laterKey.upInlineKey),
            case .sessionStart(let start) = message, start.keyEpoch == laterKey.epoch
        else { return [.refuse(stale)] }
        guard mayOpenSession else {
            // Turned away as any device at the limit, under the key it came with, so that it tries its other centre.
            guard bucket.take(now: now.monotonic) else { return [.drop(.tooManySessions)] }
            return [.drop(.tooManySessions), .turnAway(anchor: frame.header.counter, epoch: laterKey.epoch)]
        }
        if let pendingKey, pendingKey.epoch == laterKey.epoch, let pendingAnchor, frame.header.counter <= pendingAnchor {
            return [.refuse(stale)]
        }
        guard bucket.take(now: now.monotonic) else { return [.drop(.rateLimited)] }
        pendingAnchor = frame.header.counter
        pendingKey = laterKey
        return [.persistAnchor(frame.header.counter, epoch: laterKey.epoch)]
    }

    /// An authentic frame of the session whose body this version cannot decode (protocol.md §4.1): an
    /// alarm is recorded as far as it reads and dispatched, other reliable messages are answered `nak`.
    private mutating func undecodableReceived(_ undecodable: UndecodableMessage, now: CenterInstant) -> [Action] {
        var actions: [Action] = [.authenticated, .refuse(.undecodable(undecodable))]
        guard let id = undecodable.id else { return actions }
        guard bucket.take(now: now.monotonic) else {
            actions.append(.drop(.rateLimited))
            send(.nak(Nak(id: id, reason: .rateLimited, senderTime: now.wall)), into: &actions)
            return actions
        }
        if let lenient = undecodable.alarm {
            if undecodable.nakReason == .unsupported { answers[id] = .unsupported }
            return actions + [.record(.alarm(lenient.alarm), note: lenient.defects.joined(separator: "; "))]
        }
        send(.nak(Nak(id: id, reason: undecodable.nakReason, senderTime: now.wall)), into: &actions)
        return actions
    }

    /// The anchor asked for by `persistAnchor` is on durable storage, of key epoch `epoch`.
    /// - Parameter salt: 32 random bits for the new session's down nonces, drawn by the owner.
    public mutating func anchorPersisted(_ anchor: UInt64, epoch: UInt16 = 0, salt: UInt32, now: CenterInstant) -> [Action] {
        if epoch > key.epoch {
            // The device moved to a later key epoch: the old key is retired with its anchors.
            guard let later = pendingKey, later.epoch == epoch else { return [] }
            key = later
            storedAnchor = anchor
            state = .noSession
        } else {
            guard epoch == key.epoch else { return [] }
            storedAnchor = max(storedAnchor ?? 0, anchor)
        }
        // A later sessionStart superseded this one while it was being stored: that one will be answered.
        guard pendingAnchor == anchor, (pendingKey?.epoch ?? key.epoch) == epoch else { return [] }
        pendingAnchor = nil
        pendingKey = nil
        let opener = FrameOpener(deviceID: key.deviceID, direction: .up, key: key.upKey, floor: anchor)
        state = .open(Session(anchor: anchor, salt: salt, opener: opener))
        let accept = SessionAccept(
            centreTime: now.wall, heartbeatIntervalSeconds: parameters.heartbeatIntervalSeconds,
            settings: parameters.settings)
        var actions: [Action] = [
            .sessionOpened(anchor: anchor),
            .send(DownFrame(anchor: anchor, salt: salt, sequence: 0, message: .sessionAccept(accept))),
        ]
        // What the device has not acknowledged is sent again in the new session, oldest first.
        for id in outstanding.keys.sorted() {
            outstanding[id]?.attempt = 1
            actions += transmit(id)
        }
        return actions
    }

    /// The journal holds an anchor at or above `anchor`, written by another centre process sharing it (a
    /// replayed `sessionStart`, or one older than the session the device opened elsewhere): the session is
    /// refused as stale, exactly as if the stored anchor had been known here, and never answered. A session
    /// of this machine below the stored anchor was superseded in that other process, and ends.
    ///
    /// With key epochs: the journal's epoch decides too. A stored epoch above the current one (another
    /// process moved the device on) ends this machine's session; its key comes again with the next
    /// `sessionStart` of that epoch.
    public mutating func anchorRefused(_ anchor: UInt64, stored: UInt64, storedEpoch: UInt16 = 0) -> [Action] {
        if storedEpoch == key.epoch {
            storedAnchor = max(storedAnchor ?? 0, stored)
            if case .open(let session) = state, session.anchor < stored { state = .noSession }
        } else if storedEpoch > key.epoch {
            state = .noSession
        }
        if pendingAnchor == anchor {
            pendingAnchor = nil
            pendingKey = nil
        }
        return [.refuse(.stale(counter: anchor))]
    }

    /// Storing the anchor failed: no answer, so the device tries a new `sessionStart` later.
    public mutating func anchorPersistFailed(_ anchor: UInt64) -> [Action] {
        if pendingAnchor == anchor {
            pendingAnchor = nil
            pendingKey = nil
        }
        return []
    }

    /// The reliable message `id` is durably recorded (now, or already before: a retransmission).
    public mutating func recorded(_ id: UInt32, now: CenterInstant) -> [Action] {
        if let reason = answers.removeValue(forKey: id) {
            return send(.nak(Nak(id: id, reason: reason, senderTime: now.wall)))
        }
        return send(.ack(Ack(id: id)))
    }

    /// The reliable message `id` reuses an id the device used for other content, and is not an alarm: it is
    /// refused (protocol.md §4.7), so the device can report it.
    public mutating func recordConflicted(_ id: UInt32, now: CenterInstant) -> [Action] {
        answers[id] = nil
        return send(.nak(Nak(id: id, reason: .invalid, senderTime: now.wall)))
    }

    /// The reliable message `id` could not be stored: the device must retry later.
    public mutating func recordFailed(_ id: UInt32, now: CenterInstant) -> [Action] {
        answers[id] = nil
        return send(.nak(Nak(id: id, reason: .busy, senderTime: now.wall)))
    }

    /// Sends a reliable down message (a case update) until the device acknowledges it, across sessions.
    public mutating func deliver(_ message: Message) -> [Action] {
        guard let id = message.reliableID else { return send(message) }
        outstanding[id] = Outgoing(message: message, attempt: 1)
        return transmit(id)
    }

    /// A retransmission timer set by `scheduleRetransmit` fired; a late one (already acknowledged,
    /// or superseded by a newer attempt) does nothing.
    public mutating func retransmitTimerFired(id: UInt32, attempt: Int) -> [Action] {
        guard hasSession, let outgoing = outstanding[id], outgoing.attempt == attempt else { return [] }
        outstanding[id]?.attempt = attempt + 1
        return transmit(id)
    }

    /// The device went silent past the supervision time: end its session, so that it re-handshakes and
    /// the session's slot is free. Undelivered messages wait for the next session.
    public mutating func supervisionLapsed() {
        state = .noSession
    }

    // MARK: Helpers

    /// Without a session there is no window: only a `sessionStart` above the stored anchor can be fresh,
    /// and its counter is checked before decryption.
    private func openWithoutSession(_ frame: SealedFrame) throws(ProtocolError) -> Message {
        guard frame.header.deviceID == key.deviceID else {
            throw .wrongDevice(expected: key.deviceID, received: frame.header.deviceID)
        }
        guard frame.header.direction == .up else { throw .wrongDirection(frame.header.direction) }
        if let floor = [storedAnchor, pendingAnchor].compactMap({ $0 }).max(), frame.header.counter <= floor {
            throw .stale(counter: frame.header.counter)
        }
        let message = try frame.open(with: key.upInlineKey)
        guard message.kind.travels(.up) else { throw .wrongDirection(.up) }
        return message
    }

    /// An authentic `sessionStart` above the stored anchor: stored first, answered after (`anchorPersisted`).
    private mutating func sessionStartReceived(counter: UInt64, now: CenterInstant) -> [Action] {
        guard bucket.take(now: now.monotonic) else { return [.drop(.rateLimited)] }
        pendingAnchor = counter
        pendingKey = nil
        return [.persistAnchor(counter, epoch: key.epoch)]
    }

    /// An authentic, fresh frame of the current session, other than a `sessionStart`.
    private mutating func ofSession(_ message: Message, counter: UInt64, now: CenterInstant) -> [Action] {
        var actions: [Action] = []
        actions.reserveCapacity(3)
        actions.append(.authenticated)
        guard bucket.take(now: now.monotonic) else {
            actions.append(.drop(.rateLimited))
            if let id = message.reliableID {
                send(.nak(Nak(id: id, reason: .rateLimited, senderTime: now.wall)), into: &actions)
            }
            return actions
        }
        switch message {
        case .sessionStart:
            // Handled by sessionStartReceived; listed to keep the switch whole.
            return sessionStartReceived(counter: counter, now: now)
        case .heartbeat:
            send(.heartbeatAck(HeartbeatAck(echoedCounter: counter, centreTime: now.wall)), into: &actions)
        case .alarm, .alarmCancel, .event, .diagnosticsReport, .callOffer, .callAnswer, .callEnd:
            actions.append(.record(message, note: nil))
        case .ack(let ack):
            if outstanding.removeValue(forKey: ack.id) != nil { actions.append(.delivered(id: ack.id)) }
        case .nak(let nak):
            switch nak.reason {
            case .rateLimited, .busy:
                break  // "retry later": the retransmission timer does
            default:
                if outstanding.removeValue(forKey: nak.id) != nil {
                    actions.append(.deliveryRefused(id: nak.id, reason: nak.reason))
                }
            }
        case .sessionAccept, .heartbeatAck, .caseUpdate, .configPush, .diagnosticsRequest:
            // The opener already refuses down-only messages in up frames; listed to keep the switch whole.
            return [.refuse(.wrongDirection(.up))]
        }
        return actions
    }

    private mutating func transmit(_ id: UInt32) -> [Action] {
        guard let outgoing = outstanding[id], hasSession else { return [] }
        let timeout = RetransmitBackoff(initial: parameters.retransmitInitial, maximum: parameters.retransmitMaximum)
            .wait(retries: outgoing.attempt - 1, using: &random)
        var actions: [Action] = []
        send(outgoing.message, into: &actions)
        actions.append(.scheduleRetransmit(id: id, attempt: outgoing.attempt, after: timeout))
        return actions
    }

    private mutating func send(_ message: Message) -> [Action] {
        var actions: [Action] = []
        send(message, into: &actions)
        return actions
    }

    /// Appends the `send` of `message` as the session's next down frame (nothing without a session).
    private mutating func send(_ message: Message, into actions: inout [Action]) {
        guard case .open(var session) = state else { return }
        let frame = DownFrame(anchor: session.anchor, salt: session.salt, sequence: session.nextSequence, message: message)
        if session.nextSequence == .max {
            // The session ends before its sequence would wrap (protocol.md §3.3); the device re-handshakes.
            state = .noSession
        } else {
            session.nextSequence += 1
            state = .open(session)
        }
        actions.append(.send(frame))
    }
}

/// What a device last said about itself in authentic frames: firmware and model from its `sessionStart`,
/// status and battery from its heartbeats, alarms and events (protocol.md §4), and when it was last heard.
/// `nil` where it has not said. Shown by the operators' console (docs/console.md); pure.
public struct DeviceReport: Hashable, Sendable {
    public var firmware: FirmwareVersion?
    public var model: String?
    /// The status bits of its last heartbeat, brought up to date by the events and alarms since.
    public var status: DeviceStatus?
    /// Percent; `nil` when the device does not know (255 on the wire).
    public var battery: UInt8?
    /// Milliseconds since the Unix epoch; 0 if never.
    public var lastHeard: WireTime = 0

    public init() {}

    mutating func heard(_ message: Message, at wall: WireTime) {
        lastHeard = wall
        switch message {
        case .sessionStart(let start):
            firmware = start.firmware
            model = start.model
        case .heartbeat(let heartbeat):
            status = heartbeat.status
            battery = heartbeat.battery == 255 ? nil : heartbeat.battery
        case .alarm(let alarm):
            if alarm.battery != 255 { battery = alarm.battery }
            if var known = status {
                if alarm.flags.contains(.onBattery) { known.remove(.mainsPresent) } else { known.insert(.mainsPresent) }
                status = known
            }
        case .event(let event):
            var known = status ?? []
            switch event.kind {
            case .lowBattery: known.insert(.batteryLow)
            case .batteryOK: known.remove(.batteryLow)
            case .mainsLost: known.remove(.mainsPresent)
            case .mainsRestored: known.insert(.mainsPresent)
            case .buttonMissing: known.remove(.buttonPresent)
            case .buttonRestored: known.insert(.buttonPresent)
            case .tamper: known.insert(.tamper)
            default: return
            }
            status = known
        default:
            break
        }
    }
}
