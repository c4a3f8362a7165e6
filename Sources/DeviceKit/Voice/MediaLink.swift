import Foundation
import NIOCore
import NIOPosix

/// One side of a call's voice/video link on the wire: SRTP over UDP to the peer's RTP port, SRTCP to its
/// port + 1, in both directions. It sends 20 ms of synthetic µ-law voice every 20 ms (and the video stub at
/// its frame rate), receives and measures what the peer sends, reports every few seconds in RTCP, and
/// watches for silence. The packets, the timing and the statistics are the pure `MediaSender` and
/// `MediaReceiver`; this class owns the sockets and the timers.
///
/// Bound to one event loop: create it with `bind`, then call every method on `eventLoop` (each public one
/// asserts it: `@unchecked Sendable` only so that the loop's own closures may hold it).
public final class MediaLink: @unchecked Sendable {
    public enum Event: Hashable, Sendable {
        /// No authentic media from the peer for this long (since the start, or since the last packet).
        case silent(Duration)
        /// The peer said BYE in RTCP, with its reason.
        case peerLeft(String)
        /// The first authentic media from the peer arrived: the two sides hear each other from here on.
        case heard
    }

    public struct Parameters: Hashable, Sendable {
        /// Media silent this long is reported (`Event.silent`), once.
        public var silenceTimeout: Duration
        /// The RTCP report interval before randomisation (RFC 3550 §6.2: 5 s minimum; the first at half).
        public var reportInterval: Duration
        public var signal: SyntheticSignal
        /// Send the video stub when both sides give a video payload type.
        public var video: Bool
        /// The peer's SSRC is not in its description (SIP: SDP does not carry it); the first voice packet names it.
        public var learnsPeerSSRC = false
        /// A bridge's leg: no synthetic voice; what `relay(_:)` is given is sent at once, and every authentic
        /// voice packet received is handed to `onAudio`. When nothing was relayed for 200 ms (the other side
        /// is silent: a phone with voice activity detection, a gap in its network), µ-law silence goes out
        /// every 20 ms instead, so that the listener's link does not take the quiet for a dead call.
        public var relay = false
        /// A measurement mode: write the send time into each voice packet, and measure the delay of the peer's
        /// stamped voice (`VoiceStamp`; both ends on one machine). Clicks: never in a call with a person.
        public var stampVoice = false

        public init(silenceTimeout: Duration = .seconds(5), reportInterval: Duration = .seconds(5), signal: SyntheticSignal = .speechLike, video: Bool = true) {
            self.silenceTimeout = silenceTimeout
            self.reportInterval = reportInterval
            self.signal = signal
            self.video = video
        }
    }

    public let eventLoop: any EventLoop
    /// The RTP port; RTCP is on `port + 1`.
    public let port: Int
    private let rtpChannel: any Channel
    private let rtcpChannel: any Channel
    private let started = NIODeadline.now()
    private var sender: MediaSender?
    private var receiver: MediaReceiver?
    private var remoteRTP: SocketAddress?
    private var remoteRTCP: SocketAddress?
    private var parameters = Parameters()
    private var onEvent: (Event) -> Void = { _ in }
    /// Each authentic voice packet received, in arrival order: for the other leg of a bridge (`Parameters.relay`),
    /// or to record what a load run's device hears (`--record-calls`). Set it before `start`.
    public var onAudio: ((RTPPacket) -> Void)?
    private var generation = 0
    private var running = false
    private var stopped = false
    private var startedAt: Duration = .zero
    private var silenceReported = false
    private var stampedDelays = DelayHistogram()
    /// When `relay` last sent something, on the link's clock.
    private var lastRelayed: Duration = .zero
    private var byeReported = false
    /// Fault injection for tests and the load tool: the link stays up but sends no media (RTCP goes on,
    /// as receiver reports). Set with `setSendingPaused(_:)`, on the link's loop.
    public private(set) var sendingPaused = false

    public func setSendingPaused(_ paused: Bool) {
        eventLoop.preconditionInEventLoop()
        sendingPaused = paused
    }

    private init(eventLoop: any EventLoop, rtp: any Channel, rtcp: any Channel, port: Int) {
        self.eventLoop = eventLoop
        self.rtpChannel = rtp
        self.rtcpChannel = rtcp
        self.port = port
    }

