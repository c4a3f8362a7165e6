import Testing

@testable import DeviceKit

@Suite struct RTPPacketTests {
    @Test func aPacketHasTheBytesOfRFC3550Section5_1() throws {
        let packet = RTPPacket(marker: true, payloadType: 0, sequenceNumber: 0x1234, timestamp: 0xDECA_FBAD, ssrc: 0xCAFE_BABE, payload: [0xFF, 0x7F])
        #expect(packet.bytes == [0x80, 0x80, 0x12, 0x34, 0xDE, 0xCA, 0xFB, 0xAD, 0xCA, 0xFE, 0xBA, 0xBE, 0xFF, 0x7F])
        #expect(try RTPPacket(bytes: packet.bytes) == packet)
    }

    @Test func csrcsExtensionAndPaddingAreParsed() throws {
        let bytes: [UInt8] = [
            0xB1, 0x60, 0x00, 0x01,  // V=2 P X CC=1, M=0 PT=96, seq 1
            0x00, 0x00, 0x00, 0x02,  // timestamp
            0x00, 0x00, 0x00, 0x03,  // SSRC
            0x00, 0x00, 0x00, 0x04,  // CSRC
            0xBE, 0xDE, 0x00, 0x01, 0x10, 0xAA, 0x00, 0x00,  // one-byte header extension, one word
            0x01, 0x02, 0x03,  // payload
            0x00, 0x00, 0x03,  // padding of 3
        ]
        let packet = try RTPPacket(bytes: bytes)
        #expect(packet.payloadType == 96)
        #expect(!packet.marker)
        #expect(packet.csrcs == [4])
        #expect(packet.payload == [1, 2, 3])
        #expect(try RTPPacket.headerLength(of: bytes) == 24)
    }

    @Test func randomBytesNeverCrashTheParser() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if !bytes.isEmpty { bytes[0] = 0x80 | bytes[0] & 0x3F }
            _ = try? RTPPacket(bytes: bytes)
            _ = try? RTCPPacket.parseCompound(bytes)
        }
    }

    @Test func packetizerSends160SamplesEvery20MillisecondsWithTheMarkerFirst() {
        var audio = AudioPacketizer(ssrc: 9, signal: .tone(hertz: 1000), initialSequence: 65_535, initialTimestamp: 100)
        let first = audio.next()
        let second = audio.next()
        #expect(first.marker && !second.marker)
        #expect(first.payload.count == 160)
        #expect(second.sequenceNumber == 0)  // wrapped
        #expect(second.timestamp == 260)
        #expect(audio.packetCount == 2 && audio.octetCount == 320)
        #expect(first.bytes.count == 172)
    }

    @Test func videoFramesEndWithTheMarkerAndShareATimestamp() {
        var video = VideoPacketizer(ssrc: 10, payloadType: 96, framesPerSecond: 10, frameBytes: 2400, maximumPayload: 1000, initialSequence: 1, initialTimestamp: 0)
        let frame = video.nextFrame()
        #expect(frame.map(\.payload.count) == [1000, 1000, 400])
        #expect(frame.map(\.marker) == [false, false, true])
        #expect(Set(frame.map(\.timestamp)) == [0])
        #expect(video.nextFrame().first?.timestamp == 9000)  // 90 kHz / 10 fps
    }
}

@Suite struct MuLawTests {
    @Test func knownCodesOfG711() {
        #expect(MuLaw.encode(0) == 0xFF)
        #expect(MuLaw.encode(-1) == 0x7F)
        #expect(MuLaw.encode(32_767) == 0x80)
        #expect(MuLaw.encode(-32_768) == 0x00)
        #expect(MuLaw.decode(0xFF) == 0)
        #expect(MuLaw.decode(0x80) == 32_124)
        #expect(MuLaw.decode(0x00) == -32_124)
        #expect(MuLaw.encode(1000) == 0xCE)
        #expect(MuLaw.decode(0xCE) == 988)  // the middle of the interval 956…1019
    }

    @Test func everyCodeDecodesToAValueThatEncodesBackToIt() {
        for code in UInt8.min...UInt8.max where code != 0x7F {  // 0x7F is −0, which encodes as +0 (0xFF)
            #expect(MuLaw.encode(MuLaw.decode(code)) == code)
        }
    }

