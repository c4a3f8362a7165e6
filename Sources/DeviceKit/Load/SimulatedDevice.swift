import NIOCore
import NIOPosix

/// One device of a load run: the firmware's own `DeviceMachine`, driven by the firmware's own driver
/// (`DeviceDriver`, as `DeviceRuntime` in a home), in the load run's environment: the outbox and counter
/// reservation in memory, no buttons, the shard's shared UDP socket (or a TCP connection of its own) and
/// timer wheel, and what it does counted for the run's report.
///
/// Counters and message ids start from the wall clock (see `LoadPlan.counterStart`), so a centre whose
/// journal outlives the run still sees every session anchor rise and every alarm id new. A device has at most
/// one open alarm, as the firmware allows (a press meanwhile is `pressDuringAlarm`): the shard gives each
/// arrival to a device without one. Lives on its shard's event loop; every property is touched there only.
final class SimulatedDevice: DeviceDriver, @unchecked Sendable {
    // Stored properties in this order to waste little on alignment: a run holds a million devices.
    private unowned let shard: LoadShard
    var driver: DeviceDriverState
    private var random: SplitMix64
    /// Alarms the run still follows: not yet acknowledged, or acknowledged and waiting for the operator
    /// (and, for an alarm with a call, for the operator's voice). Forgotten when the case closes.
    private var alarms: [UInt32: TrackedAlarm] = [:]
    /// The calls that started (answered): their alarms, by call id.
    private var answeredCalls: [UInt32: UInt32] = [:]
    private(set) var unacknowledgedAlarms = 0
    let id: UInt32
    /// Index of the shared UDP socket (unused over TCP).
    let socket: UInt32
    private var nextMessageID: UInt32
    private var online = false
    /// When the session being opened was meant to begin: the ramp instant, or the reconnect timer's after a
    /// session was lost; failed attempts in between do not reset it.
    private var sessionIntended: Duration?
    /// The arrival being raised now, until the machine stores its alarm.
    private var raising: (intended: Duration, wantsCall: Bool)?

    private struct TrackedAlarm {
        var intended: Duration
        var transmissions: UInt32 = 0
        var acknowledged = false
        var engaged = false
        /// Chosen at the press (`--call-share`): answer the centre's call about this alarm, else decline it.
        var wantsCall: Bool
        var heard = false
        /// Its case was closed: no call about it will come, but one answered before may still be heard.
        var closed = false
    }

    init(id: UInt32, socket: Int, shard: LoadShard) {
        self.id = id
        self.socket = UInt32(socket)
        self.shard = shard
        let plan = shard.plan
        let seed = plan.seed ^ (UInt64(id) &* 0x9E37_79B9_7F4A_7C15)
        var machine = DeviceMachine(
            settings: shard.deviceConfiguration, key: DeviceKey(deviceID: id, master: plan.master),
            storedCounterLimit: plan.counterStart, dc09Account: plan.dc09 == nil ? nil : DC09Load.account(of: id), seed: seed)
        random = SplitMix64(seed: seed ^ 4)
        nextMessageID = plan.firstMessageID
        // The first readings: mains, a full battery and the button present, none of them news.
        let reading = ClockReading(wall: 0, monotonic: .zero)
        _ = machine.mainsChanged(present: true, now: reading)
        _ = machine.batteryMeasured(percent: 100, now: reading)
        _ = machine.buttonPresenceChanged(present: true, now: reading)
        driver = DeviceDriverState(machine: machine)
    }

    var eventLoop: any EventLoop { shard.loop }
    private var machine: DeviceMachine { driver.machine }
    private var stopped: Bool { driver.stopped }

    var mainsPresent: Bool { machine.status.contains(.mainsPresent) }

    /// Whether a press would open an alarm now (none is open or being stored).
    var canRaiseAlarm: Bool { !stopped && machine.alarmIsIdle }

    // MARK: Inputs

