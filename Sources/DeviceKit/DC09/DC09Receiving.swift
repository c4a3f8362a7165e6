/// What a DC-09 receiver answers each frame it is sent: the rules of the standard, as the centre's DC-09 port
/// will apply them (issue 15), in one pure place. An event is acknowledged only after the caller has stored it
/// durably: `decide` says `.store`, and `acknowledgement(of:)` is the answer to send once it is stored.
///
/// | frame | answer |
/// |---|---|
/// | not DC-09 (CRC, length, header, content) | `NAK` with our time: a damaged frame is sent again |
/// | an account we do not know, or encrypted under a key that does not open it | `NAK` |
/// | a timestamp outside the window (20 s ahead, 40 s behind) | `NAK` with our time: the sender corrects its clock and sends again |
/// | a message type or event code we do not take; clear from an account that has a key | `DUH`: not again as is |
/// | `NULL` (supervision) | `ACK` at once: nothing to store |
/// | an event | `.store`, then `ACK` (encrypted, with our time, when the frame was) |
///
/// Pure: time comes in as `now`; randomness (the pad of encrypted answers) from the caller.
public struct DC09Receiving: Sendable {
    public struct Account: Sendable {
        public var key: DC09Key?
        public init(key: DC09Key? = nil) { self.key = key }
    }

    public enum Decision: Sendable {
        /// Store `frame` durably, then send `acknowledgement(of: frame, now:)`.
        case store(DC09Frame)
        /// Send this answer (no storing), for `reason` (logs, counts).
        case answer(DC09Frame, reason: Reason)
    }

    public enum Reason: String, Hashable, Sendable {
        case supervision, malformed, unknownAccount, undecryptable, outsideWindow, unsupported, clearFromKeyedAccount
    }

    public var accounts: [String: Account]
    public var window: DC09TimeWindow
    /// The codes we take, per payload: SIA-DCS two-letter codes and Contact ID events; others get `DUH`.
    public var takes: @Sendable (DC09Frame.ID, String) -> Bool

    public init(accounts: [String: Account], window: DC09TimeWindow = .init(), takes: @escaping @Sendable (DC09Frame.ID, String) -> Bool = { _, _ in true }) {
        self.accounts = accounts
        self.window = window
        self.takes = takes
    }

    /// The account `name` names: accounts are hex digits, so upper and lower case are the same account.
    public func account(_ name: String) -> Account? {
        accounts[name] ?? accounts[name.uppercased()]
    }

    public func decide(_ bytes: some Collection<UInt8>, now: DC09Timestamp) -> Decision {
        let frame: DC09Frame
        do {
            frame = try DC09Frame.decode(bytes) { account in account.flatMap { self.account($0)?.key } }
        } catch {
            let named = Self.headerAccount(bytes)
            if let named, account(named) == nil { return .answer(nak(now), reason: .unknownAccount) }
            switch error {
            case .noKey: return .answer(nak(now), reason: named == nil ? .unknownAccount : .undecryptable)
            case .wrongKey: return .answer(nak(now), reason: .undecryptable)
            case .unknownID: return .answer(duh(account: named), reason: .unsupported)
            case .notEncryptedButKeyed: return .answer(duh(account: named), reason: .clearFromKeyedAccount)
            default: return .answer(nak(now), reason: .malformed)
            }
        }
        guard let name = frame.account, account(name) != nil else { return .answer(nak(now), reason: .unknownAccount) }
        if frame.id.isAnswer { return .answer(answer(.duh, to: frame), reason: .unsupported) }
        if let timestamp = frame.timestamp, !window.contains(timestamp, now: now) {
            return .answer(nak(now), reason: .outsideWindow)
        }
        if frame.id == .null { return .answer(acknowledgement(of: frame, now: now), reason: .supervision) }
        guard let code = Self.code(of: frame), takes(frame.id, code) else { return .answer(answer(.duh, to: frame), reason: .unsupported) }
        return .store(frame)
    }

    /// The `ACK` of `frame`: its sequence, receiver, line and account; for an encrypted frame, with our time
    /// (`encoded(_:answering:random:)` then encrypts it under the account's key).
    public func acknowledgement(of frame: DC09Frame, now: DC09Timestamp) -> DC09Frame {
        var ack = answer(.ack, to: frame)
        if frame.encrypted { ack.timestamp = now }
        return ack
    }

    /// The bytes of `answer` to `frame`: an `ACK` to an encrypted frame is encrypted under the account's key;
    /// a `NAK` or `DUH` goes in the clear (as pysiaalarm answers), since the sender may not share our key.
    public func encoded(_ answer: DC09Frame, answering frame: DC09Frame?, random: inout some RandomNumberGenerator) throws(DC09Error) -> [UInt8] {
        let key = answer.id == .ack && frame?.encrypted == true ? frame?.account.flatMap { account($0)?.key } : nil
        return try answer.encoded(key: key, random: &random)
    }

    /// The event code of an event frame: SIA-DCS's two letters after `N` (and any `ri…/`, `id…/`, `ti…/`
    /// modifiers), Contact ID's qualifier and event (`1101`).
    public static func code(of frame: DC09Frame) -> String? {
        guard let bar = frame.data.firstIndex(of: "|") else { return nil }
        var rest = frame.data[frame.data.index(after: bar)...]
        switch frame.id {
        case .contactID:
            let digits = rest.prefix(4)
            return digits.count == 4 && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber) ? String(digits) : nil
        case .siaDCS:
            guard rest.first == "N" else { return nil }
            rest.removeFirst()
            // Modifiers: two lower-case letters and digits (or a time), each ending at `/` or the code.
            while let first = rest.first, first.isLowercase {
                rest = rest.dropFirst(2).drop { $0.isNumber || $0 == ":" }
                if rest.first == "/" { rest.removeFirst() }
            }
            let code = rest.prefix(2)
            return code.count == 2 && code.allSatisfy({ $0.isUppercase && $0.isASCII }) ? String(code) : nil
        default:
            return nil
        }
    }

    private func nak(_ now: DC09Timestamp) -> DC09Frame {
        DC09Frame(id: .nak, sequence: "0000", receiver: "0", line: "0", account: nil, timestamp: now)
    }

    private func answer(_ id: DC09Frame.ID, to frame: DC09Frame) -> DC09Frame {
        DC09Frame(id: id, sequence: frame.sequence, receiver: frame.receiver, line: frame.line, account: frame.account)
    }

    /// A `DUH` to a frame that could not be read as a whole: its sequence is unknown.
    private func duh(account: String?) -> DC09Frame {
        DC09Frame(id: .duh, sequence: "0000", receiver: "0", line: "0", account: account)
    }

    /// The account of a frame's clear header, when it has one, whatever else is wrong with it.
    static func headerAccount(_ bytes: some Collection<UInt8>) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let hash = text.firstIndex(of: "#") else { return nil }
        let digits = text[text.index(after: hash)...].prefix { $0.isASCII && $0.isHexDigit }
        return (3...16).contains(digits.count) ? String(digits) : nil
    }
}
