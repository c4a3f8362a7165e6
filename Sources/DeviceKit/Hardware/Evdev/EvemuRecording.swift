/// An evemu recording (as `evemu-record` and `devicesim diag record` write it): the device's description,
/// then its events.
///
/// ```
/// # EVEMU 1.3
/// # Input device name: "sos-button"          (comments: '#' to the end of the line)
/// N: sos-button
/// I: 0019 0001 0001 0100                       bus, vendor, product, version (hex)
/// P: 00 00 00 00 00 00 00 00                   input properties, 8 bytes a line
/// B: 00 0b 00 00 00 00 00 00 00                event-type bitmap, then one run of lines per type:
/// B: 01 00 00 00 00 00 00 00 00                  type (hex) and the next 8 bytes of its code bitmap
/// A: 00 0 255 0 0 0                            absolute axes: index, min, max, fuzz, flat, resolution
/// E: 0.000001 0001 0094 0001	# EVEMU 1.1 and 1.2 write the same lines; 1.1 has no resolution in A:
/// ```
///
/// Read as well: the old format (evemu 1.0: no `# EVEMU` line; the description, `N:` `I:` `P:` `B:` `A:`,
/// in a `.desc` file and the `E:` lines in a separate `.events` file, so the two must be put together),
/// Windows line endings, a byte-order mark, and a recording indented or quoted from a mail (`> `): what
/// was found is in `EvemuRecording.Reading`.
///
/// Times in `E:` lines are seconds.microseconds (from just before the first event; the old format's are
/// absolute). Parsing is strict about what the replay needs (every `E:` line, the name, the identity, the
/// bitmaps and properties) and says which line is wrong and what it holds; `A:`, `L:` and `S:` lines and
/// comments are accepted and ignored. evemu's own `B: 00` line is a constant, so the event types are those
/// with a code in their bitmap.
public struct EvemuRecording: Hashable, Sendable {
    public var name: String
    public var identity: InputDeviceIdentity
    /// The code bitmap of each event type, as bytes (bit `n % 8` of byte `n / 8` is code `n`).
    public var bitmaps: [UInt16: [UInt8]]
    /// The input properties (`P:` lines), as bytes: bit 0 `INPUT_PROP_POINTER`, bit 1 `INPUT_PROP_DIRECT`.
    public var properties: [UInt8]
    public var events: [InputEvent]

    public init(
        name: String, identity: InputDeviceIdentity, bitmaps: [UInt16: [UInt8]], properties: [UInt8] = [],
        events: [InputEvent]
    ) {
        self.name = name
        self.identity = identity
        self.bitmaps = bitmaps
        self.properties = properties
        self.events = events
    }

    /// The keys the recorded device could send (its `EV_KEY` bitmap).
    public var keys: [UInt16] { codes(of: InputEventNames.evKey) }

    public func codes(of type: UInt16) -> [UInt16] { Self.codes(in: bitmaps[type] ?? []) }

    static func codes(in bytes: [UInt8]) -> [UInt16] {
        var codes: [UInt16] = []
        for (index, byte) in bytes.enumerated() {
            for bit in 0..<8 where byte & (1 << UInt8(bit)) != 0 { codes.append(UInt16(index * 8 + bit)) }
        }
        return codes
    }

    /// The recorded device as a live one would describe itself (`EvdevDeviceInfo`), so the same rules choose
    /// its call button. `path` is the recording's file.
    public func deviceInfo(path: String) -> EvdevDeviceInfo {
        let types = [InputEventNames.evSyn] + bitmaps.keys.filter { $0 != InputEventNames.evSyn && !codes(of: $0).isEmpty }.sorted()
        return EvdevDeviceInfo(
            path: path, name: name, identity: identity, eventTypes: types, keys: keys,
            absoluteAxes: codes(of: InputEventNames.evAbs), relativeAxes: codes(of: InputEventNames.evRel),
            properties: Self.codes(in: properties))
    }

