import Crypto
import Foundation

/// A device's root key and the keys derived from it (protocol.md §3.2).
///
/// ```
/// root  = the provisioned key, 16 to 64 bytes, or HKDF-SHA256(master, salt "DeviceKit v1 device",
///         info = id (4 B), or id ‖ epoch (4 + 2 B) for a key epoch above 0)
/// up    = HKDF-SHA256(root, salt "",             info "DeviceKit v1 up")     device → centre
/// down  = HKDF-SHA256(root, salt = anchor (6 B),  info "DeviceKit v1 down")   centre → device, per session
/// ```
/// The down key depends on the session's anchor (the counter of its `sessionStart`), which never repeats, so
/// a centre needs no durable counter of its own to keep nonces unique.
///
/// The **key epoch** counts a device's keys: re-provisioning (after a lost state directory, whose counter
/// reservation is gone) moves it to the next epoch, whose key is new, so no (key, nonce) pair repeats; the
/// centre retires the old epoch when the new one opens a session.
public struct DeviceKey: Sendable {
    /// The root key. A fleet device's is kept inline (32 bytes, no heap object: a load run holds a million
    /// keys), so that a session's down key is one HKDF, not two (the root derived again from the master each
    /// time, as before: half of a handshake's key work).
    private enum Root: Sendable {
        case provisioned(SymmetricKey)
        case fleet(InlineKey)
    }

    public let deviceID: UInt32
    public let epoch: UInt16
    private let source: Root
    private let up: InlineKey
    /// Seals and opens device → centre frames.
    public var upKey: SymmetricKey { up.symmetricKey }
    /// The same key, without the `SymmetricKey` (a heap object) made on every use: for the per-frame paths.
    var upInlineKey: InlineKey { up }

    /// A provisioned key of 16 to 64 bytes, of key epoch `epoch`.
    public init(deviceID: UInt32, rootKey: [UInt8], epoch: UInt16 = 0) throws(KeyError) {
        try KeyKind.device.check(length: rootKey.count)
        let root = SymmetricKey(data: rootKey)
        self.init(deviceID: deviceID, epoch: epoch, source: .provisioned(root), root: root)
    }

    /// The key of device `deviceID`, epoch `epoch`, in a fleet that shares one master key.
    public init(deviceID: UInt32, master: FleetMasterKey, epoch: UInt16 = 0) {
        let root = master.rootKey(for: deviceID, epoch: epoch)
        self.init(deviceID: deviceID, epoch: epoch, source: .fleet(root), root: root)
    }

    private init(deviceID: UInt32, epoch: UInt16, source: Root, root: some ContiguousBytes) {
        self.deviceID = deviceID
        self.epoch = epoch
        self.source = source
        self.up = InlineKey.hkdfSHA256(inputKeyMaterial: root, salt: [UInt8](), info: Self.upInfo)
    }

    private static let upInfo = Array("DeviceKit v1 up".utf8)
    private static let downInfo = Array("DeviceKit v1 down".utf8)

    /// Seals and opens centre → device frames of the session whose `sessionStart` had counter `anchor`.
    public func downKey(anchor: UInt64) -> SymmetricKey {
        // The anchor's 48 bits, big-endian.
        withUnsafeBytes(of: (anchor << 16).bigEndian) { bytes in
            let salt = UnsafeRawBufferPointer(rebasing: bytes[0..<6])
            let down: InlineKey
            switch source {
            case .provisioned(let root): down = InlineKey.hkdfSHA256(inputKeyMaterial: root, salt: salt, info: Self.downInfo)
            case .fleet(let root): down = InlineKey.hkdfSHA256(inputKeyMaterial: root, salt: salt, info: Self.downInfo)
            }
            return down.symmetricKey
        }
    }
}

/// The fleet master key from which every device's root key is derived, so a centre serving 100,000 devices
/// holds one secret instead of a 100,000-line key file.
///
/// Held as HKDF's pseudorandom key rather than as the master itself: the salt and the master are the same for
/// every device, so is the extract step's output, `PRK = HMAC(salt, master)`. It is computed once, and kept as
/// an HMAC key made ready (`PreparedHMACKey`), so a device's root key costs one HMAC of two SHA-256 blocks,
/// where the whole HKDF took two HMACs of four blocks each (a centre derives it on a device's first frame, a
/// load run for each device it simulates).
public struct FleetMasterKey: Sendable {
    private let expandKey: PreparedHMACKey

    /// 32 to 64 bytes.
    public init(bytes: [UInt8]) throws(KeyError) {
        try KeyKind.fleetMaster.check(length: bytes.count)
        var pseudoRandomKey = InlineKey.hkdfExtract(salt: Self.salt, inputKeyMaterial: bytes)
        defer { pseudoRandomKey.wipe() }
        expandKey = pseudoRandomKey.withUnsafeBytes { PreparedHMACKey(key: $0) }
    }

