/// One SIA DC-09 message (ANSI/SIA DC-09, Internet Protocol Event Reporting), sent or answered:
///
/// ```
/// <LF> crc(4 hex) 0LLL(4 hex) "id" seq [Rrcvr] Lpref [#acct] [ data ] [ext]… [_HH:MM:SS,MM-DD-YYYY] <CR>
/// encrypted:  … "*id" seq [Rrcvr] Lpref [#acct] [ hex(AES-CBC(pad | data ] [ext]… _timestamp)) <CR>
/// ```
/// The CRC is CRC-16/ARC and the length counts the message from the opening quote to the byte before the
/// carriage return. `id` is `SIA-DCS` or `ADM-CID` (events), `NULL` (supervision), or an answer: `ACK`,
/// `NAK` (carries the receiver's time, sequence 0000), `DUH` (not understood), `RSP`.
///
/// Pure: a value and its bytes; no clock (the timestamp is a field) and no I/O. Randomness (the pad in front
/// of encrypted content) comes from the caller.
public struct DC09Frame: Hashable, Sendable {
    public enum ID: String, Hashable, Sendable, CaseIterable {
        case siaDCS = "SIA-DCS"
        case contactID = "ADM-CID"
        case null = "NULL"
        case ack = "ACK"
        case nak = "NAK"
        case duh = "DUH"
        case rsp = "RSP"

        /// An answer from a receiver rather than a message from a transmitter.
        public var isAnswer: Bool { self == .ack || self == .nak || self == .duh || self == .rsp }
    }

    public var id: ID
    /// Four digits, `0001`–`9999`, the same on each retransmission of a message (`0000` on a `NAK`). Kept as
    /// written: some equipment counts in hex digits, and an answer echoes what it answers.
    public var sequence: String
    /// The receiver number after `R` (hex digits), if any.
    public var receiver: String?
    /// The line (account prefix) after `L` (hex digits).
    public var line: String?
    /// The account after `#` (3–16 hex digits); `nil` on a `NAK`, which says `A0` instead.
    public var account: String?
    /// What is inside the first brackets, without them: `#1234|Nri1/QA001` (SIA-DCS), `#1234|1101 01 001`
    /// (Contact ID), empty for `NULL` and answers.
    public var data: String
    /// Extended data blocks after the data (`X…`, `Y…`, `V…`), each without its brackets.
    public var extended: [String]
    public var timestamp: DC09Timestamp?
    /// Whether the frame came encrypted (decoding sets it; `encoded` encrypts when given a key).
    public internal(set) var encrypted = false

    public init(
        id: ID, sequence: String, receiver: String? = nil, line: String? = "0", account: String?, data: String = "",
        extended: [String] = [], timestamp: DC09Timestamp? = nil
    ) {
        self.id = id
        self.sequence = sequence
        self.receiver = receiver
        self.line = line
        self.account = account
        self.data = data
        self.extended = extended
        self.timestamp = timestamp
    }

    /// The largest message the length field can state (`0LLL`: three hex digits).
    public static let maximumMessageLength = 0xFFF

