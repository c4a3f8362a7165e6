import Testing

@testable import DeviceKit

/// What a DC-09 receiver answers: ACK only after storing, NAK with its time, DUH for what it does not take.
@Suite struct DC09ReceivingTests {
    static let key = try! DC09Key(bytes: Array("0123456789ABCDEF".utf8))
    static let now = DC09Timestamp(secondsSince1970: 1_796_434_416)
    static let receiving = DC09Receiving(
        accounts: ["1234": .init(), "5678": .init(key: key)], takes: { id, code in code != "ZZ" && code != "1999" })

    static func bytes(_ frame: DC09Frame, key: DC09Key? = nil) -> [UInt8] {
        var random = SplitMix64(seed: 11)
        return try! frame.encoded(key: key, random: &random)
    }

    static func event(account: String = "1234", code: String = "QA", at offset: Int64 = 0) -> DC09Frame {
        DC09Frame(
            id: .siaDCS, sequence: "0042", receiver: "7", line: "3", account: account, data: "#\(account)|Nri1/\(code)001",
            timestamp: DC09Timestamp(secondsSince1970: now.secondsSince1970 + offset))
    }

    func answer(_ decision: DC09Receiving.Decision) -> (DC09Frame, DC09Receiving.Reason)? {
        if case .answer(let frame, let reason) = decision { return (frame, reason) }
        return nil
    }

    @Test func anEventIsStoredFirstAndItsACKEchoesItsFields() throws {
        guard case .store(let frame) = Self.receiving.decide(Self.bytes(Self.event()), now: Self.now) else {
            Issue.record("an event from a known account in the window is stored")
            return
        }
        let ack = Self.receiving.acknowledgement(of: frame, now: Self.now)
        #expect(ack == DC09Frame(id: .ack, sequence: "0042", receiver: "7", line: "3", account: "1234"))
        var random = SplitMix64(seed: 1)
        #expect(try DC09Frame.decode(try Self.receiving.encoded(ack, answering: frame, random: &random)) { _ in nil }.encrypted == false)
    }

    @Test func anEncryptedEventIsAnsweredEncryptedWithOurTime() throws {
        let sent = Self.event(account: "5678")
        guard case .store(let frame) = Self.receiving.decide(Self.bytes(sent, key: Self.key), now: Self.now) else {
            Issue.record("an encrypted event is stored")
            return
        }
        let ack = Self.receiving.acknowledgement(of: frame, now: Self.now)
        var random = SplitMix64(seed: 2)
        let written = try Self.receiving.encoded(ack, answering: frame, random: &random)
        let read = try DC09Frame.decode(written) { _ in Self.key }
        #expect(read.id == .ack && read.encrypted && read.sequence == "0042" && read.timestamp == Self.now)
    }

    /// Accounts are hex digits: one a transmitter writes in lower case is the same account, and its ACK
    /// echoes it as written (before, it was refused as unknown, and an ACK could not be written for it).
    @Test func anAccountInLowerCaseIsTheSameAccountAndIsAnsweredAsWritten() throws {
        let receiving = DC09Receiving(accounts: ["AB12": .init(), "CD34": .init(key: Self.key)])
        guard case .store(let clear) = receiving.decide(Self.bytes(Self.event(account: "ab12")), now: Self.now) else {
            Issue.record("an event of account ab12 is account AB12's")
            return
        }
        var random = SplitMix64(seed: 3)
        let ack = try DC09Frame.decode(try receiving.encoded(receiving.acknowledgement(of: clear, now: Self.now), answering: clear, random: &random)) { _ in nil }
        #expect(ack.id == .ack && ack.account == "ab12")
        guard case .store(let encrypted) = receiving.decide(Self.bytes(Self.event(account: "cd34"), key: Self.key), now: Self.now) else {
            Issue.record("an encrypted event of account cd34 is opened with account CD34's key")
            return
        }
        #expect(try receiving.encoded(receiving.acknowledgement(of: encrypted, now: Self.now), answering: encrypted, random: &random).count > 0)
        // Receiver and line numbers in lower-case hex are echoed as written too.
        var lower = Self.event(account: "ab12")
        lower.receiver = "a1"
        lower.line = "b2"
        guard case .store(let stored) = receiving.decide(Self.bytes(lower), now: Self.now) else {
            Issue.record("a frame with lower-case receiver and line is taken")
            return
        }
        let echoed = try DC09Frame.decode(try receiving.encoded(receiving.acknowledgement(of: stored, now: Self.now), answering: stored, random: &random)) { _ in nil }
        #expect(echoed.receiver == "a1" && echoed.line == "b2")
    }

