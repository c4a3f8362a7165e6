/// Cuts the synthetic voice into RTP packets: 20 ms of G.711 µ-law (160 samples at 8 kHz) per packet,
/// payload type 0, the marker bit on the first packet of the stream (RFC 3551 §4.1). Pure: the owner calls
/// `next()` every 20 ms and draws the random initial sequence number and timestamp (RFC 3550 §5.1).
public struct AudioPacketizer: Sendable {
    public static let samplesPerPacket = 160
    public static let packetInterval: Duration = .milliseconds(20)
    public static let clockRate: UInt32 = 8000

    public let ssrc: UInt32
    public let payloadType: UInt8
    public let signal: SyntheticSignal
    public private(set) var sequenceNumber: UInt16
    public private(set) var timestamp: UInt32
    /// For the sender report: packets and payload octets sent so far.
    public private(set) var packetCount: UInt32 = 0
    public private(set) var octetCount: UInt32 = 0
    private var sampleIndex: UInt64 = 0

    public init(ssrc: UInt32, payloadType: UInt8 = 0, signal: SyntheticSignal = .speechLike, initialSequence: UInt16, initialTimestamp: UInt32) {
        self.ssrc = ssrc
        self.payloadType = payloadType
        self.signal = signal
        self.sequenceNumber = initialSequence
        self.timestamp = initialTimestamp
    }

    public mutating func next() -> RTPPacket {
        var payload = [UInt8](repeating: 0xFF, count: Self.samplesPerPacket)
        for i in 0..<Self.samplesPerPacket { payload[i] = MuLaw.encode(signal.sample(sampleIndex + UInt64(i))) }
        let packet = RTPPacket(
            marker: packetCount == 0, payloadType: payloadType, sequenceNumber: sequenceNumber, timestamp: timestamp,
            ssrc: ssrc, payload: payload)
        sampleIndex += UInt64(Self.samplesPerPacket)
        sequenceNumber &+= 1
        timestamp &+= UInt32(Self.samplesPerPacket)
        packetCount &+= 1
        octetCount &+= UInt32(payload.count)
        return packet
    }

    /// A packet of this stream carrying someone else's voice (a bridge relaying the other leg, protocol.md §8):
    /// our SSRC, sequence and timestamp, their `payload` (µ-law, one sample a byte), the marker on our first.
    public mutating func packet(relaying payload: [UInt8]) -> RTPPacket {
        let packet = RTPPacket(
            marker: packetCount == 0, payloadType: payloadType, sequenceNumber: sequenceNumber, timestamp: timestamp,
            ssrc: ssrc, payload: payload)
        sequenceNumber &+= 1
        timestamp &+= UInt32(payload.count)
        packetCount &+= 1
        octetCount &+= UInt32(payload.count)
        return packet
    }
}

/// The video stub: frames of a fixed size at a fixed rate on the 90 kHz clock, each cut into packets of
/// at most `maximumPayload` bytes, the marker bit on the last packet of each frame (RFC 3551 §5 for video).
/// The payload is a recognisable pattern (frame number and packet index), not a codec. Pure.
public struct VideoPacketizer: Sendable {
    public static let clockRate: UInt32 = 90_000

    public let ssrc: UInt32
    public let payloadType: UInt8
    public let framesPerSecond: Int
    public let frameBytes: Int
    public let maximumPayload: Int
    public private(set) var sequenceNumber: UInt16
    public private(set) var timestamp: UInt32
    public private(set) var packetCount: UInt32 = 0
    public private(set) var octetCount: UInt32 = 0
    private var frame: UInt32 = 0

    public init(
        ssrc: UInt32, payloadType: UInt8, framesPerSecond: Int = 10, frameBytes: Int = 2400, maximumPayload: Int = 1000,
        initialSequence: UInt16, initialTimestamp: UInt32
    ) {
        self.ssrc = ssrc
        self.payloadType = payloadType
        self.framesPerSecond = max(1, min(framesPerSecond, 60))
        self.frameBytes = max(1, frameBytes)
        self.maximumPayload = max(16, min(maximumPayload, 1200))
        self.sequenceNumber = initialSequence
        self.timestamp = initialTimestamp
    }

    public var frameInterval: Duration { .microseconds(1_000_000 / framesPerSecond) }

    /// The packets of the next frame, in order; all carry the frame's timestamp.
    public mutating func nextFrame() -> [RTPPacket] {
        var packets: [RTPPacket] = []
        var remaining = frameBytes
        var index: UInt8 = 0
        while remaining > 0 {
            let size = min(remaining, maximumPayload)
            var payload = [UInt8](repeating: index, count: size)
            payload.withUnsafeMutableBufferPointer { p in
                p[0] = UInt8(truncatingIfNeeded: frame >> 8)
                if size > 1 { p[1] = UInt8(truncatingIfNeeded: frame) }
            }
            remaining -= size
            packets.append(
                RTPPacket(
                    marker: remaining == 0, payloadType: payloadType, sequenceNumber: sequenceNumber, timestamp: timestamp,
                    ssrc: ssrc, payload: payload))
            sequenceNumber &+= 1
            packetCount &+= 1
            octetCount &+= UInt32(size)
            index &+= 1
        }
        frame &+= 1
        timestamp &+= Self.clockRate / UInt32(framesPerSecond)
        return packets
    }
}
