import NIOCore

/// The media side of a call a simulated device takes: the firmware's answer (protocol.md §4.8), with the
/// same `MediaLink` (SRTP, 20 ms µ-law packets, RTCP), so a load run puts real media load on the centre.
///
/// The device decides (answer or decline, when to hang up) and sends the control messages; this type binds
/// the ports, starts the media and hands back what happened. Touched on the shard's event loop only.
final class SimulatedCall: @unchecked Sendable {
    enum Outcome {
        /// The media runs; answer the offer with this description.
        case answered(MediaDescription)
        /// The first authentic voice from the centre arrived.
        case heard
        /// No voice from the centre for the silence timeout.
        case silent
        /// The call could not be set up (ports, the offer's endpoint or keys): end it as `failed`.
        case failed(String)
    }

    let callID: UInt32
    let alarmID: UInt32
    private var link: MediaLink?
    private var ended = false

    init(offer: CallOffer) {
        callID = offer.callID
        alarmID = offer.alarmID
    }

    /// Binds the media ports and starts the media towards the centre's endpoint in `offer` (its address, or
    /// the control peer's when the offer leaves it unspecified).
    func start(
        _ offer: CallOffer, controlPeer: SocketAddress, deviceID: UInt32, on loop: any EventLoop,
        parameters: MediaLink.Parameters, outcome: @escaping (Outcome) -> Void
    ) {
        let remoteAddress: SocketAddress
        do {
            remoteAddress = try offer.media.rtpAddress(controlPeer: controlPeer)
        } catch {
            outcome(.failed("\(error)"))
            return
        }
        MediaLink.bind(host: remoteAddress.protocol == .inet6 ? "::" : "0.0.0.0", on: loop).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .failure(let error):
                outcome(.failed("cannot bind the media ports: \(error)"))
            case .success(let link):
                guard !ended else {
                    link.stop(reason: "ended before it started")
                    return
                }
                // An unspecified address: the centre sends to the address our frames come from.
                let local = MediaDescription(
                    endpoint: Endpoint(address: [UInt8](repeating: 0, count: remoteAddress.protocol == .inet6 ? 16 : 4), port: UInt16(link.port)),
                    audioPayloadType: 0, ssrc: UInt32.random(in: 1 ... .max), keyMaterial: SRTPMasterKey.randomKeyMaterial(),
                    videoPayloadType: 0)
                var voiceOnly = parameters
                voiceOnly.video = false
                do {
                    try link.start(
                        local: local, remote: offer.media, remoteAddress: remoteAddress, cname: "load-\(deviceID)",
                        parameters: voiceOnly
                    ) { [weak self] event in
                        guard let self, !self.ended else { return }
                        switch event {
                        case .heard: outcome(.heard)
                        case .silent: outcome(.silent)
                        case .peerLeft: break  // the centre's callEnd follows on the control link
                        }
                    }
                } catch {
                    link.stop(reason: "failed")
                    outcome(.failed("cannot start the media: \(error)"))
                    return
                }
                self.link = link
                outcome(.answered(local))
            }
        }
    }

    /// Stops the media (RTCP BYE) and returns its final numbers; `nil` if it never started. Once.
    func end(reason: String) -> MediaStatistics? {
        guard !ended else { return nil }
        ended = true
        defer { link = nil }
        return link?.stop(reason: reason)
    }
}
