/// A DC-09 timestamp, `_HH:MM:SS,MM-DD-YYYY`, always UTC (ANSI/SIA DC-09, "Timestamp"), as seconds since the
/// Unix epoch. Pure: the conversion is the proleptic Gregorian calendar's arithmetic, no clock and no locale.
public struct DC09Timestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var secondsSince1970: Int64

    public init(secondsSince1970: Int64) { self.secondsSince1970 = secondsSince1970 }

    /// Whole seconds of a wall clock in milliseconds since the epoch.
    public init(milliseconds: UInt64) { secondsSince1970 = Int64(milliseconds / 1000) }

    public static func < (a: Self, b: Self) -> Bool { a.secondsSince1970 < b.secondsSince1970 }

    /// `_HH:MM:SS,MM-DD-YYYY`, with its leading underscore.
    public var description: String {
        let days = secondsSince1970 >= 0 ? secondsSince1970 / 86_400 : (secondsSince1970 - 86_399) / 86_400
        let second = secondsSince1970 - days * 86_400
        let (year, month, day) = Self.civil(fromDays: days)
        return "_" + Self.two(second / 3600) + ":" + Self.two(second / 60 % 60) + ":" + Self.two(second % 60) + ","
            + Self.two(month) + "-" + Self.two(day) + "-" + String(year)
    }

    /// Reads `HH:MM:SS,MM-DD-YYYY` (without the underscore); nil unless it is exactly that, a real date and
    /// time of day (a leap second, `:60`, is refused).
    public init?(text: Substring) {
        let bytes = Array(text.utf8)
        guard bytes.count == 19, bytes[2] == UInt8(ascii: ":"), bytes[5] == UInt8(ascii: ":"), bytes[8] == UInt8(ascii: ","),
            bytes[11] == UInt8(ascii: "-"), bytes[14] == UInt8(ascii: "-")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for b in bytes[range] {
                guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(b - UInt8(ascii: "0"))
            }
            return value
        }
        guard let hour = number(0..<2), let minute = number(3..<5), let second = number(6..<8), let month = number(9..<11),
            let day = number(12..<14), let year = number(15..<19), hour < 24, minute < 60, second < 60,
            (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year)
        else { return nil }
        secondsSince1970 = Self.days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second
    }

    private static func two(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }

    private static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // Howard Hinnant's `days_from_civil` and `civil_from_days`.
    private static func days(year y0: Int64, month m: Int64, day d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civil(fromDays z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// The span of timestamps a receiver accepts around its own clock (DC-09: typically 20 s ahead, 40 s
/// behind); a frame outside it is answered `NAK` with the receiver's time, so the sender corrects its clock.
public struct DC09TimeWindow: Hashable, Sendable {
    public var behind: Int64
    public var ahead: Int64

    public init(behindSeconds: Int64 = 40, aheadSeconds: Int64 = 20) {
        behind = behindSeconds
        ahead = aheadSeconds
    }

    public func contains(_ timestamp: DC09Timestamp, now: DC09Timestamp) -> Bool {
        let offset = timestamp.secondsSince1970 - now.secondsSince1970
        return offset >= -behind && offset <= ahead
    }
}
