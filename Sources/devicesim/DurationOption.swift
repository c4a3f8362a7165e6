import ArgumentParser
import DeviceKit

/// A duration option's value: a number with its unit (`250ms`, `1.5s`, `2min`), or a plain number in the
/// option's old unit, kept so that command lines written before units still mean the same. Its description
/// writes it back exactly, for the options a load coordinator hands on to its workers.
struct DurationOption: Hashable, Sendable, CustomStringConvertible {
    var duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    var description: String { TypedDuration.render(duration) }

    /// The duration in whole seconds from 1 to 65535, as the wire carries a heartbeat interval; a usage error
    /// naming `option` otherwise.
    func wholeSeconds(_ option: String) throws -> UInt16 {
        let milliseconds = duration.milliseconds
        guard milliseconds % 1000 == 0, let seconds = UInt16(exactly: milliseconds / 1000), seconds > 0 else {
            throw ValidationError("\(option) \(self) is not a whole number of seconds from 1s to 65535s (devices are told seconds): e.g. \(option) 30s.")
        }
        return seconds
    }

    /// For `transform:`: a plain number is seconds.
    static func seconds(_ text: String) throws -> DurationOption { try parse(text, plain: .seconds) }

    /// For `transform:`: a plain number is milliseconds.
    static func milliseconds(_ text: String) throws -> DurationOption { try parse(text, plain: .milliseconds) }

    private static func parse(_ text: String, plain: TypedDuration.Unit) throws -> DurationOption {
        let example = "write a number and its unit, such as 250ms, 1.5s or 2min (a plain number is \(plain == .seconds ? "seconds" : "milliseconds"))"
        guard let duration = TypedDuration.parse(text, plainUnit: plain) else {
            if text.trimmingCharacters(in: .whitespaces).hasPrefix("-") { throw ValidationError("a duration is 0 or more: \(example)") }
            throw ValidationError("not a duration: \(example)")
        }
        return DurationOption(duration)
    }
}
