import Foundation
import Testing

@testable import DeviceKit

/// Recordings the project writes itself (`EvemuRecording.render`, evemu 1.3 as `diag record` writes it),
/// judged as `diag analyze` and `diag selftest` judge them.
enum Recordings {
    static let btnLeft: UInt16 = 0x110, btnTouch: UInt16 = 0x14a, keyEnter: UInt16 = 28, keyProg1: UInt16 = 148

    /// One HID report at `ms` milliseconds: MSC_SCAN, then each key value, then SYN_REPORT.
    static func report(_ ms: Double, _ keys: [(code: UInt16, value: Int32)]) -> [InputEvent] {
        let micros = Int64((ms * 1000).rounded()) + 10_000_000
        func event(_ type: UInt16, _ code: UInt16, _ value: Int32) -> InputEvent {
            InputEvent(seconds: micros / 1_000_000, microseconds: micros % 1_000_000, type: type, code: code, value: value)
        }
        return [event(InputEventNames.evMsc, 4, 0x90001)] + keys.map { event(InputEventNames.evKey, $0.code, $0.value) }
            + [event(InputEventNames.evSyn, InputEventNames.synReport, 0)]
    }

    /// A one-key USB button box: presses as (start, length) in milliseconds.
    static func box(key: UInt16 = keyProg1, presses: [(at: Double, lasting: Double)], repeatEvery: Double? = nil) -> EvemuRecording {
        var events: [InputEvent] = []
        for press in presses {
            if press.lasting == 0 {
                events += report(press.at, [(key, 1), (key, 0)])  // press and release in one report
                continue
            }
            events += report(press.at, [(key, 1)])
            if let repeatEvery {
                for t in stride(from: press.at + 250, to: press.at + press.lasting, by: repeatEvery) { events += report(t, [(key, 2)]) }
            }
            events += report(press.at + press.lasting, [(key, 0)])
        }
        return EvemuRecording(
            name: "USB SOS button", identity: InputDeviceIdentity(busType: 3, vendor: 0x1234, product: 0x5678, version: 0x111),
            bitmaps: [InputEventNames.evKey: EvemuRecording.bytes(of: [key]), InputEventNames.evMsc: [0x10]], events: events)
    }

    /// A touchscreen: BTN_TOUCH its only key, ABS_X/ABS_Y, INPUT_PROP_DIRECT; taps as (start, length).
    static func touchscreen(taps: [(at: Double, lasting: Double)]) -> EvemuRecording {
        var events: [InputEvent] = []
        for tap in taps {
            events += report(tap.at, [(btnTouch, 1)])
            events += report(tap.at + tap.lasting, [(btnTouch, 0)])
        }
        return EvemuRecording(
            name: "eGalax Touchscreen", identity: InputDeviceIdentity(busType: 3, vendor: 0x0eef, product: 0x0001, version: 0x100),
            bitmaps: [InputEventNames.evKey: EvemuRecording.bytes(of: [btnTouch]), InputEventNames.evAbs: [0x03]],
            properties: [0x02], events: events.filter { $0.type != InputEventNames.evMsc })
    }

    /// The recording as a file would hold it, read back.
    static func roundTrip(_ recording: EvemuRecording) throws -> (EvemuRecording, EvemuRecording.Reading) {
        try EvemuRecording.read(recording.render())
    }
}

@Suite struct ButtonAnalysisTests {
    func analyse(
        _ recording: EvemuRecording, key: UInt16? = nil, allowPointer: Bool = false,
        _ configuration: PressDetector.Configuration = .init()
    ) throws -> ButtonAnalysis {
        let (parsed, reading) = try Recordings.roundTrip(recording)
        return ButtonAnalysis(
            recording: parsed, reading: reading, source: "press.evemu", key: key, allowPointerDevice: allowPointer,
            configuration: configuration)
    }

