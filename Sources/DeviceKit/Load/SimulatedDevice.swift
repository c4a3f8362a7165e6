import NIOCore
import NIOPosix

/// One device of a load run: the firmware's sealing (`DeviceFrameSession`), link (`LinkMachine`) and
/// delivery (`DeliveryMachine`) machines, with no storage, no buttons and no thread of its own.
///
/// Counters and message ids live in memory. They start from the wall clock (see `LoadPlan.counterStart`),
/// so a centre whose journal outlives the run still sees every session anchor rise and every alarm id new.
/// Lives on its shard's event loop; every property is touched there only.
final class SimulatedDevice: @unchecked Sendable {
    let id: UInt32
    /// Index of the shared UDP socket (unused over TCP).
    let socket: Int
    private unowned let shard: LoadShard
    private var frames: DeviceFrameSession
    private var link: LinkMachine
    private var delivery: DeliveryMachine
    /// The firmware's decisions about mains, battery and tamper reports.
    private var events: DeviceEventMachine
    private var random: SplitMix64
    private var nextMessageID: UInt32

    private var channel: (any Channel)?
    private var connectionGeneration: UInt32 = 0
    private var stopped = false
    private var online = false
    /// Why the last connection attempt failed, in the firmware's words, for its `attemptFailed`.
    private var lastConnectFailure: String?
    /// When the session being opened was meant to begin: the ramp instant, or the reconnect timer's after a
    /// session was lost; failed attempts in between do not reset it.
    private var sessionIntended: Duration?
    private var heartbeatDue: Duration = .zero
    private var heartbeatInFlight: (counter: UInt64, intended: Duration)?
    /// Alarms the run still follows: not yet acknowledged, or acknowledged and waiting for the operator
    /// (and, for an alarm with a call, for the operator's voice). Forgotten when the case closes.
    private var alarms: [UInt32: TrackedAlarm] = [:]
    private(set) var unacknowledgedAlarms = 0
    /// The call in progress.
    private var call: SimulatedCall?
    /// Ids of reliable centre messages already handled, as the firmware keeps them: a retransmission is
    /// acknowledged again and applied once.
    private var handledCentreIDs = HandledIDs(capacity: 64)

    private struct TrackedAlarm {
        var intended: Duration
        var transmissions: UInt32 = 0
        var acknowledged = false
        var engaged = false
        /// Chosen at the press (`--call-share`): answer the centre's call about this alarm, else decline it.
        var wantsCall: Bool
        var heard = false

        /// Nothing more to measure about it.
        var followed: Bool { acknowledged && engaged && (!wantsCall || heard) }
    }

    init(id: UInt32, socket: Int, shard: LoadShard) {
        self.id = id
        self.socket = socket
        self.shard = shard
        let plan = shard.plan
        let seed = plan.seed ^ (UInt64(id) &* 0x9E37_79B9_7F4A_7C15)
        frames = DeviceFrameSession(key: DeviceKey(deviceID: id, master: plan.master), storedCounterLimit: plan.counterStart)
        link = LinkMachine(
            configuration: .init(
                hasSecondary: false,
                sessionStart: SessionStart(
                    firmware: DeviceRuntimeConfiguration.firmwareVersion, capabilities: [.button, .mainsSensing, .battery],
                    bootCount: 1),
                handshakeTimeout: plan.handshakeTimeout, backoff: plan.backoff),
            seed: seed ^ 2)
        delivery = DeliveryMachine(configuration: plan.delivery, seed: seed ^ 3)
        random = SplitMix64(seed: seed ^ 4)
        nextMessageID = plan.firstMessageID
        events = DeviceEventMachine(seed: seed ^ 5)
        // The first readings: mains, a full battery and the button present, none of them news.
        _ = events.mainsChanged(present: true)
        _ = events.batteryMeasured(percent: 100)
        _ = events.buttonPresenceChanged(present: true)
    }

    var mainsPresent: Bool { events.status.contains(.mainsPresent) }

    // MARK: Inputs

    func start(intended: Duration) {
        sessionIntended = intended
        run(link.start())
    }

    func stop() {
        guard !stopped else { return }
        if call != nil { endCall(reason: .hangUp, byCentre: false, tell: false) }
        run(link.stop())
        stopped = true
        if online {
            online = false
            shard.online -= 1
        }
    }

    /// A press, meant to happen at `intended` (the Poisson instant), carried out now.
    func raiseAlarm(intended: Duration) {
        guard !stopped else { return }
        let id = takeMessageID()
        alarms[id] = TrackedAlarm(intended: intended, wantsCall: random.nextUnit() < shard.plan.callShare)
        unacknowledgedAlarms += 1
        shard.alarmRaised(intended: intended)
        let alarm = Alarm(id: id, kind: .button, triggeredAt: shard.wallTime(at: intended), battery: 100, flags: [])
        run(delivery.enqueued(.alarm(alarm)))
    }

