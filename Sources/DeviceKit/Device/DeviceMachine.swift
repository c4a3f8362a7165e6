import NIOCore

/// The whole device as one pure machine: the button's verdicts, the alarm's life, device events, the link,
/// reliable delivery, sealing and opening frames, the link's health and calls — and the wiring between them
/// that used to live in the drivers. The firmware (`DeviceRuntime`) and the load tester's devices drive this
/// same machine; what differs between them is only how its actions are carried out (a durable outbox or
/// memory, a socket of one's own or a shard's, logs or load counters).
///
/// ```
///  button ─► PressDetector ─pressed─► AlarmMachine ─storeAlarm─► (outbox) ─stored─► DeliveryMachine ─send─┐
///                                        ▲   delivered ◄──────────────────── ack ◄── frames ◄──────────────┤
///  power ─► DeviceEventMachine ─storeEvent─► (outbox) ─stored─► DeliveryMachine                            │
///  network ─► LinkMachine ─sessionEstablished/Lost─► DeliveryMachine, LinkHealth ─► indicator              │
///                 └─send(sessionStart), heartbeats (status from events, delivery, alarm) ─► frames (seal) ─┘
///  centre's reliable messages: acked, applied once (HandledIDs), caseUpdate ─► AlarmMachine, callOffer ─► CallMachine
/// ```
/// Composed the way postgres-nio composes its `ConnectionStateMachine`: the sub-machines are plain values in
/// this one; every event goes in here, every action comes out of here, and transcript tests reach the wiring.
///
/// Pure: time comes in as `now` (monotonic since the driver started, and the wall clock); keys are values;
/// nothing is stored, sent or scheduled but through the actions.
public struct DeviceMachine: Sendable {
    /// What every device of a fleet has in common: everything but the key. The sub-machines' parts are held
    /// by reference (`Shared`), so the machines built from one configuration share them: a load run keeps them
    /// once, not once a device.
    public struct Configuration: Sendable {
        private var linkSettings: Shared<LinkMachine.Configuration>
        private var deliverySettings: Shared<DeliveryMachine.Configuration>
        private var pressSettings: Shared<PressDetector.Configuration>
        private var eventsSettings: Shared<DeviceEventMachine.Configuration>
        private var healthSettings: Shared<LinkHealth.Configuration>
        public var cancelWindow: Duration
        /// How many centre message ids to remember for once-only handling.
        public var handledIDs: Int
        /// The centres' addresses in words (`127.0.0.1:7730`), for what the device says about its link.
        public var primaryName: String
        public var secondaryName: String?
        /// Heartbeat at this interval whatever the centre's `sessionAccept` says (the load tester's
        /// `--heartbeat-interval`); `nil`: the centre's.
        public var heartbeatOverride: UInt16?
        /// Report over SIA DC-09 instead of our protocol (`reportOverDC09`): the account, receiver, line,
        /// payload and key; `nil`: our protocol.
        public private(set) var dc09: DC09FrameSession.Configuration?
        /// The centre's voice is SIP (`[voice] sip`, the load tester's `--sip-call`): the device calls it once
        /// an alarm is acknowledged and answers its calls back (`SIPVoiceMachine`); `nil`: our protocol's calls.
        public var sipVoice: SIPVoiceMachine.Configuration?

        public init(
            link: LinkMachine.Configuration, delivery: DeliveryMachine.Configuration = .init(),
            press: PressDetector.Configuration = .init(), events: DeviceEventMachine.Configuration = .init(),
            health: LinkHealth.Configuration = .init(), cancelWindow: Duration = .seconds(10), handledIDs: Int = 1024,
            primaryName: String = "the primary centre", secondaryName: String? = nil
        ) {
            self.primaryName = primaryName
            self.secondaryName = secondaryName
            linkSettings = Shared(link)
            deliverySettings = Shared(delivery)
            pressSettings = Shared(press)
            eventsSettings = Shared(events)
            healthSettings = Shared(health)
            self.cancelWindow = cancelWindow
            self.handledIDs = handledIDs
        }

        public var link: LinkMachine.Configuration {
            get { linkSettings.value }
            set { linkSettings.value = newValue }
        }
        public var delivery: DeliveryMachine.Configuration {
            get { deliverySettings.value }
            set { deliverySettings.value = newValue }
        }
        public var press: PressDetector.Configuration {
            get { pressSettings.value }
            set { pressSettings.value = newValue }
        }
        public var events: DeviceEventMachine.Configuration {
            get { eventsSettings.value }
            set { eventsSettings.value = newValue }
        }
        public var health: LinkHealth.Configuration {
            get { healthSettings.value }
            set { healthSettings.value = newValue }
        }

        /// Reports over SIA DC-09 (docs/dc09.md) instead of our protocol: no handshake (the link is up once the
        /// transport is), `NULL` supervision every `supervision` (down after two and a half without an
        /// answer, as our heartbeats), and one message in flight at a time — a receiver's `NAK` names no
        /// sequence, so it must be the one message waiting. The outbox and its rules stay as they are.
        public mutating func reportOverDC09(_ dc09: DC09FrameSession.Configuration, supervision: Duration) {
            self.dc09 = dc09
            link.handshake = false
            link.defaultHeartbeatInterval = supervision
            delivery.window = 1
            // A DC-09 receiver answers over TCP, often only after it has passed the event on: alarms back off
            // as everything else does, rather than repeating every second.
            delivery.urgentMaximumTimeout = delivery.maximumTimeout
        }

        /// The sub-machines, sharing their settings with every machine built from this configuration.
        fileprivate func machines(seed: UInt64) -> (PressDetector, DeviceEventMachine, LinkMachine, DeliveryMachine, LinkHealth) {
            (PressDetector(settings: pressSettings), DeviceEventMachine(settings: eventsSettings, seed: seed ^ 1),
             LinkMachine(settings: linkSettings, seed: seed ^ 2), DeliveryMachine(settings: deliverySettings, seed: seed ^ 3),
             LinkHealth(settings: healthSettings))
        }
    }

