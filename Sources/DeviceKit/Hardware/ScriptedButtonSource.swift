import Foundation

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
