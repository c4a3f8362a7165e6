import NIOCore

/// A SIP phone: a `SIPEndpoint` whose calls carry media (protocol.md §8). For each call it binds a
/// `MediaLink`, describes it in SDP (offer or answer, SRTP by policy), starts the media once the peer's
/// description is agreed, and stops it when the call ends, reporting the call's set-up time and RTP
/// statistics. It is what `devicesim sip call|answer` runs, and the leg a centre opens to an operator's phone.
///
/// Bound to one event loop: call every method on `eventLoop` (`@unchecked Sendable` as `SIPEndpoint`).
public final class SIPPhone: @unchecked Sendable {
    public struct Options: Sendable {
        public var srtp: SRTPPolicy
        /// Incoming calls: answer after ringing this long (180 first when more than zero), or refuse them
        /// all with `rejectWith` (486, 603, …).
        public var answerAfter: Duration
        public var rejectWith: Int?
        public var media: MediaLink.Parameters
        public var cname: String
        /// Incoming calls: asked for each (on the phone's loop) with the caller's URI and the address its
        /// INVITE came from; nil answers it, a status refuses it. Without it, `rejectWith` decides for all.
        public var screen: (@Sendable (_ call: SIPCallHandle, _ from: String, _ source: SIPTarget?) -> Int?)?

        public init(
            srtp: SRTPPolicy = .optional, answerAfter: Duration = .zero, rejectWith: Int? = nil,
            media: MediaLink.Parameters = MediaLink.Parameters(video: false), cname: String = "devicesim@sip",
            screen: (@Sendable (_ call: SIPCallHandle, _ from: String, _ source: SIPTarget?) -> Int?)? = nil
        ) {
            self.srtp = srtp
            self.answerAfter = answerAfter
            self.rejectWith = rejectWith
            self.screen = screen
            var media = media
            media.video = false
            media.learnsPeerSSRC = true
            self.media = media
            self.cname = cname
        }
    }

    /// One call, when it ended.
    public struct CallReport: Hashable, Sendable {
        public enum Direction: String, Hashable, Sendable { case outgoing, incoming }
        public var call: SIPCallHandle
        public var direction: Direction
        public var end: SIPUserAgent.CallEnd
        /// INVITE sent → 2xx received (outgoing); INVITE received → ACK received (incoming).
        public var setupTime: Duration?
        /// From the media's start to the call's end.
        public var mediaDuration: Duration?
        public var srtp: Bool
        public var statistics: MediaStatistics?
    }

    public enum Event: Hashable, Sendable {
        case incoming(SIPCallHandle, from: String)
        case answered(SIPCallHandle, setupTime: Duration)
        case mediaHeard(SIPCallHandle)
        case mediaSilent(SIPCallHandle)
        case ended(CallReport)
        case registered(expires: Int)
        case registrationFailed(String)
        case refused(String)
    }

    private struct Call {
        var direction: CallReport.Direction
        var began: NIODeadline
        var link: MediaLink?
        var offer: SessionDescription?
        var localKey: SRTPMasterKey?
        var setupTime: Duration?
        var mediaStarted: NIODeadline?
        var srtp = false
        var ending = false
    }

    public let eventLoop: any EventLoop
    public private(set) var endpoint: SIPEndpoint!
    private let options: Options
    private let onEvent: (Event) -> Void
    private var calls: [SIPCallHandle: Call] = [:]

    private init(eventLoop: any EventLoop, options: Options, onEvent: @escaping (Event) -> Void) {
        self.eventLoop = eventLoop
        self.options = options
        self.onEvent = onEvent
    }

    public static func start(
        _ configuration: SIPEndpoint.Configuration, userAgent: SIPUserAgent.Configuration, options: Options = Options(),
        on loop: any EventLoop, onEvent: @escaping (Event) -> Void
    ) async throws -> SIPPhone {
        let phone = SIPPhone(eventLoop: loop, options: options, onEvent: onEvent)
        let endpoint = try await SIPEndpoint.start(configuration, userAgent: userAgent, on: loop) { [weak phone] event in
            phone?.endpointEvent(event)
        }
        try await loop.submit { phone.endpoint = endpoint }.get()
        return phone
    }

