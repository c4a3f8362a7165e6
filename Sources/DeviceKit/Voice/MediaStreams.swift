import Foundation

/// The sending half of a call's media, pure: voice every 20 ms, the optional video stub, and RTCP sender
/// reports, all protected with SRTP/SRTCP under this side's master key, or plain RTP/RTCP when this side's
/// description has no key material (a SIP peer that offered `RTP/AVP`, protocol.md §8). The owner calls it on
/// its timers.
///
/// The voice stream has the SSRC of this side's `MediaDescription`; the video stub stream the SSRC + 1,
/// with its own sequence numbers and 90 kHz timestamps, as RTP requires of a second source.
public struct MediaSender: Sendable {
    public private(set) var audio: AudioPacketizer
    public private(set) var video: VideoPacketizer?
    /// Nil: plain RTP.
    private var srtp: SRTPSender?
    public let cname: String
    /// Voice packets sent at the previous report: a side that sent nothing since reports with RR, not SR.
    private var packetsAtLastReport: UInt32?

    /// - Parameters:
    ///   - local: this side's description (SSRC, key material, payload types).
    ///   - sendVideo: whether to send the video stub (both sides offered a video payload type).
    ///   - initialSequence, initialTimestamp: random, drawn by the owner (RFC 3550 §5.1).
    public init(
        local: MediaDescription, sendVideo: Bool, signal: SyntheticSignal = .speechLike, cname: String,
        initialSequence: UInt16, initialTimestamp: UInt32
    ) throws(SRTPError) {
        srtp = local.keyMaterial.isEmpty ? nil : try SRTPSender(master: SRTPMasterKey(keyMaterial: local.keyMaterial))
        audio = AudioPacketizer(
            ssrc: local.ssrc, payloadType: local.audioPayloadType, signal: signal, initialSequence: initialSequence,
            initialTimestamp: initialTimestamp)
        video = sendVideo && local.videoPayloadType != 0
            ? VideoPacketizer(
                ssrc: local.ssrc &+ 1, payloadType: local.videoPayloadType, initialSequence: initialSequence &+ 0x4000,
                initialTimestamp: initialTimestamp &* 11)
            : nil
        self.cname = cname
    }

    /// The next 20 ms of voice as an SRTP (or plain RTP) datagram; with `stamp`, its send time written into
    /// the voice (`VoiceStamp`).
    public mutating func nextAudio(stamp: UInt64? = nil) throws(SRTPError) -> [UInt8] {
        var packet = audio.next()
        if let stamp { VoiceStamp.write(stamp, into: &packet.payload) }
        return try protect(packet.bytes)
    }

    /// The other leg's voice (`payload`) as our next SRTP (or RTP) datagram: a bridge's relay.
    public mutating func relayedAudio(_ payload: [UInt8]) throws(SRTPError) -> [UInt8] {
        try protect(audio.packet(relaying: payload).bytes)
    }

    private mutating func protect(_ packet: [UInt8]) throws(SRTPError) -> [UInt8] {
        guard srtp != nil else { return packet }
        return try srtp!.protect(packet)
    }

    /// The next video frame as SRTP datagrams (empty without video).
    public mutating func nextVideoFrame() throws(SRTPError) -> [[UInt8]] {
        guard var stream = video else { return [] }
        let packets = stream.nextFrame()
        video = stream
        var out: [[UInt8]] = []
        for packet in packets { out.append(try protect(packet.bytes)) }
        return out
    }

