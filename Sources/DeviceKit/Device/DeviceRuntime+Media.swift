import NIOCore

/// The device's voice link (protocol.md §4.8): the media the `DeviceMachine`'s calls ask for. The device
/// answers the centre's `callOffer` by itself, with no pick-up, because an elderly person who fell cannot be
/// asked to reach a phone; the machine decides that, and declines a call that belongs to no alarm.
extension DeviceRuntime {
    func bindMedia(_ offer: CallOffer) {
        let callID = offer.callID
        let remoteAddress: SocketAddress
        do {
            remoteAddress = try offer.media.rtpAddress(controlPeer: connection?.remoteAddress ?? configuration.primary)
            _ = try SRTPMasterKey(keyMaterial: offer.media.keyMaterial)
        } catch {
            return feed { $0.mediaFailed(callID: callID, reason: "\(error)", now: $1) }
        }
        MediaLink.bind(host: remoteAddress.protocol == .inet6 ? "::" : "0.0.0.0", on: eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let link):
                mediaLinks[callID] = link
                feed { $0.mediaBound(callID: callID, local: localDescription(for: link, offer: offer, remote: remoteAddress), now: $1) }
            case .failure(let error):
                feed { $0.mediaFailed(callID: callID, reason: "cannot bind the media ports: \(error)", now: $1) }
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

    func startMedia(_ callID: UInt32, local: MediaDescription, remote: MediaDescription) {
        guard let link = mediaLinks[callID] else {
            return feed { $0.mediaFailed(callID: callID, reason: "its media ports are gone", now: $1) }
        }
        do {
            let remoteAddress = try remote.rtpAddress(controlPeer: connection?.remoteAddress ?? configuration.primary)
            var parameters = configuration.media
            parameters.video = parameters.video && local.videoPayloadType != 0
            try link.start(
                local: local, remote: remote, remoteAddress: remoteAddress, cname: "device-\(configuration.key.deviceID)",
                parameters: parameters
            ) { [weak self] event in
                guard let self, case .silent(let quiet) = event else { return }
                // Peer left and first voice: the centre's callEnd follows on the control link; the first voice
                // is in the statistics.
                self.feed { $0.mediaSilent(callID: callID, quiet: quiet, now: $1) }
            }
        } catch {
            feed { $0.mediaFailed(callID: callID, reason: "cannot start the media: \(error)", now: $1) }
        }
    }

    // MARK: Public

    /// Hangs up the call in progress (the person pressed cancel during a call, or a test). False if none.
    public func hangUp() async -> Bool {
        (try? await eventLoop.submit { [self] in
            var hungUp = false
            feed { machine, now in
                let actions = machine.hangUp(now: now)
                hungUp = !actions.isEmpty
                return actions
            }
            return hungUp
        }.get()) ?? false
    }

    /// The media numbers of the call in progress, or `nil` without one.
    public func callStatistics() async -> MediaStatistics? {
        try? await eventLoop.submit { [self] in machine.callID.flatMap { mediaLinks[$0]?.statistics } }.get()
    }

    /// Fault injection for tests and the load tool: the call stays up but this side sends no media.
    public func setMediaPaused(_ paused: Bool) {
        eventLoop.execute { [self] in
            if let callID = machine.callID { mediaLinks[callID]?.sendingPaused = paused }
        }
    }
}
