import Testing

@testable import DeviceKit

/// The DC-09 codec (ANSI/SIA DC-09): framing, CRC, fields, encryption with each key size, and the answers.
/// tools/check_dc09_peers.py runs the same frames against pysiaalarm and dc09-spt.
@Suite struct DC09FrameTests {
    static let keys: [Int: DC09Key] = [
        16: try! DC09Key(bytes: Array("0123456789ABCDEF".utf8)),
        24: try! DC09Key(bytes: Array("0123456789ABCDEF01234567".utf8)),
        32: try! DC09Key(bytes: Array("0123456789ABCDEF0123456789ABCDEF".utf8)),
    ]
    /// 2026-12-05 01:33:36 UTC.
    static let time = DC09Timestamp(secondsSince1970: 1_796_434_416)

    @Test func theCRCIsCRC16ARC() {
        #expect(DC09CRC.compute(Array("123456789".utf8)) == 0xBB3D, "the catalogue's check value of CRC-16/ARC")
        #expect(DC09CRC.compute([UInt8]()) == 0)
    }

    /// Frames dc09-spt (a DC-09 dialler no one here wrote) wrote, byte for byte.
    @Test func framesADiallerWroteAreRead() throws {
        let sia = try DC09Frame.decode(Array("\nD9D10025\"SIA-DCS\"0007R1L2#1234[#1234|Nri1QA1]\r".utf8)) { _ in nil }
        #expect(sia == DC09Frame(id: .siaDCS, sequence: "0007", receiver: "1", line: "2", account: "1234", data: "#1234|Nri1QA1"))
        let cid = try DC09Frame.decode(Array("\n3D2B0029\"ADM-CID\"0008R1L2#1234[#1234|1101 01 001]\r".utf8)) { _ in nil }
        #expect(cid.id == .contactID && cid.data == "#1234|1101 01 001" && cid.sequence == "0008")
        let poll = try DC09Frame.decode(Array("\n34E30015\"NULL\"0000R1L2#1234[]\r".utf8)) { _ in nil }
        #expect(poll.id == .null && poll.data.isEmpty && poll.timestamp == nil)
    }

    /// pysiaalarm's NAK writes its fields as `L0R0A0`, out of the usual order, and carries its time.
    @Test func aReceiversNAKIsReadWithItsTime() throws {
        var frame = DC09Frame(id: .nak, sequence: "0000", receiver: "0", line: "0", account: nil, timestamp: Self.time)
        var random = SplitMix64(seed: 1)
        let written = try frame.encoded(random: &random)
        #expect(String(decoding: written, as: UTF8.self).contains("\"NAK\"0000R0L0A0[]_01:33:36,12-05-2026\r"))
        #expect(try DC09Frame.decode(written) { _ in nil } == frame)
        let body = "\"NAK\"0000L0R0A0[]_01:33:36,12-05-2026"
        let theirs = "\n" + hex4(DC09CRC.compute(Array(body.utf8))) + hex4(UInt16(body.utf8.count)) + body + "\r"
        frame = try DC09Frame.decode(Array(theirs.utf8)) { _ in nil }
        #expect(frame.id == .nak && frame.receiver == "0" && frame.line == "0" && frame.account == nil && frame.timestamp == Self.time)
    }

    @Test(arguments: [nil, 16, 24, 32])
    func everyKindOfFrameComesBackAsItWent(keySize: Int?) throws {
        let key = keySize.map { Self.keys[$0]! }
        var random = SplitMix64(seed: 7)
        for id in DC09Frame.ID.allCases {
            let frame = DC09Frame(
                id: id, sequence: "0042", receiver: "12AB", line: "3", account: id == .nak ? nil : "1234ABCD",
                data: id.isAnswer || id == .null ? "" : DC09EventCodes.alarm(.fall).data(id, account: "1234ABCD"),
                extended: id == .siaDCS ? ["X52.21", "Y5.9699"] : [], timestamp: Self.time)
            let bytes = try frame.encoded(key: key, random: &random)
            #expect(bytes.first == 0x0A && bytes.last == 0x0D)
            let back = try DC09Frame.decode(bytes) { $0 == "1234ABCD" || $0 == nil ? key : nil }
            #expect(back.encrypted == (key != nil))
            var expected = frame
            expected.encrypted = key != nil
            #expect(back == expected, "\(id)")
        }
    }