    /// Hangs up every call and stops, after the answers to those hang-ups (at most `grace`).
    @discardableResult
    public func stop(grace: Duration = .zero) -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        for handle in Array(calls.keys) { endpoint.hangUp(handle) }
        for call in calls.values { call.link?.stop(reason: "shutdown") }
        calls.removeAll()
        return endpoint.stop(grace: grace)
    }

    public var callCount: Int { calls.count }

    /// Places a call to `uri` at `target`: media ports are bound and offered first; the future gives the
    /// call's handle once the INVITE is out.
    public func call(to uri: SIPURI, target: SIPTarget) -> EventLoopFuture<SIPCallHandle> {
        eventLoop.preconditionInEventLoop()
        let began = NIODeadline.now()
        return MediaLink.bind(host: bindHost, on: eventLoop).map { [self] link in
            let key = options.srtp == .off ? nil : try? SRTPMasterKey(keyMaterial: SRTPMasterKey.randomKeyMaterial())
            let offer = SDPMediaOffer.offer(
                address: endpoint.mediaHost, port: link.port, sessionID: UInt64.random(in: 1 ... 1 << 40), srtp: key,
                bestEffort: options.srtp == .optional)
            let handle = endpoint.call(to: uri, target: target, offer: Array(offer.serialized.utf8))
            calls[handle] = Call(direction: .outgoing, began: began, link: link, offer: offer, localKey: key)
            return handle
        }
    }

    public func hangUp(_ call: SIPCallHandle) {
        eventLoop.preconditionInEventLoop()
        endpoint.hangUp(call)
    }

    /// The media link of a call (bound, not necessarily started): a bridge joins it to another leg.
    public func link(_ call: SIPCallHandle) -> MediaLink? { calls[call]?.link }

    /// Statistics of a call's media so far.
    public func statistics(_ call: SIPCallHandle) -> MediaStatistics? { calls[call]?.link?.statistics }

    // MARK: The endpoint's events

    private func endpointEvent(_ event: SIPUserAgent.Event) {
        switch event {
        case .incomingCall(let handle, let from, let offer):
            incoming(handle, from: from, offer: offer)
        case .progress:
            break
        case .answered(let handle, let answer):
            answered(handle, answer: answer)
        case .confirmed(let handle):
            if let call = calls[handle], call.setupTime == nil { calls[handle]?.setupTime = .nanoseconds((NIODeadline.now() - call.began).nanoseconds) }
        case .ended(let handle, let end):
            ended(handle, end)
        case .registered(let expires):
            onEvent(.registered(expires: expires))
        case .registrationFailed(let why):
            onEvent(.registrationFailed(why))
        case .refused(let why):
            onEvent(.refused(why))
        }
    }

    private func incoming(_ handle: SIPCallHandle, from: SIPNameAddress, offer body: [UInt8]) {
        onEvent(.incoming(handle, from: from.uri.description))
        if let code = options.screen.map({ $0(handle, from.uri.description, endpoint.flow(of: handle)) }) ?? options.rejectWith {
            calls[handle] = Call(direction: .incoming, began: .now())  // so that its end is reported
            endpoint.reject(handle, statusCode: code)
            return
        }
        let offer: SessionDescription
        calls[handle] = Call(direction: .incoming, began: .now())
        do { offer = try SessionDescription(parsing: body) } catch {
            onEvent(.refused("the offer of \(handle) cannot be read: \(error)"))
            endpoint.reject(handle, statusCode: body.isEmpty ? 488 : 400)
            return
        }
        if options.answerAfter > .zero { endpoint.ring(handle) }
        MediaLink.bind(host: bindHost, on: eventLoop).whenComplete { [self] result in
            guard let call = calls[handle], !call.ending else {
                if case .success(let link) = result { link.stop(reason: "call gone") }
                return
            }
            switch result {
            case .failure(let error):
                onEvent(.refused("no media ports for \(handle): \(error)"))
                endpoint.reject(handle, statusCode: 500)
            case .success(let link):
                calls[handle]?.link = link
                do {
                    let key = try SRTPMasterKey(keyMaterial: SRTPMasterKey.randomKeyMaterial())
                    let (answer, audio) = try SDPMediaOffer.answer(
                        to: offer, address: endpoint.mediaHost, port: link.port, sessionID: UInt64.random(in: 1 ... 1 << 40),
                        localKey: key, policy: options.srtp)
                    let send = { [self] in
                        guard calls[handle] != nil else { return }
                        endpoint.answer(handle, with: Array(answer.serialized.utf8))
                        startMedia(handle, audio)
                    }
                    if options.answerAfter > .zero {
                        eventLoop.scheduleTask(in: TimeAmount(options.answerAfter)) { send() }
                    } else {
                        send()
                    }
                } catch {
                    onEvent(.refused("the offer of \(handle) cannot be answered: \(error)"))
                    endpoint.reject(handle, statusCode: 488)
                }
            }
        }
    }

    private func answered(_ handle: SIPCallHandle, answer body: [UInt8]) {
        guard let call = calls[handle], let offer = call.offer else { return }
        let setup = Duration.nanoseconds((NIODeadline.now() - call.began).nanoseconds)
        calls[handle]?.setupTime = setup
        onEvent(.answered(handle, setupTime: setup))
        do {
            let answer = try SessionDescription(parsing: body)
            startMedia(handle, try SDPMediaOffer.accept(answer: answer, to: offer))
        } catch {
            onEvent(.refused("the answer of \(handle) cannot be used: \(error)"))
            calls[handle]?.ending = true
            endpoint.hangUp(handle)
        }
    }

    private func startMedia(_ handle: SIPCallHandle, _ audio: NegotiatedAudio) {
        guard let call = calls[handle], let link = call.link else { return }
        do {
            let local = MediaDescription(
                endpoint: Endpoint(address: [0, 0, 0, 0], port: UInt16(link.port)), audioPayloadType: audio.payloadType,
                ssrc: UInt32.random(in: 1 ... .max), keyMaterial: audio.localKey ?? [], videoPayloadType: 0)
            let remote = MediaDescription(
                endpoint: Endpoint(address: [0, 0, 0, 0], port: UInt16(audio.remoteRTPPort)), audioPayloadType: audio.payloadType,
                ssrc: 0, keyMaterial: audio.remoteKey ?? [], videoPayloadType: 0)
            let rtp = try SocketAddress(ipAddress: audio.remoteAddress, port: audio.remoteRTPPort)
            let rtcp = try SocketAddress(ipAddress: audio.remoteAddress, port: audio.remoteRTCPPort)
            try link.start(local: local, remote: remote, remoteAddress: rtp, remoteRTCPAddress: rtcp, cname: options.cname, parameters: options.media) {
                [weak self] event in self?.mediaEvent(handle, event)
            }
            calls[handle]?.mediaStarted = .now()
            calls[handle]?.srtp = audio.isSecure
        } catch {
            onEvent(.refused("the media of \(handle) cannot start: \(error)"))
            calls[handle]?.ending = true
            endpoint.hangUp(handle)
        }
    }

    private func mediaEvent(_ handle: SIPCallHandle, _ event: MediaLink.Event) {
        switch event {
        case .heard: onEvent(.mediaHeard(handle))
        case .silent: onEvent(.mediaSilent(handle))
        case .peerLeft: break
        }
    }

    private func ended(_ handle: SIPCallHandle, _ end: SIPUserAgent.CallEnd) {
        guard let call = calls.removeValue(forKey: handle) else { return }
        let statistics = call.link?.stop(reason: "call ended")
        let mediaDuration = call.mediaStarted.map { Duration.nanoseconds((NIODeadline.now() - $0).nanoseconds) }
        onEvent(.ended(CallReport(
            call: handle, direction: call.direction, end: end, setupTime: call.setupTime, mediaDuration: mediaDuration,
            srtp: call.srtp, statistics: call.mediaStarted == nil ? nil : statistics)))
    }

    private var bindHost: String { endpoint.mediaHost.contains(":") ? "::" : "0.0.0.0" }
}
