import Foundation

/// Plays an evemu recording back in real time, through the same `EvdevKeyTracker` as a live device, so a
/// press recorded in someone's home (`devicesim diag record`) can be replayed against a centre.
///
/// Emits `.present(initiallyDown: false)`, then the key's levels at the recorded moments (relative to the
/// first event), releases a key still held at the end, and returns.
public struct ReplayButtonSource: ButtonSource {
    public let file: String
    public let key: UInt16?
    /// 2 plays twice as fast; for tests.
    public let speed: Double

    public init(settings: ReplayButtonSettings, speed: Double = 1) {
        self.file = settings.file
        self.key = settings.key
        self.speed = speed
    }

    public var description: String { "replay of \(file)" }

    /// Reads and parses the recording; every failure names the file and the line.
    public func load() throws(ButtonSourceError) -> (recording: EvemuRecording, key: UInt16) {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw ButtonSourceError("cannot read the recording \(file): \(error.localizedDescription)")
        }
        let recording: EvemuRecording
        do { recording = try EvemuRecording(parsing: text) } catch {
            throw ButtonSourceError("\(file) is not a valid evemu recording: \(error)")
        }
        let device = EvdevDeviceInfo(
            path: file, name: recording.name, identity: recording.identity, physicalLocation: nil,
            uniqueIdentifier: nil, eventTypes: [], keys: recording.keys)
        return (recording, try device.callButtonKey(configured: key))
    }

    public func run(_ emit: @escaping @Sendable (ButtonEvent) -> Void) async throws {
        let (recording, key) = try load()
        var tracker = EvdevKeyTracker(key: key, initiallyDown: false)
        emit(.present(initiallyDown: false))
        let clock = ContinuousClock()
        let start = clock.now
        let origin = recording.events.first?.time ?? .zero
        for event in recording.events {
            try await clock.sleep(until: start + (event.time - origin) / speed)
            for output in tracker.feed(event) {
                switch output {
                case .level(let down): emit(.level(down: down))
                case .resynchronise: _ = tracker.resynchronised(down: tracker.isDown)  // nothing to read back
                }
            }
        }
        if tracker.isDown { emit(.level(down: false)) }
    }
}

/// Presses from a script (the demo, `backend = "simulated"`) or from Poisson arrivals (the load tester):
/// no device, only levels at chosen moments.
public struct ScriptedButtonSource: ButtonSource {
    public enum Script: Sendable {
        /// Each press at its time from the start, held for its duration.
        case presses([SimulatedPress])
        /// Presses at exponentially distributed intervals averaging `1 / perSecond`, each held `hold`,
        /// from a seeded generator so a run can be repeated.
        case poisson(perSecond: Double, hold: Duration, seed: UInt64)
    }

    public let script: Script

    public init(_ script: Script) { self.script = script }

    public var description: String {
        switch script {
        case .presses(let presses): "simulated button (\(presses.count) scripted presses)"
        case .poisson(let rate, _, _): "simulated button (Poisson, \(rate) presses/s)"
        }
    }

    public func run(_ emit: @escaping @Sendable (ButtonEvent) -> Void) async throws {
        emit(.present(initiallyDown: false))
        let clock = ContinuousClock()
        let start = clock.now
        switch script {
        case .presses(let presses):
            for press in presses.sorted(by: { $0.at < $1.at }) {
                try await clock.sleep(until: start + press.at)
                emit(.level(down: true))
                try await clock.sleep(for: press.duration)
                emit(.level(down: false))
            }
        case .poisson(let rate, let hold, let seed):
            var random = SplitMix64(seed: seed)
            var next = start
            while true {
                next += Self.exponentialGap(perSecond: rate, &random)
                try await clock.sleep(until: next)
                emit(.level(down: true))
                try await clock.sleep(for: hold)
                emit(.level(down: false))
            }
        }
    }

    /// The gap before the next arrival of a Poisson process: `-ln(U) / rate`, `U` uniform in (0, 1].
    public static func exponentialGap(perSecond rate: Double, _ random: inout SplitMix64) -> Duration {
        let uniform = (Double(random.next() >> 11) + 1) / Double(1 << 53)
        return .nanoseconds(Int64(-log(uniform) / max(rate, 1e-9) * 1e9))
    }
}