    /// A sequence number's four digits.
    public static func sequence(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    // MARK: Writing

    /// The whole frame, line feed to carriage return; its content encrypted under `key` if one is given.
    public func encoded(key: DC09Key? = nil, random: inout some RandomNumberGenerator) throws(DC09Error) -> [UInt8] {
        try check()
        var message = "\"" + (key == nil ? "" : "*") + id.rawValue + "\"" + sequence
        if let receiver { message += "R" + receiver }
        if let line { message += "L" + line }
        if let account {
            message += "#" + account
        } else if id == .nak {
            message += "A0"
        }
        message += "["
        var content = data + "]" + extended.map { "[" + $0 + "]" }.joined()
        if let timestamp { content += timestamp.description }
        if let key {
            message += key.encrypt(Array(content.utf8), padding: &random)
        } else {
            message += content
        }
        let bytes = Array(message.utf8)
        guard bytes.count <= Self.maximumMessageLength else { throw .tooLong(bytes.count) }
        return [0x0A] + Array((hex4(DC09CRC.compute(bytes)) + hex4(UInt16(bytes.count))).utf8) + bytes + [0x0D]
    }

    private func check() throws(DC09Error) {
        func isHex(_ text: String, _ counts: ClosedRange<Int>) -> Bool {
            counts.contains(text.utf8.count) && text.utf8.allSatisfy { DC09Frame.isUpperHexDigit($0) }
        }
        guard isHex(sequence, 4...4) else { throw .field("the sequence \"\(sequence)\" is not four digits") }
        // Receiver, line and account in either case: a transmitter that wrote them in lower case is answered as
        // it wrote them.
        func isAnyHex(_ text: String, _ counts: ClosedRange<Int>) -> Bool {
            counts.contains(text.utf8.count) && text.utf8.allSatisfy(DC09Frame.isHexDigit)
        }
        if let receiver, !isAnyHex(receiver, 1...6) { throw .field("the receiver \"\(receiver)\" is not 1 to 6 hex digits") }
        if let line, !isAnyHex(line, 1...6) { throw .field("the line \"\(line)\" is not 1 to 6 hex digits") }
        if let account, !isAnyHex(account, 3...16) { throw .field("the account \"\(account)\" is not 3 to 16 hex digits") }
        for text in [data] + extended where text.utf8.contains(where: { $0 == UInt8(ascii: "[") || $0 == UInt8(ascii: "]") || $0 < 0x20 || $0 > 0x7E }) {
            throw .field("\"\(text)\" holds a bracket or a character outside printable ASCII")
        }
    }

    // MARK: Reading

    /// Reads one frame: `bytes` from its line feed to its carriage return (both optional, as a stream
    /// splitter hands them), decrypting with `key(account)` when it is encrypted.
    public static func decode(_ bytes: some Collection<UInt8>, key: (String?) -> DC09Key?) throws(DC09Error) -> DC09Frame {
        var text = ArraySlice(bytes)
        if text.first == 0x0A { text.removeFirst() }
        if text.last == 0x0D { text.removeLast() }
        guard text.count >= 8 + 12 else { throw .tooShort(text.count) }
        guard text.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else { throw .notASCII }
        let crcText = String(decoding: text.prefix(4), as: UTF8.self)
        let lengthText = String(decoding: text.dropFirst(4).prefix(4), as: UTF8.self)
        guard let crc = UInt16(crcText, radix: 16), crcText.utf8.allSatisfy({ isHexDigit($0) }) else { throw .crcField(crcText) }
        guard let length = Int(lengthText, radix: 16), lengthText.utf8.allSatisfy({ isHexDigit($0) }) else {
            throw .lengthField(lengthText)
        }
        let message = text.dropFirst(8)
        guard length == message.count else { throw .lengthMismatch(declared: length, actual: message.count) }
        guard length <= maximumMessageLength else { throw .tooLong(length) }
        let computed = DC09CRC.compute(message)
        guard computed == crc else { throw .crcMismatch(declared: crc, computed: computed) }
        return try parse(Substring(String(decoding: message, as: UTF8.self)), key: key)
    }

    private static func parse(_ message: Substring, key: (String?) -> DC09Key?) throws(DC09Error) -> DC09Frame {
        var rest = message
        guard rest.first == "\"" else { throw .header("it does not begin with a quoted message type") }
        rest.removeFirst()
        let encrypted = rest.first == "*"
        if encrypted { rest.removeFirst() }
        guard let close = rest.firstIndex(of: "\"") else { throw .header("the message type's closing quote is missing") }
        guard let id = ID(rawValue: String(rest[..<close])) else { throw .unknownID(String(rest[..<close])) }
        rest = rest[rest.index(after: close)...]
        let sequence = rest.prefix(4)
        guard sequence.count == 4, sequence.utf8.allSatisfy({ isHexDigit($0) }) else {
            throw .header("the sequence \"\(sequence)\" is not four digits")
        }
        rest = rest.dropFirst(4)
        guard let bracket = rest.firstIndex(of: "[") else { throw .header("the content's opening bracket is missing") }
        var header = rest[..<bracket]
        rest = rest[rest.index(after: bracket)...]
        // A NAK writes `A0` where others write `#account` ("NAK"0000R0L0A0[]), which would read as line digits.
        if id == .nak, header.hasSuffix("A0") { header = header.dropLast(2) }
        func field(_ letter: Character) -> String? {
            guard header.first == letter else { return nil }
            let digits = header.dropFirst().prefix { $0.isASCII && $0.isHexDigit }
            header = header.dropFirst(1 + digits.count)
            return String(digits)
        }
        // R, L and # in any order, each at most once: pysiaalarm's own NAK writes `L0R0A0`.
        var receiver: String?
        var line: String?
        var account: String?
        while let letter = header.first {
            switch letter {
            case "R" where receiver == nil: receiver = field("R")
            case "L" where line == nil: line = field("L")
            case "#" where account == nil: account = field("#")
            default: throw .header("\"\(header)\" before the content is not Rreceiver, Lline or #account")
            }
        }
        guard header.isEmpty else { throw .header("\"\(header)\" before the content is not Rreceiver, Lline or #account") }
        if let receiver, !(1...6).contains(receiver.count) { throw .header("the receiver \"R\(receiver)\" is not 1 to 6 hex digits") }
        if let line, !(1...6).contains(line.count) { throw .header("the line \"L\(line)\" is not 1 to 6 hex digits") }
        if let account, !(3...16).contains(account.count) { throw .header("the account \"#\(account)\" is not 3 to 16 hex digits") }

        let accountKey = key(account)
        var content: Substring
        if encrypted {
            guard let accountKey else { throw .noKey(account: account) }
            let plain = try accountKey.decrypt(hex: rest)
            // The pad ends at the first `|` and may hold any byte but `|`, `[` and `]` (dc09-spt's include
            // control characters); an answer may have no `|`, its pad running up to the `]` (pysiaalarm's).
            // The pad fills a block (dc09-spt writes 2 to 17 characters, we 1 to 16): a separator further in
            // is another key's random bytes (unbounded, about one in a hundred of them had a `|` or `]` among
            // the last bytes, the few after it printable, and was parsed as content).
            let start: Int
            if let bar = plain.firstIndex(of: UInt8(ascii: "|")), bar < Self.maximumPadCount {
                start = bar + 1
            } else if let bracket = plain.firstIndex(of: UInt8(ascii: "]")), bracket < Self.maximumPadCount,
                !plain.contains(UInt8(ascii: "|"))
            {
                start = bracket
            } else {
                throw .wrongKey(account: account)
            }
            guard plain[start...].allSatisfy({ $0 >= 0x20 && $0 <= 0x7E }) else {
                throw .wrongKey(account: account)
            }
            content = Substring(String(decoding: plain[start...], as: UTF8.self))
        } else {
            if accountKey != nil, !id.isAnswer { throw .notEncryptedButKeyed(account: account) }
            content = rest
        }

        let parsed: (data: String, extended: [String], timestamp: DC09Timestamp?)
        do throws(DC09Error) {
            parsed = try parse(content: content)
        } catch {
            // Opened text that is not DC-09 content: another key's random bytes (or, rarely, a sender that
            // encrypted something else); a clear frame's damage is named as it is.
            if encrypted { throw .wrongKey(account: account) }
            throw error
        }
        let (data, extended, timestamp) = parsed
        // DC-09 stamps every encrypted message (its replay defence): an event or NULL opened without one is
        // another key's bytes that happened to end in `]` (about one wrong key in 450 for a NULL's 32 bytes).
        if encrypted, !id.isAnswer, timestamp == nil { throw .wrongKey(account: account) }
        var frame = DC09Frame(
            id: id, sequence: String(sequence), receiver: receiver, line: line, account: account, data: data,
            extended: extended, timestamp: timestamp)
        frame.encrypted = encrypted
        return frame
    }

    /// The content after the header (or the pad): data up to `]`, extended data blocks, an optional timestamp.
    private static func parse(content: Substring) throws(DC09Error) -> (data: String, extended: [String], timestamp: DC09Timestamp?) {
        var content = content
        guard let end = content.firstIndex(of: "]") else { throw .content("the data's closing bracket is missing") }
        let data = String(content[..<end])
        guard !data.contains("[") else { throw .content("a bracket inside the data") }
        content = content[content.index(after: end)...]
        var extended: [String] = []
        while content.first == "[" {
            guard let close = content.firstIndex(of: "]") else { throw .content("an extended data block is not closed") }
            extended.append(String(content[content.index(after: content.startIndex)..<close]))
            content = content[content.index(after: close)...]
        }
        var timestamp: DC09Timestamp?
        if content.first == "_" {
            let written = content.dropFirst()
            guard let parsed = DC09Timestamp(text: written) else { throw .timestamp(String(written)) }
            timestamp = parsed
        } else if !content.isEmpty {
            throw .content("\"\(content.prefix(40))\" after the data is neither extended data nor a timestamp")
        }
        return (data, extended, timestamp)
    }

    /// The longest pad a receiver takes in front of an encrypted content: under two AES blocks.
    static let maximumPadCount = 32

    static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
            || (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "f"))
    }

    static func isUpperHexDigit(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "F"))
    }
}

/// CRC-16/ARC (polynomial 0x8005 reflected, 0xA001; initial 0; no final XOR), as DC-09 computes it.
public enum DC09CRC {
    public static func compute(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc ^= UInt16(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
        }
        return crc
    }
}