    func start(intended: Duration) {
        sessionIntended = intended
        guard let sip = shard.plan.sip else {
            return feed { $0.start(pending: [], bootCount: 1, reportsRestart: false, now: $1) }
        }
        // Its own SIP port first, as the firmware opens its line before it connects: no alarm of it can be
        // acknowledged before the line is up, however slowly the ports are bound. A port that cannot be bound
        // is counted at each call (`no SIP phone`), and the device runs on.
        let settings = sip.settings(device: id)
        let media = shard.plan.media
        eventLoop.makeFutureWithTask { [self] in
            try await startSIPLine(settings, media: media, cname: "load-\(id)")
        }.whenComplete { [self] _ in
            guard !stopped else { return }
            feed { $0.start(pending: [], bootCount: 1, reportsRestart: false, now: $1) }
        }
    }

    func stop() {
        guard !stopped else { return }
        stopDriver()?.close(promise: nil)
        _ = stopSIPLine(grace: .seconds(1))
        if online {
            online = false
            shard.online -= 1
        }
    }

    /// A press, meant to happen at `intended` (the Poisson instant), carried out now, on a device without an
    /// open alarm (`canRaiseAlarm`).
    func raiseAlarm(intended: Duration) {
        guard canRaiseAlarm else { return }
        raising = (intended, random.nextUnit() < shard.plan.callShare)
        feed { $0.raiseAlarm(kind: .button, now: $1) }
        raising = nil
    }

    /// Mains went out or came back in this home; a loss is reported after the event machine's random delay,
    /// here up to `reportWithin` (the scenario phase), as the firmware spreads a town's reports.
    func mainsChanged(present: Bool, reportWithin: Duration) {
        guard !stopped else { return }
        feed { $0.mainsChanged(present: present, reportWithin: reportWithin, now: $1) }
    }

    /// Some other device event: the battery crosses its thresholds (low, then OK again), or a tamper.
    func deviceEvent() {
        guard !stopped else { return }
        if random.nextUnit() < 0.2 {
            feed { $0.tamperDetected(now: $1) }
        } else {
            let percent: UInt8 = machine.battery < DeviceEventMachine.Configuration().lowBatteryBelow ? 80 : 15
            feed { $0.batteryMeasured(percent: percent, now: $1) }
        }
    }

    /// Cuts the link as a network fault would: closes the TCP connection (the device notices as it would a
    /// reset), or over UDP loses the session. Returns whether there was a session to lose.
    func dropLink() -> Bool {
        guard !stopped, online else { return false }
        cutLink()
        return true
    }

    // MARK: The load run's environment (DeviceDriver)

    func now() -> ClockReading {
        let now = shard.now()
        return ClockReading(wall: shard.wallTime(at: now), monotonic: now)
    }

    func schedule(_ timer: DeviceMachine.Timer, after: Duration) {
        // A failed attempt does not restart the clock: set-up counts from the first intended instant.
        if case .link(.reconnect) = timer, sessionIntended == nil { sessionIntended = shard.now() + after }
        shard.schedule(DeviceTimer(device: self, timer: timer), after: after)
    }

    var transport: DeviceDriverTransport {
        switch shard.plan.transport {
        case .tcp: .tcp(connectTimeout: shard.plan.connectTimeout, source: shard.plan.sourceAddresses?.address(for: id))
        case .udp: shard.plan.dc09 == nil ? .sharedUDP : .udp  // a DC-09 NAK names no account to route it by
        }
    }

    func address(_ path: LinkMachine.Path) -> SocketAddress { shard.plan.address(path) }

    func sendDatagram(_ buffer: ByteBuffer, to path: LinkMachine.Path) {
        shard.sendDatagram(buffer, socket: Int(socket), to: path)
    }

    /// In memory: a load run's devices do not outlive it (see the type's documentation).
    func reserveCounters(_ limit: UInt64) {}

    func store(_ draft: DeviceMachine.Draft) -> Message {
        let message = draft.message(id: takeMessageID())
        count(stored: message)
        return message
    }

    func remove(id: UInt32) {}

    func indicate(_ state: IndicatorState) {}  // nobody is watching the LEDs

    func observe(_ observation: DeviceObservation.Kind) { count(observation) }