    /// The description of a live device, for `diag record`.
    public init(device: EvdevDeviceInfo, bitmaps: [UInt16: [UInt8]] = [:]) {
        var maps = bitmaps
        if maps[InputEventNames.evKey] == nil { maps[InputEventNames.evKey] = Self.bytes(of: device.keys) }
        self.init(
            name: device.name, identity: device.identity, bitmaps: maps,
            properties: device.properties.isEmpty ? [] : Self.bytes(of: device.properties), events: [])
    }

    /// A kernel bitmap (`EVIOCGBIT`) as bytes, lowest codes first.
    public static func bytes(of bits: EventCodeBits) -> [UInt8] {
        bits.words.flatMap { word in (0..<MemoryLayout<UInt>.size).map { UInt8(truncatingIfNeeded: word >> (8 * UInt($0))) } }
    }

    static func bytes(of codes: [UInt16]) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: (Int(codes.max() ?? 0) / 8) + 1)
        for code in codes { bytes[Int(code) / 8] |= 1 << (code % 8) }
        return bytes
    }

    // MARK: Parsing

    /// What the reader found about the file itself, for `diag analyze`.
    public struct Reading: Hashable, Sendable {
        /// `1.3`, `1.2`, `1.1` from the `# EVEMU` line; `nil` for the old format, which has none.
        public var version: String?
        public var windowsLineEndings = false
        /// The quote marks in front of the lines (`> `, `>> `), when it was quoted from a mail.
        public var quotedWith: String?
        /// The lines were indented.
        public var indented = false

        /// `evemu 1.3, Windows line endings, quoted from a mail with '> '`.
        public var description: String {
            var parts = [version.map { "evemu \($0)" } ?? "evemu's old format (no # EVEMU line)"]
            if windowsLineEndings { parts.append("Windows line endings") }
            if let quotedWith { parts.append("quoted from a mail with '\(quotedWith)' (read without the quote marks)") }
            if indented { parts.append("indented (read without the indentation)") }
            return parts.joined(separator: ", ")
        }
    }

    public init(parsing text: String) throws(EvemuError) {
        self = try Self.read(text).recording
    }

    /// Parses a recording and says what was found about the file.
    public static func read(_ text: String) throws(EvemuError) -> (recording: EvemuRecording, reading: Reading) {
        var reading = Reading()
        var name: String?
        var nameLine = 0
        var identity: InputDeviceIdentity?
        var bitmaps: [UInt16: [UInt8]] = [:]
        var properties: [UInt8] = []
        var events: [InputEvent] = []
        var firstEventLine: Int?
        for (index, rawLine) in lines(of: text, crlf: &reading.windowsLineEndings).enumerated() {
            let number = index + 1
            func fail(_ what: String) -> EvemuError { EvemuError(line: number, message: what) }
            let (line, quote, indent) = unquoted(rawLine)
            if let quote, !line.isEmpty {
                reading.quotedWith = reading.quotedWith ?? quote
            } else if indent, !line.isEmpty {
                reading.indented = true
            }
            if number == 1 || reading.version == nil, line.hasPrefix("# EVEMU ") {
                reading.version = String(line.dropFirst("# EVEMU ".count).prefix { !$0.isWhitespace })
                continue
            }
            if line.hasPrefix("N:") {
                guard name == nil else {
                    throw fail("a second N: line ('\(excerpt(line))'; the first is on line \(nameLine)): this file holds more than one recording; keep one")
                }
                // The name runs to the end of the line: it may itself contain '#'.
                name = String(line.dropFirst(2).drop { $0 == " " || $0 == "\t" })
                nameLine = number
                if let firstEventLine {
                    throw fail("the description (N:, I:, P:, B: lines) comes after the events (the first E: line is line \(firstEventLine)): put the description (the .desc file of an old-format recording) in front of the events")
                }
                continue
            }
            let fields = line.prefix { $0 != "#" }.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard !fields.isEmpty else { continue }
            switch fields[0] {
            case "I:":
                let values = fields.dropFirst().compactMap { UInt16($0, radix: 16) }
                guard fields.count == 5, values.count == 4 else {
                    throw fail("an I: line needs bus, vendor, product and version in hex, e.g. 'I: 0003 046d c52b 0111'")
                }
                identity = InputDeviceIdentity(busType: values[0], vendor: values[1], product: values[2], version: values[3])
            case "P:":
                let values = fields.dropFirst().compactMap { UInt8($0, radix: 16) }
                guard fields.count == 9, values.count == 8 else {
                    throw fail("a P: line needs 8 bytes in hex")
                }
                properties += values
            case "B:":
                let values = fields.dropFirst().compactMap { UInt8($0, radix: 16) }
                guard fields.count == 10, values.count == 9 else {
                    throw fail("a B: line needs an event type and 8 bytes in hex, e.g. 'B: 01 00 00 00 00 00 00 00 00'")
                }
                guard Int(values[0]) <= InputEventNames.evMax else {
                    throw fail("event type 0x\(String(values[0], radix: 16)) is above EV_MAX (0x1f)")
                }
                bitmaps[UInt16(values[0]), default: []] += values.dropFirst()
            case "A:", "L:", "S:":
                continue  // absolute axes' ranges, LED and switch states: not needed to judge a button
            case "E:":
                guard fields.count == 5 else {
                    throw fail("an E: line needs time, type, code and value, e.g. 'E: 0.000001 0001 0094 0001'")
                }
                let time = fields[1].split(separator: ".", omittingEmptySubsequences: false)
                guard time.count == 2, let seconds = Int64(time[0]), seconds >= 0, time[1].count == 6,
                    let micros = Int64(time[1]), micros >= 0
                else { throw fail("'\(fields[1])' is not a time in seconds.microseconds, e.g. 1.000250") }
                guard let type = UInt16(fields[2], radix: 16), Int(type) <= InputEventNames.evMax else {
                    throw fail("'\(fields[2])' is not an event type (hex, up to 001f)")
                }
                guard let code = UInt16(fields[3], radix: 16) else { throw fail("'\(fields[3])' is not an event code (hex)") }
                guard let value = Int32(fields[4]) else { throw fail("'\(fields[4])' is not an event value (decimal)") }
                if let last = events.last, last.time > .seconds(seconds) + .microseconds(micros) {
                    throw fail("time \(fields[1]) goes back before the previous event's")
                }
                firstEventLine = firstEventLine ?? number
                events.append(InputEvent(seconds: seconds, microseconds: micros, type: type, code: code, value: value))
            default:
                throw fail("'\(excerpt(line))' is not an evemu line: each line of a recording begins with N:, I:, P:, B:, A:, L:, S:, E: or # (a comment)")
            }
        }
        guard let name else {
            if let firstEventLine {
                throw EvemuError(
                    line: nil,
                    message: "there is no description, only events (E: lines from line \(firstEventLine)): this is the .events half of an old-format evemu recording; put its description (the .desc file, with the N:, I:, P: and B: lines) in front of it, e.g. cat button.desc button.events > button.evemu")
            }
            throw EvemuError(line: nil, message: "no N: line: this is not an evemu recording")
        }
        guard let identity else {
            throw EvemuError(line: nil, message: "no I: line after the N: line (line \(nameLine)): the description lacks the device's identity; this is not a whole evemu recording")
        }
        return (EvemuRecording(name: name, identity: identity, bitmaps: bitmaps, properties: properties, events: events), reading)
    }

    /// The lines of `text`, split on `\n`, `\r\n` or a lone `\r` (in Swift `"\r\n"` is one `Character`, so
    /// splitting the characters on `"\n"` would see one line). A leading byte-order mark is dropped.
    static func lines(of text: String, crlf: inout Bool) -> [Substring] {
        var lines: [Substring] = []
        let scalars = text.unicodeScalars
        var start = scalars.startIndex
        if scalars.first == "\u{FEFF}" { start = scalars.index(after: start) }
        var index = start
        while index < scalars.endIndex {
            let scalar = scalars[index]
            if scalar == "\n" || scalar == "\r" {
                lines.append(Substring(scalars[start..<index]))
                var next = scalars.index(after: index)
                if scalar == "\r", next < scalars.endIndex, scalars[next] == "\n" {
                    crlf = true
                    next = scalars.index(after: next)
                }
                start = next
                index = next
            } else {
                index = scalars.index(after: index)
            }
        }
        if start < scalars.endIndex { lines.append(Substring(scalars[start..<scalars.endIndex])) }
        return lines
    }

    /// The line without mail quote marks (`>`, `> > `) and indentation in front; the quote marks found, and
    /// whether it was indented.
    static func unquoted(_ line: Substring) -> (line: Substring, quote: String?, indented: Bool) {
        var rest = line[...]
        let quoteEnd = rest.firstIndex { $0 != ">" && $0 != " " && $0 != "\t" } ?? rest.endIndex
        let prefix = rest[..<quoteEnd]
        rest = rest[quoteEnd...]
        guard prefix.contains(">") else { return (rest, nil, !prefix.isEmpty) }
        return (rest, String(prefix), false)
    }

    /// A line as found, shortened for an error message.
    static func excerpt(_ line: Substring) -> String {
        line.count > 40 ? String(line.prefix(40)) + "…" : String(line)
    }

    // MARK: Writing

    /// `EV_FF_STATUS`, written as a bitmap of zeros.
    static let evFFStatus: UInt16 = 0x17

    /// The highest code of each event type that evemu writes a bitmap for (libevdev's maxima).
    public static let typeMaxima: [(type: UInt16, max: Int)] = [
        (0x01, 0x2ff), (0x02, 0x0f), (0x03, 0x3f), (0x04, 0x07), (0x05, 0x10), (0x11, 0x0f), (0x12, 0x07),
        (0x14, 0x01), (0x15, 0x7f), (0x17, 0x01),
    ]

    /// The description header, as `evemu-record` writes it.
    public func header(kernel: String? = nil) -> String {
        func hex(_ v: some BinaryInteger, _ width: Int) -> String {
            let digits = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        var lines = ["# EVEMU 1.3"]
        if let kernel { lines.append("# Kernel: \(kernel)") }
        lines.append("# Input device name: \"\(name)\"")
        lines.append(
            "# Input device ID: bus 0x\(hex(identity.busType, 2)) vendor 0x\(hex(identity.vendor, 2)) product 0x\(hex(identity.product, 2)) version 0x\(hex(identity.version, 2))")
        lines.append("# Supported events:")
        for (type, _) in [(UInt16(0), 0)] + Self.typeMaxima where type == 0 || !codes(of: type).isEmpty {
            lines.append("#   Event type \(type) (\(InputEventNames.type(type)))")
            let codes = type == 0 ? [InputEventNames.synReport] : codes(of: type)
            for code in codes { lines.append("#     Event code \(code) (\(InputEventNames.code(type: type, code: code)))") }
        }
        lines.append("# Properties:")
        lines.append("N: \(name)")
        lines.append("I: \(hex(identity.busType, 4)) \(hex(identity.vendor, 4)) \(hex(identity.product, 4)) \(hex(identity.version, 4))")
        for start in stride(from: 0, to: max(properties.count, 1), by: 8) {
            let chunk = (start..<start + 8).map { $0 < properties.count ? properties[$0] : 0 }
            lines.append("P: " + chunk.map { hex($0, 2) }.joined(separator: " "))
        }
        lines.append("B: 00 0b 00 00 00 00 00 00 00")
        for (type, maximum) in Self.typeMaxima {
            let bytes = bitmaps[type] ?? []
            for start in stride(from: 0, to: (maximum + 1 + 7) / 8, by: 8) {
                let chunk = (start..<start + 8).map { $0 < bytes.count ? bytes[$0] : 0 }
                lines.append("B: \(hex(type, 2)) " + chunk.map { hex($0, 2) }.joined(separator: " "))
            }
        }
        lines += ["################################", "#      Waiting for events      #", "################################"]
        return lines.joined(separator: "\n") + "\n"
    }

    /// One `E:` line with its description comment, as evemu writes it. `time` is from the recording's start.
    public static func eventLine(_ event: InputEvent, time: Duration, sinceLastReport: Duration) -> String {
        let micros = time.microseconds
        let seconds = micros / 1_000_000
        let fraction = String(micros % 1_000_000)
        func hex4(_ v: UInt16) -> String { let d = String(v, radix: 16); return String(repeating: "0", count: 4 - d.count) + d }
        let value = event.value < 0
            ? "-" + String(repeating: "0", count: max(0, 3 - String(-Int64(event.value)).count)) + String(-Int64(event.value))
            : String(repeating: "0", count: max(0, 4 - String(event.value).count)) + String(event.value)
        let head = "E: \(seconds).\(String(repeating: "0", count: 6 - fraction.count))\(fraction) \(hex4(event.type)) \(hex4(event.code)) \(value)\t"
        let code = InputEventNames.code(type: event.type, code: event.code)
        if event.type == InputEventNames.evSyn {
            return head + "# ------------ \(code) (\(event.value)) ---------- +\(sinceLastReport.milliseconds)ms"
        }
        let padded = code + String(repeating: " ", count: max(0, 20 - code.count))
        return head + "# \(InputEventNames.type(event.type)) / \(padded) \(event.value)"
    }

    /// The whole file.
    public func render(kernel: String? = nil) -> String {
        var recorder = EvemuRecorder()
        return header(kernel: kernel) + events.map { recorder.line(for: $0) + "\n" }.joined()
    }
}

