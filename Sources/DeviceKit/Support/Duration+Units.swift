import NIOCore

/// Conversions of `Duration` used across the library: one place, so every part rounds the same way.
extension Duration {
    /// Whole milliseconds, rounded down.
    public var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }

    /// Whole microseconds, rounded down.
    public var microseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000 + atto / 1_000_000_000_000
    }

    /// Whole nanoseconds, rounded down.
    public var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }

    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}

extension Duration {
    /// `CLOCK_MONOTONIC` now: the clock of evdev timestamps (`EVIOCSCLOCKID`), NIO's deadlines and every
    /// process on the machine.
    public static var monotonicNow: Duration { .nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds)) }
}

extension TimeAmount {
    /// NIO's time amount for a `Duration`, for scheduling on an event loop.
    init(_ duration: Duration) {
        self = .nanoseconds(duration.nanoseconds)
    }
}

/// Durations as a person types them: a number and its unit (`500us`, `250ms`, `1.5s`, `2min`, `1h`), or a
/// plain number in a unit the caller names (an option that took plain seconds keeps taking them).
public enum TypedDuration {
    public enum Unit: String, CaseIterable, Sendable {
        case nanoseconds = "ns", microseconds = "us", milliseconds = "ms", seconds = "s", minutes = "min", hours = "h"

        var nanoseconds: Double {
            switch self {
            case .nanoseconds: 1
            case .microseconds: 1e3
            case .milliseconds: 1e6
            case .seconds: 1e9
            case .minutes: 60e9
            case .hours: 3600e9
            }
        }
    }

    /// The duration `text` stands for, `nil` if it is not one (negative, no number, an unknown unit, or
    /// longer than a year). `µs` is taken for `us`, `m` for `min`.
    public static func parse(_ text: String, plainUnit: Unit) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let numberEnd = trimmed.firstIndex { !($0.isASCII && ($0.isNumber || $0 == ".")) } ?? trimmed.endIndex
        guard let value = Double(trimmed[..<numberEnd]), value.isFinite, value >= 0 else { return nil }
        let suffix = trimmed[numberEnd...].trimmingCharacters(in: .whitespaces)
        let unit: Unit?
        switch suffix {
        case "": unit = plainUnit
        case "µs": unit = .microseconds
        case "m": unit = .minutes
        default: unit = Unit(rawValue: suffix)
        }
        guard let unit else { return nil }
        let nanoseconds = (value * unit.nanoseconds).rounded()
        guard nanoseconds <= 365 * 86_400e9 else { return nil }
        return .nanoseconds(Int64(nanoseconds))
    }

    /// `duration` in the largest unit that writes it exactly (`2s`, `1500ms`, `250us`, `7ns`), so that
    /// `parse` reads it back to the same value.
    public static func render(_ duration: Duration) -> String {
        let nanoseconds = duration.nanoseconds
        for unit in [Unit.hours, .minutes, .seconds, .milliseconds, .microseconds] where nanoseconds != 0 {
            let size = Int64(unit.nanoseconds)
            if nanoseconds % size == 0 { return "\(nanoseconds / size)\(unit.rawValue)" }
        }
        return "\(nanoseconds)ns"
    }
}
