/// Why bytes are not a DC-09 frame we can read, in words a technician can act on. Never contains a key.
public enum DC09Error: Error, Hashable, Sendable, CustomStringConvertible {
    case keyLength(Int)
    case tooShort(Int)
    case tooLong(Int)
    case notFramed
    case lengthField(String)
    case lengthMismatch(declared: Int, actual: Int)
    case crcField(String)
    case crcMismatch(declared: UInt16, computed: UInt16)
    case notASCII
    case header(String)
    case unknownID(String)
    case content(String)
    case timestamp(String)
    case noKey(account: String?)
    /// The encrypted content does not open under the account's key.
    case wrongKey(account: String?)
    case notEncryptedButKeyed(account: String?)
    case encryptedNotHex
    case encryptedLength(Int)
    case field(String)

    public var description: String {
        switch self {
        case .keyLength(let n): "a DC-09 key is 16, 24 or 32 bytes (AES-128, -192, -256), got \(n)"
        case .tooShort(let n): "\(n) bytes are too few for a DC-09 frame (CRC, length and at least \"ID\"0000L0[)"
        case .tooLong(let n): "a DC-09 frame of \(n) bytes is longer than its length field can say (4,095 bytes of message)"
        case .notFramed: "a DC-09 frame begins with a line feed and ends with a carriage return"
        case .lengthField(let text): "the length field \"\(text)\" is not 0LLL in hex"
        case .lengthMismatch(let declared, let actual): "the length field says \(declared) bytes but the message has \(actual)"
        case .crcField(let text): "the CRC field \"\(text)\" is not four hex digits"
        case .crcMismatch(let declared, let computed):
            "CRC mismatch: the frame says \(hex4(declared)), its message gives \(hex4(computed)) (damaged in transit, or not DC-09)"
        case .notASCII: "a DC-09 message is ASCII; this one has other bytes"
        case .header(let why): "the header is not DC-09: \(why)"
        case .unknownID(let id): "unknown message type \"\(id)\" (known: SIA-DCS, ADM-CID, NULL, ACK, NAK, DUH, RSP)"
        case .content(let why): "the content is not DC-09: \(why)"
        case .timestamp(let text): "the timestamp \"\(text)\" is not _HH:MM:SS,MM-DD-YYYY"
        case .noKey(let account): "the frame is encrypted but account \(account ?? "(none)") has no key here"
        case .wrongKey(let account): "the encrypted content does not decrypt to DC-09 text under account \(account ?? "(none)")'s key: the sender's key differs (or it encrypted something other than DC-09 text)"
        case .notEncryptedButKeyed(let account): "account \(account ?? "(none)") has a key, so its frames must be encrypted; this one is not"
        case .encryptedNotHex: "the encrypted content is not hex"
        case .encryptedLength(let n): "the encrypted content is \(n) bytes, not a non-zero multiple of 16 (AES blocks)"
        case .field(let why): "cannot write the frame: \(why)"
        }
    }
}

func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - digits.count) + digits
}
