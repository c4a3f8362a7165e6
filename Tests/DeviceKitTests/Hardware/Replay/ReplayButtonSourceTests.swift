import Foundation
import Testing

@testable import DeviceKit

/// The replay backend judges a recording in the recording's own time: lengths are the recorded ones at any
/// playback speed (the audit saw 65 ms replayed as 52 ms and two 32 ms presses silently dropped when lengths
/// were measured as the events were delivered).
@Suite struct ReplayButtonSourceTests {
    static let enter: UInt16 = 28

    /// A one-key recording of KEY_ENTER with presses `(start ms, held ms)`, and its last event at `end` ms.
    static func recording(presses: [(Int64, Int64)], end: Int64? = nil, releaseLast: Bool = true) -> String {
        func report(_ ms: Int64, _ value: Int32) -> [InputEvent] {
            let (s, us) = (ms / 1000, ms % 1000 * 1000)
            return [
                InputEvent(seconds: s, microseconds: us, type: InputEventNames.evKey, code: enter, value: value),
                InputEvent(seconds: s, microseconds: us, type: InputEventNames.evSyn, code: InputEventNames.synReport, value: 0),
            ]
        }
        var events: [InputEvent] = []
        for (index, (start, held)) in presses.enumerated() {
            events += report(start, 1)
            if releaseLast || index < presses.count - 1 { events += report(start + held, 0) }
        }
        if let end {
            events.append(InputEvent(seconds: end / 1000, microseconds: end % 1000 * 1000, type: InputEventNames.evSyn, code: InputEventNames.synReport, value: 0))
        }
        let recording = EvemuRecording(
            name: "test button", identity: InputDeviceIdentity(busType: 3, vendor: 1, product: 2, version: 1),
            bitmaps: [0: [0x03], 1: [0, 0, 0, 0x10]], events: events)
        return recording.render()
    }

    static func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "devicekit-replay-\(UUID().uuidString).evemu"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The verdicts a replay hands on, with their instants (which depend on when it ran) left out.
    static func verdicts(_ events: [ButtonEvent]) -> [PressDetector.Action] {
        events.compactMap { event in
            guard case .judged(let verdict) = event else { return nil }
            return verdict.mappingInstants { _ in .zero }
        }
    }

    @Test(arguments: [1.0, 8.0])
    func aRecordingGivesTheRecordedLengthsAtAnySpeed(speed: Double) async throws {
        let file = try Self.write(Self.recording(presses: [(0, 65), (500, 32), (700, 32), (1000, 20)]))
        defer { unlink(file) }
        let press = PressDetector.Configuration(debounce: .milliseconds(30), hold: .milliseconds(30))
        let log = ButtonEventLog()
        try await ReplayButtonSource(settings: .init(file: file), press: press, speed: speed).run { log.append($0) }
        #expect(log.all.first == .present(initiallyDown: false))
        #expect(Self.verdicts(log.all) == [
            .pressed(at: .zero), .released(heldFor: .milliseconds(65)),
            .pressed(at: .zero), .released(heldFor: .milliseconds(32)),
            .pressed(at: .zero), .released(heldFor: .milliseconds(32)),
            .glitch(lasted: .milliseconds(20)),
        ])
    }

    @Test func aPressIsHandedOnWithItsRecordedStartOnTheMonotonicClock() async throws {
        let file = try Self.write(Self.recording(presses: [(0, 10), (200, 150)]))
        defer { unlink(file) }
        let log = ButtonEventLog()
        let before = Duration.monotonicNow
        try await ReplayButtonSource(settings: .init(file: file), speed: 1).run { log.append($0) }
        let pressedAt = log.all.compactMap { event -> Duration? in
            if case .judged(.pressed(let at)) = event { return at }
            return nil
        }
        try #require(pressedAt.count == 1)
        // The press went down 200 ms into the recording: mapped onto the clock from when the replay began.
        #expect(pressedAt[0] - before >= .milliseconds(200))
        #expect(pressedAt[0] <= Duration.monotonicNow)
    }

    @Test func aRecordingThatEndsWithTheKeyHeldInventsNoReleaseAndSaysSo() async throws {
        // Held for 60 ms when the recording stops: not yet the 100 ms hold, so no alarm.
        let file = try Self.write(Self.recording(presses: [(0, 150), (400, 0)], end: 460, releaseLast: false))
        defer { unlink(file) }
        let memory = MemoryLog()
        let log = ButtonEventLog()
        try await ReplayButtonSource(settings: .init(file: file), speed: 4, logger: memory.logger()).run { log.append($0) }
        #expect(Self.verdicts(log.all) == [.pressed(at: .zero), .released(heldFor: .milliseconds(150))])
        let warnings = memory.messages(atLeast: .warning)
        #expect(warnings.count == 1)
        #expect(warnings.first?.contains("ends with the call button still held (for 60 ms") == true)
    }

    @Test func recordedButtonFollowsTheKeyThroughItsTracker() throws {
        let recording = try EvemuRecording(parsing: Self.recording(presses: [(0, 120), (300, 40)], end: 500))
        let button = RecordedButton(recording: recording, key: Self.enter)
        #expect(button.edges == [
            ButtonEdge(down: true, at: .zero), ButtonEdge(down: false, at: .milliseconds(120)),
            ButtonEdge(down: true, at: .milliseconds(300)), ButtonEdge(down: false, at: .milliseconds(340)),
        ])
        #expect(button.duration == .milliseconds(500))
        #expect(button.presses == 2)
        #expect(!button.heldAtEnd)
        #expect(button.judged(.init()) == [
            PressTimeline.Entry(at: .milliseconds(100), verdict: .pressed(at: .zero)),
            PressTimeline.Entry(at: .milliseconds(150), verdict: .released(heldFor: .milliseconds(120))),
            PressTimeline.Entry(at: .milliseconds(370), verdict: .tooShort(heldFor: .milliseconds(40))),
        ])
    }
}