    @Test func encodingIsMonotonicAndTheErrorStaysWithinASegmentStep() {
        var previous = MuLaw.decode(MuLaw.encode(-32_768))
        for sample in stride(from: -32_768, through: 32_767, by: 7) {
            let decoded = MuLaw.decode(MuLaw.encode(Int16(sample)))
            #expect(decoded >= previous)
            previous = decoded
            // The step in the top segment is 1024: a quantisation error of at most half of it, plus clipping.
            #expect(abs(Int(decoded) - sample) <= (abs(sample) > 32_124 ? 700 : 512))
        }
    }
}

@Suite struct RTCPPacketTests {
    @Test func aCompoundPacketRoundTrips() throws {
        let block = RTCPPacket.ReportBlock(
            ssrc: 0x0102_0304, fractionLost: 36, cumulativeLost: -3, extendedHighestSequence: 65_539, jitter: 81,
            lastSenderReport: 0xAABB_CCDD, delaySinceLastSenderReport: 65_536)
        let packets: [RTCPPacket] = [
            .senderReport(.init(ssrc: 7, ntpTimestamp: 0xE000_0000_8000_0000, rtpTimestamp: 160, packetCount: 50, octetCount: 8000, reports: [block])),
            .sourceDescription(ssrc: 7, cname: "device-1001@home"),
            .bye(ssrcs: [7, 8], reason: "hangUp"),
        ]
        let bytes = RTCPPacket.compound(packets)
        #expect(bytes.count % 4 == 0)
        #expect(Array(bytes[0..<4]) == [0x81, 200, 0x00, 12])  // one report block: 13 words
        // Cumulative lost −3 as 24-bit two's complement.
        #expect(Array(bytes[32..<36]) == [36, 0xFF, 0xFF, 0xFD])
        #expect(try RTCPPacket.parseCompound(bytes) == packets)
    }

    @Test func aCompoundPacketMustStartWithAReport() {
        #expect(throws: RTCPError.notAReportFirst) {
            try RTCPPacket.parseCompound(RTCPPacket.bye(ssrcs: [1], reason: nil).bytes)
        }
        #expect(throws: RTCPError.truncated) { try RTCPPacket.parseCompound([0x81, 201, 0x00, 0x07, 0, 0, 0, 1]) }
    }
}

/// The send times written into the voice for delay measurements, and the small histogram that keeps them.
@Suite struct VoiceStampTests {
    @Test func aStampReadsBackAndAnythingElseIsNotOne() {
        var payload = [UInt8](repeating: 0xFF, count: 160)
        VoiceStamp.write(0x0123_4567_89AB_CDEF, into: &payload)
        #expect(VoiceStamp.read(payload) == 0x0123_4567_89AB_CDEF)
        #expect(payload[VoiceStamp.length...].allSatisfy { $0 == 0xFF })  // the rest is the voice
        var damaged = payload
        damaged[7] ^= 1
        #expect(VoiceStamp.read(damaged) == nil)  // the check byte
        #expect(VoiceStamp.read([UInt8](repeating: 0xFF, count: 160)) == nil)
        #expect(VoiceStamp.read(Array(payload.prefix(12))) == nil)
        var short = [UInt8](repeating: 0, count: 5)
        VoiceStamp.write(1, into: &short)
        #expect(short == [UInt8](repeating: 0, count: 5))
    }

    @Test func percentilesAreWithinTheBucketWidth() throws {
        var histogram = DelayHistogram()
        #expect(histogram.summary == nil)
        for microseconds in 1 ... 1000 { histogram.record(nanoseconds: UInt64(microseconds) * 1000) }
        let summary = try #require(histogram.summary)
        #expect(summary.packets == 1000)
        #expect(abs(summary.p50Milliseconds - 0.5) <= 0.5 * 0.05 + 1e-9)
        #expect(abs(summary.p99Milliseconds - 0.99) <= 0.99 * 0.05 + 1e-9)
        #expect(summary.maxMilliseconds == 1.0)
        histogram.record(nanoseconds: 100 * 1_000_000_000)  // beyond the last bucket: counted there, max exact
        #expect(histogram.summary?.maxMilliseconds == 100_000)
    }
}