/// Writes `E:` lines as events arrive (`diag record`): times from just before the first event, and each
/// `SYN_REPORT`'s distance from the previous one in its comment, as evemu-record does.
public struct EvemuRecorder: Sendable {
    private var origin: Duration?
    /// Milliseconds (truncated) of the last `SYN_REPORT`; evemu's comment shows the difference of the
    /// truncated values, so this does too.
    private var lastReportMilliseconds: Int64 = 0

    public init() {}

    public mutating func line(for event: InputEvent) -> String {
        let origin = self.origin ?? (event.time - .microseconds(1))
        self.origin = origin
        let time = event.time - origin
        let since = Duration.milliseconds(time.milliseconds - lastReportMilliseconds)
        if event.type == InputEventNames.evSyn { lastReportMilliseconds = time.milliseconds }
        return EvemuRecording.eventLine(event, time: time, sinceLastReport: since)
    }
}

/// An evemu file that cannot be read: which line, and what is wrong with it.
public struct EvemuError: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int?
    public var message: String
    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

extension EvdevSession {
    /// Records this device as an evemu file (`diag record`): the header, with the bitmap of every event type
    /// the device has, once it is open; then one line per event. `write` gets text to append; `opened` is
    /// told the identity.
    public func record(
        _ flag: CancellationFlag, kernel: String? = nil, opened: (EvdevDeviceInfo) -> Void = { _ in },
        write: (String) -> Void
    ) throws -> End {
        var recorder = EvemuRecorder()
        return try run(flag) { device, info in
            var bitmaps: [UInt16: [UInt8]] = [:]
            for (type, _) in EvemuRecording.typeMaxima where info.eventTypes.contains(type) {
                switch type {
                case InputEventNames.evRep:
                    // The kernel has no EVIOCGBIT bitmap for EV_REP (EINVAL, as every USB keyboard-like box has
                    // autorepeat); libevdev, and so evemu-record, sets both of its codes, REP_DELAY and REP_PERIOD.
                    bitmaps[type] = EvemuRecording.bytes(of: [0, 1])
                case EvemuRecording.evFFStatus:
                    continue  // no EVIOCGBIT bitmap either, and libevdev knows no codes for it: evemu writes zeros
                default:
                    bitmaps[type] = EvemuRecording.bytes(of: try device.codes(of: type))
                }
            }
            write(EvemuRecording(device: info, bitmaps: bitmaps).header(kernel: kernel))
            opened(info)
        } events: { _, events in
            for event in events { write(recorder.line(for: event) + "\n") }
        }
    }
}
