import Testing

@testable import DeviceKit

/// The pure halves of a call's media talking to each other without sockets: SRTP voice and video, RTCP
/// sender and receiver reports, the peer's view of our stream and the round-trip time (RFC 3550 §6.4.1).
@Suite struct MediaStreamsTests {
    static func description(ssrc: UInt32) -> MediaDescription {
        MediaDescription(
            endpoint: Endpoint(address: [127, 0, 0, 1], port: 40_000), audioPayloadType: 0, ssrc: ssrc,
            keyMaterial: SRTPMasterKey.randomKeyMaterial(), videoPayloadType: 96)
    }

    /// NTP time `seconds` after an arbitrary origin, with the fraction in the low 32 bits.
    static func ntp(_ seconds: Double) -> UInt64 {
        let origin: UInt64 = 3_973_000_000 << 32
        return origin + UInt64(seconds * 4_294_967_296)
    }

    @Test func reportsCarryThePeersViewAndTheRoundTripTime() throws {
        let a = Self.description(ssrc: 0xA0A0)
        let b = Self.description(ssrc: 0xB0B0)
        var aSender = try MediaSender(local: a, sendVideo: true, cname: "a", initialSequence: 10, initialTimestamp: 0)
        var aReceiver = try MediaReceiver(remote: b, localSSRC: a.ssrc)
        var bSender = try MediaSender(local: b, sendVideo: true, cname: "b", initialSequence: 20, initialTimestamp: 0)
        var bReceiver = try MediaReceiver(remote: a, localSSRC: b.ssrc)

        // A sends 50 voice packets (one lost on the way) and 2 video frames to B.
        for n in 0..<50 {
            let packet = try aSender.nextAudio()
            if n != 30 { bReceiver.rtpDatagram(packet, arrival: .milliseconds(20 * n)) }
        }
        for frame in 0..<2 {
            for packet in try aSender.nextVideoFrame() { bReceiver.rtpDatagram(packet, arrival: .milliseconds(100 * frame)) }
        }
        #expect(bReceiver.audio.cumulativeLost == 1)
        #expect(bReceiver.video.received == 5)  // 2 frames of 3 packets; the very first was on probation

        // A's sender report leaves at t = 1.0 s and reaches B at B's 1.0 s.
        let sr = try aSender.report(receiver: &aReceiver, ntp: Self.ntp(1.0), now: .seconds(1))
        let parsedOrNil = bReceiver.rtcpDatagram(sr, arrival: .seconds(1), ntp: Self.ntp(1.01))
        let parsed = try #require(parsedOrNil)
        guard case .senderReport(let report)? = parsed.first else {
            Issue.record("expected SR first, got \(parsed)")
            return
        }
        #expect(report.packetCount == 50)
        #expect(report.octetCount == 50 * 160)
        #expect(parsed.contains(.sourceDescription(ssrc: a.ssrc, cname: "a")))

        // B has sent nothing: it answers 0.5 s later with RR, whose block about A says what it saw.
        let rr = try bSender.report(receiver: &bReceiver, ntp: Self.ntp(1.51), now: .milliseconds(1500))
        // It reaches A at 1.6 s: round trip = 1.6 − 1.0 − 0.5 = 0.1 s.
        let backOrNil = aReceiver.rtcpDatagram(rr, arrival: .milliseconds(1600), ntp: Self.ntp(1.6))
        let back = try #require(backOrNil)
        guard case .receiverReport(b.ssrc, let blocks)? = back.first else {
            Issue.record("expected RR first, got \(back)")
            return
        }
        #expect(blocks.count == 2)  // voice and video
        let voice = try #require(aReceiver.peerReport)
        #expect(voice.ssrc == a.ssrc)
        #expect(voice.cumulativeLost == 1)
        #expect(voice.fractionLost == 5)  // 1 of 49 expected (the first was on probation): 256/49 = 5
        #expect(voice.extendedHighestSequence == 10 + 49)
        let rtt = try #require(aReceiver.roundTrip)
        #expect(abs(rtt.seconds - 0.1) < 0.000_1)

        // A BYE is seen once, with its reason.
        let bye = try bSender.report(receiver: &bReceiver, ntp: Self.ntp(2), now: .seconds(2), bye: "hangUp")
        aReceiver.rtcpDatagram(bye, arrival: .seconds(2), ntp: Self.ntp(2))
        #expect(aReceiver.peerBye == "hangUp")
        #expect(aReceiver.rtcpReceived == 2)

        // Forged RTCP is refused and counted.
        var forged = bye
        forged[12] ^= 1
        #expect(aReceiver.rtcpDatagram(forged, arrival: .seconds(2), ntp: Self.ntp(2)) == nil)
        #expect(aReceiver.rtcpRefused == 1)
    }
}