    /// The monotonic instant (since the driver started) and the wall clock, read together.
    public typealias Instant = ClockReading

    public enum Timer: Hashable, Sendable {
        case press(wakeUp: Duration)
        case alarm(AlarmMachine.Timer)
        case events(DeviceEventMachine.Timer)
        case link(LinkMachine.Timer)
        case delivery(DeliveryMachine.Timer)
        case health(LinkHealth.Timer)
        case voice(SIPVoiceMachine.Timer)
    }

    /// A reliable message to store durably before it is sent: the outbox draws its id.
    public enum Draft: Hashable, Sendable {
        case alarm(kind: AlarmKind, triggeredAt: WireTime, battery: UInt8, flags: AlarmFlags, holdMilliseconds: UInt16?)
        case cancel(alarmID: UInt32, at: WireTime)
        case event(DeviceEventKind, at: WireTime, value: UInt32)
        case diagnosticsReport(requestID: UInt32, battery: UInt8, mainsPresent: Bool, buttonPresent: Bool, uptimeSeconds: UInt32, pending: UInt16)
        case callAnswer(callID: UInt32, media: MediaDescription)
        case callEnd(callID: UInt32, reason: CallEndReason)

        /// The message, with the id the outbox drew.
        public func message(id: UInt32) -> Message {
            switch self {
            case let .alarm(kind, at, battery, flags, hold):
                .alarm(Alarm(id: id, kind: kind, triggeredAt: at, battery: battery, flags: flags, holdMilliseconds: hold))
            case let .cancel(alarmID, at): .alarmCancel(AlarmCancel(id: id, alarmID: alarmID, cancelledAt: at))
            case let .event(kind, at, value): .event(DeviceEvent(id: id, kind: kind, at: at, value: value))
            case let .diagnosticsReport(requestID, battery, mains, button, uptime, pending):
                .diagnosticsReport(DiagnosticsReport(
                    id: id, requestID: requestID, battery: battery, mainsPresent: mains, buttonPresent: button,
                    uptimeSeconds: uptime, outboxPending: pending, storageWritable: true))
            case let .callAnswer(callID, media): .callAnswer(CallAnswer(id: id, callID: callID, media: media))
            case let .callEnd(callID, reason): .callEnd(CallEnd(id: id, callID: callID, reason: reason))
            }
        }
    }

    public enum Action: Equatable, Sendable {
        /// Open a connection (TCP) or a socket (UDP) to `path`'s centre; report `connected` or
        /// `connectFailed` with this generation.
        case connect(LinkMachine.Path, generation: Int)
        /// Close the connection; its later reports carry an old generation and are ignored.
        case disconnect
        /// Write this sealed frame on the connection (over UDP: to `path`'s centre).
        case transmit(ByteBuffer, to: LinkMachine.Path)
        /// Store this counter limit durably, then report `countersReserved` (or `counterStoreFailed`).
        case reserveCounters(limit: UInt64)
        /// Store the draft durably, then report `stored(message)` (or `storeFailed`).
        case store(Draft)
        /// Delete the message from the durable outbox: the centre has it.
        case remove(id: UInt32)
        case schedule(Timer, after: Duration)
        /// Show this state to the person at home.
        case indicate(IndicatorState)
        /// Something happened, for logs, the demo, tests and the load tester's counts.
        case observe(DeviceObservation.Kind)
        /// Bind media ports for the centre's `offer`; report `mediaBound` or `mediaFailed`.
        case bindMedia(CallOffer)
        /// Start the media bound for `callID` towards `remote`.
        case startMedia(callID: UInt32, local: MediaDescription, remote: MediaDescription)
        /// Stop the media of `callID` (RTCP BYE) and report its numbers with `mediaStopped` (nil if none).
        case stopMedia(callID: UInt32, reason: CallEndReason)
        /// Call the centre over SIP (`[voice] sip`) about `alarmID`; report `sipCallAnswered`, `sipCallEnded`.
        case placeSIPCall(alarmID: UInt32, attempt: Int)
        /// Hang up (or cancel) the SIP call that is up; its `sipCallEnded` still comes.
        case hangUpSIPCall
    }

    // Stored properties in this order to waste little on alignment: a load run holds a million of these
    // (`MemoryLayout<DeviceMachine>.size`, docs/benchmarks.md). Eight-byte ones first, the odd-sized last.

    /// Held by reference: the devices of a load run share it.
    private let settings: Shared<Configuration>
    public var configuration: Configuration { settings.value }
    private var press: PressDetector
    private var link: LinkMachine
    private var health: LinkHealth
    /// Our protocol's sealing and opening, or DC-09's framing.
    private var framing: Framing
    private var handled: HandledIDs
    /// Why frames cannot be sealed (the counter reservation is lost): nothing is ever sent then.
    private var counterFault: String?
    /// Messages waiting for a counter reservation to be stored before they are sealed.
    private var unsealed: [Message] = []
    /// Alarms whose calls are declined (the load tester's `--call-share`), the most recent
    /// `declinedAlarmsKept`, oldest first. Kept past their case's close: a centre restarted from its journal
    /// may offer a call about a case it had closed but not yet recorded as closed.
    private var callsDeclined: [UInt32] = []
    static let declinedAlarmsKept = 32
    /// Calls over whose media has yet to report its numbers (`mediaStopped`) before they are told as ended.
    private var endingCalls: [UInt32: (reason: CallEndReason, byPeer: Bool)] = [:]
    private var connectionGeneration = 0
    private var sessionStartSentAt: Duration?
    private var started = false
    private var stopped = false
    private var reservationPending = false
    /// The path of the open (or last) session or attempt.
    private var path: LinkMachine.Path = .primary
    /// The alarm's state to show; `indicator` combines it with the link's health.
    private var alarmIndicator: IndicatorState = .idle
    private var shown: IndicatorState?
    /// Centre time minus local wall time, in ms, once a session told us.
    private var clockOffset: Int64?
    private var alarm: AlarmMachine
    private var events: DeviceEventMachine
    private var delivery: DeliveryMachine
    private var call = CallMachine(role: .callee)
    /// With `[voice] sip` only; boxed (an indirect case), so that a load run's devices without SIP pay 8 bytes
    /// for it, not the machine's 120.
    private var voiceBox: VoiceBox?
    private indirect enum VoiceBox: Sendable { case voice(SIPVoiceMachine) }
    private var voice: SIPVoiceMachine? {
        get { if case .voice(let machine)? = voiceBox { machine } else { nil } }
        set { voiceBox = newValue.map { .voice($0) } }
    }
    private var heartbeatsInFlight = HeartbeatsInFlight()

