import NIOCore

/// The device's voice link (protocol.md §4.8): the media the `DeviceMachine`'s calls ask for, set up by
/// `CallMedia`. The device answers the centre's `callOffer` by itself, with no pick-up, because an elderly
/// person who fell cannot be asked to reach a phone; the machine decides that, and declines a call that
/// belongs to no alarm.
extension DeviceRuntime {
    private var controlPeer: SocketAddress { connection?.remoteAddress ?? configuration.primary }

    func bindMedia(_ offer: CallOffer) {
        let callID = offer.callID
        CallMedia.bind(
            for: offer, controlPeer: controlPeer, localAddress: connection?.localAddress,
            video: configuration.capabilities.contains(.video), on: eventLoop
        ).whenComplete { [self] result in
            switch result {
            case .success(let (link, local)):
                mediaLinks[callID] = link
                feed { $0.mediaBound(callID: callID, local: local, now: $1) }
            case .failure(let error):
                feed { $0.mediaFailed(callID: callID, reason: "cannot set up its media: \(error)", now: $1) }
            }
        }
    }

    func startMedia(_ callID: UInt32, local: MediaDescription, remote: MediaDescription) {
        guard let link = mediaLinks[callID] else {
            return feed { $0.mediaFailed(callID: callID, reason: "its media ports are gone", now: $1) }
        }
        do {
            try CallMedia.start(
                link, local: local, remote: remote, controlPeer: controlPeer, cname: "device-\(configuration.key.deviceID)",
                parameters: configuration.media
            ) { [weak self] event in
                // The peer leaving and the first voice need nothing: the centre's callEnd follows on the
                // control link, and the first voice is in the statistics.
                guard let self, case .silent(let quiet) = event else { return }
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