    /// One SRTCP compound packet: SR for the voice (RR if nothing was sent since the last report, RFC 3550
    /// §6.4), with report blocks about what we receive, SDES CNAME, and BYE when `bye` is given.
    /// - Parameters:
    ///   - ntp: the wall clock now, in NTP format; `now`: the owner's monotonic clock, for DLSR.
    public mutating func report(receiver: inout MediaReceiver, ntp: UInt64, now: Duration, bye: String? = nil) throws(SRTPError) -> [UInt8] {
        let blocks = receiver.reportBlocks(now: now)
        let sent = packetsAtLastReport.map { $0 != audio.packetCount } ?? (audio.packetCount > 0)
        packetsAtLastReport = audio.packetCount
        var packets: [RTCPPacket] = [
            sent
                ? .senderReport(
                    .init(
                        ssrc: audio.ssrc, ntpTimestamp: ntp, rtpTimestamp: audio.timestamp, packetCount: audio.packetCount,
                        octetCount: audio.octetCount, reports: blocks))
                : .receiverReport(ssrc: audio.ssrc, reports: blocks),
            .sourceDescription(ssrc: audio.ssrc, cname: cname),
        ]
        if let bye {
            packets.append(.bye(ssrcs: [audio.ssrc] + (video.map { [$0.ssrc] } ?? []), reason: bye))
        }
        let compound = RTCPPacket.compound(packets)
        guard srtp != nil else { return compound }
        return try srtp!.protectRTCP(compound)
    }
}

/// The receiving half of a call's media, pure: SRTP check and decryption, RTP parsing, statistics per
/// source, RTCP from the peer (its view of our stream, round-trip time, BYE). Anything that is not an
/// authentic packet of the peer is counted and dropped; nothing in a datagram can make it fail.
public struct MediaReceiver: Sendable {
    public private(set) var remote: MediaDescription
    /// The peer's SSRC is not known yet: SDP does not carry it (protocol.md §8), so the first authentic voice
    /// packet of the announced payload type names it (RFC 3550 §8.2 lets a receiver take a new source).
    private var learnsSSRC: Bool
    private var srtp: SRTPReceiver?
    public private(set) var audio: ReceiverStatistics
    public private(set) var video: ReceiverStatistics
    /// Datagrams that were not RTP (too short, wrong version, bad lengths).
    public private(set) var malformed: UInt64 = 0
    /// SRTP packets whose tag did not match: forged, damaged, or under another key.
    public private(set) var authenticationFailures: UInt64 = 0
    /// SRTP packets with an index already seen.
    public private(set) var replayed: UInt64 = 0
    /// Authentic packets of an SSRC or payload type the call did not announce.
    public private(set) var unknownSource: UInt64 = 0
    public private(set) var rtcpReceived: UInt64 = 0
    public private(set) var rtcpRefused: UInt64 = 0
    /// When the last authentic RTP packet arrived (the owner's monotonic clock).
    public private(set) var lastHeard: Duration?
    /// What the peer last reported about our voice stream, and the round-trip time it allowed.
    public private(set) var peerReport: RTCPPacket.ReportBlock?
    public private(set) var roundTrip: Duration?
    /// The peer sent BYE, with its reason.
    public private(set) var peerBye: String?
    private var lastSenderReport: (middle: UInt32, at: Duration)?
    private var localSSRC: UInt32

    /// - Parameters:
    ///   - remote: the peer's description (its SSRC, key material, payload types).
    ///   - localSSRC: our voice SSRC, to find the peer's report about it.
    ///   - protected: false for plain RTP (a peer's description without key material is always plain).
    ///   - learnsSSRC: the description's SSRC is unknown (a SIP peer): take the first voice packet's.
    public init(remote: MediaDescription, localSSRC: UInt32, protected: Bool = true, learnsSSRC: Bool = false) throws(SRTPError) {
        let protected = protected && !remote.keyMaterial.isEmpty
        self.remote = remote
        self.learnsSSRC = learnsSSRC
        self.localSSRC = localSSRC
        srtp = protected ? try SRTPReceiver(master: SRTPMasterKey(keyMaterial: remote.keyMaterial)) : nil
        audio = ReceiverStatistics(clockRate: AudioPacketizer.clockRate)
        video = ReceiverStatistics(clockRate: VideoPacketizer.clockRate)
    }

    public enum Outcome: Hashable, Sendable {
        case audio(RTPPacket)
        case video(RTPPacket)
        case refused(String)
    }