    /// Mains went out or came back in this home; a loss is reported after the event machine's random delay,
    /// here up to `reportWithin` (the scenario phase), as the firmware spreads a town's reports.
    func mainsChanged(present: Bool, reportWithin: Duration) {
        guard !stopped else { return }
        events.configuration.mainsLostMaximumDelay = reportWithin
        run(events.mainsChanged(present: present))
    }

    /// Some other device event: the battery crosses its thresholds (low, then OK again), or a tamper.
    func deviceEvent() {
        guard !stopped else { return }
        if random.nextUnit() < 0.2 {
            run(events.tamperDetected(at: shard.now()))
        } else {
            run(events.batteryMeasured(percent: events.battery < events.configuration.lowBatteryBelow ? 80 : 15))
        }
    }

    /// Cuts the link as a network fault would: closes the TCP connection (the device notices as it would a
    /// reset), or over UDP loses the session. Returns whether there was a session to lose.
    func dropLink() -> Bool {
        guard !stopped, online else { return false }
        switch shard.plan.transport {
        case .tcp:
            channel?.close(promise: nil)
        case .udp:
            channelClosed(generation: connectionGeneration)
        }
        return true
    }

    func received(_ frame: SealedFrame, generation: UInt32? = nil) {
        guard !stopped, generation == nil || generation == connectionGeneration else { return }
        let message: Message
        do {
            message = try frames.open(frame)
        } catch {
            shard.counts.refusedFrames += 1
            return
        }
        let now = shard.now()
        if case .sessionAccept(var accept) = message, let seconds = shard.plan.heartbeatOverride {
            accept.heartbeatIntervalSeconds = seconds
            run(link.messageReceived(.sessionAccept(accept), now: now))
        } else {
            run(link.messageReceived(message, now: now))
        }
        switch message {
        case .heartbeatAck(let ack):
            if let sent = heartbeatInFlight, sent.counter == ack.echoedCounter {
                heartbeatInFlight = nil
                shard.counts.heartbeatAcks += 1
                shard.record(.heartbeat, now - sent.intended)
                delivery.roundTripMeasured(now - sent.intended)
            }
        case .ack(let ack):
            let actions = delivery.ackReceived(id: ack.id)
            if actions.isEmpty { shard.counts.duplicateAcks += 1 }
            run(actions)
        case .nak(let nak):
            shard.rejected(reason: nak.reason.description)
            run(delivery.nakReceived(nak))
        case .caseUpdate(let update):
            shard.counts.caseUpdatesReceived += 1
            guard acknowledge(update.id) else { return }
            caseChanged(update)
        case .callOffer(let offer):
            guard acknowledge(offer.id) else { return }
            callOffered(offer)
        case .callEnd(let end):
            guard acknowledge(end.id) else { return }
            if call?.callID == end.callID { endCall(reason: end.reason, byCentre: true, tell: false) }
        case .configPush, .diagnosticsRequest, .callAnswer:
            // Acknowledged so the centre stops retransmitting; configuration and diagnostics are not simulated.
            if let id = message.reliableID { _ = acknowledge(id) }
        case .sessionAccept, .sessionStart, .heartbeat, .alarm, .alarmCancel, .event, .diagnosticsReport:
            break
        }
    }

    fileprivate func channelClosed(generation: UInt32) {
        guard !stopped, generation == connectionGeneration else { return }
        channel = nil
        connectionGeneration &+= 1
        frames.reset()
        run(link.disconnected())
    }

    // MARK: Machines' actions

    private func run(_ actions: [LinkMachine.Action]) {
        for action in actions {
            switch action {
            case .connect:
                connect()
            case .disconnect:
                connectionGeneration &+= 1
                frames.reset()
                channel?.close(promise: nil)
                channel = nil
            case .send(let message):
                send(message)
            case .sendHeartbeat:
                if let counter = send(.heartbeat(Heartbeat(status: events.status, battery: events.battery))) {
                    shard.counts.heartbeatsSent += 1
                    heartbeatInFlight = (counter, heartbeatDue)
                }
            case .scheduleTimer(let timer, let after):
                let due = shard.now() + after
                switch timer {
                case .heartbeat: heartbeatDue = due
                case .reconnect:
                    // A failed attempt does not restart the clock: set-up counts from the first intended instant.
                    if sessionIntended == nil { sessionIntended = due }
                case .handshakeTimeout, .deadLink, .returnToPrimary, .unanswered: break
                }
                shard.schedule(after) { [self] in run(link.timerFired(timer, now: shard.now())) }
            case .sessionEstablished(_, let accept):
                shard.sessionOpened(heartbeatSeconds: Int(accept.heartbeatIntervalSeconds))
                if let intended = sessionIntended { shard.record(.session, shard.now() - intended) }
                sessionIntended = nil
                online = true
                shard.online += 1
                run(delivery.linkUp())
            case .attemptFailed(_, let reason):
                // As the firmware words it (DeviceRuntime): the socket's error for a failed connect.
                let cause =
                    reason == .connectFailed ? (lastConnectFailure ?? LinkCause.lost(reason, handshakeTimeout: shard.plan.handshakeTimeout, heartbeat: .seconds(30)))
                    : LinkCause.lost(reason, handshakeTimeout: shard.plan.handshakeTimeout, heartbeat: .seconds(30))
                lastConnectFailure = nil
                shard.attemptFailed(reason: cause)
            case .sessionLost:
                delivery.linkDown()
                frames.reset()
                heartbeatInFlight = nil
                shard.sessionLost()
                if online {
                    online = false
                    shard.online -= 1
                }
            }
        }
    }

