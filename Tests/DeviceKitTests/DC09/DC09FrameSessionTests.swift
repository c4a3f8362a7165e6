import Testing

@testable import DeviceKit

/// The device's DC-09 framing against the receiver's rules (`DC09Receiving`): transcripts, no sockets.
@Suite struct DC09FrameSessionTests {
    static let key = try! DC09Key(bytes: Array("0123456789ABCDEF0123456789ABCDEF".utf8))
    /// 2026-12-05 01:33:36 UTC, in ms.
    static let wall: UInt64 = 1_796_434_416_000

    struct Pair {
        var device: DC09FrameSession
        var receiver: DC09Receiving
        var random = SplitMix64(seed: 21)
        var receiverWall = DC09FrameSessionTests.wall

        init(key: DC09Key? = nil, payload: DC09Frame.ID = .siaDCS, takes: @escaping @Sendable (DC09Frame.ID, String) -> Bool = { _, _ in true }) {
            device = DC09FrameSession(configuration: .init(account: "1234", receiver: "7", line: "3", payload: payload, key: key))
            receiver = DC09Receiving(accounts: ["1234": .init(key: key)], takes: takes)
        }

        /// The receiver's answer to `bytes`, written as it would send it (after storing, for an event).
        mutating func answer(_ bytes: [UInt8]) -> [UInt8] {
            let now = DC09Timestamp(milliseconds: receiverWall)
            let answering = try? DC09Frame.decode(bytes) { _ in receiver.accounts["1234"]?.key }
            switch receiver.decide(bytes, now: now) {
            case .store(let frame):
                return try! receiver.encoded(receiver.acknowledgement(of: frame, now: now), answering: frame, random: &random)
            case .answer(let frame, _):
                return try! receiver.encoded(frame, answering: answering, random: &random)
            }
        }
    }

    @Test(arguments: [(nil, DC09Frame.ID.siaDCS), (key, .siaDCS), (nil, .contactID), (key, .contactID)])
    func anAlarmIsAcknowledgedByItsSequence(key: DC09Key?, payload: DC09Frame.ID) throws {
        var pair = Pair(key: key, payload: payload)
        let frame = try #require(try pair.device.frame(messageID: 41, code: DC09EventCodes.alarm(.button), wall: Self.wall, random: &pair.random))
        #expect(try DC09Frame.decode(frame) { _ in key }.sequence == "0042")
        #expect(pair.device.answer(pair.answer(frame), wall: Self.wall) == .acknowledged(id: 41))
        #expect(pair.device.answer(pair.answer(frame), wall: Self.wall) == .unmatched(.ack, sequence: "0042"), "a late second ACK")
    }

    @Test func aRetransmissionKeepsItsSequenceAndOneACKSettlesIt() throws {
        var pair = Pair()
        let first = try #require(try pair.device.frame(messageID: 9_998, code: DC09EventCodes.event(.mainsLost), wall: Self.wall, random: &pair.random))
        let again = try #require(try pair.device.frame(messageID: 9_998, code: DC09EventCodes.event(.mainsLost), wall: Self.wall + 5_000, random: &pair.random))
        #expect(try DC09Frame.decode(first) { _ in nil }.sequence == "9999")
        #expect(try DC09Frame.decode(again) { _ in nil }.sequence == "9999")
        #expect(DC09FrameSession.sequence(of: 9_999) == "0001", "wraps past 9999")
        #expect(pair.device.answer(pair.answer(again), wall: Self.wall) == .acknowledged(id: 9_998))
    }

    /// A device whose clock is two minutes slow: the receiver answers NAK with its time, the device takes the
    /// offset, and the message sent again is inside the window.
    @Test(arguments: [nil, key])
    func aNAKsTimeCorrectsTheClockAndTheResentFrameIsTaken(key: DC09Key?) throws {
        var pair = Pair(key: key)
        pair.receiverWall = Self.wall + 120_000
        let slow = try #require(try pair.device.frame(messageID: 7, code: DC09EventCodes.alarm(.fall), wall: Self.wall, random: &pair.random))
        let nak = pair.device.answer(pair.answer(slow), wall: Self.wall)
        #expect(nak == .refused(id: nil, receiverTime: DC09Timestamp(milliseconds: Self.wall + 120_000)))
        #expect(pair.device.clockOffset == 120)
        let resent = try #require(try pair.device.frame(messageID: 7, code: DC09EventCodes.alarm(.fall), wall: Self.wall + 1_000, random: &pair.random))
        #expect(pair.device.answer(pair.answer(resent), wall: Self.wall + 1_000) == .acknowledged(id: 7))
    }

    @Test func supervisionIsAnsweredAndWhatTheReceiverDoesNotTakeIsSaid() throws {
        var pair = Pair(takes: { _, code in code != "QA" })
        let null = try pair.device.supervision(wall: Self.wall, random: &pair.random)
        #expect(pair.device.answer(pair.answer(null), wall: Self.wall) == .supervisionAnswered)
        let alarm = try #require(try pair.device.frame(messageID: 3, code: DC09EventCodes.alarm(.button), wall: Self.wall, random: &pair.random))
        #expect(pair.device.answer(pair.answer(alarm), wall: Self.wall) == .notUnderstood(id: 3))
        #expect(try pair.device.frame(messageID: 4, code: nil, wall: Self.wall, random: &pair.random) == nil, "a message DC-09 does not carry")
        guard case .unreadable = pair.device.answer(Array("\nnot a frame\r".utf8), wall: Self.wall) else {
            Issue.record("noise is unreadable")
            return
        }
        pair.device.reset()
        let late = try DC09Frame(id: .ack, sequence: "0004", account: "1234").encoded(random: &pair.random)
        #expect(pair.device.answer(late, wall: Self.wall) == .unmatched(.ack, sequence: "0004"))
    }
}
