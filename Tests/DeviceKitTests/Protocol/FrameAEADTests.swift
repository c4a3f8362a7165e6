import Crypto
import NIOCore
import Testing

@testable import DeviceKit

private func hex(_ text: String) -> [UInt8] { Hex.decode(text)! }

/// The frames' AEAD (libsodium, in place) against RFC 8439's own example, and the buffer a session reuses.
@Suite struct FrameAEADTests {
    /// RFC 8439 §2.8.2: key 80..9f, nonce 07000000 40414243 44454647, the "sunscreen" plaintext.
    static let key = Array(UInt8(0x80)...UInt8(0x9f))
    static let nonce = hex("070000004041424344454647")
    static let additional = hex("50515253c0c1c2c3c4c5c6c7")
    static let plaintext = Array(
        "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
    static let ciphertext = hex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
            + "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
            + "3ff4def08e4b7a9de576d26586cec64b6116")
    static let tag = hex("1ae10b594f09e26a7e902ecbd0600691")

    @Test func sealingInPlaceGivesTheRFCsCiphertextAndTag() {
        var text = Self.plaintext
        var tag = [UInt8](repeating: 0, count: 16)
        text.withUnsafeMutableBytes { text in
            tag.withUnsafeMutableBytes { tag in
                FrameAEAD.seal(text, tag: tag, additional: UnsafeRawBufferPointer(start: Self.additional, count: Self.additional.count),
                    nonce: UnsafeRawBufferPointer(start: Self.nonce, count: 12), key: UnsafeRawBufferPointer(start: Self.key, count: 32))
            }
        }
        #expect(text == Self.ciphertext)
        #expect(tag == Self.tag)
    }

    @Test func openingInPlaceGivesThePlaintextAndAnyChangeIsRefusedAndWipesTheOutput() {
        #expect(open(Self.ciphertext, tag: Self.tag, additional: Self.additional, key: Self.key) == Self.plaintext)
        var otherKey = Self.key
        otherKey[31] ^= 1
        var otherTag = Self.tag
        otherTag[0] ^= 0x80
        var otherText = Self.ciphertext
        otherText[57] ^= 4
        var otherAdditional = Self.additional
        otherAdditional[11] ^= 1
        #expect(open(Self.ciphertext, tag: Self.tag, additional: Self.additional, key: otherKey) == nil)
        #expect(open(Self.ciphertext, tag: otherTag, additional: Self.additional, key: Self.key) == nil)
        #expect(open(otherText, tag: Self.tag, additional: Self.additional, key: Self.key) == nil)
        #expect(open(Self.ciphertext, tag: Self.tag, additional: otherAdditional, key: Self.key) == nil)
        #expect(open(Self.ciphertext, tag: Self.tag, additional: Self.additional, key: Array(Self.key[..<16])) == nil)
    }

    /// Decrypts over the ciphertext itself; `nil` if refused, after checking that the output was wiped (nothing
    /// of an unauthentic text is left there to be read by mistake).
    private func open(_ ciphertext: [UInt8], tag: [UInt8], additional: [UInt8], key: [UInt8]) -> [UInt8]? {
        var text = ciphertext
        let authentic = text.withUnsafeMutableBytes { text in
            FrameAEAD.open(UnsafeRawBufferPointer(text), tag: UnsafeRawBufferPointer(start: tag, count: tag.count),
                additional: UnsafeRawBufferPointer(start: additional, count: additional.count),
                nonce: UnsafeRawBufferPointer(start: Self.nonce, count: 12), key: UnsafeRawBufferPointer(start: key, count: key.count), into: text)
        }
        guard authentic else {
            #expect(text.allSatisfy { $0 == 0 }, "a refused text's output was not wiped")
            return nil
        }
        return text
    }

    /// A session opens every body into one buffer; a body still held from an earlier frame keeps its bytes.
    @Test func aBodyHeldFromAnEarlierFrameKeepsItsBytesWhenTheBufferIsReused() throws {
        typealias F = ProtocolFixtures
        let key = F.key()
        let first = try SealedFrame(datagram: ByteBuffer(bytes: try F.seal(.testAlarm(1), direction: .up, counter: F.anchor + 1)))
        let second = try SealedFrame(datagram: ByteBuffer(bytes: try F.seal(.testAlarm(2), direction: .up, counter: F.anchor + 2)))
        var scratch = ByteBuffer()
        try first.authenticatedBody(with: key.upInlineKey, into: &scratch)
        let held = scratch
        try second.authenticatedBody(with: key.upKey, into: &scratch)
        #expect(try Message(body: held) == .testAlarm(1))
        #expect(try Message(body: scratch) == .testAlarm(2))
        #expect(throws: ProtocolError.authenticationFailed) { try first.authenticatedBody(with: F.key(root: Array(repeating: 7, count: 32)).upInlineKey, into: &scratch) }
    }
}