    /// Binds an even RTP port and the RTCP port above it on `host` (system-chosen), as RFC 3550 §11 asks.
    public static func bind(host: String, on eventLoop: any EventLoop) -> EventLoopFuture<MediaLink> {
        eventLoop.flatSubmit {
            let rtpInbox = NIOLoopBound(DatagramInbox(), eventLoop: eventLoop)
            let rtcpInbox = NIOLoopBound(DatagramInbox(), eventLoop: eventLoop)
            return bindPair(host: host, on: eventLoop, rtpInbox: rtpInbox, rtcpInbox: rtcpInbox, attempt: 1).map { rtp, rtcp in
                let link = MediaLink(eventLoop: eventLoop, rtp: rtp, rtcp: rtcp, port: rtp.localAddress?.port ?? 0)
                rtpInbox.value.deliver = { [weak link] envelope in link?.rtpReceived(envelope) }
                rtcpInbox.value.deliver = { [weak link] envelope in link?.rtcpReceived(envelope) }
                return link
            }
        }
    }

    private static func bindPair(
        host: String, on loop: any EventLoop, rtpInbox: NIOLoopBound<DatagramInbox>, rtcpInbox: NIOLoopBound<DatagramInbox>, attempt: Int
    ) -> EventLoopFuture<(any Channel, any Channel)> {
        @Sendable func bootstrap(_ inbox: NIOLoopBound<DatagramInbox>) -> DatagramBootstrap {
            DatagramBootstrap(group: loop)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 2048))
                // A receive buffer for several seconds of voice and video (Linux doubles it, up to rmem_max):
                // a loop held up by a busy board (or a loaded test machine) loses nothing it can catch up on.
                .channelOption(.socketOption(.so_rcvbuf), value: 1 << 20)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(inbox.value) }
                }
        }
        @Sendable func retry(_ error: any Error) -> EventLoopFuture<(any Channel, any Channel)> {
            guard attempt < 32 else { return loop.makeFailedFuture(error) }
            return bindPair(host: host, on: loop, rtpInbox: rtpInbox, rtcpInbox: rtcpInbox, attempt: attempt + 1)
        }
        return bootstrap(rtpInbox).bind(host: host, port: 0).flatMap { rtp in
            let port = rtp.localAddress?.port ?? 1
            guard port % 2 == 0, port < 65_534 else {
                return rtp.close().flatMap { retry(MediaLinkError.noPortPair) }
            }
            return bootstrap(rtcpInbox).bind(host: host, port: port + 1).map { (rtp, $0) }.flatMapError { error in
                rtp.close().flatMap { retry(error) }
            }
        }
    }

    /// The local address of the RTP socket.
    public var rtpLocalAddress: SocketAddress? { rtpChannel.localAddress }

    /// The local monotonic clock.
    private var now: Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - started.uptimeNanoseconds)) }

    /// Starts the media both ways.
    /// - Parameters:
    ///   - local: this side's description (its SSRC and key material).
    ///   - remote: the peer's description; `remoteAddress` its resolved RTP address; RTCP goes to
    ///     `remoteRTCPAddress`, by default port + 1.
    ///   - cname: the RTCP CNAME, e.g. "device-1001@home".
    public func start(
        local: MediaDescription, remote: MediaDescription, remoteAddress: SocketAddress, remoteRTCPAddress: SocketAddress? = nil,
        cname: String, parameters: Parameters = Parameters(), onEvent: @escaping (Event) -> Void
    ) throws {
        eventLoop.preconditionInEventLoop()
        guard !stopped, !running else { throw MediaLinkError.alreadyStarted }
        var rtcpAddress = remoteAddress
        rtcpAddress.port = remoteAddress.port.map { $0 + 1 }
        if let remoteRTCPAddress { rtcpAddress = remoteRTCPAddress }
        sender = try MediaSender(
            local: local, sendVideo: parameters.video && remote.videoPayloadType != 0, signal: parameters.signal, cname: cname,
            initialSequence: UInt16.random(in: 0...0x7FFF), initialTimestamp: UInt32.random(in: .min ... .max))
        receiver = try MediaReceiver(remote: remote, localSSRC: local.ssrc, learnsSSRC: parameters.learnsPeerSSRC)
        remoteRTP = remoteAddress
        remoteRTCP = rtcpAddress
        self.parameters = parameters
        self.onEvent = onEvent
        running = true
        startedAt = now
        generation += 1
        let g = generation
        let origin = NIODeadline.now()
        if parameters.relay {
            lastRelayed = now
            fillSilence(generation: g)
        } else {
            sendAudio(generation: g, origin: origin, tick: 0)
        }
        if sender?.video != nil, let interval = sender?.video?.frameInterval {
            sendVideo(generation: g, origin: origin, tick: 0, interval: interval)
        }
        scheduleReport(generation: g, after: parameters.reportInterval / 2)
        scheduleSilenceCheck(generation: g)
    }

    /// The numbers so far (zero before `start`).
    public var statistics: MediaStatistics? {
        eventLoop.preconditionInEventLoop()
        guard let sender, let receiver else { return nil }
        var statistics = MediaStatistics(sender: sender, receiver: receiver)
        statistics.stampedDelay = stampedDelays.summary
        return statistics
    }

    /// Sends a last report with BYE, closes the sockets, and returns the final numbers.
    @discardableResult
    public func stop(reason: String) -> MediaStatistics? {
        eventLoop.preconditionInEventLoop()
        guard !stopped else { return statistics }
        stopped = true
        generation += 1
        let final = statistics
        if running, var sender, var receiver, let remoteRTCP,
            let bytes = try? sender.report(receiver: &receiver, ntp: Self.ntpNow(), now: now, bye: reason)
        {
            self.sender = sender
            self.receiver = receiver
            let rtp = rtpChannel
            let rtcp = rtcpChannel
            write(bytes, to: remoteRTCP, on: rtcp).whenComplete { _ in
                rtp.close(promise: nil)
                rtcp.close(promise: nil)
            }
        } else {
            rtpChannel.close(promise: nil)
            rtcpChannel.close(promise: nil)
        }
        running = false
        return final
    }

    /// Sends the other leg's voice now, as this leg's next packet (a bridge: no transcoding, both PCMU).
    public func relay(_ payload: [UInt8]) {
        eventLoop.preconditionInEventLoop()
        guard running, !sendingPaused, let remoteRTP, !payload.isEmpty, let bytes = try? sender?.relayedAudio(payload) else { return }
        lastRelayed = now
        write(bytes, to: remoteRTP, on: rtpChannel)
    }

    /// The relay's comfort silence: µ-law silence each 20 ms while nothing is relayed for 200 ms.
    private func fillSilence(generation g: Int) {
        eventLoop.scheduleTask(in: TimeAmount(AudioPacketizer.packetInterval)) { [self] in
            guard g == generation, running else { return }
            if now - lastRelayed >= .milliseconds(200), !sendingPaused, let remoteRTP,
                let bytes = try? sender?.relayedAudio([UInt8](repeating: 0xFF, count: AudioPacketizer.samplesPerPacket))
            {
                write(bytes, to: remoteRTP, on: rtpChannel)
            }
            fillSilence(generation: g)
        }
    }

    // MARK: Timers (fixed rate: packet n leaves at origin + n · 20 ms, whatever the loop's delays)

    private func sendAudio(generation g: Int, origin: NIODeadline, tick: Int64) {
        guard g == generation, running, let remoteRTP else { return }
        let interval = AudioPacketizer.packetInterval.nanoseconds
        var next = tick
        // Catch up at most five packets after a stall, as a capture buffer would.
        let due = (Int64(NIODeadline.now().uptimeNanoseconds) - Int64(origin.uptimeNanoseconds)) / interval
        next = max(next, due - 4)
        while next <= due {
            // Mutated in place (not copied out and back), so no copy-on-write of its buffers per packet.
            let stamp = parameters.stampVoice ? NIODeadline.now().uptimeNanoseconds : nil
            if !sendingPaused, let bytes = try? sender?.nextAudio(stamp: stamp) {
                write(bytes, to: remoteRTP, on: rtpChannel)
            }
            next += 1
        }
        let following = next
        eventLoop.scheduleTask(deadline: origin + .nanoseconds(following * interval)) { [self] in
            sendAudio(generation: g, origin: origin, tick: following)
        }
    }

    private func sendVideo(generation g: Int, origin: NIODeadline, tick: Int64, interval: Duration) {
        guard g == generation, running, let remoteRTP else { return }
        if !sendingPaused, let packets = try? sender?.nextVideoFrame() {
            for bytes in packets { write(bytes, to: remoteRTP, on: rtpChannel) }
        }
        eventLoop.scheduleTask(deadline: origin + .nanoseconds((tick + 1) * interval.nanoseconds)) { [self] in
            sendVideo(generation: g, origin: origin, tick: tick + 1, interval: interval)
        }
    }

    private func scheduleReport(generation g: Int, after: Duration) {
        // RFC 3550 §6.3.1: randomised over [0.5, 1.5] of the interval, so that peers do not report in step.
        let jittered = after * Double.random(in: 0.5...1.5)
        eventLoop.scheduleTask(in: TimeAmount(jittered)) { [self] in
            guard g == generation, running, var sender, var receiver, let remoteRTCP else { return }
            if let bytes = try? sender.report(receiver: &receiver, ntp: Self.ntpNow(), now: now) {
                self.sender = sender
                self.receiver = receiver
                write(bytes, to: remoteRTCP, on: rtcpChannel)
            }
            scheduleReport(generation: g, after: parameters.reportInterval)
        }
    }

    private func scheduleSilenceCheck(generation g: Int) {
        let period = min(parameters.silenceTimeout / 4, .milliseconds(250))
        eventLoop.scheduleTask(in: TimeAmount(period)) { [self] in
            guard g == generation, running else { return }
            let heard = receiver?.lastHeard ?? startedAt
            let quiet = now - heard
            if quiet >= parameters.silenceTimeout {
                if !silenceReported {
                    silenceReported = true
                    onEvent(.silent(quiet))
                }
            } else {
                silenceReported = false
            }
            scheduleSilenceCheck(generation: g)
        }
    }

    // MARK: I/O

    @discardableResult
    private func write(_ bytes: [UInt8], to address: SocketAddress, on channel: any Channel) -> EventLoopFuture<Void> {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: buffer))
    }

    fileprivate func rtpReceived(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard running else { return }
        let heardBefore = receiver?.lastHeard != nil
        let outcome = receiver?.rtpDatagram(Array(buffer: envelope.data), arrival: now)
        if !heardBefore, receiver?.lastHeard != nil { onEvent(.heard) }
        if case .audio(let packet)? = outcome {
            if parameters.stampVoice, let sent = VoiceStamp.read(packet.payload) {
                let arrived = NIODeadline.now().uptimeNanoseconds
                if arrived >= sent { stampedDelays.record(nanoseconds: arrived - sent) }
            }
            onAudio?(packet)
        }
    }

    fileprivate func rtcpReceived(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard running, receiver != nil else { return }
        let hadBye = receiver?.peerBye != nil
        receiver?.rtcpDatagram(Array(buffer: envelope.data), arrival: now, ntp: Self.ntpNow())
        if !hadBye, let reason = receiver?.peerBye, !byeReported {
            byeReported = true
            onEvent(.peerLeft(reason))
        }
    }

    /// The wall clock in NTP format: seconds since 1900 in the upper 32 bits, the fraction in the lower.
    static func ntpNow() -> UInt64 {
        let unix = Date().timeIntervalSince1970
        let seconds = unix + 2_208_988_800
        return UInt64(seconds) << 32 | UInt64((seconds - seconds.rounded(.down)) * 4_294_967_296)
    }
}