    @Test func aPressOf103MillisecondsWithHold100IsAnAlarmAndSaysWhatWouldChangeIt() throws {
        let analysis = try analyse(Recordings.box(presses: [(0, 103)]))
        #expect(analysis.raisesAlarms)
        #expect(analysis.alarms == 1)
        #expect(analysis.presses.count == 1)
        #expect(analysis.presses[0].lasted == .milliseconds(103))
        #expect(analysis.presses[0].verdicts == [.pressed(at: .zero)])
        #expect(analysis.presses[0].change == "no alarm if alarm.hold_ms were above 103")
        let lines = analysis.lines
        #expect(lines[0] == "Recording: press.evemu (evemu 1.3), 6 events over 0.103000 s")
        #expect(lines[1] == "Device: \"USB SOS button\", usb 1234:5678; keys: KEY_PROG1")
        #expect(lines[2].hasPrefix("  PASS  button    \"USB SOS button\" (usb 1234:5678) is a sensible call button"))
        #expect(lines[3] == "Settings: the defaults (no --config given): debounce_ms = 30, hold_ms = 100, long_press_ms = 3000, stuck_after_s = 60")
        #expect(lines[4] == "Presses of KEY_PROG1: 1")
        #expect(lines[5] == "  #1  at 0.000000 s  held 103 ms: held for alarm.hold_ms = 100 ms: an alarm — no alarm if alarm.hold_ms were above 103")
        #expect(lines.last == "Verdict: this button raises alarms with these settings.")
        #expect(analysis.pressVerdict?.status == .pass)
    }

    @Test func aPressOf99MillisecondsIsTooShortAndALowerHoldIsSuggestedAfterJudgingAgain() throws {
        let analysis = try analyse(Recordings.box(presses: [(0, 99)]))
        #expect(!analysis.raisesAlarms)
        #expect(analysis.presses[0].verdicts == [.tooShort(heldFor: .milliseconds(99))])
        #expect(analysis.presses[0].change == "an alarm with alarm.hold_ms = 99 or less")
        #expect(analysis.suggestion?.settings == "alarm.hold_ms = 99")
        #expect(analysis.suggestion?.alarms == 1)
        let verdict = try #require(analysis.pressVerdict)
        #expect(verdict.status == .fail)
        #expect(verdict.message == "press.evemu holds 1 press of KEY_PROG1 (6 events): 0 alarms, 1 too short. It would never raise an alarm: no press lasted alarm.hold_ms = 100 ms; with alarm.hold_ms = 99 the recording raises 1 alarm (judged again)")
    }

    @Test func aHIDReportWithPressAndReleaseTogetherIsAGlitchAndTheSuggestionIsVerified() throws {
        let analysis = try analyse(Recordings.box(presses: [(0, 0), (1000, 0)]))
        #expect(analysis.glitches == 2)
        #expect(analysis.alarms == 0)
        #expect(analysis.presses.map(\.verdicts) == [[.glitch(lasted: .zero)], [.glitch(lasted: .zero)]])
        #expect(analysis.presses[0].change == "an alarm with alarm.debounce_ms and alarm.hold_ms = 0 or less")
        let suggestion = try #require(analysis.suggestion)
        #expect(suggestion.settings == "alarm.debounce_ms = 0 and alarm.hold_ms = 0")
        #expect(suggestion.alarms == 2)
        // The suggestion really works: the same recording judged with it.
        let again = try analyse(Recordings.box(presses: [(0, 0), (1000, 0)]), suggestion.configuration)
        #expect(again.alarms == 2)
        #expect(again.raisesAlarms)
        let verdict = try #require(analysis.pressVerdict)
        #expect(verdict.status == .fail)
        #expect(verdict.message.contains("every press was shorter than alarm.debounce_ms = 30 ms; with alarm.debounce_ms = 0 and alarm.hold_ms = 0 the recording raises 2 alarms (judged again)"))
        #expect(analysis.lines.contains("  #1  at 0.000000 s  held 0 ms: a press of 0 ms was shorter than alarm.debounce_ms = 30 ms and was ignored as a bounce — an alarm with alarm.debounce_ms and alarm.hold_ms = 0 or less"))
    }

    @Test func aMicrosecondPressLikeAnACPIButtonIsAGlitchWithTheSameSuggestion() throws {
        let analysis = try analyse(Recordings.box(key: 116, presses: [(0, 0.019)]))
        #expect(analysis.presses.first?.verdicts == [.glitch(lasted: .microseconds(19))])
        #expect(analysis.suggestion?.settings == "alarm.debounce_ms = 0 and alarm.hold_ms = 0")
        // KEY_POWER itself is refused: the system acts on it.
        #expect(analysis.identity.contains { $0.status == .fail && $0.message.contains("KEY_POWER is a key the system acts on (systemd-logind: power off") })
        #expect(!analysis.raisesAlarms)
    }

    @Test func autorepeatIsCountedPerPressAndIgnored() throws {
        let analysis = try analyse(Recordings.box(presses: [(0, 600), (2000, 120)], repeatEvery: 33))
        #expect(analysis.alarms == 2)
        #expect(analysis.presses.map(\.autorepeats) == [11, 0])
        #expect(analysis.button?.autorepeats == 11)
        #expect(analysis.tally == "2 alarms, 11 autorepeat events (ignored)")
        #expect(analysis.lines.contains { $0.hasPrefix("  #1  at 0.000000 s  held 600 ms, 11 autorepeat: held for alarm.hold_ms") })
    }