    public init(
        configuration: Configuration, key: DeviceKey, storedCounterLimit: UInt64?, counterFault: String? = nil,
        dc09Account: String? = nil, seed: UInt64
    ) {
        self.init(
            settings: Shared(configuration), key: key, storedCounterLimit: storedCounterLimit, counterFault: counterFault,
            dc09Account: dc09Account, seed: seed)
    }

    /// A machine whose configuration is shared with others (the devices of a load run): `key` is its own,
    /// and over DC-09 `dc09Account` (the configuration's when nil).
    public init(
        settings: Shared<Configuration>, key: DeviceKey, storedCounterLimit: UInt64?, counterFault: String? = nil,
        dc09Account: String? = nil, seed: UInt64
    ) {
        self.settings = settings
        let configuration = settings.value
        (press, events, link, delivery, health) = configuration.machines(seed: seed)
        alarm = AlarmMachine(cancelWindow: configuration.cancelWindow)
        handled = HandledIDs(capacity: configuration.handledIDs)
        voiceBox = configuration.sipVoice.map { .voice(SIPVoiceMachine(configuration: $0)) }
        if var dc09 = configuration.dc09 {
            // DC-09 frames carry no counter: the reservation and its faults do not concern them.
            if let dc09Account { dc09.account = dc09Account }
            framing = .dc09(DeviceDC09Framing(configuration: dc09, seed: seed ^ 5))
            self.counterFault = nil
        } else {
            framing = .ours(DeviceFrameSession(key: key, storedCounterLimit: storedCounterLimit ?? 0))
            self.counterFault = storedCounterLimit == nil ? (counterFault ?? "the frame counter reservation is unknown") : counterFault
        }
    }

    // MARK: Reading

    public var status: DeviceStatus { events.status }
    public var battery: UInt8 { events.battery }
    public var linkStatus: LinkStatus { link.status }
    public var isLinkDown: Bool { health.isDown }
    public var openAlarm: Alarm? { alarm.openAlarm }
    public var alarmIsIdle: Bool { alarm.isIdle }
    public var messagesWaiting: Int { delivery.waiting }
    // `@inline(never)`: Swift 6.3's optimizer (CopyPropagation) crashed compiling `-c release` when this
    // getter was inlined into a driver that borrows the machine ("Found outside of lifetime use").
    @inline(never) public var callID: UInt32? { call.callID }
    public var callIsActive: Bool { call.isActive }
    public var refusedFrames: [ProtocolError.Category: Int] {
        if case .ours(let frames) = framing { return frames.refused }
        return [:]
    }
    /// Whether the device reports over DC-09: the driver cuts its stream into DC-09 frames then.
    public var reportsOverDC09: Bool {
        if case .dc09 = framing { return true }
        return false
    }
    /// Whether reports about the connection of `generation` still count (it is the latest asked for).
    public func isCurrentConnection(_ generation: Int) -> Bool { generation == connectionGeneration && !stopped }

    // MARK: Life

    /// The driver starts: `pending` is what the outbox held (sent first), `bootCount` this boot's number
    /// (reported to the centre as a restart event unless `reportsRestart` is false: the load tester's devices
    /// join a running fleet, they do not reboot).
    public mutating func start(pending: [Message], bootCount: UInt32, reportsRestart: Bool = true, now: Instant) -> [Action] {
        guard !started else { return impossibleTransition("DeviceMachine.start called twice") }
        started = true
        health.started(now: now.monotonic)
        var actions = indicate(.idle)
        if !pending.isEmpty { actions.append(.observe(.recovered(count: pending.count))) }
        actions += run(delivery.loaded(pending), now: now)
        if reportsRestart { actions += run(events.booted(bootCount: bootCount), now: now) }
        if let counterFault {
            actions.append(.observe(.fault(counterFault)))
            actions += run(health.cannotSeal(cause: counterFault), now: now)
        } else {
            actions += run(link.start(), now: now)
        }
        return actions
    }

    /// The driver stops: disconnect, end a call without telling the centre. What waits stays in the outbox.
    public mutating func stop(now: Instant) -> [Action] {
        guard !stopped else { return [] }
        let hangUp = voice == nil ? [] : run(voice!.stop(), now: now)
        let actions = run(call.stop(), now: now) + hangUp + run(link.stop(), now: now)
        stopped = true
        return actions
    }

    // MARK: The button, the person, the power

    /// The button's level changed at `at` (monotonic since the driver started: the kernel's timestamp).
    public mutating func buttonEdge(down: Bool, at: Duration, now: Instant) -> [Action] {
        run(press.edge(down: down, at: at), now: now)
    }

    /// A verdict a source judged itself (a replay, in its recording's time), instants on the driver's clock.
    public mutating func buttonJudged(_ verdict: PressDetector.Action, now: Instant) -> [Action] {
        if case .wakeUp = verdict { return [] }  // the source's own timer, not ours
        return run([verdict], now: now)
    }

    /// A press that needs no debounce: the simulated button, a test alarm, the load tester.
    public mutating func raiseAlarm(kind: AlarmKind, now: Instant) -> [Action] {
        run(alarm.pressed(kind: kind, at: now.monotonic), now: now)
    }

    /// The cancel input (a second button, or the pendant's cancel key).
    public mutating func cancelRequested(now: Instant) -> [Action] {
        run(alarm.cancelRequested(now: now.monotonic), now: now)
    }

