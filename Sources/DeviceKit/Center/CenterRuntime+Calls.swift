import NIOCore

/// The centre's side of the calls with one device: the shared `CallMachine` (as the caller) and what its
/// driver keeps beside it — the media ports by call id, the id of the `callOffer` in flight (for a nak of
/// it), and the numbers of a call whose media stopped until its end is told.
struct CenterCall {
    var machine = CallMachine(role: .caller, answerTimeout: CenterRuntime.answerTimeout)
    var links: [UInt32: MediaLink] = [:]
    var offerMessageID: UInt32?
    var finalNumbers: [UInt32: MediaStatistics] = [:]
    /// What of each call's media numbers the metrics hold already (counted each second while it lasts).
    var counted: [UInt32: MediaCounted] = [:]

    /// Nothing in progress and nothing bound: the entry can go.
    var isIdle: Bool { machine.callID == nil && links.isEmpty }
}

/// The centre's side of calls (protocol.md §4.8): it offers a call when an operator engages a case, or on
/// request (`CenterServer.call(device:)`, the console's `call N`); it starts the media when the device
/// answers; either side ends it with `callEnd`. A call that drops leaves the case open, and can be offered
/// again. The lifecycle (replaced offers, late answers, crossing ends) is the `CallMachine` the device
/// runs too; this extension only carries out its actions. On the runtime's event loop.
extension CenterRuntime {
    /// How long an offer waits for the device's answer: a little more than the retransmissions of §4.7 take.
    static let answerTimeout: Duration = .seconds(45)

    /// Offers a call to `device` about `alarmID` (0: none), replacing a call in progress. Returns the call id,
    /// or `nil` if the device is unknown or the centre stopped.
    func offerCall(device: UInt32, alarmID: UInt32) -> UInt32? {
        guard !stopped, sessions.contains(device) || deviceKey(device) != nil else { return nil }
        let callID = UInt32.random(in: 1 ... .max)
        runCall(device) { $0.place(callID: callID, alarmID: alarmID) }
        return callID
    }

    /// An operator engaged `engaged`: its home is called at the configured pace
    /// (`CenterConfiguration.engageCallRate`), in the order the cases were engaged.
    func callOnEngagement(_ engaged: CasePolicy.Case) {
        engageCalls.append(engaged)
        placeEngageCalls()
    }

    private func placeEngageCalls() {
        while let next = engageCalls.first {
            // A case closed while it waited needs no call (and costs no token).
            guard cases.isOpen(next.id) else {
                engageCalls.removeFirst()
                continue
            }
            guard engageCallPace.take(now: now.monotonic) else { break }
            engageCalls.removeFirst()
            if let bridge {
                bridge.connect(next)  // the operator's phone first, then the home (protocol.md §8)
            } else {
                _ = offerCall(device: next.device, alarmID: next.alarmID)
            }
        }
        metrics.callsWaiting.set(Int64(engageCalls.count))
        guard !engageCalls.isEmpty, !engageCallWakeUpSet else { return }
        engageCallWakeUpSet = true
        timers.schedule(in: .seconds(1 / configuration.engageCallRate)) { [self] in
            engageCallWakeUpSet = false
            placeEngageCalls()
        }
    }

    /// The device's `callAnswer`, journalled: the media starts if it answers the call offered now.
    func callAnswered(_ answer: CallAnswer, device: UInt32) {
        if runCall(device, { $0.answerReceived(callID: answer.callID, remote: answer.media) }).isEmpty {
            logger.debug("answer to a call not offered", metadata: ["device.id": "\(device)", "call.id": "\(answer.callID)"])
        }
    }

    /// The device's `callEnd`, journalled.
    func callEndedByDevice(_ end: CallEnd, device: UInt32) {
        runCall(device) { $0.endReceived(callID: end.callID, reason: end.reason) }
    }

