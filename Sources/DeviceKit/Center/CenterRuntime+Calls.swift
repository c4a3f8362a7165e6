import NIOCore

/// A call between the centre and one device.
struct CenterCall {
    enum Phase { case binding, offered, active }
    var callID: UInt32
    var alarmID: UInt32
    var phase: Phase
    var link: MediaLink?
    var local: MediaDescription?
    var offerMessageID: UInt32?
    /// What of its media numbers the metrics hold already.
    var counted = MediaCounted()
}

/// The centre's side of calls (protocol.md §4.8): it offers a call when an operator engages a case, or on
/// request (`CenterServer.call(device:)`, the console's `call N`); it starts the media when the device
/// answers; either side ends it with `callEnd`. A call that drops leaves the case open, and can be offered
/// again. On the runtime's event loop.
extension CenterRuntime {
    /// Offers a call to `device` about `alarmID` (0: none), replacing a call in progress. Returns the call id,
    /// or `nil` if the device is unknown or the centre stopped.
    func offerCall(device: UInt32, alarmID: UInt32) -> UInt32? {
        guard !stopped, sessions[device] != nil || deviceKey(device) != nil else { return nil }
        if calls[device] != nil { endCall(device: device, reason: .hangUp, tell: true) }
        let callID = UInt32.random(in: 1 ... .max)
        calls[device] = CenterCall(callID: callID, alarmID: alarmID, phase: .binding)
        metrics.callsActive.set(Int64(calls.count))
        MediaLink.bind(host: configuration.host, on: loop).assumeIsolated().whenComplete { [self] result in
            guard calls[device]?.callID == callID, !stopped else {
                if case .success(let link) = result { link.stop(reason: "superseded") }
                return
            }
            switch result {
            case .success(let link):
                sendOffer(device: device, callID: callID, alarmID: alarmID, link: link)
            case .failure(let error):
                calls[device] = nil
                metrics.callsActive.set(Int64(calls.count))
                var nothing = MediaCounted()
                metrics.callEnded(.failed, nil, counted: &nothing)
                logger.debug("cannot bind media ports", metadata: ["device.id": "\(device)", "reason": "\(error)"])
                hub.emit(.callEnded(device: device, callID: callID, reason: .failed, endedBy: .center, statistics: nil))
            }
        }
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
            _ = offerCall(device: next.device, alarmID: next.alarmID)
        }
        metrics.callsWaiting.set(Int64(engageCalls.count))
        guard !engageCalls.isEmpty, !engageCallWakeUpSet else { return }
        engageCallWakeUpSet = true
        timers.schedule(in: .seconds(1 / configuration.engageCallRate)) { [self] in
            engageCallWakeUpSet = false
            placeEngageCalls()
        }
    }

    private func sendOffer(device: UInt32, callID: UInt32, alarmID: UInt32, link: MediaLink) {
        // An unspecified address tells the device to send to the address it reaches the centre at.
        let host = link.rtpLocalAddress.flatMap(Endpoint.init) ?? Endpoint(address: [0, 0, 0, 0], port: UInt16(link.port))
        let local = MediaDescription(
            endpoint: Endpoint(address: host.address, port: UInt16(link.port)), audioPayloadType: 0,
            ssrc: UInt32.random(in: 1 ... .max), keyMaterial: SRTPMasterKey.randomKeyMaterial(),
            videoPayloadType: configuration.media.video ? 96 : 0)
        let id = nextCallMessageID
        nextCallMessageID &+= 1
        callMessageIDs.insert(id)
        calls[device]?.phase = .offered
        calls[device]?.link = link
        calls[device]?.local = local
        calls[device]?.offerMessageID = id
        metrics.callsOffered.increment()
        hub.emit(.callOffered(device: device, callID: callID, alarmID: alarmID))
        feed(device) { $0.deliver(.callOffer(CallOffer(id: id, callID: callID, alarmID: alarmID, media: local))) }
        // A device that does not answer (offline, or too old to know calls) does not keep the ports bound.
        timers.schedule(in: Self.answerTimeout) { [self] in
            guard let call = calls[device], call.callID == callID, call.phase == .offered else { return }
            endCall(device: device, reason: .failed, tell: true)
        }
    }

    /// How long an offer waits for the device's answer: a little more than the retransmissions of §4.7 take.
    static let answerTimeout: Duration = .seconds(45)

    /// The device's `callAnswer`, journalled: start the media.
    func callAnswered(_ answer: CallAnswer, device: UInt32) {
        guard var call = calls[device], call.callID == answer.callID, call.phase == .offered,
            let link = call.link, let local = call.local
        else {
            logger.debug("answer to a call not offered", metadata: ["device.id": "\(device)", "call.id": "\(answer.callID)"])
            return
        }
        let controlPeer: SocketAddress?
        switch paths[device] {
        case .stream(let channel)?: controlPeer = channel.remoteAddress
        case .datagram(let address)?: controlPeer = address
        case nil: controlPeer = nil
        }
        do {
            let remote = try answer.media.rtpAddress(controlPeer: controlPeer)
            var parameters = configuration.media
            parameters.video = parameters.video && answer.media.videoPayloadType != 0
            let callID = call.callID
            try link.start(local: local, remote: answer.media, remoteAddress: remote, cname: "centre", parameters: parameters) {
                [weak self] event in
                self?.mediaEvent(event, device: device, callID: callID)
            }
        } catch {
            logger.debug("cannot start the media", metadata: ["device.id": "\(device)", "reason": "\(error)"])
            endCall(device: device, reason: .failed, tell: true)
            return
        }
        call.phase = .active
        calls[device] = call
        metrics.callsStarted.increment()
        hub.emit(.callStarted(device: device, callID: call.callID))
    }

    /// The device's `callEnd`, journalled.
    func callEndedByDevice(_ end: CallEnd, device: UInt32) {
        guard calls[device]?.callID == end.callID else { return }
        finish(device: device, reason: end.reason, endedBy: .device)
    }

    /// The device refused a call message for good (for example, it does not know the call).
    func callRefused(device: UInt32, messageID: UInt32, reason: NakReason) {
        guard let call = calls[device], call.offerMessageID == messageID else { return }
        finish(device: device, reason: .failed, endedBy: .device)
    }

    /// Ends `device`'s call, telling the device with `callEnd` if `tell`.
    @discardableResult
    func endCall(device: UInt32, reason: CallEndReason, tell: Bool) -> Bool {
        guard let call = calls[device] else { return false }
        if tell {
            let id = nextCallMessageID
            nextCallMessageID &+= 1
            callMessageIDs.insert(id)
            feed(device) { $0.deliver(.callEnd(CallEnd(id: id, callID: call.callID, reason: reason))) }
        }
        finish(device: device, reason: reason, endedBy: .center)
        return true
    }

    private func finish(device: UInt32, reason: CallEndReason, endedBy: CallEndedBy) {
        guard var call = calls.removeValue(forKey: device) else { return }
        let statistics = call.link?.stop(reason: reason.description)
        metrics.callsActive.set(Int64(calls.count))
        metrics.callEnded(reason, statistics, counted: &call.counted)
        hub.emit(.callEnded(device: device, callID: call.callID, reason: reason, endedBy: endedBy, statistics: statistics))
    }

    private func mediaEvent(_ event: MediaLink.Event, device: UInt32, callID: UInt32) {
        guard calls[device]?.callID == callID else { return }
        switch event {
        case .silent(let quiet):
            hub.emit(.mediaSilent(device: device, callID: callID, seconds: quiet.seconds))
            endCall(device: device, reason: .mediaSilent, tell: true)
        case .peerLeft, .heard:
            break  // its callEnd follows on the control link; hearing the device is in the statistics
        }
    }

    func callStatistics(device: UInt32) -> MediaStatistics? { calls[device]?.link?.statistics }

    /// Adds what the calls in progress received, lost and refused since the last time to the metrics.
    func countMediaProgress() {
        for (device, call) in calls where call.phase == .active {
            guard let statistics = call.link?.statistics else { continue }
            var counted = call.counted
            metrics.countMedia(statistics, counted: &counted)
            calls[device]?.counted = counted
        }
    }

    func stopAllCalls() {
        for device in Array(calls.keys) { finish(device: device, reason: .hangUp, endedBy: .center) }
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
