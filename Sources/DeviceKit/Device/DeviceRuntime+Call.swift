import NIOCore

/// A call the device is in: the centre's offer and, once bound, the media link.
struct DeviceCall {
    var callID: UInt32
    var alarmID: UInt32
    var link: MediaLink?
}

/// The device's side of calls (protocol.md §4.8): it answers the centre's `callOffer` by itself, with no
/// pick-up, because an elderly person who fell cannot be asked to reach a phone. It declines only a call
/// that belongs to no alarm while none is open, so that a centre cannot listen into a home unasked.
extension DeviceRuntime {
    /// The centre offered a call (already acknowledged, not a retransmission). On the event loop.
    func callOffered(_ offer: CallOffer) {
        guard offer.alarmID != 0 || alarm.openAlarm != nil else {
            logger.debug("declined a call outside an alarm", metadata: ["call.id": "\(offer.callID)"])
            let callID = offer.callID
            store { .callEnd(CallEnd(id: $0, callID: callID, reason: .declined)) }
            return
        }
        if let current = activeCall, current.callID != offer.callID {
            // The centre re-established the call: the new one replaces the old.
            endCall(reason: .hangUp, byCentre: false, tell: false)
        }
        let remoteAddress: SocketAddress
        do {
            remoteAddress = try offer.media.rtpAddress(controlPeer: connection?.remoteAddress ?? configuration.primary)
            _ = try SRTPMasterKey(keyMaterial: offer.media.keyMaterial)
        } catch {
            refuseCall(offer.callID, because: "\(error)")
            return
        }
        activeCall = DeviceCall(callID: offer.callID, alarmID: offer.alarmID, link: nil)
        let bindHost = remoteAddress.protocol == .inet6 ? "::" : "0.0.0.0"
        MediaLink.bind(host: bindHost, on: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let link):
                guard activeCall?.callID == offer.callID, activeCall?.link == nil else {
                    link.stop(reason: "superseded")
                    return
                }
                answer(offer, with: link, remoteAddress: remoteAddress)
            case .failure(let error):
                guard activeCall?.callID == offer.callID else { return }
                activeCall = nil
                refuseCall(offer.callID, because: "cannot bind the media ports: \(error)")
            }
        }
    }

    private func answer(_ offer: CallOffer, with link: MediaLink, remoteAddress: SocketAddress) {
        // Our address as the centre sees it: the control connection's local address, or unspecified (the
        // centre then uses the address our frames come from).
        var address = [UInt8](repeating: 0, count: remoteAddress.protocol == .inet6 ? 16 : 4)
        if let local = connection?.localAddress.flatMap(Endpoint.init), local.address.count == address.count {
            address = local.address
        }
        let video = configuration.capabilities.contains(.video) ? offer.media.videoPayloadType : 0
        let local = MediaDescription(
            endpoint: Endpoint(address: address, port: UInt16(link.port)), audioPayloadType: 0,
            ssrc: UInt32.random(in: 1 ... .max), keyMaterial: SRTPMasterKey.randomKeyMaterial(), videoPayloadType: video)
        do {
            var parameters = configuration.media
            parameters.video = parameters.video && video != 0
            try link.start(
                local: local, remote: offer.media, remoteAddress: remoteAddress,
                cname: "device-\(configuration.key.deviceID)", parameters: parameters
            ) { [weak self] event in
                self?.mediaEvent(event, callID: offer.callID)
            }
        } catch {
            link.stop(reason: "failed")
            activeCall = nil
            refuseCall(offer.callID, because: "cannot start the media: \(error)")
            return
        }
        activeCall?.link = link
        let callID = offer.callID
        store { .callAnswer(CallAnswer(id: $0, callID: callID, media: local)) }
        observe(.callStarted(callID: callID, alarmID: offer.alarmID))
        run(alarm.callChanged(active: true))
    }

    private func refuseCall(_ callID: UInt32, because reason: String) {
        observe(.fault("cannot take call \(callID): \(reason)"))
        store { .callEnd(CallEnd(id: $0, callID: callID, reason: .failed)) }
    }

    private func mediaEvent(_ event: MediaLink.Event, callID: UInt32) {
        guard activeCall?.callID == callID else { return }
        switch event {
        case .silent(let quiet):
            observe(.fault("no voice from the centre for \(quiet.milliseconds / 1000) s: call \(callID) ended"))
            endCall(reason: .mediaSilent, byCentre: false, tell: true)
        case .peerLeft, .heard:
            break  // the centre's callEnd follows on the control link; the first voice is in the statistics
        }
    }

    /// Ends the call in progress: stops the media (sending RTCP BYE), tells the centre if `tell`, reports it.
    /// The alarm stays open: only the case's closing ends it.
    func endCall(reason: CallEndReason, byCentre: Bool, tell: Bool) {
        guard let call = activeCall else { return }
        activeCall = nil
        let statistics = call.link?.stop(reason: reason.description)
        if tell {
            let callID = call.callID
            store { .callEnd(CallEnd(id: $0, callID: callID, reason: reason)) }
        }
        observe(.callEnded(callID: call.callID, reason: reason, byCentre: byCentre, statistics: statistics))
        run(alarm.callChanged(active: false))
    }

    // MARK: Public

    /// Hangs up the call in progress (the person pressed cancel during a call, or a test). False if none.
    public func hangUp() async -> Bool {
        (try? await eventLoop.submit { [self] in
            guard activeCall != nil else { return false }
            endCall(reason: .hangUp, byCentre: false, tell: true)
            return true
        }.get()) ?? false
    }

    /// The media numbers of the call in progress, or `nil` without one.
    public func callStatistics() async -> MediaStatistics? {
        try? await eventLoop.submit { [self] in activeCall?.link?.statistics }.get()
    }

    /// Fault injection for tests and the load tool: the call stays up but this side sends no media.
    public func setMediaPaused(_ paused: Bool) {
        eventLoop.execute { [self] in activeCall?.link?.sendingPaused = paused }
    }
}