    /// The encrypted content is hex of whole AES blocks: pad, `|`, then the clear content.
    @Test func encryptedContentIsPaddedInFrontToWholeBlocks() throws {
        var random = SplitMix64(seed: 3)
        for length in 0..<40 {
            let frame = DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: String(repeating: "N", count: length), timestamp: Self.time)
            let text = String(decoding: try frame.encoded(key: Self.keys[16], random: &random), as: UTF8.self)
            let hex = text[text.index(after: text.firstIndex(of: "[")!)...].dropLast()
            #expect(hex.count % 32 == 0 && !hex.isEmpty)
            let plain = try Self.keys[16]!.decrypt(hex: hex)
            let bar = plain.firstIndex(of: UInt8(ascii: "|"))!
            #expect(bar >= 1 && bar <= 16, "one to sixteen pad characters")
            #expect(plain[..<bar].allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "[") && $0 != UInt8(ascii: "]") })
        }
    }

    /// Content encrypted under another key opens to random bytes: it is always "the wrong key", never a frame
    /// (a separator among the last random bytes once made one in about 130 a frame without timestamp).
    @Test func contentUnderAnotherKeyIsAlwaysTheWrongKey() throws {
        var random = SplitMix64(seed: 11)
        // An event (48 bytes opened) and a NULL (32 bytes: the pad bound alone cannot tell).
        let event = try DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: "#1234|Nri1/BA001", timestamp: Self.time)
            .encoded(key: Self.keys[32], random: &random)
        let null = try DC09Frame(id: .null, sequence: "0002", account: "1234", timestamp: Self.time).encoded(key: Self.keys[32], random: &random)
        var opened = 0
        for _ in 0..<5_000 {
            let wrong = try DC09Key(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
            for sealed in [event, null] {
                do {
                    _ = try DC09Frame.decode(sealed) { _ in wrong }
                    opened += 1
                } catch {
                    #expect(error == .wrongKey(account: "1234"))
                }
            }
        }
        #expect(opened == 0)
    }

    @Test func whatIsNotAFrameIsRefusedWithWhy() throws {
        var random = SplitMix64(seed: 5)
        let good = try DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: "#1234|Nri1/QA001", timestamp: Self.time)
            .encoded(random: &random)
        func decode(_ bytes: [UInt8], key: DC09Key? = nil) -> DC09Error? {
            do {
                _ = try DC09Frame.decode(bytes) { _ in key }
                return nil
            } catch { return error }
        }
        var damaged = good
        damaged[20] ^= 0x01
        guard case .crcMismatch = decode(damaged) else { Issue.record("a flipped bit: \(String(describing: decode(damaged)))"); return }
        #expect(decode(Array(good.dropLast(2)) + [0x0D]) == .lengthMismatch(declared: good.count - 10, actual: good.count - 11))
        #expect(decode(Array("\nZZZZ0010\"NULL\"0000L0[]\r".utf8)) == .crcField("ZZZZ"))
        #expect(decode(Array("\n12".utf8)) == .tooShort(2))
        #expect(decode([0x0A] + Array("0000001A".utf8) + [0xC3, 0xA9] + Array(repeating: 0x41, count: 24) + [0x0D]) == .notASCII)
        #expect(decode(Self.framed("\"BOGUS\"0001L0#1234[]")) == .unknownID("BOGUS"))
        #expect(decode(Self.framed("\"SIA-DCS\"1L0#1234[#1234|Nri1/QA001]")) == .header("the sequence \"1L0#\" is not four digits"))
        #expect(decode(Self.framed("\"SIA-DCS\"0001L0#12[#12|Nri1/QA001]")) == .header("the account \"#12\" is not 3 to 16 hex digits"))
        #expect(decode(Self.framed("\"SIA-DCS\"0001L0X#1234[#1234|Nri1/QA001]")) == .header("\"X#1234\" before the content is not Rreceiver, Lline or #account"))
        #expect(decode(Self.framed("\"SIA-DCS\"0001L0#1234[#1234|Nri1/QA001]_25:00:00,12-05-2026")) == .timestamp("25:00:00,12-05-2026"))
        #expect(decode(Self.framed("\"SIA-DCS\"0001L0#1234[#1234|Nri1/QA001]junk")) == .content("\"junk\" after the data is neither extended data nor a timestamp"))
        #expect(decode(Self.framed("\"*SIA-DCS\"0001L0#1234[00112233445566778899AABBCCDDEEFF")) == .noKey(account: "1234"))
        #expect(decode(good, key: Self.keys[16]) == .notEncryptedButKeyed(account: "1234"), "a keyed account's clear event is refused")
        let sealed = try DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: "#1234|Nri1/QA001", timestamp: Self.time)
            .encoded(key: Self.keys[16], random: &random)
        #expect(decode(sealed, key: Self.keys[32]) == .wrongKey(account: "1234"), "another account's key")
        #expect(decode(Self.framed("\"*SIA-DCS\"0001L0#1234[0011"), key: Self.keys[16]) == .encryptedLength(2))
        #expect(decode(Self.framed("\"*SIA-DCS\"0001L0#1234[00Z1"), key: Self.keys[16]) == .encryptedNotHex)
        #expect(throws: DC09Error.keyLength(20)) { try DC09Key(bytes: Array(repeating: 1, count: 20)) }
        #expect(throws: DC09Error.field("the account \"12\" is not 3 to 16 hex digits")) {
            try DC09Frame(id: .siaDCS, sequence: "0001", account: "12").encoded(random: &random)
        }
        #expect(throws: DC09Error.field("\"a]b\" holds a bracket or a character outside printable ASCII")) {
            try DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: "a]b").encoded(random: &random)
        }
        #expect(throws: DC09Error.tooLong(4_118)) {
            try DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: String(repeating: "N", count: 4_096)).encoded(random: &random)
        }
    }

    /// A clear frame with a right CRC and length around `message`.
    static func framed(_ message: String) -> [UInt8] {
        Array(("\n" + hex4(DC09CRC.compute(Array(message.utf8))) + hex4(UInt16(message.utf8.count)) + message + "\r").utf8)
    }
}