    /// A datagram arrived on the RTP port at `arrival` (the owner's monotonic clock).
    @discardableResult
    public mutating func rtpDatagram(_ bytes: [UInt8], arrival: Duration) -> Outcome {
        var plain = bytes
        if var srtp {
            do throws(SRTPError) {
                plain = try srtp.unprotect(bytes)
                self.srtp = srtp
            } catch {
                switch error {
                case .authenticationFailed: authenticationFailures += 1
                case .replayed: replayed += 1
                case .tooShort, .notRTP, .notRTCP, .badKeyMaterial, .cipherFailed, .notEncrypted:
                    malformed += 1
                    audio.malformedReceived()
                }
                return .refused(error.description)
            }
        }
        let packet: RTPPacket
        do throws(RTPError) {
            packet = try RTPPacket(bytes: plain)
        } catch {
            malformed += 1
            audio.malformedReceived()
            return .refused(error.description)
        }
        if learnsSSRC, packet.payloadType == remote.audioPayloadType {
            remote.ssrc = packet.ssrc
            learnsSSRC = false
        }
        if packet.ssrc == remote.ssrc, packet.payloadType == remote.audioPayloadType {
            lastHeard = arrival
            audio.received(
                sequence: packet.sequenceNumber, timestamp: packet.timestamp, arrival: audio.arrivalUnits(arrival),
                payloadBytes: packet.payload.count)
            return .audio(packet)
        }
        if remote.videoPayloadType != 0, packet.ssrc == remote.ssrc &+ 1, packet.payloadType == remote.videoPayloadType {
            lastHeard = arrival
            video.received(
                sequence: packet.sequenceNumber, timestamp: packet.timestamp, arrival: video.arrivalUnits(arrival),
                payloadBytes: packet.payload.count)
            return .video(packet)
        }
        unknownSource += 1
        return .refused("SSRC \(packet.ssrc) payload type \(packet.payloadType) not announced for this call")
    }

    /// A datagram arrived on the RTCP port. Returns the packets, or `nil` if refused (and counted).
    /// - Parameters: `ntp`: the wall clock at arrival in NTP format, for the round-trip time.
    @discardableResult
    public mutating func rtcpDatagram(_ bytes: [UInt8], arrival: Duration, ntp: UInt64) -> [RTCPPacket]? {
        var plain = bytes
        if var srtp {
            do throws(SRTPError) {
                plain = try srtp.unprotectRTCP(bytes)
                self.srtp = srtp
            } catch {
                rtcpRefused += 1
                return nil
            }
        }
        let packets: [RTCPPacket]
        do throws(RTCPError) {
            packets = try RTCPPacket.parseCompound(plain)
        } catch {
            rtcpRefused += 1
            return nil
        }
        rtcpReceived += 1
        for packet in packets {
            switch packet {
            case .senderReport(let sr):
                guard sr.ssrc == remote.ssrc else { continue }
                lastSenderReport = (UInt32(truncatingIfNeeded: sr.ntpTimestamp >> 16), arrival)
                peerReported(sr.reports, ntp: ntp)
            case .receiverReport(let ssrc, let reports):
                guard ssrc == remote.ssrc else { continue }
                peerReported(reports, ntp: ntp)
            case .bye(let ssrcs, let reason):
                if ssrcs.contains(remote.ssrc) { peerBye = reason ?? "" }
            case .sourceDescription, .other:
                break
            }
        }
        return packets
    }

    private mutating func peerReported(_ reports: [RTCPPacket.ReportBlock], ntp: UInt64) {
        guard let block = reports.first(where: { $0.ssrc == localSSRC }) else { return }
        peerReport = block
        // RFC 3550 §6.4.1: round trip = A − LSR − DLSR, in 1/65536 s.
        guard block.lastSenderReport != 0 else { return }
        let a = UInt32(truncatingIfNeeded: ntp >> 16)
        let rtt = a &- block.lastSenderReport &- block.delaySinceLastSenderReport
        if rtt < 0x8000_0000 { roundTrip = .microseconds(Int64(rtt) * 1_000_000 / 65536) }
    }

