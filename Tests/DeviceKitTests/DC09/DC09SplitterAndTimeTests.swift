import Foundation
import Testing

@testable import DeviceKit

/// A DC-09 stream cut into frames, the timestamp's calendar and the receivers' time window.
@Suite struct DC09SplitterAndTimeTests {
    static func frame(_ sequence: Int) -> [UInt8] {
        var random = SplitMix64(seed: UInt64(sequence))
        return try! DC09Frame(
            id: .siaDCS, sequence: DC09Frame.sequence(sequence), account: "1234", data: "#1234|Nri1/QA001",
            timestamp: DC09Timestamp(secondsSince1970: 1_796_434_416)
        ).encoded(random: &random)
    }

    @Test func framesMergedInOneReadOrSplitAcrossReadsComeOutWhole() {
        let stream = Self.frame(1) + Self.frame(2) + Self.frame(3)
        var splitter = DC09FrameSplitter()
        #expect(splitter.feed(stream) == [.frame(Self.frame(1)), .frame(Self.frame(2)), .frame(Self.frame(3))])
        // Byte by byte, and in uneven reads.
        for size in [1, 2, 7, 50] {
            var pieces: [DC09FrameSplitter.Piece] = []
            var index = 0
            while index < stream.count {
                pieces += splitter.feed(stream[index..<min(index + size, stream.count)])
                index += size
            }
            #expect(pieces == [.frame(Self.frame(1)), .frame(Self.frame(2)), .frame(Self.frame(3))], "reads of \(size)")
        }
    }

    @Test func noiseIsSkippedAndAFrameWithoutEndCannotGrowTheBuffer() {
        var splitter = DC09FrameSplitter()
        #expect(splitter.feed(Array("hello".utf8) + Self.frame(1)) == [.skipped(5), .frame(Self.frame(1))])
        // A frame cut short by the next line feed: its bytes are skipped, the next one is whole.
        #expect(splitter.feed(Array(Self.frame(2).dropLast(3)) + Self.frame(3)) == [.skipped(Self.frame(2).count - 3), .frame(Self.frame(3))])
        // A peer that never sends the carriage return: dropped at the limit, then the stream recovers.
        let flood = [UInt8(0x0A)] + Array(repeating: UInt8(ascii: "A"), count: 3 * DC09FrameSplitter.maximumFrameLength)
        #expect(splitter.feed(flood) == [.overlong])
        #expect(splitter.feed([0x0D] + Self.frame(4)) == [.frame(Self.frame(4))])
    }

    @Test func timestampsFollowTheCalendar() {
        let cases: [(Int64, String)] = [
            (0, "_00:00:00,01-01-1970"), (951_782_400, "_00:00:00,02-29-2000"), (1_796_434_416, "_01:33:36,12-05-2026"),
            (4_107_542_399, "_23:59:59,02-28-2100"), (-1, "_23:59:59,12-31-1969"),
        ]
        for (seconds, text) in cases {
            #expect(DC09Timestamp(secondsSince1970: seconds).description == text)
            #expect(DC09Timestamp(text: text.dropFirst()) == DC09Timestamp(secondsSince1970: seconds))
        }
        // Against Foundation's calendar, over a century of random instants.
        var random = SplitMix64(seed: 9)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "'_'HH:mm:ss,MM-dd-yyyy"
        for _ in 0..<1_000 {
            let seconds = Int64(random.next() % 4_102_444_800)
            #expect(DC09Timestamp(secondsSince1970: seconds).description == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))))
        }
        for bad in ["24:00:00,12-05-2026", "12:60:00,12-05-2026", "12:00:60,12-05-2026", "12:00:00,02-29-2100", "12:00:00,13-01-2026",
                    "12:00:00,00-01-2026", "12:00:00,04-31-2026", "12:00:00,12-05-26", "1200:00,12-05-2026", "12:00:00 12-05-2026"] {
            #expect(DC09Timestamp(text: Substring(bad)) == nil, "\(bad)")
        }
    }

    /// The window DC-09 receivers typically use: 20 s ahead, 40 s behind, both ends included.
    @Test func theWindowTakesTwentySecondsAheadAndFortyBehind() {
        let window = DC09TimeWindow()
        let now = DC09Timestamp(secondsSince1970: 1_000_000)
        for (offset, inside) in [(-41, false), (-40, true), (0, true), (20, true), (21, false)] {
            #expect(window.contains(DC09Timestamp(secondsSince1970: 1_000_000 + Int64(offset)), now: now) == inside, "\(offset) s")
        }
    }
}