    /// Mains went out or came back; a loss is reported after a random delay of up to `reportWithin` when
    /// given (the load tester's scenario phase: a town's reports spread over it), else the configured one.
    public mutating func mainsChanged(present: Bool, reportWithin: Duration? = nil, now: Instant) -> [Action] {
        if let reportWithin { events.configuration.mainsLostMaximumDelay = reportWithin }
        return run(events.mainsChanged(present: present), now: now)
    }

    /// Calls about `alarmID` are to be declined (the load tester's alarms not chosen for a call).
    public mutating func declineCalls(about alarmID: UInt32) {
        guard !callsDeclined.contains(alarmID) else { return }
        if callsDeclined.count == Self.declinedAlarmsKept { callsDeclined.removeFirst() }
        callsDeclined.append(alarmID)
    }

    /// The heartbeat interval of the open session.
    public var heartbeatInterval: Duration? { link.heartbeatInterval }

    public mutating func batteryMeasured(percent: UInt8, now: Instant) -> [Action] {
        run(events.batteryMeasured(percent: percent), now: now)
    }

    public mutating func buttonPresenceChanged(present: Bool, now: Instant) -> [Action] {
        run(events.buttonPresenceChanged(present: present), now: now)
    }

    public mutating func tamperDetected(now: Instant) -> [Action] {
        run(events.tamperDetected(at: now.monotonic), now: now)
    }

    // MARK: Storage

    /// The outbox stored a draft and drew its id.
    public mutating func stored(_ message: Message, now: Instant) -> [Action] {
        var actions: [Action] = []
        if case .alarm(let stored) = message { actions += run(alarm.stored(stored), now: now) }
        return actions + run(delivery.enqueued(message), now: now)
    }

    /// The outbox could not store a draft: the fault is shown; an alarm is tried again shortly.
    public mutating func storeFailed(_ draft: Draft, error: String, now: Instant) -> [Action] {
        var actions: [Action] = [.observe(.fault("cannot store a message: \(error)"))]
        if case .alarm = draft { actions += run(alarm.storeFailed(), now: now) }
        return actions
    }

    /// The counter limit asked for is on durable storage: seal what waited for it.
    public mutating func countersReserved(_ limit: UInt64, now: Instant) -> [Action] {
        modifyOurFrames { $0.counterReservationStored(limit) }
        reservationPending = false
        let waiting = unsealed
        unsealed = []
        var actions: [Action] = []
        for message in waiting { actions += seal(message, now: now) }
        return actions
    }

    /// The counter limit could not be stored: nothing is sealed until it can be.
    public mutating func counterStoreFailed(_ error: String, now: Instant) -> [Action] {
        reservationPending = false
        unsealed = []
        return [.observe(.fault("cannot store the frame counter: \(error)"))]
    }

    // MARK: The network

    public mutating func connected(generation: Int, now: Instant) -> [Action] {
        guard generation == connectionGeneration, !stopped else { return [] }
        return [.observe(.connected(path))] + run(link.connected(now: now.monotonic), now: now)
    }

    /// The connection could not be opened; `cause` in plain words (`LinkCause.connectFailed`).
    public mutating func connectFailed(generation: Int, cause: String, now: Instant) -> [Action] {
        guard generation == connectionGeneration, !stopped else { return [] }
        lastConnectFailure = cause
        return run(link.connectFailed(), now: now)
    }

    private var lastConnectFailure: String?

    public mutating func closed(generation: Int, now: Instant) -> [Action] {
        guard generation == connectionGeneration, !stopped else { return [] }
        connectionGeneration += 1
        resetFraming()
        return run(link.disconnected(), now: now)
    }

    /// A frame arrived on the connection of `generation`.
    public mutating func frameReceived(_ frame: SealedFrame, generation: Int, now: Instant) -> [Action] {
        guard generation == connectionGeneration, !stopped else { return [] }
        let message: Message
        do throws(ProtocolError) {
            guard let opened = try modifyOurFrames({ frames throws(ProtocolError) in try frames.open(frame) }) else {
                return []  // a DC-09 device reads DC-09 answers (`dc09AnswerReceived`), never our frames
            }
            message = opened
        } catch {
            var actions: [Action] = [.observe(.refused(error))]
            // An authentic reliable message this version cannot read (a later version's critical
            // extension): answered, so the centre does not retry it forever (protocol.md §4.1).
            if case .undecodable(let undecodable) = error, let id = undecodable.id {
                actions += seal(.nak(Nak(id: id, reason: undecodable.nakReason, senderTime: wireTime(now.monotonic, now: now).time)), now: now)
            }
            return actions
        }
        var linkMessage = message
        if case .sessionAccept(var accept) = message, let seconds = configuration.heartbeatOverride {
            accept.heartbeatIntervalSeconds = seconds
            linkMessage = .sessionAccept(accept)
        }
        let handshaking = if case .connecting = link.status { true } else { false }
        var actions = run(link.messageReceived(linkMessage, now: now.monotonic), now: now)
        // A nak in place of the session's accept turned the device away (the link machine took it as a failed
        // attempt): it answers no message of the outbox.
        if handshaking, case .nak = message { return actions }
        switch message {
        case .sessionAccept:
            break  // the link machine's sessionEstablished does the rest
        case .heartbeatAck(let ack):
            if let sent = heartbeatsInFlight.answered(counter: ack.echoedCounter) {
                let rtt = now.monotonic - sent
                delivery.roundTripMeasured(rtt)
                correctClock(centreTime: ack.centreTime, roundTrip: rtt, now: now)
                actions.append(.observe(.heartbeatRoundTrip(rtt)))
            }
        case .ack(let ack):
            actions += run(delivery.ackReceived(id: ack.id), now: now)
        case .nak(let nak):
            actions.append(.observe(.nakReceived(nak)))
            actions += run(delivery.nakReceived(nak), now: now)
        case .caseUpdate(let update):
            guard acknowledge(update.id, &actions, now: now) else { break }
            actions.append(.observe(.caseUpdateReceived(update)))
            actions += run(alarm.caseUpdated(update), now: now)
        case .configPush(let push):
            guard acknowledge(push.id, &actions, now: now) else { break }
            apply(push.settings)
        case .diagnosticsRequest(let request):
            guard acknowledge(request.id, &actions, now: now) else { break }
            let status = events.status
            actions += storeDraft(.diagnosticsReport(
                requestID: request.id, battery: events.battery, mainsPresent: status.contains(.mainsPresent),
                buttonPresent: status.contains(.buttonPresent), uptimeSeconds: UInt32(clamping: now.monotonic.components.seconds),
                pending: UInt16(clamping: delivery.waiting)))
        case .callOffer(let offer):
            guard acknowledge(offer.id, &actions, now: now) else { break }
            // With a SIP call up, the centre hears the person already: a second voice path is declined.
            let sipCallUp = voice?.isBusy ?? false
            let mayAnswer = (offer.alarmID != 0 || alarm.openAlarm != nil) && !callsDeclined.contains(offer.alarmID) && !sipCallUp
            actions.append(.observe(.callOffered(callID: offer.callID, alarmID: offer.alarmID, declined: !mayAnswer)))
            actions += run(call.offerReceived(offer, mayAnswer: mayAnswer), offer: offer, now: now)
        case .callAnswer(let answer):
            _ = acknowledge(answer.id, &actions, now: now)  // the device does not place calls: nothing to answer
        case .callEnd(let end):
            guard acknowledge(end.id, &actions, now: now) else { break }
            let ended = call.endReceived(callID: end.callID, reason: end.reason)
            actions += ended.isEmpty ? run(alarm.callChanged(active: false), now: now) : run(ended, now: now)
        case .sessionStart, .heartbeat, .alarm, .alarmCancel, .event, .diagnosticsReport:
            break  // up-only messages; the frame session refuses them before this
        }
        return actions
    }

