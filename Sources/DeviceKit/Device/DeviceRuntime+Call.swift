import NIOCore

/// The device's side of calls (protocol.md §4.8): it answers the centre's `callOffer` by itself, with no
/// pick-up, because an elderly person who fell cannot be asked to reach a phone. It declines only a call
/// that belongs to no alarm while none is open, so that a centre cannot listen into a home unasked.
///
/// The call's life is `CallMachine` (role callee); this file carries out its actions with `MediaLink`.
extension DeviceRuntime {
    /// The centre offered a call (already acknowledged, not a retransmission). On the event loop.
    func callOffered(_ offer: CallOffer) {
        let mayAnswer = offer.alarmID != 0 || alarm.openAlarm != nil
        if mayAnswer { takenOffers[offer.callID] = offer }
        run(call.offerReceived(offer, mayAnswer: mayAnswer))
    }

    func run(_ actions: [CallMachine.Action]) {
        for action in actions {
            switch action {
            case .bindMedia(let callID):
                bindMedia(callID)
            case .startMedia(let callID, let local, let remote):
                startMedia(callID, local: local, remote: remote)
            case .sendAnswer(let callID, let local):
                store { .callAnswer(CallAnswer(id: $0, callID: callID, media: local)) }
            case .sendEnd(let callID, let reason):
                store { .callEnd(CallEnd(id: $0, callID: callID, reason: reason)) }
            case .stopMedia(let callID, let reason):
                takenOffers[callID] = nil
                if let statistics = mediaLinks.removeValue(forKey: callID)?.stop(reason: reason.description) {
                    stoppedCallStatistics[callID] = statistics
                }
            case .started(let callID, let alarmID):
                observe(.callStarted(callID: callID, alarmID: alarmID))
                run(alarm.callChanged(active: true))
            case .ended(let callID, let reason, let byPeer):
                observe(.callEnded(callID: callID, reason: reason, byCentre: byPeer, statistics: stoppedCallStatistics.removeValue(forKey: callID)))
                run(alarm.callChanged(active: false))
            case .declined(let callID):
                logger.debug("declined a call outside an alarm", metadata: ["call.id": "\(callID)"])
            case .sendOffer, .scheduleAnswerTimeout:
                preconditionFailure("a callee neither offers calls nor waits for answers")
            }
        }
    }

    private func bindMedia(_ callID: UInt32) {
        guard let offer = takenOffers[callID] else { return run(call.mediaFailed(callID: callID)) }
        let remoteAddress: SocketAddress
        do {
            remoteAddress = try offer.media.rtpAddress(controlPeer: connection?.remoteAddress ?? configuration.primary)
            _ = try SRTPMasterKey(keyMaterial: offer.media.keyMaterial)
        } catch {
            return callFailed(callID, because: "\(error)")
        }
        MediaLink.bind(host: remoteAddress.protocol == .inet6 ? "::" : "0.0.0.0", on: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let link):
                guard call.callID == callID, !stopped else {
                    link.stop(reason: "superseded")
                    return
                }
                mediaLinks[callID] = link
                run(call.mediaBound(callID: callID, local: localDescription(for: link, offer: offer, remote: remoteAddress)))
            case .failure(let error):
                callFailed(callID, because: "cannot bind the media ports: \(error)")
            }
        }
    }

    /// This side's media: our address as the centre sees it (the control connection's local address, or
    /// unspecified, and the centre then uses the address our frames come from), fresh SRTP keys.
    private func localDescription(for link: MediaLink, offer: CallOffer, remote: SocketAddress) -> MediaDescription {
        var address = [UInt8](repeating: 0, count: remote.protocol == .inet6 ? 16 : 4)
        if let local = connection?.localAddress.flatMap(Endpoint.init), local.address.count == address.count {
            address = local.address
        }
        let video = configuration.capabilities.contains(.video) ? offer.media.videoPayloadType : 0
        return MediaDescription(
            endpoint: Endpoint(address: address, port: UInt16(link.port)), audioPayloadType: 0,
            ssrc: UInt32.random(in: 1 ... .max), keyMaterial: SRTPMasterKey.randomKeyMaterial(), videoPayloadType: video)
    }

    private func startMedia(_ callID: UInt32, local: MediaDescription, remote: MediaDescription) {
        guard let link = mediaLinks[callID] else { return callFailed(callID, because: "its media ports are gone") }
        do {
            let remoteAddress = try remote.rtpAddress(controlPeer: connection?.remoteAddress ?? configuration.primary)
            var parameters = configuration.media
            parameters.video = parameters.video && local.videoPayloadType != 0
            try link.start(
                local: local, remote: remote, remoteAddress: remoteAddress, cname: "device-\(configuration.key.deviceID)",
                parameters: parameters
            ) { [weak self] event in
                self?.mediaEvent(event, callID: callID)
            }
        } catch {
            callFailed(callID, because: "cannot start the media: \(error)")
        }
    }

    private func callFailed(_ callID: UInt32, because reason: String) {
        observe(.fault("cannot take call \(callID): \(reason)"))
        run(call.mediaFailed(callID: callID))
    }

    private func mediaEvent(_ event: MediaLink.Event, callID: UInt32) {
        switch event {
        case .silent(let quiet):
            guard call.callID == callID else { return }
            observe(.fault("no voice from the centre for \(quiet.milliseconds / 1000) s: call \(callID) ended"))
            run(call.mediaSilent(callID: callID))
        case .peerLeft, .heard:
            break  // the centre's callEnd follows on the control link; the first voice is in the statistics
        }
    }

    // MARK: Public

    /// Hangs up the call in progress (the person pressed cancel during a call, or a test). False if none.
    public func hangUp() async -> Bool {
        (try? await eventLoop.submit { [self] in
            let actions = call.hangUp()
            run(actions)
            return !actions.isEmpty
        }.get()) ?? false
    }

    /// The media numbers of the call in progress, or `nil` without one.
    public func callStatistics() async -> MediaStatistics? {
        try? await eventLoop.submit { [self] in call.callID.flatMap { mediaLinks[$0]?.statistics } }.get()
    }

    /// Fault injection for tests and the load tool: the call stays up but this side sends no media.
    public func setMediaPaused(_ paused: Bool) {
        eventLoop.execute { [self] in
            if let callID = call.callID { mediaLinks[callID]?.sendingPaused = paused }
        }
    }
}
