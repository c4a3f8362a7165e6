import NIOCore

/// The media a device's `CallMachine` asks for, set up the same way by every driver of a device (the
/// firmware's and the load tester's): ports bound towards the centre's offer, this side's description as
/// the centre will see it, and the media started.
enum CallMedia {
    /// Binds media ports for `offer` and describes them: our address as the centre sees it (`localAddress`,
    /// the control connection's, or unspecified, and the centre then uses the address our frames come from),
    /// fresh SRTP keys, video only when `video` and offered.
    static func bind(
        for offer: CallOffer, controlPeer: SocketAddress, localAddress: SocketAddress?, video: Bool, on loop: any EventLoop
    ) -> EventLoopFuture<(MediaLink, MediaDescription)> {
        let remote: SocketAddress
        do {
            remote = try offer.media.rtpAddress(controlPeer: controlPeer)
            _ = try SRTPMasterKey(keyMaterial: offer.media.keyMaterial)
        } catch {
            return loop.makeFailedFuture(error)
        }
        return MediaLink.bind(host: remote.protocol == .inet6 ? "::" : "0.0.0.0", on: loop).map { link in
            var address = [UInt8](repeating: 0, count: remote.protocol == .inet6 ? 16 : 4)
            if let local = localAddress.flatMap(Endpoint.init), local.address.count == address.count { address = local.address }
            let local = MediaDescription(
                endpoint: Endpoint(address: address, port: UInt16(link.port)), audioPayloadType: 0,
                ssrc: UInt32.random(in: 1 ... .max), keyMaterial: SRTPMasterKey.randomKeyMaterial(),
                videoPayloadType: video ? offer.media.videoPayloadType : 0)
            return (link, local)
        }
    }

    /// Starts `link`'s media towards the centre's `remote` description.
    static func start(
        _ link: MediaLink, local: MediaDescription, remote: MediaDescription, controlPeer: SocketAddress, cname: String,
        parameters: MediaLink.Parameters, events: @escaping (MediaLink.Event) -> Void
    ) throws {
        var parameters = parameters
        parameters.video = parameters.video && local.videoPayloadType != 0
        try link.start(
            local: local, remote: remote, remoteAddress: try remote.rtpAddress(controlPeer: controlPeer), cname: cname,
            parameters: parameters, onEvent: events)
    }
}
