import Foundation
import CDeviceSys
import Testing

@testable import DeviceKit

@Suite struct EvdevKeyTrackerTests {
    static let key: UInt16 = 148  // KEY_PROG1

    static func key(_ value: Int32, code: UInt16 = key) -> InputEvent {
        InputEvent(type: InputEventNames.evKey, code: code, value: value)
    }
    static let report = InputEvent(type: InputEventNames.evSyn, code: InputEventNames.synReport, value: 0)
    static let dropped = InputEvent(type: InputEventNames.evSyn, code: InputEventNames.synDropped, value: 0)
    static let scan = InputEvent(type: InputEventNames.evMsc, code: 4, value: 0x90001)

    @Test func levelsCountOnlyWhenTheirPacketEnds() {
        var tracker = EvdevKeyTracker(key: Self.key, initiallyDown: false)
        #expect(tracker.feed(Self.scan) == [])
        #expect(tracker.feed(Self.key(1)) == [])
        #expect(tracker.feed(Self.report) == [.level(down: true)])
        #expect(tracker.feed(Self.key(0)) == [])
        #expect(tracker.feed(Self.report) == [.level(down: false)])
        #expect(!tracker.isDown)
    }

    @Test func otherKeysAndAutorepeatDoNotChangeTheLevel() {
        var tracker = EvdevKeyTracker(key: Self.key, initiallyDown: false)
        #expect(tracker.feed(Self.key(1, code: 30)) == [])
        #expect(tracker.feed(Self.report) == [])
        _ = tracker.feed(Self.key(1))
        #expect(tracker.feed(Self.report) == [.level(down: true)])
        for _ in 0..<5 {
            _ = tracker.feed(Self.key(2))
            #expect(tracker.feed(Self.report) == [])
        }
        #expect(tracker.autorepeats == 5)
        #expect(tracker.isDown)
    }

    @Test func aPressAndReleaseInOnePacketGiveBothEdges() {
        var tracker = EvdevKeyTracker(key: Self.key, initiallyDown: false)
        _ = tracker.feed(Self.key(1))
        _ = tracker.feed(Self.key(0))
        #expect(tracker.feed(Self.report) == [.level(down: true), .level(down: false)])
    }

    @Test func aKeyHeldAtStartReleasesWithoutAPress() {
        var tracker = EvdevKeyTracker(key: Self.key, initiallyDown: true)
        _ = tracker.feed(Self.key(1))
        #expect(tracker.feed(Self.report) == [])
        _ = tracker.feed(Self.key(0))
        #expect(tracker.feed(Self.report) == [.level(down: false)])
    }

    @Test func afterADropEventsUpToTheNextReportAreDiscardedAndTheStateIsReadAgain() {
        var tracker = EvdevKeyTracker(key: Self.key, initiallyDown: false)
        _ = tracker.feed(Self.key(1))
        #expect(tracker.feed(Self.dropped) == [])
        // The half packet before the drop and everything up to the next report are lost.
        #expect(tracker.feed(Self.report) == [.resynchronise])
        #expect(tracker.drops == 1)
        #expect(!tracker.isDown)
        // EVIOCGKEY says the key is down: the hidden press is reported once.
        #expect(tracker.resynchronised(down: true) == [.level(down: true)])
        #expect(tracker.resynchronised(down: true) == [])
        // Normal packets flow again.
        _ = tracker.feed(Self.key(0))
        #expect(tracker.feed(Self.report) == [.level(down: false)])
    }

    @Test func eventsBetweenADropAndTheReportAreIgnored() {
        var tracker = EvdevKeyTracker(key: Self.key, initiallyDown: false)
        _ = tracker.feed(Self.dropped)
        #expect(tracker.feed(Self.key(1)) == [])
        #expect(tracker.feed(Self.key(0)) == [])
        #expect(tracker.feed(Self.report) == [.resynchronise])
        #expect(tracker.resynchronised(down: false) == [])
    }

    @Test(arguments: InputEventLayout.allCases)
    func recordsRoundTripThroughBothLayouts(layout: InputEventLayout) {
        let events = [
            InputEvent(seconds: 1_700_000_000, microseconds: 999_999, type: 1, code: 148, value: 1),
            InputEvent(seconds: 5, microseconds: 0, type: 0, code: 0, value: 0),
            InputEvent(seconds: 0, microseconds: 1, type: 4, code: 4, value: -2),
        ]
        let bytes = events.flatMap(layout.encode)
        #expect(bytes.count == 3 * layout.size)
        let decoded = layout.decode(bytes + [0xff, 0xee])
        #expect(decoded.events == events)
        #expect(decoded.consumed == 3 * layout.size)
    }

    @Test func theNativeLayoutIsTheCStructSize() {
        #expect(InputEventLayout.native.size == cdevicesys_input_event_size())
    }

    @Test func keyNamesAndNumbersResolve() {
        #expect(InputEventNames.keyCode(named: "KEY_PROG1") == 148)
        #expect(InputEventNames.keyCode(named: "btn_0") == 256)
        #expect(InputEventNames.keyCode(named: "0x94") == 148)
        #expect(InputEventNames.keyCode(named: "148") == 148)
        #expect(InputEventNames.keyCode(named: "KEY_NOPE") == nil)
        #expect(InputEventNames.keyCode(named: "4000") == nil)
        #expect(InputEventNames.code(type: 1, code: 116) == "KEY_POWER")
        #expect(InputEventNames.code(type: 0, code: 3) == "SYN_DROPPED")
        #expect(InputEventNames.code(type: 1, code: 0x2fe) == "766")
        #expect(InputEventNames.logindKeys[116] != nil)
        #expect(InputEventNames.logindKeys[148] == nil)
    }
}

@Suite struct ScriptedButtonSourceTests {
    @Test func poissonGapsAverageTheInverseRate() {
        var random = SplitMix64(seed: 7)
        let gaps = (0..<20_000).map { _ in ScriptedButtonSource.exponentialGap(perSecond: 4, &random).seconds }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        #expect(abs(mean - 0.25) < 0.01, "mean \(mean)")
        // Exponential: the median is ln 2 / rate.
        let median = gaps.sorted()[gaps.count / 2]
        #expect(abs(median - log(2) / 4) < 0.01, "median \(median)")
        #expect(gaps.allSatisfy { $0 >= 0 })
    }

    @Test func scriptedPressesComeInOrder() async throws {
        let log = ButtonEventLog()
        try await ScriptedButtonSource(.presses([
            SimulatedPress(at: .milliseconds(40), duration: .milliseconds(10)), SimulatedPress(at: .milliseconds(5), duration: .milliseconds(10)),
        ])).run { log.append($0) }
        #expect(log.all == [.present(initiallyDown: false), .level(down: true), .level(down: false), .level(down: true), .level(down: false)])
    }
}
