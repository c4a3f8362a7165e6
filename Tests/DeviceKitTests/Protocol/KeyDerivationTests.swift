import Crypto
import Testing

@testable import DeviceKit

/// The keys' HKDF-SHA256 over libsodium's HMAC (`KeyDerivation.swift`) is RFC 5869's: its SHA-256 test cases,
/// and swift-crypto's HKDF, which the protocol's keys were derived with before, on random inputs.
@Suite struct KeyDerivationTests {
    /// RFC 5869 appendix A.1–A.3 (SHA-256). Their OKMs are 42 bytes; the first 32 are T(1), all a 32-byte key
    /// takes. A.2's 80-byte salt is longer than SHA-256's block, so HMAC hashes it first.
    @Test(arguments: [
        (ikm: [UInt8](repeating: 0x0b, count: 22), salt: Array(UInt8(0x00)...0x0c), info: Array(UInt8(0xf0)...0xf9),
         okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"),
        (ikm: Array(UInt8(0x00)...0x4f), salt: Array(UInt8(0x60)...0xaf), info: Array(UInt8(0xb0)...0xff),
         okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"),
        (ikm: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [],
         okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"),
    ])
    func theRFCsTestCases(_ vector: (ikm: [UInt8], salt: [UInt8], info: [UInt8], okm: String)) {
        let key = InlineKey.hkdfSHA256(inputKeyMaterial: vector.ikm, salt: vector.salt, info: vector.info)
        #expect(key.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() } == vector.okm)
    }

    /// Input keys of every length a key may have (16 to 64 bytes, and beyond the 64-byte block), salts from none
    /// to longer than a block, infos as the protocol's and longer.
    @Test func theSameKeysAsSwiftCryptosHKDF() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let ikm = (0..<Int.random(in: 16...80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let salt = (0..<Int.random(in: 0...80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let info = (0..<Int.random(in: 0...40, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let ours = InlineKey.hkdfSHA256(inputKeyMaterial: ikm, salt: salt, info: info).withUnsafeBytes { Array($0) }
            let theirs = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: ikm), salt: salt, info: info, outputByteCount: 32
            ).withUnsafeBytes { Array($0) }
            #expect(ours == theirs, "ikm \(ikm.count) B, salt \(salt.count) B, info \(info.count) B")
        }
    }

    /// A prepared HMAC key gives swift-crypto's HMAC, for keys shorter, as long as and longer than the block,
    /// and gives it again and again (each MAC starts from a copy of the prepared state).
    @Test func aPreparedHMACKeyGivesSwiftCryptosHMAC() {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let key = (0..<Int.random(in: 1...80, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let prepared = key.withUnsafeBytes { PreparedHMACKey(key: $0) }
            for _ in 0..<3 {
                let message = (0..<Int.random(in: 0...100, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
                let suffix = Bool.random(using: &random) ? UInt8.random(in: 0...255, using: &random) : nil
                let ours = InlineKey { out in message.withUnsafeBytes { prepared.authenticate($0, suffix: suffix, into: out) } }
                let theirs = HMAC<SHA256>.authenticationCode(for: message + (suffix.map { [$0] } ?? []), using: SymmetricKey(data: key))
                #expect(ours.withUnsafeBytes { Array($0) } == Array(theirs), "key \(key.count) B, message \(message.count) B")
            }
        }
    }

    /// The fleet's root keys, derived from the master's PRK prepared once, are protocol.md §3.2's HKDF, as
    /// swift-crypto computes it from the master each time: masters of 32 to 64 bytes, epochs 0 (4-byte info)
    /// and above (6 bytes).
    @Test func aFleetRootKeyIsTheHKDFOfTheMaster() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let master = (0..<Int.random(in: 32...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let fleet = try FleetMasterKey(bytes: master)
            let id = UInt32.random(in: 0...UInt32.max, using: &random)
            let epoch: UInt16 = Bool.random(using: &random) ? 0 : .random(in: 1...UInt16.max, using: &random)
            var info = withUnsafeBytes(of: id.bigEndian) { Array($0) }
            if epoch > 0 { info += withUnsafeBytes(of: epoch.bigEndian) { Array($0) } }
            let theirs = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: master), salt: Array("DeviceKit v1 device".utf8), info: info,
                outputByteCount: 32)
            #expect(fleet.rootKey(for: id, epoch: epoch).withUnsafeBytes { Array($0) } == theirs.withUnsafeBytes { Array($0) })
        }
    }

    /// A wiped key is zeros where it lay.
    @Test func aWipedKeyIsZeros() {
        var key = InlineKey.hkdfSHA256(inputKeyMaterial: [UInt8](repeating: 1, count: 32), salt: [UInt8](), info: [UInt8]())
        #expect(key.withUnsafeBytes { $0.contains { $0 != 0 } })
        key.wipe()
        #expect(key.withUnsafeBytes { $0.allSatisfy { $0 == 0 } })
    }
}