    var mediaSetup: DeviceMediaSetup { DeviceMediaSetup(cname: "load-\(id)", parameters: shard.plan.media, video: false) }

    func sipMediaHeard() {}  // the voice back is in the call's report

    /// The operator's first voice of an answered call: the alarm → voice latency.
    func mediaEvent(_ event: MediaLink.Event, callID: UInt32) {
        guard case .heard = event, let alarmID = answeredCalls[callID], var tracked = alarms[alarmID], !tracked.heard else { return }
        tracked.heard = true
        shard.record(.voice, shard.now() - tracked.intended)
        keep(tracked, alarmID)
    }

    /// Stores `tracked` back, or forgets it when nothing more will be measured about it: acknowledged,
    /// engaged, and its voice heard, or no call wanted, or its case closed with no answered call about it
    /// still going (a call answered just before the close is heard after it on a slow machine).
    private func keep(_ tracked: TrackedAlarm, _ alarmID: UInt32) {
        let callOver = !tracked.wantsCall || tracked.heard || (tracked.closed && !answeredCalls.values.contains(alarmID))
        alarms[alarmID] = tracked.acknowledged && tracked.engaged && callOver ? nil : tracked
    }

    private func takeMessageID() -> UInt32 {
        defer { nextMessageID &+= 1 }
        return nextMessageID
    }

    // MARK: What the run counts

    private func count(stored message: Message) {
        switch message {
        case .alarm(let alarm):
            let raised = raising ?? (shard.now(), false)
            alarms[alarm.id] = TrackedAlarm(intended: raised.intended, wantsCall: raised.wantsCall)
            if !raised.wantsCall { driver.machine.declineCalls(about: alarm.id) }
            unacknowledgedAlarms += 1
            shard.alarmRaised(intended: raised.intended)
        case .alarmCancel: shard.counts.cancelsSent += 1
        case .event: shard.counts.eventsSent += 1
        default: break
        }
    }

