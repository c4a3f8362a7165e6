/// `[center] protocol = "dc09"`: the device reports to an alarm receiving centre over SIA DC-09 (docs/dc09.md)
/// instead of our protocol.
///
/// ```toml
/// [center]
/// primary = "arc.example:12345"
/// transport = "tcp"            # tcp | udp
/// protocol = "dc09"            # devicekit (the default) | dc09
/// account = "1234"             # 3–16 hex digits: the account at the receiving centre
/// receiver = "0"               # the receiver number, hex (1–6 digits)
/// line = "0"                   # the line (account prefix), hex (1–6 digits)
/// format = "sia"               # sia (SIA-DCS) | cid (ADM-CID, Contact ID)
/// dc09_key_file = "dc09.key"   # optional: the account's AES key in hex (or dc09_key = "…"); frames are then encrypted
/// supervision_s = 60           # a NULL supervision frame this often (the receiver's supervision time)
/// ```
public struct DC09Settings: Hashable, Sendable {
    public enum Format: String, Hashable, Sendable, CaseIterable {
        case sia, cid
        public var id: DC09Frame.ID { self == .cid ? .contactID : .siaDCS }
    }

    public var account: String
    public var receiver: String
    public var line: String
    public var format: Format
    /// The account's AES key; `nil`: frames in the clear.
    public var key: KeySource?
    public var supervisionSeconds: UInt16

    public init(account: String, receiver: String = "0", line: String = "0", format: Format = .sia, key: KeySource? = nil, supervisionSeconds: UInt16 = 60) {
        self.account = account
        self.receiver = receiver
        self.line = line
        self.format = format
        self.key = key
        self.supervisionSeconds = supervisionSeconds
    }

    /// The settings `[center]` names besides `primary`, `secondary`, `transport` and `protocol`.
    static let keys = ["account", "receiver", "line", "format", "dc09_key", "dc09_key_file", "supervision_s"]

    /// Reads them from `[center]` (`table` is its name, for the errors).
    static func read(_ centre: inout TableReader, table: String) throws(DeviceConfigError) -> DC09Settings {
        func hexDigits(_ key: String, _ value: String, _ counts: ClosedRange<Int>, example: String) throws(DeviceConfigError) -> String {
            let upper = value.uppercased()
            guard counts.contains(upper.count), upper.utf8.allSatisfy({ DC09Frame.isUpperHexDigit($0) }) else {
                throw DeviceConfigError("\(table).\(key)", "\"\(value)\" is not \(counts.lowerBound) to \(counts.upperBound) hex digits; write e.g. \(key) = \"\(example)\"")
            }
            return upper
        }
        guard let accountText = try centre.string("account") else {
            throw DeviceConfigError("\(table).account", "missing: protocol = \"dc09\" reports under an account; write e.g. account = \"1234\" (3 to 16 hex digits, as the receiving centre assigned it)")
        }
        let account = try hexDigits("account", accountText, 3...16, example: "1234")
        let receiver = try hexDigits("receiver", try centre.string("receiver") ?? "0", 1...6, example: "0")
        let line = try hexDigits("line", try centre.string("line") ?? "0", 1...6, example: "0")
        let format = try centre.choice("format", Format.self) ?? .sia
        var key: KeySource?
        switch (try centre.string("dc09_key"), try centre.string("dc09_key_file")) {
        case (let hex?, nil):
            do { key = .bytes(try KeyKind.dc09.parse(hex)) } catch { throw DeviceConfigError("\(table).dc09_key", error.description) }
        case (nil, let path?):
            guard !path.isEmpty else { throw DeviceConfigError("\(table).dc09_key_file", "empty; write the path of a file holding the account's AES key in hex") }
            key = .file(path)
        case (.some, .some):
            throw DeviceConfigError("\(table).dc09_key", "both dc09_key and dc09_key_file are set; keep one")
        case (nil, nil):
            key = nil
        }
        let supervision = try centre.integer("supervision_s", in: 10...Int(UInt16.max), example: "supervision_s = 60") ?? 60
        return DC09Settings(account: account, receiver: receiver, line: line, format: format, key: key, supervisionSeconds: UInt16(supervision))
    }

    /// The lines `render` writes under `[center]`.
    var rendered: [String] {
        var lines = [
            "protocol = \"dc09\"", "account = \(TOMLText.quote(account))", "receiver = \(TOMLText.quote(receiver))",
            "line = \(TOMLText.quote(line))", "format = \(TOMLText.quote(format.rawValue))",
        ]
        switch key {
        case .bytes(let bytes)?: lines.append("dc09_key = \(TOMLText.quote(Hex.encode(bytes)))")
        case .file(let path)?: lines.append("dc09_key_file = \(TOMLText.quote(path))")
        case nil: break
        }
        lines.append("supervision_s = \(supervisionSeconds)")
        return lines
    }

    /// The framing's configuration, with the key read (from its file if that is where it is).
    public func frameSession() throws(DeviceConfigError) -> DC09FrameSession.Configuration {
        var dc09Key: DC09Key?
        if let key {
            let bytes: [UInt8]
            switch key {
            case .bytes(let b): bytes = b
            case .file(let path):
                let read: [UInt8]?
                do { read = try DurableFile(path: path).read() } catch {
                    throw DeviceConfigError("center.dc09_key_file", "cannot read \(path): \(error)")
                }
                guard let read else { throw DeviceConfigError("center.dc09_key_file", "\(path) does not exist") }
                do { bytes = try KeyKind.dc09.parse(String(decoding: read, as: UTF8.self)) } catch {
                    throw DeviceConfigError("center.dc09_key_file", "\(path): \(error.description)")
                }
            }
            do { dc09Key = try DC09Key(bytes: bytes) } catch { throw DeviceConfigError("center.dc09_key", error.description) }
        }
        return DC09FrameSession.Configuration(account: account, receiver: receiver, line: line, payload: format.id, key: dc09Key)
    }
}