    /// The device refused a call message for good (for example, it does not know the call): an offer so
    /// refused ends its call.
    func callRefused(device: UInt32, messageID: UInt32, reason: NakReason) {
        guard let call = calls[device], call.offerMessageID == messageID, let callID = call.machine.callID else { return }
        runCall(device) { $0.offerRefused(callID: callID) }
    }

    /// Ends `device`'s call (the operator hangs up, its case closed); the device is told. False without one.
    @discardableResult
    func endCall(device: UInt32, reason: CallEndReason = .hangUp) -> Bool {
        !runCall(device) { $0.hangUp(reason: reason) }.isEmpty
    }

    /// The alarm `device`'s call in progress is about.
    func callAlarm(device: UInt32) -> UInt32? { calls[device]?.machine.alarmID }

    func callStatistics(device: UInt32) -> MediaStatistics? {
        guard let call = calls[device], let callID = call.machine.callID else { return nil }
        return call.links[callID]?.statistics
    }

    /// The centre stops: every call's media ends; the devices are not told (their supervision notices).
    func stopAllCalls() {
        for device in Array(calls.keys) { runCall(device) { $0.stop() } }
    }

    // MARK: Driving the call machines

    /// Runs one event on `device`'s call machine and carries out its actions.
    @discardableResult
    private func runCall(_ device: UInt32, _ event: (inout CallMachine) -> [CallMachine.Action]) -> [CallMachine.Action] {
        var call = calls[device] ?? CenterCall()
        let actions = event(&call.machine)
        calls[device] = call
        for action in actions { perform(action, device: device) }
        if calls[device]?.isIdle == true { calls[device] = nil }
        metrics.callsActive.set(Int64(calls.values.count { $0.machine.callID != nil }))
        return actions
    }

    private func perform(_ action: CallMachine.Action, device: UInt32) {
        switch action {
        case .bindMedia(let callID):
            MediaLink.bind(host: configuration.host, on: loop).assumeIsolated().whenComplete { [self] result in
                switch result {
                case .success(let link):
                    guard !stopped else { _ = link.stop(reason: "stopped"); return }
                    calls[device, default: CenterCall()].links[callID] = link
                    runCall(device) { $0.mediaBound(callID: callID, local: describe(link)) }
                case .failure(let error):
                    logger.debug("cannot bind media ports", metadata: ["device.id": "\(device)", "reason": "\(error)"])
                    runCall(device) { $0.mediaFailed(callID: callID) }
                }
            }
        case .sendOffer(let callID, let alarmID, let local):
            let id = takeCallMessageID()
            calls[device]?.offerMessageID = id
            metrics.callsOffered.increment()
            hub.emit(.callOffered(device: device, callID: callID, alarmID: alarmID))
            feed(device) { $0.deliver(.callOffer(CallOffer(id: id, callID: callID, alarmID: alarmID, media: local))) }
        case .scheduleAnswerTimeout(let callID, let after):
            // A device that does not answer (offline, or too old to know calls) does not keep the ports bound.
            timers.schedule(in: after) { [self] in runCall(device) { $0.answerTimeoutFired(callID: callID) } }
        case .startMedia(let callID, let local, let remote):
            startMedia(callID, local: local, remote: remote, device: device)
        case .started(let callID, _):
            metrics.callsStarted.increment()
            hub.emit(.callStarted(device: device, callID: callID))
            if let link = calls[device]?.links[callID] { bridge?.homeStarted(device: device, callID: callID, link: link) }
        case .stopMedia(let callID, let reason):
            if let link = calls[device]?.links.removeValue(forKey: callID), let numbers = link.stop(reason: reason.description) {
                calls[device]?.finalNumbers[callID] = numbers
            }
        case .sendEnd(let callID, let reason):
            let id = takeCallMessageID()
            feed(device) { $0.deliver(.callEnd(CallEnd(id: id, callID: callID, reason: reason))) }
        case .ended(let callID, let reason, let byPeer):
            let statistics = calls[device]?.finalNumbers.removeValue(forKey: callID)
            var counted = calls[device]?.counted.removeValue(forKey: callID) ?? MediaCounted()
            metrics.callEnded(reason, statistics, counted: &counted)
            hub.emit(.callEnded(device: device, callID: callID, reason: reason, endedBy: byPeer ? .device : .center, statistics: statistics))
            bridge?.homeEnded(device: device, callID: callID)
        case .sendAnswer, .declined:
            let _: [CallMachine.Action] = impossibleTransition("the centre's CallMachine is the caller's: it neither answers nor declines")
        }
    }

