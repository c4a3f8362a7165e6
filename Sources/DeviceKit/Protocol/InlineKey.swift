import CDeviceSys
import Crypto
import Foundation

/// A derived 256-bit key (an up or down key, protocol.md §3.2) kept inline rather than as a `SymmetricKey`,
/// which is a heap object of its own: a load run holds a million devices' keys, and two allocations a device
/// cost more than the 32 bytes. Frames are sealed and opened with it directly (`ContiguousBytes`).
///
/// Unlike `SymmetricKey`, its memory is not wiped when freed; root and master keys stay `SymmetricKey`s.
struct InlineKey: Sendable, ContiguousBytes {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    /// `key` must be 256 bits, as every derived key is.
    init(_ key: SymmetricKey) {
        precondition(key.bitCount == 256, "an inline key is 256 bits, not \(key.bitCount)")
        withUnsafeMutableBytes(of: &words) { destination in
            key.withUnsafeBytes { destination.copyMemory(from: $0) }
        }
    }

    /// The 32 bytes `body` writes (zeros where it writes none).
    init(writing body: (UnsafeMutableRawBufferPointer) -> Void) {
        Swift.withUnsafeMutableBytes(of: &words, body)
    }

    /// Zeros the key where it lies (a root key derived for a moment, an intermediate key), as `SymmetricKey`
    /// does when freed.
    mutating func wipe() {
        Swift.withUnsafeMutableBytes(of: &words) { sodium_memzero($0.baseAddress, $0.count) }
    }

    var symmetricKey: SymmetricKey {
        Swift.withUnsafeBytes(of: words) { SymmetricKey(data: $0) }
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: words, body)
    }
}
