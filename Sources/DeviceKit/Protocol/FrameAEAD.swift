import CDeviceSys

/// The frames' AEAD, ChaCha20-Poly1305 of RFC 8439 (protocol.md §3), through libsodium's
/// `crypto_aead_chacha20poly1305_ietf_*_detached`: in place, on memory the caller owns, without allocating.
///
/// Why libsodium: swift-crypto's `ChaChaPoly` allocates a context and buffers on every call and returns its
/// output in new storage (2.4–3.4 µs per frame here, most of a heartbeat's cost); BoringSSL's `EVP_AEAD_CTX`,
/// which would not, is internal to swift-crypto and reachable only by copying its vendored headers. libsodium
/// is a well-kept C library in Debian (`libsodium-dev`, `libsodium23` on the device), with the detached API
/// that encrypts over the plaintext and writes the tag where it is told. No cryptography is written here.
///
/// Keys are anything that lends 32 bytes (`SymmetricKey`, `InlineKey`); another length is a programming error
/// when sealing, and simply not authentic when opening.
enum FrameAEAD {
    static let keyLength = Int(crypto_aead_chacha20poly1305_ietf_KEYBYTES)
    static let nonceLength = Int(crypto_aead_chacha20poly1305_ietf_NPUBBYTES)
    static let tagLength = Int(crypto_aead_chacha20poly1305_ietf_ABYTES)

    /// libsodium picks its fastest implementations (SIMD) once per process; safe to call from any thread.
    private static let initialised: Bool = sodium_init() >= 0

    /// Encrypts `text` (never empty: a body holds at least its type) over itself and writes the 16-byte tag to
    /// `tag`, authenticating `additional`.
    static func seal(
        _ text: UnsafeMutableRawBufferPointer, tag: UnsafeMutableRawBufferPointer, additional: UnsafeRawBufferPointer,
        nonce: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer
    ) {
        precondition(initialised, "libsodium could not initialise")
        precondition(key.count == keyLength && nonce.count == nonceLength && tag.count == tagLength, "a frame key is 32 bytes, its nonce 12")
        guard let text = text.bytes, let tag = tag.bytes, let nonce = nonce.bytes, let key = key.bytes else {
            preconditionFailure("a frame's body is never empty")
        }
        let result = crypto_aead_chacha20poly1305_ietf_encrypt_detached(
            text.start, tag.start, nil, text.start, text.count, additional.bytes?.start, UInt64(additional.count), nil, nonce.start, key.start)
        precondition(result == 0, "ChaCha20-Poly1305 sealing failed")
    }

    /// Checks `tag` over `additional` and `text`; only if it is authentic, decrypts `text` into `plaintext`
    /// (the same length; it may be `text` itself). False if it is not, and libsodium then wipes `plaintext`
    /// (zeros), so a caller that decrypts in place loses the text: `SealedFrame` decrypts into a buffer of its
    /// own and leaves the frame's bytes as they came.
    static func open(
        _ text: UnsafeRawBufferPointer, tag: UnsafeRawBufferPointer, additional: UnsafeRawBufferPointer,
        nonce: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, into plaintext: UnsafeMutableRawBufferPointer
    ) -> Bool {
        precondition(initialised, "libsodium could not initialise")
        precondition(plaintext.count == text.count)
        guard key.count == keyLength, nonce.count == nonceLength, tag.count == tagLength,
            let text = text.bytes, let tag = tag.bytes, let nonce = nonce.bytes, let key = key.bytes, let plaintext = plaintext.bytes
        else {
            plaintext.initializeMemory(as: UInt8.self, repeating: 0)  // as libsodium leaves a refused text
            return false
        }
        return crypto_aead_chacha20poly1305_ietf_decrypt_detached(
            plaintext.start, nil, text.start, text.count, tag.start, additional.bytes?.start, UInt64(additional.count), nonce.start, key.start) == 0
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes as C's `const unsigned char *` and length, or `nil` if there are none.
    var bytes: (start: UnsafePointer<UInt8>, count: UInt64)? {
        guard let base = baseAddress, count > 0 else { return nil }
        return (base.assumingMemoryBound(to: UInt8.self), UInt64(count))
    }
}

extension UnsafeMutableRawBufferPointer {
    /// The bytes as C's `unsigned char *` and length, or `nil` if there are none.
    var bytes: (start: UnsafeMutablePointer<UInt8>, count: UInt64)? {
        guard let base = baseAddress, count > 0 else { return nil }
        return (base.assumingMemoryBound(to: UInt8.self), UInt64(count))
    }
}