    private func startMedia(_ callID: UInt32, local: MediaDescription, remote: MediaDescription, device: UInt32) {
        let controlPeer: SocketAddress?
        switch sessions.withValue(device, { $0.path }) ?? nil {
        case .stream(let channel)?: controlPeer = channel.remoteAddress
        case .datagram(let peer)?: controlPeer = peer.socketAddress
        case nil: controlPeer = nil
        }
        do {
            guard let link = calls[device]?.links[callID] else { throw MediaLinkError.alreadyStarted }
            var parameters = configuration.media
            // A bridged call relays the operator's voice rather than talking itself.
            if bridge?.relays(device: device, callID: callID) == true { parameters.relay = true }
            try link.start(
                local: local, remote: remote, remoteAddress: try remote.rtpAddress(controlPeer: controlPeer), cname: "centre",
                parameters: parameters
            ) { [weak self] event in
                self?.mediaEvent(event, device: device, callID: callID)
            }
        } catch {
            logger.debug("cannot start the media", metadata: ["device.id": "\(device)", "reason": "\(error)"])
            runCall(device) { $0.mediaFailed(callID: callID) }
        }
    }

    /// The ports `link` has bound, as the device is to see them: an unspecified address tells it to send to
    /// the address it reaches the centre at.
    private func describe(_ link: MediaLink) -> MediaDescription {
        let host = link.rtpLocalAddress.flatMap(Endpoint.init) ?? Endpoint(address: [0, 0, 0, 0], port: UInt16(link.port))
        return MediaDescription(
            endpoint: Endpoint(address: host.address, port: UInt16(link.port)), audioPayloadType: 0,
            ssrc: UInt32.random(in: 1 ... .max), keyMaterial: SRTPMasterKey.randomKeyMaterial(),
            videoPayloadType: configuration.media.video ? 96 : 0)
    }

    private func takeCallMessageID() -> UInt32 {
        let id = nextCallMessageID
        nextCallMessageID &+= 1
        callMessageIDs.insert(id)
        return id
    }

    private func mediaEvent(_ event: MediaLink.Event, device: UInt32, callID: UInt32) {
        guard calls[device]?.machine.callID == callID else { return }
        switch event {
        case .silent(let quiet):
            hub.emit(.mediaSilent(device: device, callID: callID, seconds: quiet.seconds))
            runCall(device) { $0.mediaSilent(callID: callID) }
        case .peerLeft, .heard:
            break  // its callEnd follows on the control link; hearing the device is in the statistics
        }
    }

    /// Adds what the calls in progress received, lost and refused since the last time to the metrics, so that
    /// they move while a call lasts (its end adds the rest).
    func countMediaProgress() {
        bridge?.countMediaProgress()
        for (device, call) in calls {
            for (callID, link) in call.links {
                guard let statistics = link.statistics else { continue }  // not started yet
                var counted = call.counted[callID] ?? MediaCounted()
                metrics.countMedia(statistics, counted: &counted)
                calls[device]?.counted[callID] = counted
            }
        }
    }
}

extension Message {
    /// The message with any SRTP key material zeroed: for the journal and the event stream, which must not
    /// carry keys.
    public var withoutMediaKeys: Message {
        switch self {
        case .callOffer(var offer):
            offer.media.keyMaterial = [UInt8](repeating: 0, count: offer.media.keyMaterial.count)
            return .callOffer(offer)
        case .callAnswer(var answer):
            answer.media.keyMaterial = [UInt8](repeating: 0, count: answer.media.keyMaterial.count)
            return .callAnswer(answer)
        default:
            return self
        }
    }
}
