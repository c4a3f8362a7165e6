import NIOCore

/// Measures the codec on one core: seal+encode and decode+open of heartbeat and alarm frames.
///
/// Used by `devicesim protocol bench`. Single-threaded on purpose: the figure is per core.
public struct CodecBenchmark: Sendable {
    public struct Result: Sendable, Encodable {
        public var name: String
        public var frames: Int
        public var frameBytes: Int
        public var seconds: Double
        public var framesPerSecond: Double { Double(frames) / seconds }
        public var nanosecondsPerFrame: Double { seconds * 1e9 / Double(frames) }
    }

    public var frames: Int
    public init(frames: Int) { self.frames = frames }

    public static let heartbeat = Message.heartbeat(Heartbeat(status: [.mainsPresent, .buttonPresent], battery: 87))
    public static let alarm = Message.alarm(
        Alarm(id: 7, kind: .button, triggeredAt: 1_795_000_000_000, battery: 87, flags: [.clockSynchronised]))

    public func run() throws -> [Result] {
        let key = try DeviceKey(deviceID: 0x0001_0203, rootKey: Array(0..<32))
        var results: [Result] = []
        for (name, message) in [("heartbeat", Self.heartbeat), ("alarm", Self.alarm)] {
            results.append(try measureSeal(name: name, message: message, key: key))
            results.append(try measureOpen(name: name, message: message, key: key))
        }
        return results
    }

    private func measureSeal(name: String, message: Message, key: DeviceKey) throws -> Result {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(64)
        let clock = ContinuousClock()
        let start = clock.now
        for counter in 1...UInt64(frames) {
            buffer.clear()
            try SealedFrame.seal(message, direction: .up, deviceID: key.deviceID, counter: counter, key: key.upInlineKey, into: &buffer)
        }
        let elapsed = start.duration(to: clock.now)
        return Result(name: "\(name) seal+encode", frames: frames, frameBytes: buffer.readableBytes, seconds: elapsed.seconds)
    }

    private func measureOpen(name: String, message: Message, key: DeviceKey) throws -> Result {
        var stream = ByteBuffer()
        let batch = 1024
        for counter in 1...UInt64(batch) {
            try SealedFrame.seal(message, direction: .up, deviceID: key.deviceID, counter: counter, key: key.upInlineKey, into: &stream)
        }
        let frameBytes = stream.readableBytes / batch
        var opener = FrameOpener(deviceID: key.deviceID, direction: .up, key: key.upKey, floor: 0)
        var decoder = FrameDecoder()
        var opened = 0
        let clock = ContinuousClock()
        let start = clock.now
        while opened < frames {
            // Replays of the same batch would be refused, so each pass gets a fresh window.
            opener = FrameOpener(deviceID: key.deviceID, direction: .up, key: key.upKey, floor: 0)
            var input = stream
            while opened < frames, let frame = try decoder.decode(buffer: &input) {
                let decoded = try opener.open(frame)
                precondition(decoded == message, "benchmark frame did not round-trip")
                opened += 1
            }
        }
        let elapsed = start.duration(to: clock.now)
        return Result(name: "\(name) decode+open", frames: frames, frameBytes: frameBytes, seconds: elapsed.seconds)
    }
}