    // MARK: SIP voice (`[voice] sip`)

    /// The SIP call placed (`placeSIPCall`) was answered after `setupTime` (INVITE → 200).
    public mutating func sipCallAnswered(setupTime: Duration, now: Instant) -> [Action] {
        guard voice != nil else { return [] }
        return [.observe(.sipCallAnswered(incoming: false, setupTime: setupTime))] + run(voice!.answered(), now: now)
            + run(alarm.callChanged(active: true), now: now)
    }

    /// The SIP call that was up (placed or answered) ended, with its report.
    public mutating func sipCallEnded(_ report: SIPPhone.CallReport, now: Instant) -> [Action] {
        guard voice != nil else { return [] }
        let outcome = SIPVoiceMachine.Outcome(report.end, answered: report.setupTime != nil || report.direction == .incoming)
        return [.observe(.sipCallEnded(report))] + run(voice!.ended(outcome, now: now.monotonic), now: now)
            + run(alarm.callChanged(active: false), now: now)
    }

    /// The person (or the load tester after `--call-duration`) hangs up the SIP call that is up.
    public mutating func sipHangUp(now: Instant) -> [Action] {
        voice?.isBusy == true ? [.hangUpSIPCall] : []
    }

    /// A SIP call came in from `from` (`fromCentre`: from the configured centre's host). Returns nil if the
    /// device answers it (it is then the call that is up), or the status to refuse it with.
    public mutating func sipCallOffered(from: String, fromCentre: Bool, now: Instant) -> (refuseWith: Int?, actions: [Action]) {
        guard voice != nil else { return (603, [.observe(.sipCallRefused(from: from, statusCode: 603))]) }
        guard let code = voice!.incoming(fromCentre: fromCentre, now: now.monotonic) else {
            return (nil, [.observe(.sipCallAnswered(incoming: true, setupTime: nil))] + run(alarm.callChanged(active: true), now: now))
        }
        return (code, [.observe(.sipCallRefused(from: from, statusCode: code))])
    }

    // MARK: SIA DC-09

    /// An answer from the DC-09 receiver came on the connection of `generation`: a frame the driver cut
    /// from the TCP stream (`DC09FrameSplitter`), or a datagram.
    public mutating func dc09AnswerReceived(_ bytes: some Collection<UInt8>, generation: Int, now: Instant) -> [Action] {
        guard generation == connectionGeneration, !stopped, case .dc09(var dc09) = framing else { return [] }
        let offsetBefore = dc09.session.clockOffset
        framing = .modifying
        let (answer, roundTrip) = dc09.answer(bytes, wall: now.wall, at: now.monotonic)
        let clockMoved = dc09.session.clockOffset != offsetBefore
        framing = .dc09(dc09)
        if case .unreadable(let error) = answer { return [.observe(.dc09Unreadable("\(error)"))] }
        link.answerHeard(now: now.monotonic)
        switch answer {
        case .acknowledged(let id):
            return run(delivery.ackReceived(id: id), now: now)
        case .supervisionAnswered:
            guard let roundTrip else { return [] }
            delivery.roundTripMeasured(roundTrip)
            return [.observe(.heartbeatRoundTrip(roundTrip))]
        case .refused(let id, let receiverTime):
            // A NAK names no sequence (0000): it refuses the one message in flight (the window is 1).
            let refused = id ?? delivery.onlyInFlight
            let actions: [Action] = [.observe(.dc09Refused(message: refused, receiverTime: receiverTime))]
            guard let refused else { return actions }
            // A NAK that moved our clock: the frame goes again at once, stamped with the receiver's time. One
            // that did not (the clock was right; refused for another reason): after the backoff, as a timeout.
            return actions
                + run(clockMoved ? delivery.sendAgainNow(id: refused) : delivery.tryAgainLater(id: refused, longest: false), now: now)
        case .notUnderstood(let id):
            let message = id ?? delivery.onlyInFlight
            return [.observe(.dc09NotUnderstood(message: message))]
                + (message.map { run(delivery.tryAgainLater(id: $0, longest: true), now: now) } ?? [])
        case .unmatched, .unreadable:
            return []  // a late answer to a message already acknowledged: nothing left to do
        }
    }

