/// Decodes the byte stream of a serial button box (hardware/serial-box-protocol.md, version 1) into messages.
///
/// Pure: no I/O and no clock, so it can be fed one byte at a time or a whole read at once with the same
/// result. Each message is one line of printable ASCII (0x20–0x7E) ending in `\n`, optionally `\r\n`:
///
/// ```
///  line     = body [ "\r" ] "\n"        body: 1 to 32 printable bytes
///  "P"      the button is pressed        "R"   the button is released
///  "H"      heartbeat (at least every 10 s)
///  "B<n>"   box battery, n = 0…100 in decimal (1 to 3 digits, leading zeros allowed)
///  "T"      tamper
/// ```
///
/// An empty line is ignored and not counted (§2). Any other line that is not one of these is an unknown line:
/// counted (`Counters.unknownLines`) and ignored; a `B` line whose number is missing or above 100 is an
/// unknown line that is also counted in `badBattery`. A line longer than 32 bytes is counted as overlong and
/// discarded up to the next `\n`, so the parser never holds more than 33 bytes, whatever the box sends.
public struct SerialBoxParser: Sendable {
    /// The longest line body, excluding the `\r\n` or `\n` terminator.
    public static let maximumLineLength = 32

    /// Lines the parser ignored, by reason.
    public struct Counters: Hashable, Sendable {
        /// Complete, non-empty lines that are no message (non-printable bytes, an unknown letter, extra
        /// characters, a bad battery value).
        public var unknownLines = 0
        /// Lines longer than `maximumLineLength`, discarded up to their `\n`.
        public var overlongLines = 0
        /// Of the unknown lines, those starting with `B` whose percentage is missing, not a number, or above 100.
        public var badBattery = 0

        public init(unknownLines: Int = 0, overlongLines: Int = 0, badBattery: Int = 0) {
            self.unknownLines = unknownLines
            self.overlongLines = overlongLines
            self.badBattery = badBattery
        }

        /// Non-empty lines ignored, for any reason.
        public var total: Int { unknownLines + overlongLines }
    }

    public private(set) var counters = Counters()

    /// The bytes of the current line so far: the body and possibly a trailing `\r`.
    private var line: [UInt8] = []
    /// Set once the current line has outgrown the limit: its bytes are dropped until the next `\n`.
    private var discarding = false

    private static let newline = UInt8(ascii: "\n")
    private static let carriageReturn = UInt8(ascii: "\r")

    public init() {
        line.reserveCapacity(Self.maximumLineLength + 1)
    }

    /// Feeds received bytes; returns the messages of the lines they complete, in order.
    public mutating func parse(_ bytes: some Sequence<UInt8>) -> [SerialBoxMessage] {
        var messages: [SerialBoxMessage] = []
        for byte in bytes {
            if byte == Self.newline {
                if discarding {
                    discarding = false
                    counters.overlongLines += 1
                } else if let message = finishLine() {
                    messages.append(message)
                }
                line.removeAll(keepingCapacity: true)
            } else if !discarding {
                // One byte more than the body may hold: room for the `\r` of a 32-byte body.
                if line.count == Self.maximumLineLength + 1 {
                    discarding = true
                    line.removeAll(keepingCapacity: true)
                } else {
                    line.append(byte)
                }
            }
        }
        return messages
    }

    /// Decodes the buffered line that a `\n` just ended; counts it when it is no message.
    private mutating func finishLine() -> SerialBoxMessage? {
        var body = line[...]
        if body.last == Self.carriageReturn { body = body.dropLast() }
        guard body.count <= Self.maximumLineLength else {
            counters.overlongLines += 1
            return nil
        }
        guard let first = body.first else { return nil }
        guard body.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            counters.unknownLines += 1
            return nil
        }
        let rest = body.dropFirst()
        switch first {
        case UInt8(ascii: "P") where rest.isEmpty: return .pressed
        case UInt8(ascii: "R") where rest.isEmpty: return .released
        case UInt8(ascii: "H") where rest.isEmpty: return .heartbeat
        case UInt8(ascii: "T") where rest.isEmpty: return .tamper
        case UInt8(ascii: "B"):
            guard let percent = Self.percentage(rest) else {
                counters.unknownLines += 1
                counters.badBattery += 1
                return nil
            }
            return .battery(percent: percent)
        default:
            counters.unknownLines += 1
            return nil
        }
    }

    /// 1 to 3 decimal digits with a value of at most 100.
    private static func percentage(_ digits: ArraySlice<UInt8>) -> UInt8? {
        guard (1...3).contains(digits.count) else { return nil }
        var value = 0
        for digit in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
            value = value * 10 + Int(digit - UInt8(ascii: "0"))
        }
        return value <= 100 ? UInt8(value) : nil
    }
}

/// One line of the serial box protocol, decoded.
public enum SerialBoxMessage: Hashable, Sendable, CustomStringConvertible {
    /// `P`: the button went down (or is down, at power-up).
    case pressed
    /// `R`: the button went up (or is up, at power-up).
    case released
    /// `H`: the box is alive.
    case heartbeat
    /// `B<n>`: the box's own battery, in percent.
    case battery(percent: UInt8)
    /// `T`: the box's case was opened.
    case tamper

    public var description: String {
        switch self {
        case .pressed: "pressed"
        case .released: "released"
        case .heartbeat: "heartbeat"
        case .battery(let percent): "battery \(percent) %"
        case .tamper: "tamper"
        }
    }
}
