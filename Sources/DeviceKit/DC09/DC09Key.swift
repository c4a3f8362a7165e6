import Crypto
import _CryptoExtras

/// An account's DC-09 encryption key: AES-128, -192 or -256 in CBC mode with an all-zero IV, as the
/// standard and its receivers do it. The sender fills the plaintext up to a multiple of 16 bytes with pad
/// characters in front (never `|`, `[` or `]`), then `|` (DC-09, "Encryption").
public struct DC09Key: Sendable {
    private let key: SymmetricKey
    public let byteCount: Int

    /// 16, 24 or 32 bytes.
    public init(bytes: [UInt8]) throws(DC09Error) {
        guard [16, 24, 32].contains(bytes.count) else { throw .keyLength(bytes.count) }
        key = SymmetricKey(data: bytes)
        byteCount = bytes.count
    }

    /// `text` (the plaintext after the pad) encrypted, as the standard's upper-case hex.
    func encrypt(_ text: [UInt8], padding random: inout some RandomNumberGenerator) -> String {
        // At least one pad character: the pad and its `|` separator are what a receiver strips.
        let padCount = 16 - (text.count + 1) % 16
        var plain: [UInt8] = []
        plain.reserveCapacity(padCount + 1 + text.count)
        for _ in 0..<padCount { plain.append(Self.padCharacter(&random)) }
        plain.append(UInt8(ascii: "|"))
        plain += text
        // Cannot fail: the key is 16, 24 or 32 bytes, the IV 16 and the plaintext a multiple of 16.
        let sealed = try! AES._CBC.encrypt(plain, using: key, iv: AES._CBC.IV(ivBytes: Self.zeroIV), noPadding: true)
        return Hex.encode(Array(sealed)).uppercased()
    }

    /// The plaintext of `hex`, pad included.
    func decrypt(hex: Substring) throws(DC09Error) -> [UInt8] {
        let cipher: [UInt8]
        do throws(HexError) { cipher = try Hex.parse(hex) } catch { throw .encryptedNotHex }
        guard !cipher.isEmpty, cipher.count % 16 == 0 else { throw .encryptedLength(cipher.count) }
        do {
            return Array(try AES._CBC.decrypt(cipher, using: key, iv: AES._CBC.IV(ivBytes: Self.zeroIV), noPadding: true))
        } catch {
            throw .encryptedLength(cipher.count)
        }
    }

    private static let zeroIV = [UInt8](repeating: 0, count: 16)

    /// A printable ASCII character other than `|`, `[` and `]`.
    private static func padCharacter(_ random: inout some RandomNumberGenerator) -> UInt8 {
        while true {
            let c = UInt8.random(in: 0x21...0x7E, using: &random)
            if c != UInt8(ascii: "|"), c != UInt8(ascii: "["), c != UInt8(ascii: "]") { return c }
        }
    }
}
