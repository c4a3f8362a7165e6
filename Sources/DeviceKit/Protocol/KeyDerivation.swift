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
///
/// An HMAC key that never changes is prepared once (`PreparedHMACKey`): the empty salt's zeros, and the fleet
/// master key's PRK, which is the same for every device (`FleetMasterKey.rootKey`). An HMAC under a prepared
/// key hashes two SHA-256 blocks instead of four.
extension InlineKey {
    /// The 32-byte output of HKDF-SHA256 over `inputKeyMaterial`, `salt` and `info`.
    static func hkdfSHA256(
        inputKeyMaterial: some ContiguousBytes, salt: some ContiguousBytes, info: some ContiguousBytes
    ) -> InlineKey {
        var pseudoRandomKey = hkdfExtract(salt: salt, inputKeyMaterial: inputKeyMaterial)
        defer { pseudoRandomKey.wipe() }
        return InlineKey { okm in
            pseudoRandomKey.withUnsafeBytes { prk in
                info.withUnsafeBytes { info in hmacSHA256(key: prk, message: info, suffix: 0x01, into: okm) }
            }
        }
    }

    /// HKDF's extract step: `PRK = HMAC(salt, IKM)`, HashLen zeros for an empty salt (prepared once).
    static func hkdfExtract(salt: some ContiguousBytes, inputKeyMaterial: some ContiguousBytes) -> InlineKey {
        InlineKey { prk in
            salt.withUnsafeBytes { salt in
                inputKeyMaterial.withUnsafeBytes { ikm in
                    if salt.isEmpty {
                        PreparedHMACKey.zeroSalt.authenticate(ikm, suffix: nil, into: prk)
                    } else {
                        hmacSHA256(key: salt, message: ikm, suffix: nil, into: prk)
                    }
                }
            }
        }
    }

    /// HMAC-SHA256(key, message ‖ suffix) into the 32 bytes of `output`.
    private static func hmacSHA256(
        key: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer, suffix: UInt8?, into output: UnsafeMutableRawBufferPointer
    ) {
        var state = crypto_auth_hmacsha256_state()
        defer { sodium_memzero(&state, MemoryLayout<crypto_auth_hmacsha256_state>.size) }
        guard let keyBytes = key.bytes else { preconditionFailure("an HMAC key here is never empty") }
        let result = crypto_auth_hmacsha256_init(&state, keyBytes.start, key.count)
        precondition(result == 0, "libsodium's HMAC-SHA256 failed")
        PreparedHMACKey.finish(&state, message: message, suffix: suffix, into: output)
    }
}

/// An HMAC-SHA256 key made ready once: libsodium's HMAC state right after `crypto_auth_hmacsha256_init`, which
/// has hashed the key's inner and outer pad blocks. Each MAC starts from a copy of that state (a plain C
/// struct, copied by value, then wiped), so it hashes only the message and the two final blocks: two SHA-256
/// compressions where a MAC under the bare key takes four, about 410 against 870 ns on the development
/// machine. Held in a class so that the state, as secret as its key, lies in one place and is zeroed when
/// freed, as `SymmetricKey` is; never written after `init`, so it may be shared between threads.
final class PreparedHMACKey: @unchecked Sendable {
    private let state: UnsafeMutablePointer<crypto_auth_hmacsha256_state>

    init(key: UnsafeRawBufferPointer) {
        guard let keyBytes = key.bytes else { preconditionFailure("an HMAC key here is never empty") }
        state = .allocate(capacity: 1)
        state.initialize(to: crypto_auth_hmacsha256_state())
        let result = crypto_auth_hmacsha256_init(state, keyBytes.start, key.count)
        precondition(result == 0, "libsodium's HMAC-SHA256 failed")
    }

    deinit {
        sodium_memzero(state, MemoryLayout<crypto_auth_hmacsha256_state>.size)
        state.deallocate()
    }

    /// HKDF's empty salt: HashLen (32) zero bytes, RFC 5869 §2.2.
    static let zeroSalt = [UInt8](repeating: 0, count: 32).withUnsafeBytes { PreparedHMACKey(key: $0) }

    /// HMAC-SHA256(key, message ‖ suffix) into the 32 bytes of `output`.
    func authenticate(_ message: UnsafeRawBufferPointer, suffix: UInt8?, into output: UnsafeMutableRawBufferPointer) {
        var copy = state.pointee
        defer { sodium_memzero(&copy, MemoryLayout<crypto_auth_hmacsha256_state>.size) }
        Self.finish(&copy, message: message, suffix: suffix, into: output)
    }

    /// Hashes `message ‖ suffix` into a keyed state and writes the MAC to the 32 bytes of `output`.
    fileprivate static func finish(
        _ state: inout crypto_auth_hmacsha256_state, message: UnsafeRawBufferPointer, suffix: UInt8?,
        into output: UnsafeMutableRawBufferPointer
    ) {
        precondition(output.count == Int(crypto_auth_hmacsha256_BYTES))
        var result: CInt = 0
        if let message = message.bytes { result |= crypto_auth_hmacsha256_update(&state, message.start, UInt64(message.count)) }
        if var suffix { result |= crypto_auth_hmacsha256_update(&state, &suffix, 1) }
        result |= crypto_auth_hmacsha256_final(&state, output.baseAddress!.assumingMemoryBound(to: UInt8.self))
        precondition(result == 0, "libsodium's HMAC-SHA256 failed")
    }
}