    @Test func supervisionIsAcknowledgedAtOnce() {
        let null = DC09Frame(id: .null, sequence: "0001", account: "1234", timestamp: Self.now)
        let decided = answer(Self.receiving.decide(Self.bytes(null), now: Self.now))
        #expect(decided?.0.id == .ack && decided?.1 == .supervision && decided?.0.sequence == "0001")
    }

    @Test func whatCannotBeTakenIsAnsweredNAKOrDUHAndNeverStored() {
        let cases: [([UInt8], DC09Frame.ID, DC09Receiving.Reason)] = [
            (Self.bytes(Self.event(at: -41)), .nak, .outsideWindow),
            (Self.bytes(Self.event(at: 21)), .nak, .outsideWindow),
            (Self.bytes(Self.event(account: "9999")), .nak, .unknownAccount),
            (Self.bytes(Self.event(account: "5678")), .duh, .clearFromKeyedAccount),
            (Self.bytes(Self.event(account: "5678"), key: try! DC09Key(bytes: Array(repeating: 7, count: 16))), .nak, .undecryptable),
            // Encrypted under the right key but unstamped: not DC-09's encrypted content, answered as a wrong key's.
            (Self.bytes(DC09Frame(id: .siaDCS, sequence: "0042", account: "5678", data: "#5678|Nri1/QA001"), key: Self.key), .nak, .undecryptable),
            (Self.bytes(Self.event(code: "ZZ")), .duh, .unsupported),
            (Self.bytes(DC09Frame(id: .contactID, sequence: "0001", account: "1234", data: "#1234|1999 01 001", timestamp: Self.now)), .duh, .unsupported),
            (Self.bytes(DC09Frame(id: .ack, sequence: "0001", account: "1234")), .duh, .unsupported),
            (DC09FrameTests.framed("\"XYZ\"0001L0#1234[]"), .duh, .unsupported),
        ]
        for (bytes, id, reason) in cases {
            let decided = answer(Self.receiving.decide(bytes, now: Self.now))
            #expect(decided?.0.id == id && decided?.1 == reason, "\(String(decoding: bytes, as: UTF8.self)): \(String(describing: decided))")
            if id == .nak { #expect(decided?.0.timestamp == Self.now, "a NAK carries our time") }
        }
        var damaged = Self.bytes(Self.event())
        damaged[25] ^= 0x04
        #expect(answer(Self.receiving.decide(damaged, now: Self.now))?.1 == .malformed)
        #expect(answer(Self.receiving.decide(Self.bytes(Self.event(at: -40)), now: Self.now)) == nil, "the window's edge is inside")
    }

    @Test func theEventCodeIsFoundBehindItsModifiers() {
        func code(_ id: DC09Frame.ID, _ data: String) -> String? {
            DC09Receiving.code(of: DC09Frame(id: id, sequence: "0001", account: "1234", data: data))
        }
        #expect(code(.siaDCS, "#1234|Nri1/QA001") == "QA")
        #expect(code(.siaDCS, "#1234|Nri1QA1") == "QA", "dc09-spt writes no slash")
        #expect(code(.siaDCS, "#1234|Nid12/ri1/ti10:20/MA3") == "MA")
        #expect(code(.siaDCS, "#1234|Aany text") == nil)
        #expect(code(.contactID, "#1234|1101 01 001") == "1101")
        #expect(code(.contactID, "#1234|11x1 01 001") == nil)
        #expect(code(.null, "") == nil)
    }
}
