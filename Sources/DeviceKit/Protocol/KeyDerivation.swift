import CDeviceSys
import Crypto
import Foundation

/// HKDF-SHA256 (RFC 5869) for the protocol's 32-byte keys (protocol.md §3.2), over libsodium's HMAC-SHA256.
///
/// Why not swift-crypto's `HKDF<SHA256>`: it builds each HMAC's padded keys a byte at a time through generic
/// collections, about 65,000 instructions a derivation here against 32,000 for libsodium's two HMACs
/// (`tools/bench_instructions.py`, `centre.handshake`); a handshake derives up to four keys, and a centre
/// answering a fleet that reconnects at once does little else. This is RFC 5869's construction over a library
/// HMAC, nothing more: extract, `PRK = HMAC(salt, IKM)`, an empty salt being HashLen zeros; expand for L = 32,
/// one block, `OKM = T(1) = HMAC(PRK, info ‖ 0x01)`. Checked against RFC 5869's SHA-256 test cases and against
/// swift-crypto's HKDF for random inputs (`KeyDerivationTests`), and by `tools/verify_vectors.py` (Python) on
/// protocol.md's vectors.
extension InlineKey {
    /// The 32-byte output of HKDF-SHA256 over `inputKeyMaterial`, `salt` and `info`.
    static func hkdfSHA256(
        inputKeyMaterial: some ContiguousBytes, salt: some ContiguousBytes, info: some ContiguousBytes
    ) -> InlineKey {
        var pseudoRandomKey = InlineKey { prk in
            salt.withUnsafeBytes { salt in
                inputKeyMaterial.withUnsafeBytes { ikm in
                    if salt.isEmpty {
                        zeroSalt.withUnsafeBytes { hmacSHA256(key: $0, message: ikm, suffix: nil, into: prk) }
                    } else {
                        hmacSHA256(key: salt, message: ikm, suffix: nil, into: prk)
                    }
                }
            }
        }
        let output = InlineKey { okm in
            pseudoRandomKey.withUnsafeBytes { prk in
                info.withUnsafeBytes { info in hmacSHA256(key: prk, message: info, suffix: 0x01, into: okm) }
            }
        }
        pseudoRandomKey.wipe()
        return output
    }

    /// HashLen zeros: RFC 5869's salt when none is given.
    private static let zeroSalt = [UInt8](repeating: 0, count: 32)

    /// HMAC-SHA256(key, message ‖ suffix) into the 32 bytes of `output`.
    private static func hmacSHA256(
        key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer, suffix: UInt8?, into output: UnsafeMutableRawBufferPointer
    ) {
        precondition(output.count == Int(crypto_auth_hmacsha256_BYTES))
        var state = crypto_auth_hmacsha256_state()
        defer { sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size) }
        guard let keyBytes = key.bytes else { preconditionFailure("an HMAC key here is never empty") }
        var result = crypto_auth_hmacsha256_init(&state, keyBytes.start, key.count)
        if let message = message.bytes { result |= crypto_auth_hmacsha256_update(&state, message.start, UInt64(message.count)) }
        if var suffix { result |= crypto_auth_hmacsha256_update(&state, &suffix, 1) }
        result |= crypto_auth_hmacsha256_final(&state, output.baseAddress!.assumingMemoryBound(to: UInt8.self))
        precondition(result == 0, "libsodium's HMAC-SHA256 failed")
    }
}