    /// A `NULL` supervision frame, as our heartbeat.
    private mutating func supervise(now: Instant) -> [Action] {
        guard case .dc09(var dc09) = framing else { return [] }
        framing = .modifying
        defer { framing = .dc09(dc09) }
        do {
            let frame = try dc09.supervision(wall: now.wall, at: now.monotonic)
            return [.transmit(ByteBuffer(bytes: frame), to: path), .observe(.heartbeatSent)]
        } catch {
            return [.observe(.fault("cannot write a DC-09 supervision frame: \(error)"))]
        }
    }

    /// A reliable message as a DC-09 frame; one DC-09 does not carry leaves the outbox unsent.
    private mutating func transmitOverDC09(_ message: Message, now: Instant) -> [Action] {
        guard case .dc09(var dc09) = framing else { return [] }
        framing = .modifying
        let framed = Result { () throws(DC09Error) in try dc09.frame(message, wall: now.wall) }
        framing = .dc09(dc09)
        switch framed {
        case .success(let frame?):
            return [.transmit(ByteBuffer(bytes: frame), to: path), .observe(.reliableSent(message))]
        case .success(nil):
            guard let id = message.reliableID else { return [] }  // an ack or a heartbeat: DC-09 has its own
            return [.observe(.notReported(message))] + run(delivery.withdrawn(id: id), now: now)
        case .failure(let error):
            return [.observe(.fault("cannot frame \(message.kind.name) \(message.reliableID ?? 0) for DC-09: \(error)"))]
        }
    }

    // MARK: Calls

    /// The ports for `callID` are bound; `local` describes them as the centre will see them.
    public mutating func mediaBound(callID: UInt32, local: MediaDescription, now: Instant) -> [Action] {
        run(call.mediaBound(callID: callID, local: local), now: now)
    }

    /// The media of `callID` could not be set up (`reason` in words).
    public mutating func mediaFailed(callID: UInt32, reason: String, now: Instant) -> [Action] {
        guard call.callID == callID else { return [] }
        return [.observe(.fault("cannot take call \(callID): \(reason)"))] + run(call.mediaFailed(callID: callID), now: now)
    }

    /// No voice from the centre for the silence timeout.
    public mutating func mediaSilent(callID: UInt32, quiet: Duration, now: Instant) -> [Action] {
        guard call.callID == callID else { return [] }
        return [.observe(.fault("no voice from the centre for \(quiet.milliseconds / 1000) s: call \(callID) ended"))]
            + run(call.mediaSilent(callID: callID), now: now)
    }

    /// The media of `callID` stopped (the driver reports it for every `stopMedia`, with `nil` numbers when
    /// none was bound): the call is told as ended with its numbers.
    public mutating func mediaStopped(callID: UInt32, statistics: MediaStatistics?, now: Instant) -> [Action] {
        guard let ending = endingCalls.removeValue(forKey: callID) else { return [] }
        return [.observe(.callEnded(callID: callID, reason: ending.reason, byCentre: ending.byPeer, statistics: statistics))]
            + run(alarm.callChanged(active: false), now: now)
    }

    /// The person (or a test) hangs up the call in progress.
    public mutating func hangUp(now: Instant) -> [Action] {
        run(call.hangUp(), now: now)
    }

    // MARK: Timers

    public mutating func timerFired(_ timer: Timer, now: Instant) -> [Action] {
        guard !stopped else { return [] }
        switch timer {
        case .press(let at): return run(press.timeReached(at), now: now)
        case .alarm(let t): return run(alarm.timerFired(t), now: now)
        case .events(let t): return run(events.timerFired(t), now: now)
        case .link(let t): return run(link.timerFired(t, now: now.monotonic), now: now)
        case .delivery(let t): return run(delivery.timerFired(t), now: now)
        case .health(let t): return run(health.timerFired(t, now: now.monotonic), now: now)
        case .voice(let t): return voice == nil ? [] : run(voice!.timerFired(t), now: now)
        }
    }

    // MARK: Wiring: the sub-machines' actions