/// Hands datagrams to the link once it exists (the sockets are bound before it is); bound to the link's loop
/// (`NIOLoopBound`), where both its channel and `bind` touch it.
private final class DatagramInbox: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    var deliver: ((AddressedEnvelope<ByteBuffer>) -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deliver?(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable and the like: the peer is not there (yet); silence detection reports it.
    }
}

public enum MediaLinkError: Error, Hashable, Sendable, CustomStringConvertible {
    case noPortPair
    case alreadyStarted
    case unusableEndpoint(String)

    public var description: String {
        switch self {
        case .noPortPair: "could not bind an even RTP port with a free RTCP port above it"
        case .alreadyStarted: "the media link is already started or stopped"
        case .unusableEndpoint(let why): "the peer's media endpoint cannot be used: \(why)"
        }
    }
}

extension MediaDescription {
    /// The RTP address to send to: the endpoint, or, when its address is unspecified (0.0.0.0 or ::), the
    /// address the control connection's peer has (protocol.md §4.8).
    public func rtpAddress(controlPeer: SocketAddress?) throws -> SocketAddress {
        let unspecified = endpoint.address.allSatisfy { $0 == 0 }
        // RTCP goes to port + 1, so 65535 cannot be an RTP port.
        guard endpoint.port != 0, endpoint.port != .max else { throw MediaLinkError.unusableEndpoint("port \(endpoint.port)") }
        if unspecified {
            guard let ip = controlPeer?.ipAddress else { throw MediaLinkError.unusableEndpoint("unspecified address and no control peer") }
            return try SocketAddress(ipAddress: ip, port: Int(endpoint.port))
        }
        guard endpoint.address.count == 4 || endpoint.address.count == 16 else {
            throw MediaLinkError.unusableEndpoint("address of \(endpoint.address.count) bytes")
        }
        let text = endpoint.description
        let host = String(text[..<(text.lastIndex(of: ":") ?? text.endIndex)]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return try SocketAddress(ipAddress: host, port: Int(endpoint.port))
    }
}

extension Endpoint {
    /// The endpoint of a bound socket address.
    public init?(_ address: SocketAddress) {
        guard let port = address.port else { return nil }
        switch address {
        case .v4(let v4):
            var a = v4.address.sin_addr.s_addr  // already in network order
            self.init(address: withUnsafeBytes(of: &a) { Array($0) }, port: UInt16(port))
        case .v6(let v6):
            var a = v6.address.sin6_addr
            self.init(address: withUnsafeBytes(of: &a) { Array($0) }, port: UInt16(port))
        case .unixDomainSocket:
            return nil
        }
    }
}