    @Test func bouncesBelongToThePressTheyInterrupt() throws {
        // Down 50 ms, up 5 ms (a bounce), down 200 ms: one alarm from the first edge.
        let analysis = try analyse(Recordings.box(presses: [(0, 50), (55, 200)]))
        #expect(analysis.alarms == 1)
        #expect(analysis.bounces == 1)
        #expect(analysis.presses[0].verdicts == [.pressed(at: .zero)])
        #expect(analysis.presses[1].verdicts == [.bounce(down: false, lasted: .milliseconds(5))])
    }

    @Test func aLongPressAndAKeyHeldAtTheEndAreSaid() throws {
        var recording = Recordings.box(presses: [(0, 3500)])
        recording.events += Recordings.report(5000, [(Recordings.keyProg1, 1)]) + Recordings.report(5040, [(Recordings.keyEnter, 0)])
        let analysis = try analyse(recording)
        #expect(analysis.presses[0].verdicts == [.pressed(at: .zero), .longPressed(at: .zero)])
        #expect(analysis.presses[0].change == "not a long press if alarm.long_press_ms were above 3500")
        #expect(analysis.presses[1].lasted == nil)
        #expect(analysis.button?.heldAtEnd == true)
        #expect(analysis.lines.contains { $0.contains("#2  at 5.000000 s  still held at the end of the recording (40 ms so far): not yet an alarm when the recording ends") })
    }

    @Test func aTouchscreensTapsAreRefusedAsAPointerDevice() throws {
        let recording = Recordings.touchscreen(taps: [(0, 150), (1000, 180)])
        let analysis = try analyse(recording)
        #expect(analysis.device.pointing?.description == "a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y, BTN_TOUCH)")
        #expect(analysis.key == Recordings.btnTouch)
        #expect(analysis.alarms == 2)  // what its taps would do if it were allowed
        #expect(!analysis.raisesAlarms)
        let refusal = try #require(analysis.identity.first)
        #expect(refusal.status == .fail)
        #expect(refusal.message.contains("is a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y, BTN_TOUCH), not a button"))
        #expect(refusal.message.contains("set button.key = \"BTN_TOUCH\" and button.allow_pointer_device = true"))
        // Allowed explicitly: a warning, and its taps raise alarms.
        let allowed = try analyse(recording, key: Recordings.btnTouch, allowPointer: true)
        #expect(allowed.identity.map(\.status) == [.warn])
        #expect(allowed.raisesAlarms)
    }

    @Test func aRecordingWithoutAPressOfTheKeyFailsAndSaysWhichKeysItPresses() throws {
        var recording = Recordings.box(key: Recordings.keyEnter, presses: [(0, 200)])
        recording.bitmaps[InputEventNames.evKey] = EvemuRecording.bytes(of: [Recordings.keyEnter, Recordings.btnLeft])
        let analysis = try analyse(recording, key: Recordings.btnLeft)
        #expect(analysis.presses.isEmpty)
        let verdict = try #require(analysis.pressVerdict)
        #expect(verdict.status == .fail)
        #expect(verdict.message == "press.evemu holds no press of BTN_LEFT in its 6 events: it would never raise an alarm; the keys it presses are KEY_ENTER: set button.key to the call button's")
        #expect(!analysis.raisesAlarms)
    }

    @Test func theJSONReportCarriesEveryPressAndTheExitVerdict() throws {
        let analysis = try analyse(Recordings.box(presses: [(0, 0)]))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let object = try #require(try JSONSerialization.jsonObject(with: encoder.encode(analysis.report)) as? [String: Any])
        #expect(object["raisesAlarms"] as? Bool == false)
        #expect(object["glitches"] as? Int == 1)
        #expect(object["key"] as? String == "KEY_PROG1")
        #expect((object["suggestion"] as? [String: Any])?["settings"] as? String == "alarm.debounce_ms = 0 and alarm.hold_ms = 0")
        let presses = try #require(object["presses"] as? [[String: Any]])
        #expect(presses.first?["lastedMs"] as? Double == 0)
        #expect((presses.first?["verdicts"] as? [[String: Any]])?.first?["verdict"] as? String == "glitch")
        #expect((object["settings"] as? [String: Any])?["from"] as? String == "defaults")
    }
}