    private mutating func run(_ actions: [PressDetector.Action], now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .wakeUp(let at):
                out.append(.schedule(.press(wakeUp: at), after: at - now.monotonic))
            case .pressed(let at):
                out.append(.observe(.button(action)))
                out += run(alarm.pressed(kind: .button, at: at), now: now)
            case .longPressed, .released, .tooShort, .glitch, .bounce:
                out.append(.observe(.button(action)))
            case .stuck(let since):
                out.append(.observe(.fault("the call button has been held down for \((now.monotonic - since).milliseconds / 1000) s: is it stuck?")))
            }
        }
        return out
    }

    private mutating func run(_ actions: [AlarmMachine.Action], now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .storeAlarm(let kind, let pressedAt, let hold):
                let (time, synchronised) = wireTime(pressedAt, now: now)
                var flags: AlarmFlags = synchronised ? [.clockSynchronised] : []
                if !events.status.contains(.mainsPresent) { flags.insert(.onBattery) }
                out.append(.store(.alarm(kind: kind, triggeredAt: time, battery: events.battery, flags: flags, holdMilliseconds: hold)))
            case .storeCancel(let alarmID):
                out += storeDraft(.cancel(alarmID: alarmID, at: wireTime(now.monotonic, now: now).time))
            case .storeEvent(let kind, let value):
                out += storeDraft(.event(kind, at: wireTime(now.monotonic, now: now).time, value: value))
            case .setIndicator(let state):
                alarmIndicator = state
                out += refreshIndicator()
            case .scheduleTimer(let timer, let after):
                out.append(.schedule(.alarm(timer), after: after))
            case .story(let step):
                out.append(.observe(.story(step)))
                guard voice != nil else { continue }
                switch step {
                // An alarm whose calls are declined (the load tester's `--call-share`) gets no SIP call either.
                case .delivered(let alarmID) where !callsDeclined.contains(alarmID): out += run(voice!.alarmAcknowledged(alarmID), now: now)
                case .delivered: break
                case .cancelled(let alarmID): out += run(voice!.alarmEnded(alarmID, hangUp: true, now: now.monotonic), now: now)
                // Over DC-09 `closed` is the end of the cancel window, not of the case: the call goes on.
                case .closed(let alarmID): out += run(voice!.alarmEnded(alarmID, hangUp: !reportsOverDC09, now: now.monotonic), now: now)
                case .pressed, .stored, .caseUpdated, .cancelRefused, .pressedAgain: break
                }
            }
        }
        return out
    }

    private mutating func run(_ actions: [DeviceEventMachine.Action], now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .storeEvent(let kind, let value):
                out += storeDraft(.event(kind, at: wireTime(now.monotonic, now: now).time, value: value))
            case .scheduleTimer(let timer, let after):
                out.append(.schedule(.events(timer), after: after))
            }
        }
        return out
    }

    private mutating func run(_ actions: [LinkMachine.Action], now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .connect(let path):
                guard !stopped else { continue }
                self.path = path
                connectionGeneration += 1
                out.append(.connect(path, generation: connectionGeneration))
            case .disconnect:
                connectionGeneration += 1
                resetFraming()
                out.append(.disconnect)
            case .send(let message):
                if case .sessionStart = message { sessionStartSentAt = now.monotonic }
                out += seal(message, now: now)
            case .sendHeartbeat where reportsOverDC09:
                out += supervise(now: now)
            case .sendHeartbeat:
                var status = events.status
                if delivery.isBusy { status.insert(.backlog) }
                if alarm.openAlarm != nil { status.insert(.alarmActive) }
                out += seal(.heartbeat(Heartbeat(status: status, battery: events.battery)), now: now)
                out.append(.observe(.heartbeatSent))
            case .scheduleTimer(let timer, let after):
                out.append(.schedule(.link(timer), after: after))
            case .sessionEstablished(let path, let accept):
                if let accept {
                    if let sent = sessionStartSentAt { correctClock(centreTime: accept.centreTime, roundTrip: now.monotonic - sent, now: now) }
                    apply(accept.settings)
                }
                self.path = path
                out.append(.observe(.sessionEstablished(path)))
                out += run(health.sessionEstablished(now: now.monotonic), now: now)
                out += refreshIndicator()
                out += run(delivery.linkUp(), now: now)
            case .sessionLost(let reason):
                delivery.linkDown()
                resetFraming()
                heartbeatsInFlight = HeartbeatsInFlight()
                out.append(.observe(.sessionLost(reason)))
                out += run(health.sessionLost(dead: reason == .silent || reason == .unanswered, cause: cause(of: reason), now: now.monotonic), now: now)
            case .attemptFailed(let path, let reason):
                self.path = path
                let cause = reason == .connectFailed ? (lastConnectFailure ?? cause(of: reason)) : cause(of: reason)
                out.append(.observe(.attemptFailed(cause: cause)))
                out += run(health.attemptFailed(cause: cause, now: now.monotonic), now: now)
            }
        }
        return out
    }

    private mutating func run(_ actions: [DeliveryMachine.Action], now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .send(let message):
                out += seal(message, now: now)
            case .scheduleTimer(let timer, let after):
                out.append(.schedule(.delivery(timer), after: after))
            case .remove(let id):
                out.append(.remove(id: id))
            case .delivered(let message):
                out.append(.observe(.delivered(message)))
                if case .alarm(let a) = message {
                    out += run(reportsOverDC09 ? alarm.deliveredWithoutCase(alarmID: a.id, now: now.monotonic) : alarm.delivered(alarmID: a.id), now: now)
                }
            case .refused(let message, let reason):
                out.append(.observe(.fault("the centre refused \(message.kind.name) \(message.reliableID ?? 0): \(reason)")))
            }
        }
        out += run(link.urgentChanged(delivery.isUrgentWaiting), now: now)
        return out + run(link.busyChanged(delivery.isAwaitingAnswer, now: now.monotonic), now: now)
    }

    private mutating func run(_ actions: [LinkHealth.Action], now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .down(let cause):
                out.append(.observe(.linkDown(centre: centreName, cause: cause)))
                out += refreshIndicator()
            case .restored(let after):
                out.append(.observe(.linkRestored(centre: centreName, after: after)))
            case .stillDown(let duration, let cause):
                out.append(.observe(.linkStillDown(centre: centreName, for: duration, cause: cause, waiting: delivery.waiting)))
            case .scheduleTimer(let timer, let after):
                out.append(.schedule(.health(timer), after: after))
            }
        }
        return out
    }

    private mutating func run(_ actions: [CallMachine.Action], offer: CallOffer? = nil, now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .bindMedia:
                if let offer { out.append(.bindMedia(offer)) }
            case .startMedia(let callID, let local, let remote):
                out.append(.startMedia(callID: callID, local: local, remote: remote))
            case .sendAnswer(let callID, let local):
                out += storeDraft(.callAnswer(callID: callID, media: local))
            case .sendEnd(let callID, let reason):
                out += storeDraft(.callEnd(callID: callID, reason: reason))
            case .stopMedia(let callID, let reason):
                out.append(.stopMedia(callID: callID, reason: reason))
            case .started(let callID, let alarmID):
                out.append(.observe(.callStarted(callID: callID, alarmID: alarmID)))
                out += run(alarm.callChanged(active: true), now: now)
            case .ended(let callID, let reason, let byPeer):
                endingCalls[callID] = (reason, byPeer)  // told once the media reports its numbers
            case .declined:
                break  // told with callEnd(declined) above
            case .sendOffer, .scheduleAnswerTimeout:
                out += impossibleTransition("a device's CallMachine is the callee's: it neither places calls nor waits for answers")
            }
        }
        return out
    }

    private mutating func run(_ actions: [SIPVoiceMachine.Action], now: Instant) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .place(let alarmID, let attempt):
                out += [.observe(.sipCallPlaced(alarmID: alarmID, attempt: attempt)), .placeSIPCall(alarmID: alarmID, attempt: attempt)]
            case .hangUp:
                out.append(.hangUpSIPCall)
            case .scheduleTimer(let timer, let after):
                out.append(.schedule(.voice(timer), after: after))
            case .retrying(let alarmID, let attempt, let after):
                out.append(.observe(.sipCallRetrying(alarmID: alarmID, attempt: attempt, after: after)))
            case .gaveUp(let alarmID, let attempts):
                out.append(.observe(.sipCallGaveUp(alarmID: alarmID, attempts: attempts)))
            }
        }
        return out
    }

    // MARK: Helpers

    /// How frames are made and read: our protocol's sealed frames, or DC-09's. `modifying` is held only
    /// while a payload is changed in place (so that its storage is not copied).
    private enum Framing: Sendable {
        case ours(DeviceFrameSession)
        case dc09(DeviceDC09Framing)
        case modifying
    }

    /// Runs `body` on our protocol's frame session; nil over DC-09.
    private mutating func modifyOurFrames<R, E: Error>(_ body: (inout DeviceFrameSession) throws(E) -> R) throws(E) -> R? {
        guard case .ours(var frames) = framing else { return nil }
        framing = .modifying
        defer { framing = .ours(frames) }
        return try body(&frames)
    }

    /// The connection ended: nothing sent on it will be answered.
    private mutating func resetFraming() {
        switch framing {
        case .ours: modifyOurFrames { $0.reset() }
        case .dc09(var dc09):
            framing = .modifying
            dc09.reset()
            framing = .dc09(dc09)
        case .modifying: break
        }
    }

    private func storeDraft(_ draft: Draft) -> [Action] { [.store(draft)] }

    /// The centre the device is trying to reach, in words.
    private var centreName: String {
        path == .primary ? configuration.primaryName : (configuration.secondaryName ?? configuration.primaryName)
    }

    /// Acks a reliable centre message (always: the ack may have been lost); whether it is new.
    private mutating func acknowledge(_ id: UInt32, _ actions: inout [Action], now: Instant) -> Bool {
        actions += seal(.ack(Ack(id: id)), now: now)
        return handled.firstTime(id)
    }

    /// Seals `message` for the connection, or asks for a counter reservation first (and keeps it until then).
    private mutating func seal(_ message: Message, now: Instant) -> [Action] {
        if reportsOverDC09 { return transmitOverDC09(message, now: now) }
        guard counterFault == nil else { return [] }
        if reservationPending {
            unsealed.append(message)
            return []
        }
        var buffer = ByteBuffer()
        do {
            switch try modifyOurFrames({ frames throws(ProtocolError) in try frames.seal(message, into: &buffer) }) {
            case nil:
                return []  // not sealed: a DC-09 device took the branch above
            case .reserveCounters(let limit):
                reservationPending = true
                unsealed.append(message)
                return [.reserveCounters(limit: limit)]
            case .sealed(let counter):
                if case .heartbeat = message { heartbeatsInFlight.sent(counter: counter, at: now.monotonic) }
                return [.transmit(buffer, to: path)] + (message.reliableID != nil ? [.observe(.reliableSent(message))] : [])
            }
        } catch {
            return [.observe(.fault("cannot seal \(message.kind.name): \(error)"))]
        }
    }

    /// Shows the alarm's state, or what the link's health makes of it: with the centre out of reach, an idle
    /// device shows the fault and an alarm being sent shows that it is stored and waiting.
    private mutating func refreshIndicator() -> [Action] {
        switch (alarmIndicator, health.isDown) {
        case (.idle, true): indicate(.fault)
        case (.sending, true): indicate(.waiting)
        default: indicate(alarmIndicator)
        }
    }

    private mutating func indicate(_ state: IndicatorState) -> [Action] {
        guard state != shown else { return [] }
        shown = state
        return [.indicate(state)]
    }

    /// Centre-corrected wall-clock time of a monotonic instant, and whether it is corrected.
    private func wireTime(_ instant: Duration, now: Instant) -> (time: WireTime, synchronised: Bool) {
        let wall = Int64(clamping: now.wall) - (now.monotonic - instant).milliseconds + (clockOffset ?? 0)
        return (WireTime(max(0, wall)), clockOffset != nil)
    }

    private mutating func correctClock(centreTime: WireTime, roundTrip: Duration, now: Instant) {
        clockOffset = Int64(clamping: centreTime) + roundTrip.milliseconds / 2 - Int64(clamping: now.wall)
    }

    private mutating func apply(_ settings: Settings) {
        if let ms = settings.cancelWindowMilliseconds { alarm.cancelWindow = .milliseconds(Int64(ms)) }
    }

    private func cause(of reason: LinkLossReason) -> String {
        LinkCause.lost(reason, handshakeTimeout: configuration.link.handshakeTimeout, heartbeat: configuration.link.defaultHeartbeatInterval)
    }
}

/// The heartbeats sent and not yet answered, for their round trips: the latest two, inline (a dictionary
/// cost each of a load run's devices some 130 bytes). An answer comes within milliseconds, long before the
/// next heartbeat; one that comes after two newer heartbeats were sent is not measured. Pure.
struct HeartbeatsInFlight {
    private var newest: (counter: UInt64, sentAt: Duration)?
    private var previous: (counter: UInt64, sentAt: Duration)?

    mutating func sent(counter: UInt64, at instant: Duration) {
        previous = newest
        newest = (counter, instant)
    }

    /// When the heartbeat with this counter was sent, the first time its answer comes; nil after.
    mutating func answered(counter: UInt64) -> Duration? {
        if let sent = newest, sent.counter == counter {
            newest = nil
            return sent.sentAt
        }
        if let sent = previous, sent.counter == counter {
            previous = nil
            return sent.sentAt
        }
        return nil
    }
}