    /// Report blocks about the peer's streams, closing the fraction-lost interval of each.
    mutating func reportBlocks(now: Duration) -> [RTCPPacket.ReportBlock] {
        var blocks: [RTCPPacket.ReportBlock] = []
        let (lsr, dlsr): (UInt32, UInt32) = lastSenderReport.map {
            ($0.middle, UInt32(clamping: Int64(max(0, min((now - $0.at).seconds, 65_535)) * 65536)))
        } ?? (0, 0)
        if audio.expected > 0 {
            let fraction = audio.closeInterval()
            blocks.append(
                .init(
                    ssrc: remote.ssrc, fractionLost: fraction, cumulativeLost: audio.cumulativeLost,
                    extendedHighestSequence: audio.extendedHighestSequence, jitter: audio.reportedJitter,
                    lastSenderReport: lsr, delaySinceLastSenderReport: dlsr))
        }
        if video.expected > 0 {
            let fraction = video.closeInterval()
            blocks.append(
                .init(
                    ssrc: remote.ssrc &+ 1, fractionLost: fraction, cumulativeLost: video.cumulativeLost,
                    extendedHighestSequence: video.extendedHighestSequence, jitter: video.reportedJitter,
                    lastSenderReport: 0, delaySinceLastSenderReport: 0))
        }
        return blocks
    }
}

/// A call's media numbers at one moment: what we sent, what we received and how, what the peer reported.
/// For the console, the demo and the load report (issue 6).
public struct MediaStatistics: Hashable, Sendable, Codable {
    public var audioPacketsSent: UInt32
    public var audioOctetsSent: UInt32
    public var videoPacketsSent: UInt32
    public var audio: StreamStatistics
    public var video: StreamStatistics
    public var malformed: UInt64
    public var authenticationFailures: UInt64
    public var replayed: UInt64
    public var unknownSource: UInt64
    public var rtcpReceived: UInt64
    public var rtcpRefused: UInt64
    /// The peer's last report about our voice: its fraction lost (of 256), cumulative lost, jitter in ms.
    public var peerFractionLost: UInt8?
    public var peerCumulativeLost: Int32?
    public var peerJitterMilliseconds: Double?
    public var roundTripMilliseconds: Double?
    /// Bytes of one voice datagram on the wire (RTP header + 160 bytes + SRTP tag), without UDP/IP.
    public var audioDatagramBytes: Int
    /// The one-way delay of the peer's stamped voice (`MediaLink.Parameters.stampVoice`), when it stamps.
    public var stampedDelay: StampedDelay?

    public init(sender: MediaSender, receiver: MediaReceiver) {
        audioPacketsSent = sender.audio.packetCount
        audioOctetsSent = sender.audio.octetCount
        videoPacketsSent = sender.video?.packetCount ?? 0
        audio = receiver.audio.snapshot
        video = receiver.video.snapshot
        malformed = receiver.malformed
        authenticationFailures = receiver.authenticationFailures
        replayed = receiver.replayed
        unknownSource = receiver.unknownSource
        rtcpReceived = receiver.rtcpReceived
        rtcpRefused = receiver.rtcpRefused
        peerFractionLost = receiver.peerReport?.fractionLost
        peerCumulativeLost = receiver.peerReport?.cumulativeLost
        peerJitterMilliseconds = receiver.peerReport.map { Double($0.jitter) * 1000 / Double(AudioPacketizer.clockRate) }
        roundTripMilliseconds = receiver.roundTrip.map { Double($0.nanoseconds) / 1e6 }
        audioDatagramBytes = RTPPacket.fixedHeaderLength + AudioPacketizer.samplesPerPacket + SRTP.rtpOverhead
    }

    /// One line for the console and the demo.
    public var summary: String {
        func ms(_ v: Double) -> String { String(format: "%.2f ms", v) }
        var text = "voice sent \(audioPacketsSent) pkts; received \(audio.received)/\(audio.expected), lost \(audio.cumulativeLost)"
            + " (\(String(format: "%.2f", audio.lossRatio * 100)) %), jitter \(ms(audio.jitterMilliseconds))"
            + ", out of order \(audio.outOfOrder), late \(audio.late), duplicates \(audio.duplicates)"
        if video.received > 0 || videoPacketsSent > 0 {
            text += "; video sent \(videoPacketsSent), received \(video.received)/\(video.expected) lost \(video.cumulativeLost)"
        }
        text += "; malformed \(malformed), forged \(authenticationFailures), replayed \(replayed)"
        if let rtt = roundTripMilliseconds { text += ", RTT \(ms(rtt))" }
        return text
    }
}