    private func run(_ actions: [DeliveryMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let message):
                let wrote = send(message) != nil
                // Sent is what went on the wire: an alarm waiting for a session is raised, not sent.
                if wrote, case .alarm(let alarm) = message, let transmissions = alarms[alarm.id]?.transmissions {
                    if transmissions == 0 { shard.alarmSent() } else { shard.alarmRetransmitted() }
                    alarms[alarm.id]?.transmissions += 1
                }
            case .scheduleTimer(let timer, let after):
                shard.schedule(after) { [self] in run(delivery.timerFired(timer)) }
            case .remove:
                break  // nothing is stored
            case .delivered(let message):
                switch message {
                case .alarm(let alarm):
                    if var tracked = alarms[alarm.id], !tracked.acknowledged {
                        tracked.acknowledged = true
                        alarms[alarm.id] = tracked.followed ? nil : tracked
                        unacknowledgedAlarms -= 1
                        if !tracked.engaged { shard.alarmsAwaitingOperator += 1 }
                        shard.alarmAcknowledged(FleetAlarmID(device: id, alarm: alarm.id), latency: shard.now() - tracked.intended)
                    }
                    if random.nextUnit() < shard.plan.cancelShare {
                        let cancel = AlarmCancel(id: takeMessageID(), alarmID: alarm.id, cancelledAt: shard.wallTime(at: shard.now()))
                        shard.counts.cancelsSent += 1
                        run(delivery.enqueued(.alarmCancel(cancel)))
                    }
                case .alarmCancel:
                    shard.counts.cancelsAcknowledged += 1
                case .event:
                    shard.counts.eventsAcknowledged += 1
                default:
                    break
                }
            case .refused:
                break  // counted as `rejected` when the nak arrived
            }
        }
        run(link.busyChanged(delivery.isBusy, now: shard.now()))
    }

    private func run(_ actions: [DeviceEventMachine.Action]) {
        for action in actions {
            switch action {
            case .storeEvent(let kind, let value):
                shard.counts.eventsSent += 1
                let event = DeviceEvent(id: takeMessageID(), kind: kind, at: shard.wallTime(at: shard.now()), value: value)
                run(delivery.enqueued(.event(event)))
            case .scheduleTimer(let timer, let after):
                shard.schedule(after) { [self] in run(events.timerFired(timer)) }
            }
        }
    }

    // MARK: Cases and calls

    /// The operator's progress on one of our alarms: engaged is measured once; a closed case is forgotten.
    /// The update may come before the alarm's ack (the ack lost, the alarm resent): the ack still counts.
    private func caseChanged(_ update: CaseUpdate) {
        guard var tracked = alarms[update.alarmID] else { return }
        if update.state == .operatorEngaged || update.state == .helpDispatched || update.state == .closed, !tracked.engaged {
            tracked.engaged = true
            if tracked.acknowledged { shard.alarmsAwaitingOperator -= 1 }
            if update.state == .operatorEngaged {
                shard.counts.casesEngaged += 1
                shard.record(.engaged, shard.now() - tracked.intended)
            }
        }
        if update.state == .closed { tracked.wantsCall = false }  // the case's call, if any, is over
        alarms[update.alarmID] = tracked.followed ? nil : tracked
    }

    /// The centre calls about an alarm: answered with media when the alarm was chosen for a call, else declined.
    private func callOffered(_ offer: CallOffer) {
        shard.counts.callsOffered += 1
        if call != nil { endCall(reason: .hangUp, byCentre: true, tell: false) }  // the centre replaced it
        guard alarms[offer.alarmID]?.wantsCall == true else {
            shard.counts.callsDeclined += 1
            sendReliable { .callEnd(CallEnd(id: $0, callID: offer.callID, reason: .declined)) }
            return
        }
        let taken = SimulatedCall(offer: offer)
        call = taken
        taken.start(offer, controlPeer: shard.plan.centre, deviceID: id, on: shard.loop, parameters: shard.plan.media) { [self] outcome in
            guard !stopped, call === taken else { return }
            switch outcome {
            case .answered(let local):
                shard.counts.callsAnswered += 1
                shard.activeCalls += 1
                sendReliable { .callAnswer(CallAnswer(id: $0, callID: offer.callID, media: local)) }
                shard.schedule(shard.plan.callDuration) { [self] in
                    if call === taken { endCall(reason: .hangUp, byCentre: false, tell: true) }
                }
            case .heard:
                guard var tracked = alarms[offer.alarmID], !tracked.heard else { return }
                tracked.heard = true
                shard.record(.voice, shard.now() - tracked.intended)
                alarms[offer.alarmID] = tracked.followed ? nil : tracked
            case .silent:
                endCall(reason: .mediaSilent, byCentre: false, tell: true)
            case .failed:
                call = nil
                shard.counts.callsFailed += 1
                sendReliable { .callEnd(CallEnd(id: $0, callID: offer.callID, reason: .failed)) }
            }
        }
    }

    /// Ends the call in progress and adds its media numbers to the run's.
    private func endCall(reason: CallEndReason, byCentre: Bool, tell: Bool) {
        guard let ending = call else { return }
        call = nil
        if let statistics = ending.end(reason: reason.description) {
            shard.callEnded(statistics, reason: reason, byCentre: byCentre)
        }
        if tell { sendReliable { .callEnd(CallEnd(id: $0, callID: ending.callID, reason: reason)) } }
    }

    /// Sends a reliable message through the delivery machine, as the firmware's outbox does.
    private func sendReliable(_ make: (UInt32) -> Message) {
        run(delivery.enqueued(make(takeMessageID())))
    }

    /// Acks a reliable centre message; returns whether it is new (a retransmission is acked, not applied).
    private func acknowledge(_ id: UInt32) -> Bool {
        send(.ack(Ack(id: id)))
        return handledCentreIDs.firstTime(id)
    }

    private func takeMessageID() -> UInt32 {
        defer { nextMessageID &+= 1 }
        return nextMessageID
    }

    // MARK: Network

    private func connect() {
        connectionGeneration &+= 1
        let generation = connectionGeneration
        switch shard.plan.transport {
        case .udp:
            // The shard's shared socket is always open: "connected" at once.
            run(link.connected())
        case .tcp:
            var bootstrap = ClientBootstrap(group: shard.loop)
            if let source = shard.plan.sourceAddresses?.address(for: id) {
                // Set before bind: the port is then chosen at connect, per destination, not reserved by bind.
                bootstrap = bootstrap.channelOption(ChannelOptions.Types.SocketOption(level: .ip, name: SourceAddresses.bindAddressNoPort), value: 1)
                    .bind(to: source)
            }
            bootstrap
                .connectTimeout(.seconds(5))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(FrameDecoder()), SimulatedDeviceStream(device: self, generation: generation))
                    }
                }
                .connect(to: shard.plan.centre)
                .whenComplete { [self] result in
                    guard generation == connectionGeneration, !stopped else {
                        if case .success(let channel) = result { channel.close(promise: nil) }
                        return
                    }
                    switch result {
                    case .success(let channel):
                        self.channel = channel
                        run(link.connected())
                    case .failure(let error):
                        lastConnectFailure = LinkCause.connectFailed(error)
                        run(link.connectFailed())
                    }
                }
        }
    }

    /// Seals and writes a message; returns its frame counter.
    @discardableResult
    private func send(_ message: Message) -> UInt64? {
        var buffer = shard.allocator.buffer(capacity: 64)
        do {
            while true {
                switch try frames.seal(message, into: &buffer) {
                case .reserveCounters(let limit):
                    frames.counterReservationStored(limit)  // in memory: see the type's documentation
                case .sealed(let counter):
                    switch shard.plan.transport {
                    case .tcp:
                        guard let channel else { return nil }
                        channel.writeAndFlush(buffer, promise: nil)
                    case .udp:
                        shard.sendDatagram(buffer, socket: socket)
                    }
                    return counter
                }
            }
        } catch {
            // Our messages always fit a frame, and a counter that starts from today's clock does not run out.
            return nil
        }
    }
}

/// Hands a TCP device's frames, already cut by `FrameDecoder`, to it.
private final class SimulatedDeviceStream: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = SealedFrame
    private let device: SimulatedDevice
    private let generation: UInt32

    init(device: SimulatedDevice, generation: UInt32) {
        self.device = device
        self.generation = generation
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        device.received(unwrapInboundIn(data), generation: generation)
    }

    func channelInactive(context: ChannelHandlerContext) {
        device.channelClosed(generation: generation)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)  // a TCP stream with a bad frame cannot be resynchronised
    }
}
