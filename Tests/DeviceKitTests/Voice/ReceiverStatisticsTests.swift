import Testing

@testable import DeviceKit

/// RFC 3550's receiver numbers on crafted packet schedules, with the expected values worked out by hand.
@Suite struct ReceiverStatisticsTests {
    /// Packet `seq` of a 20 ms voice stream: timestamp 160 per packet from 1000 at sequence 100.
    static func timestamp(_ seq: UInt16) -> UInt32 { 1000 &+ 160 &* UInt32(seq &- 100) }

    /// Delivers `seq` with a transit of `transit` timestamp units (arrival = timestamp + transit + 5000).
    static func deliver(_ stats: inout ReceiverStatistics, _ seq: UInt16, transit: UInt32) -> ReceiverStatistics.Verdict {
        stats.received(sequence: seq, timestamp: timestamp(seq), arrival: timestamp(seq) &+ 5000 &+ transit)
    }

    @Test func lossJitterReorderingAndDuplicatesOnACraftedSchedule() {
        var s = ReceiverStatistics(clockRate: 8000)  // late = more than 60 ms (480 units) over the least transit
        #expect(s.playoutDelay == 480)

        // RFC 3550 §A.1: a new source is on probation until two packets in sequence; the first is not counted.
        #expect(Self.deliver(&s, 100, transit: 0) == .invalid)
        #expect(Self.deliver(&s, 101, transit: 0) == .accepted)  // base sequence 101; transit 0 is the reference
        #expect(s.jitter == 0)
        #expect(Self.deliver(&s, 102, transit: 80) == .accepted)  // D = 80: J = 0 + (80 − 0)/16 = 5
        #expect(s.jitter == 5)
        #expect(Self.deliver(&s, 104, transit: 0) == .accepted)  // 103 not yet; D = 80: J = 5 + 75/16 = 9.6875
        #expect(s.jitter == 9.6875)
        #expect(Self.deliver(&s, 103, transit: 600) == .accepted)  // out of order and late (600 > 480); D = 600
        #expect(s.jitter == 46.58203125)  // 9.6875 + (600 − 9.6875)/16
        #expect(Self.deliver(&s, 105, transit: 0) == .accepted)  // D = 600: J = 46.58203125 + 553.41796875/16
        #expect(s.jitter == 81.170654296875)
        #expect(Self.deliver(&s, 107, transit: 0) == .accepted)  // 106 lost; D = 0: J = J · 15/16
        #expect(s.jitter == 76.0974884033203125)
        #expect(s.outOfOrder == 1)
        #expect(s.late == 1)
        #expect(s.duplicates == 0)
        // Expected 101…107 = 7, received 6 (101, 102, 104, 103, 105, 107): one lost.
        #expect(s.extendedHighestSequence == 107)
        #expect(s.expected == 7)
        #expect(s.received == 6)
        #expect(s.cumulativeLost == 1)
        // Fraction lost of the first interval: 1 of 7 → floor(256/7) = 36.
        #expect(s.closeInterval() == 36)

        // A duplicate of 107 counts as received, as RFC 3550 §6.4.1 says: it hides the loss of 106.
        #expect(Self.deliver(&s, 107, transit: 20) == .accepted)  // D = 20: J = 76.097… + (20 − 76.097…)/16
        #expect(s.duplicates == 1)
        #expect(s.cumulativeLost == 0)
        #expect(abs(s.jitter - 72.591395378112793) < 1e-9)
        // Second interval: 108 lost, 109, 110, 111 arrive. Expected 4 more (108…111), received 4 (dup + 3).
        for seq: UInt16 in [109, 110, 111] { #expect(Self.deliver(&s, seq, transit: 20) == .accepted) }
        #expect(s.expected == 11)
        #expect(s.received == 10)
        #expect(s.cumulativeLost == 1)
        #expect(s.closeInterval() == 0)  // 4 expected, 4 received in the interval
        // Third interval: 112 lost, 113 arrives: 2 expected, 1 received → 128/256.
        #expect(Self.deliver(&s, 113, transit: 20) == .accepted)
        #expect(s.closeInterval() == 128)
        #expect(s.cumulativeLost == 2)
        #expect(s.reportedJitter == UInt32(s.jitter))
        #expect(abs(s.jitterMilliseconds - s.jitter / 8) < 1e-12)
    }

    @Test func extendedSequenceCountsWrapsAndTakesBackLatePacketsFromBeforeTheWrap() {
        var s = ReceiverStatistics(clockRate: 8000)
        #expect(s.received(sequence: 65_534, timestamp: 0, arrival: 0) == .invalid)  // probation
        #expect(s.received(sequence: 65_535, timestamp: 160, arrival: 160) == .accepted)  // base 65535
        #expect(s.received(sequence: 0, timestamp: 320, arrival: 320) == .accepted)
        #expect(s.received(sequence: 1, timestamp: 480, arrival: 480) == .accepted)
        #expect(s.received(sequence: 3, timestamp: 800, arrival: 800) == .accepted)
        #expect(s.extendedHighestSequence == 65_536 + 3)
        #expect(s.expected == 5)  // 65535, 0, 1, 2, 3
        #expect(s.cumulativeLost == 1)
        #expect(s.received(sequence: 2, timestamp: 640, arrival: 900) == .accepted)
        #expect(s.outOfOrder == 1)
        #expect(s.cumulativeLost == 0)
        // A packet from before the wrap arriving now is a duplicate of 65535, not a new packet.
        #expect(s.received(sequence: 65_535, timestamp: 160, arrival: 1000) == .accepted)
        #expect(s.duplicates == 1)
    }

    @Test func aLargeJumpIsHeldBackUntilTheSourceProvesItRestarted() {
        var s = ReceiverStatistics(clockRate: 8000)
        _ = s.received(sequence: 10, timestamp: 0, arrival: 0)
        _ = s.received(sequence: 11, timestamp: 160, arrival: 160)
        #expect(s.received(sequence: 20_000, timestamp: 320, arrival: 320) == .invalid)
        #expect(s.expected == 1)
        // The next in sequence after the jump: the source restarted; counting starts over at 20001.
        #expect(s.received(sequence: 20_001, timestamp: 480, arrival: 480) == .accepted)
        #expect(s.expected == 1)
        #expect(s.received == 1)
        #expect(s.invalid == 2)  // the first packet's probation and the jump
    }

    @Test func malformedPacketsAreCountedAndIgnored() throws {
        let remote = MediaDescription(
            endpoint: Endpoint(address: [127, 0, 0, 1], port: 40_000), audioPayloadType: 0, ssrc: 0xABCD,
            keyMaterial: [UInt8](repeating: 7, count: 30), videoPayloadType: 0)
        var receiver = try MediaReceiver(remote: remote, localSSRC: 1, protected: false)
        func packet(_ seq: UInt16) -> [UInt8] {
            RTPPacket(payloadType: 0, sequenceNumber: seq, timestamp: UInt32(seq) * 160, ssrc: 0xABCD, payload: [UInt8](repeating: 0xFF, count: 160)).bytes
        }
        receiver.rtpDatagram(packet(1), arrival: .milliseconds(20))
        receiver.rtpDatagram(packet(2), arrival: .milliseconds(40))
        let garbage: [[UInt8]] = [
            [],  // empty
            [0x80, 0x00, 0x00],  // shorter than a header
            [0x40] + packet(3).dropFirst(),  // version 1
            [0x8F] + Array(packet(3).dropFirst().prefix(20)),  // 15 CSRCs announced, 20 bytes follow
            [0x90] + Array(packet(3).dropFirst().prefix(11)) + [0xBE, 0xDE, 0x00, 0x40],  // extension runs past the end
            [0xA0] + Array(packet(3).dropFirst().dropLast()) + [0xFF],  // padding longer than the payload
            [0x80, 0xC8] + Array(packet(3).dropFirst(2)),  // an RTCP sender report on the RTP port
            [UInt8](repeating: 0x80, count: 1600),  // longer than any datagram we accept
        ]
        for bytes in garbage {
            guard case .refused = receiver.rtpDatagram(bytes, arrival: .milliseconds(50)) else {
                Issue.record("accepted \(bytes.prefix(4))")
                continue
            }
        }
        #expect(receiver.malformed == UInt64(garbage.count))
        #expect(receiver.audio.malformed == UInt64(garbage.count))
        receiver.rtpDatagram(packet(3), arrival: .milliseconds(60))
        #expect(receiver.audio.expected == 2)  // 2 and 3 (1 was on probation)
        #expect(receiver.audio.received == 2)
        #expect(receiver.audio.cumulativeLost == 0)
        // An authentic-looking packet of a source the call did not announce is not counted as ours.
        _ = receiver.rtpDatagram(
            RTPPacket(payloadType: 0, sequenceNumber: 4, timestamp: 640, ssrc: 0x9999, payload: [1]).bytes, arrival: .milliseconds(80))
        #expect(receiver.unknownSource == 1)
        #expect(receiver.audio.received == 2)
    }

    @Test func forgedSRTPIsCountedAndNeverReachesTheStatistics() throws {
        let material = SRTPMasterKey.randomKeyMaterial()
        let remote = MediaDescription(
            endpoint: Endpoint(address: [127, 0, 0, 1], port: 40_000), audioPayloadType: 0, ssrc: 0x5151,
            keyMaterial: material, videoPayloadType: 0)
        var sender = try MediaSender(local: remote, sendVideo: false, cname: "t", initialSequence: 500, initialTimestamp: 0)
        var receiver = try MediaReceiver(remote: remote, localSSRC: 1)
        let first = try sender.nextAudio()
        let second = try sender.nextAudio()
        var forged = try sender.nextAudio()
        forged[20] ^= 0x40
        receiver.rtpDatagram(first, arrival: .milliseconds(0))
        receiver.rtpDatagram(second, arrival: .milliseconds(20))
        guard case .refused = receiver.rtpDatagram(forged, arrival: .milliseconds(40)) else {
            Issue.record("a tampered SRTP packet was accepted")
            return
        }
        receiver.rtpDatagram(second, arrival: .milliseconds(45))  // replayed
        #expect(receiver.authenticationFailures == 1)
        #expect(receiver.replayed == 1)
        #expect(receiver.audio.received == 1)  // `second`; `first` was the probation packet
        #expect(first.count == 12 + 160 + 10)
    }
}
