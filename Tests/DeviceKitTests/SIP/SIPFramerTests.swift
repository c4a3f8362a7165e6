import Testing

@testable import DeviceKit

/// `SIPStreamFramer`: cutting messages from a TCP stream (RFC 3261 §18.3), keep-alives (RFC 5626 §3.5.1), and
/// the bounds a hostile peer meets.
@Suite struct SIPFramerTests {
    typealias S = SIPMessageSamples

    /// Every message the framer gives for `chunks` appended one after another.
    static func cut(_ chunks: [[UInt8]], framer: inout SIPStreamFramer) throws -> [[UInt8]] {
        var messages: [[UInt8]] = []
        for chunk in chunks {
            framer.append(chunk)
            while let message = try framer.next() { messages.append(message) }
        }
        return messages
    }

    @Test func everySplitPointOfTwoMessagesGivesBothWhole() throws {
        // An INVITE with a body, then a BYE without one.
        let stream = S.f1Invite + S.f13Bye
        for split in 0...stream.count {
            var framer = SIPStreamFramer()
            let messages = try Self.cut([Array(stream[..<split]), Array(stream[split...])], framer: &framer)
            #expect(messages == [S.f1Invite, S.f13Bye], "split at \(split)")
        }
        var framer = SIPStreamFramer()
        #expect(try Self.cut(stream.map { [$0] }, framer: &framer) == [S.f1Invite, S.f13Bye])
        #expect(try SIPMessage(parsing: S.f1Invite) != SIPMessage(parsing: S.f13Bye))
    }

    @Test func aMessageWaitsForItsWholeBody() throws {
        var framer = SIPStreamFramer()
        framer.append(S.f1Invite.dropLast())
        #expect(try framer.next() == nil)
        framer.append([S.f1Invite.last ?? 0])
        #expect(try framer.next() == S.f1Invite)
        #expect(try framer.next() == nil)
    }

    @Test func doubleCRLFPingsBetweenMessagesAreCountedAndSkipped() throws {
        let ping: [UInt8] = Array("\r\n\r\n".utf8)
        let stream = ping + S.f13Bye + ping + ping + S.f14OK + Array("\r\n".utf8) + S.f12Ack + ping
        for split in 0...stream.count {
            var framer = SIPStreamFramer()
            let messages = try Self.cut([Array(stream[..<split]), Array(stream[split...])], framer: &framer)
            #expect(messages == [S.f13Bye, S.f14OK, S.f12Ack], "split at \(split)")
            // The lone CRLF before the ACK is skipped (§7.5) but is no ping.
            #expect(framer.pingsSeen == 4, "split at \(split)")
        }
        // Half a ping waits for the rest.
        var framer = SIPStreamFramer()
        framer.append(Array("\r\n\r".utf8))
        #expect(try framer.next() == nil && framer.pingsSeen == 0)
        framer.append([0x0A])
        #expect(try framer.next() == nil && framer.pingsSeen == 1)
    }

    @Test func aMessageWithoutContentLengthBreaksTheStream() throws {
        let bytes = S.message(["OPTIONS sip:a@b.example.com SIP/2.0", "Via: SIP/2.0/TCP h;branch=z9hG4bK1"]) + S.f13Bye
        var framer = SIPStreamFramer()
        framer.append(bytes)
        #expect(throws: SIPParseError.missingContentLengthOnStream) { try framer.next() }
        // Unusable after: the same error again, even with good bytes.
        framer.append(S.f13Bye)
        #expect(throws: SIPParseError.missingContentLengthOnStream) { try framer.next() }
    }

    @Test func oversizeHeadersAndBodiesAreRefusedBeforeTheyAreBuffered() throws {
        var framer = SIPStreamFramer()
        framer.append(Array("OPTIONS sip:a@b SIP/2.0\r\nX: ".utf8))
        #expect(try framer.next() == nil)
        framer.append([UInt8](repeating: 0x78, count: 16_384))
        #expect(throws: SIPParseError.headerSectionTooLarge) { try framer.next() }

        var large = SIPStreamFramer()
        large.append(SIPMessageParsingTests.replacing("Content-Length: 0", with: "Content-Length: 65536", in: S.f13Bye))
        #expect(throws: SIPParseError.contentLengthTooLarge("65536")) { try large.next() }

        // Header section and body together over 65,535 bytes.
        var total = SIPStreamFramer()
        let headers = SIPMessageParsingTests.replacing("Content-Length: 0", with: "Content-Length: 65535", in: S.f13Bye)
        total.append(headers)
        #expect(throws: SIPParseError.messageTooLarge(headers.count + 65_535)) { try total.next() }

        var conflicting = SIPStreamFramer()
        conflicting.append(SIPMessageParsingTests.replacing("Content-Length: 0", with: "Content-Length: 0\r\nl: 3", in: S.f13Bye))
        #expect(throws: SIPParseError.conflictingContentLengths) { try conflicting.next() }
    }

    @Test func aMalformedMessageIsStillCutSoThatItCanBeAnsweredWithA400() throws {
        // The framer needs only Content-Length; the parser judges the rest.
        let bad = SIPMessageParsingTests.replacing("Max-Forwards: 70", with: "Max-Forwards: 300", in: S.f13Bye)
        var framer = SIPStreamFramer()
        let messages = try Self.cut([bad + S.f14OK], framer: &framer)
        #expect(messages == [bad, S.f14OK])
        let error = try #require(throws: SIPParseError.self) { try SIPMessage(parsing: bad) }
        #expect(SIPResponse.badRequest(answering: bad, because: error)?.statusCode == 400)
    }
}
