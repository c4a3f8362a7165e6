import Testing

@testable import DeviceKit

/// SRTP/SRTCP AES_CM_128_HMAC_SHA1_80 against RFC 3711's vectors and libsrtp's reference packets.
@Suite struct SRTPTests {
    static func hex(_ text: String) -> [UInt8] { Hex.decode(text) ?? [] }

    // RFC 3711 Appendix B.3.
    static let masterKey = hex("E1F97A0D3E018BE0D64FA32C06DE4139")
    static let masterSalt = hex("0EC675AD498AFEEBB6960B3AABE6")

    @Test func keyDerivationMatchesRFC3711AppendixB3() throws {
        #expect(try SRTP.derive(masterKey: Self.masterKey, masterSalt: Self.masterSalt, label: .rtpEncryption, length: 16)
            == Self.hex("C61E7A93744F39EE10734AFE3FF7A087"))
        #expect(try SRTP.derive(masterKey: Self.masterKey, masterSalt: Self.masterSalt, label: .rtpSalt, length: 14)
            == Self.hex("30CBBC08863D8C85D49DB34A9AE1"))
        // B.3 lists 94 octets of the authentication keystream; HMAC-SHA1 uses the first 20.
        #expect(try SRTP.derive(masterKey: Self.masterKey, masterSalt: Self.masterSalt, label: .rtpAuthentication, length: 94)
            == Self.hex("""
                CEBE321F6FF7716B6FD4AB49AF256A15 6D38BAA48F0A0ACF3C34E2359E6CDBCE
                E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
                6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2
                """))
    }

    @Test func keystreamMatchesRFC3711AppendixB2() throws {
        let key = Self.hex("2B7E151628AED2A6ABF7158809CF4F3C")
        // IV for session salt F0F1…FCFD, SSRC 0, index 0: the salt shifted left by 16 bits.
        let iv = SRTP.iv(salt: Self.hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), ssrc: 0, index: 0)
        #expect(iv == Self.hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"))
        let stream = try SRTP.keystream(key: key, iv: iv, length: 1_044_512)
        #expect(Array(stream[0..<48]) == Self.hex("""
            E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB 41E95B3BB0A2E8DD477901E4FCA894C0
            """))
        #expect(Array(stream[(0xFEFF * 16)..<(0xFF02 * 16)]) == Self.hex("""
            EC8CDF7398607CB0F2D21675EA9EA1E4 362B7C3C6773516318A077D7FC5073AE 6A2CC3787889374FBEB4C81B17BA6C44
            """))
    }

    @Test func ivPlacesSSRCAndIndexAsRFC3711Section4_1_1Says() {
        let iv = SRTP.iv(salt: Self.hex("30CBBC08863D8C85D49DB34A9AE1"), ssrc: 0xCAFE_BABE, index: 0x1234)
        #expect(iv == Self.hex("30CBBC084CC3363BD49DB34A88D50000"))
    }

    // libsrtp's srtp_validate(): the default policy, SSRC 0xcafebabe, sequence 0x1234, ROC 0.
    static let keyMaterial = masterKey + masterSalt
    static let rtpPlain = hex("800f1234decafbadcafebabe" + String(repeating: "ab", count: 16))
    static let srtpPacket = hex("800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb")
    static let rtcpPlain = hex("81c8000bcafebabe" + String(repeating: "ab", count: 16))
    static let srtcpPacket = hex("81c8000bcafebabe7128035be487b9bdbef89041f977a5a880000001993e08cd54d6c1230798")

    @Test func protectsRTPExactlyAsLibsrtp() throws {
        var sender = try SRTPSender(master: SRTPMasterKey(keyMaterial: Self.keyMaterial))
        let protected = try sender.protect(Self.rtpPlain)
        #expect(protected == Self.srtpPacket)
        #expect(protected.count - Self.rtpPlain.count == SRTP.rtpOverhead)
        var receiver = try SRTPReceiver(master: SRTPMasterKey(keyMaterial: Self.keyMaterial))
        #expect(try receiver.unprotect(Self.srtpPacket) == Self.rtpPlain)
    }

    @Test func protectsRTCPExactlyAsLibsrtp() throws {
        let sender = try SRTPSender(master: SRTPMasterKey(keyMaterial: Self.keyMaterial))
        let protected = try sender.protectRTCP(Self.rtcpPlain, index: 1)
        #expect(protected == Self.srtcpPacket)
        #expect(protected.count - Self.rtcpPlain.count == SRTP.rtcpOverhead)
        var receiver = try SRTPReceiver(master: SRTPMasterKey(keyMaterial: Self.keyMaterial))
        #expect(try receiver.unprotectRTCP(Self.srtcpPacket) == Self.rtcpPlain)
        #expect(throws: SRTPError.replayed) { try receiver.unprotectRTCP(Self.srtcpPacket) }
    }

    /// The audit: an SRTCP packet with E=0, authentic under the key, was accepted in the clear.
    @Test func anAuthenticSRTCPPacketSentInTheClearIsRefused() throws {
        let keys = try SRTPSessionKeys(master: SRTPMasterKey(keyMaterial: Self.keyMaterial), rtcp: true)
        var clear = Self.rtcpPlain
        clear.appendBigEndian(UInt32(1))  // E=0, index 1
        let packet = clear + SRTP.tag(key: keys.authentication, clear)
        var receiver = try SRTPReceiver(master: SRTPMasterKey(keyMaterial: Self.keyMaterial))
        #expect(throws: SRTPError.notEncrypted) { try receiver.unprotectRTCP(packet) }
        // It changed no state: the genuine packet of index 1 still passes.
        #expect(try receiver.unprotectRTCP(Self.srtcpPacket) == Self.rtcpPlain)
    }

    @Test func aTamperedPacketIsRejectedAndChangesNothing() throws {
        var receiver = try SRTPReceiver(master: SRTPMasterKey(keyMaterial: Self.keyMaterial))
        for position in [1, 3, 9, 12, 20, Self.srtpPacket.count - 1] {
            var forged = Self.srtpPacket
            forged[position] ^= 0x01
            #expect(throws: SRTPError.authenticationFailed) { try receiver.unprotect(forged) }
        }
        // The genuine packet still passes: failures did not move the replay window.
        #expect(try receiver.unprotect(Self.srtpPacket) == Self.rtpPlain)
        #expect(throws: SRTPError.replayed) { try receiver.unprotect(Self.srtpPacket) }
        var forgedRTCP = Self.srtcpPacket
        forgedRTCP[10] ^= 0x80
        #expect(throws: SRTPError.authenticationFailed) { try receiver.unprotectRTCP(forgedRTCP) }
    }

    @Test func aPacketUnderAnotherKeyIsRejected() throws {
        var other = Self.keyMaterial
        other[0] ^= 1
        var receiver = try SRTPReceiver(master: SRTPMasterKey(keyMaterial: other))
        #expect(throws: SRTPError.authenticationFailed) { try receiver.unprotect(Self.srtpPacket) }
    }

    @Test func rolloverCounterFollowsTheSequenceAcrossTheWrapAndReordering() throws {
        let material = SRTPMasterKey.randomKeyMaterial()
        var sender = try SRTPSender(master: SRTPMasterKey(keyMaterial: material))
        var receiver = try SRTPReceiver(master: SRTPMasterKey(keyMaterial: material))
        let sequences: [UInt16] = [65_533, 65_534, 65_535, 0, 1, 2]
        let packets = try sequences.map { seq in
            try sender.protect(RTPPacket(payloadType: 0, sequenceNumber: seq, timestamp: UInt32(seq) * 160, ssrc: 7, payload: [1, 2, 3]).bytes)
        }
        // Delivered as 65533, 65535, 0, 65534 (late, before the wrap), 2, 1: every one authenticates.
        for i in [0, 2, 3, 1, 5, 4] {
            let plain = try receiver.unprotect(packets[i])
            #expect(try RTPPacket(bytes: plain).sequenceNumber == sequences[i])
        }
        // Replays of packets on both sides of the wrap are refused.
        #expect(throws: SRTPError.replayed) { try receiver.unprotect(packets[1]) }
        #expect(throws: SRTPError.replayed) { try receiver.unprotect(packets[4]) }
    }

    @Test func indexEstimationFollowsRFC3711AppendixA() {
        #expect(SRTPReceiver.estimateIndex(sequence: 5, highest: nil) == 5)
        #expect(SRTPReceiver.estimateIndex(sequence: 10, highest: 5) == 10)
        // Highest is 65535 in ROC 0; sequence 2 is after the wrap: ROC 1.
        #expect(SRTPReceiver.estimateIndex(sequence: 2, highest: 65_535) == 65_536 + 2)
        // Highest is 3 in ROC 1; sequence 65534 is from before the wrap: ROC 0.
        #expect(SRTPReceiver.estimateIndex(sequence: 65_534, highest: 65_536 + 3) == 65_534)
        // Far apart within the same ROC.
        #expect(SRTPReceiver.estimateIndex(sequence: 40_000, highest: 65_536 + 30_000) == 65_536 + 40_000)
    }

    @Test func keyMaterialOfTheWrongLengthIsATypedError() {
        #expect(throws: SRTPError.badKeyMaterial(29)) { try SRTPMasterKey(keyMaterial: [UInt8](repeating: 1, count: 29)) }
    }

    @Test func randomBytesNeverCrashTheReceiver() throws {
        var receiver = try SRTPReceiver(master: SRTPMasterKey(keyMaterial: Self.keyMaterial))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...200, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if length > 0, Bool.random(using: &generator) { bytes[0] = 0x80 }
            #expect(throws: SRTPError.self) { try receiver.unprotect(bytes) }
            #expect(throws: SRTPError.self) { try receiver.unprotectRTCP(bytes) }
        }
    }
}