    private func count(_ observation: DeviceObservation.Kind) {
        switch observation {
        case .sessionEstablished:
            shard.sessionOpened(heartbeatSeconds: Int(machine.heartbeatInterval?.components.seconds ?? 0))
            if let intended = sessionIntended { shard.record(.session, shard.now() - intended) }
            sessionIntended = nil
            online = true
            shard.online += 1
        case .sessionLost:
            shard.sessionLost()
            if online {
                online = false
                shard.online -= 1
            }
        case .attemptFailed(let cause):
            shard.attemptFailed(reason: cause)
        case .heartbeatSent:
            shard.counts.heartbeatsSent += 1
        case .heartbeatRoundTrip(let rtt):
            shard.counts.heartbeatAcks += 1
            shard.record(.heartbeat, rtt)
        case .reliableSent(.alarm(let alarm)):
            // Sent is what went on the wire: an alarm waiting for a session is raised, not sent.
            guard let transmissions = alarms[alarm.id]?.transmissions else { return }
            if transmissions == 0 { shard.alarmSent() } else { shard.alarmRetransmitted() }
            alarms[alarm.id]?.transmissions += 1
        case .delivered(.alarm(let alarm)):
            if var tracked = alarms[alarm.id], !tracked.acknowledged {
                tracked.acknowledged = true
                keep(tracked, alarm.id)
                unacknowledgedAlarms -= 1
                // Over DC-09 the receiver's operator works the alarm on its own system: nothing more comes back.
                if machine.reportsOverDC09 {
                    alarms[alarm.id] = nil
                } else if !tracked.engaged {
                    shard.alarmsAwaitingOperator += 1
                }
                shard.alarmAcknowledged(FleetAlarmID(device: id, alarm: alarm.id), latency: shard.now() - tracked.intended)
            }
            if random.nextUnit() < shard.plan.cancelShare { feed { $0.cancelRequested(now: $1) } }
        case .delivered(.alarmCancel):
            shard.counts.cancelsAcknowledged += 1
        case .delivered(.event):
            shard.counts.eventsAcknowledged += 1
        case .nakReceived(let nak):
            shard.rejected(reason: nak.reason.description)
        case .dc09Refused:
            shard.rejected(reason: "DC-09 NAK")
        case .dc09NotUnderstood:
            shard.rejected(reason: "DC-09 DUH")
        case .dc09Unreadable:
            shard.counts.refusedFrames += 1
        case .refused:
            shard.counts.refusedFrames += 1
        case .caseUpdateReceived(let update):
            shard.counts.caseUpdatesReceived += 1
            caseChanged(update)
        case .callOffered(_, _, let declined):
            shard.counts.callsOffered += 1
            if declined { shard.counts.callsDeclined += 1 }
        case .callStarted(let callID, let alarmID):
            shard.counts.callsAnswered += 1
            shard.activeCalls += 1
            answeredCalls[callID] = alarmID
            // The machine starts the media right after this: every voice packet of the call is recorded.
            if let recorder = shard.recorder, let link = driver.mediaLinks[callID] {
                recorder.begin(device: id, call: callID)
                link.onAudio = { [id] packet in recorder.append(packet.payload, device: id, call: callID) }
            }
            shard.schedule(shard.plan.callDuration) { [self] in
                guard !stopped, machine.callID == callID else { return }
                feed { $0.hangUp(now: $1) }
            }
        case .sipCallPlaced:
            shard.counts.sipCallsPlaced += 1
        case .sipCallAnswered(incoming: false, let setupTime?):
            shard.sipCallAnswered(setupTime: setupTime)
            shard.schedule(shard.plan.callDuration) { [self] in
                guard !stopped else { return }
                feed { $0.sipHangUp(now: $1) }
            }
        case .sipCallEnded(let report) where report.direction == .outgoing:
            shard.sipCallEnded(report)
        case .callEnded(let callID, let reason, let byCentre, let statistics):
            shard.recorder?.finish(device: id, call: callID)
            if let alarmID = answeredCalls.removeValue(forKey: callID) {
                if let statistics {
                    shard.callEnded(statistics, reason: reason, byCentre: byCentre)
                } else {
                    shard.activeCalls -= 1
                    shard.counts.callsSilent += 1  // its media never started
                }
                if let tracked = alarms[alarmID] { keep(tracked, alarmID) }
            } else if reason == .failed {
                shard.counts.callsFailed += 1  // never set up
            }
        default:
            break
        }
    }

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
        if update.state == .closed { tracked.closed = true }
        keep(tracked, update.alarmID)
    }
}

extension LoadPlan {
    /// Where the centre is on `path`: the secondary (`--secondary`) when there is one, else the primary.
    func address(_ path: LinkMachine.Path) -> SocketAddress { path == .secondary ? secondary ?? centre : centre }

    /// The machine's configuration every device of the run shares: all but the key.
    var deviceConfiguration: DeviceMachine.Configuration {
        var configuration = DeviceMachine.Configuration(
            link: .init(
                hasSecondary: secondary != nil,
                sessionStart: SessionStart(
                    firmware: DeviceRuntimeConfiguration.firmwareVersion, capabilities: [.button, .mainsSensing, .battery],
                    bootCount: 1),
                handshakeTimeout: handshakeTimeout, backoff: backoff),
            delivery: delivery, handledIDs: 64, primaryName: LinkCause.address(centre),
            secondaryName: secondary.map(LinkCause.address))
        configuration.heartbeatOverride = heartbeatOverride
        if sip != nil { configuration.sipVoice = SIPVoiceMachine.Configuration() }
        if let dc09 {
            configuration.reportOverDC09(dc09.framing, supervision: heartbeatOverride.map { .seconds(Int($0)) } ?? dc09.supervision)
            // The ACK ends a DC-09 alarm after its cancel window: a short one keeps the fleet's devices free
            // for the next arrival (a cancel, `--cancel-share`, follows the ACK at once).
            configuration.cancelWindow = DC09Load.cancelWindow
        }
        return configuration
    }
}

/// A device's machine timer in its shard's queue: a value, not a closure (`TimerQueue` says why).
struct DeviceTimer {
    let device: SimulatedDevice
    let timer: DeviceMachine.Timer
}