    /// protocol.md §3.2: HKDF-SHA256(IKM = master, salt = "DeviceKit v1 device", info = id as 4 bytes, then
    /// for an epoch above 0 the epoch as 2 bytes), 32 bytes; big-endian. HKDF's expand step over the prepared
    /// PRK: `T(1) = HMAC(PRK, info ‖ 0x01)`.
    func rootKey(for deviceID: UInt32, epoch: UInt16 = 0) -> InlineKey {
        let info = (deviceID.bigEndian, epoch.bigEndian)
        return InlineKey { okm in
            withUnsafeBytes(of: info) { info in
                // The tuple lies as id (4 B) then epoch (2 B), with no padding between them.
                expandKey.authenticate(UnsafeRawBufferPointer(rebasing: info[0..<(epoch > 0 ? 6 : 4)]), suffix: 0x01, into: okm)
            }
        }
    }

    private static let salt = Array("DeviceKit v1 device".utf8)
}

/// What a key is for, and so the lengths it may have (protocol.md §3.2). `parse` is the one reader of keys
/// written as hex: key files, device.toml's `key` and `key_file`, the centre's registry, `--key-file`,
/// `--master-file`, systemd credentials and `$DEVICEKIT_MASTER_KEY`.
public enum KeyKind: Sendable, CustomStringConvertible {
    /// A device's root key: 16 to 64 bytes.
    case device
    /// The fleet master key every device's root key is derived from: 32 to 64 bytes.
    case fleetMaster
    /// A DC-09 account's AES key: 16, 24 or 32 bytes.
    case dc09

    public var lengths: ClosedRange<Int> {
        switch self {
        case .device: 16...64
        case .fleetMaster: 32...64
        case .dc09: 16...32
        }
    }

    /// "device key", "fleet master key": what a message calls it.
    public var description: String {
        switch self {
        case .device: "device key"
        case .fleetMaster: "fleet master key"
        case .dc09: "DC-09 key"
        }
    }

    /// Throws unless a key of this kind may be `count` bytes long.
    public func check(length count: Int) throws(KeyError) {
        guard lengths.contains(count), self != .dc09 || count % 8 == 0 else {
            switch self {
            case .device: throw .wrongLength(count)
            case .fleetMaster: throw .wrongMasterLength(count)
            case .dc09: throw .wrongDC09Length(count)
            }
        }
    }

    /// The bytes of a key of this kind written in hex (spaces, colons, line ends and a leading 0x are
    /// ignored), or what is wrong with it: never the key itself.
    public func parse(_ text: some StringProtocol) throws(KeyError) -> [UInt8] {
        let bytes: [UInt8]
        do throws(HexError) { bytes = try Hex.parse(text) } catch { throw .notHex(error) }
        try check(length: bytes.count)
        return bytes
    }
}

/// Why a key given on the command line or in a file was refused. Never contains the key.
public enum KeyError: Error, Equatable, Sendable, CustomStringConvertible {
    case wrongLength(Int)
    case wrongMasterLength(Int)
    case wrongDC09Length(Int)
    case notHex(HexError)

    public var description: String {
        switch self {
        case .wrongLength(let n): "a device key must be 16 to 64 bytes (32 to 128 hex digits), got \(n) bytes"
        case .wrongMasterLength(let n): "a fleet master key must be 32 to 64 bytes (64 to 128 hex digits), got \(n) bytes"
        case .wrongDC09Length(let n): "a DC-09 key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits: AES-128, -192, -256), got \(n) bytes"
        case .notHex(let problem): "the key is not hex: \(problem)"
        }
    }
}

/// Why text is not hex, in words. Never contains the text (it may be a key).
public enum HexError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every byte is two digits: one is missing or one too many (a key copied short, a stray character).
    case oddNumberOfDigits(Int)
    /// A character that is not a hex digit, with its position among the digits (from 1).
    case notADigit(position: Int)

    public var description: String {
        switch self {
        case .oddNumberOfDigits(let count):
            "odd number of hex digits (\(count)): every byte is two digits, so one is missing or one too many"
        case .notADigit(let position):
            "character \(position) is not a hex digit: use only 0-9 and a-f (spaces and colons are ignored)"
        }
    }
}

/// Hex text to bytes and back; spaces, colons and a leading 0x are ignored.
public enum Hex {
    public static func decode(_ text: some StringProtocol) -> [UInt8]? { try? parse(text) }

    /// The bytes of `text`, or what is wrong with it.
    public static func parse(_ text: some StringProtocol) throws(HexError) -> [UInt8] {
        var digits = String(text.filter { !$0.isWhitespace && $0 != ":" })
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits.removeFirst(2) }
        // UInt8(_:radix:) would accept a sign: only hex digits are hex.
        if let bad = digits.firstIndex(where: { !($0.isASCII && $0.isHexDigit) }) {
            throw .notADigit(position: digits.distance(from: digits.startIndex, to: bad) + 1)
        }
        guard digits.count % 2 == 0 else { throw .oddNumberOfDigits(digits.count) }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2)
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { throw .notADigit(position: digits.distance(from: digits.startIndex, to: index) + 1) }
            bytes.append(byte)
            index = next
        }
        return bytes
    }

    public static func encode(_ bytes: some Sequence<UInt8>, separator: String = "") -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: separator)
    }
}
