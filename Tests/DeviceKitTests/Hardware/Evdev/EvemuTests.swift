import Foundation
import Testing

@testable import DeviceKit

@Suite struct EvemuTests {
    /// A recording in the layout evemu-record 2.7 writes for a one-key USB button box (KEY_ENTER, MSC_SCAN,
    /// autorepeat), comments included.
    static let usbBox = """
        # EVEMU 1.3
        # Kernel: 6.1.0-rpi7-rpi-v8
        # DMI: dmi:bvnRaspberryPi:
        # Input device name: "Delcom Products Inc. USB Button"
        # Input device ID: bus 0x03 vendor 0xfc5 product 0xb080 version 0x111
        # Supported events:
        #   Event type 0 (EV_SYN)
        #     Event code 0 (SYN_REPORT)
        #   Event type 1 (EV_KEY)
        #     Event code 28 (KEY_ENTER)
        #   Event type 4 (EV_MSC)
        #     Event code 4 (MSC_SCAN)
        #   Event type 20 (EV_REP)
        #     Event code 0 (REP_DELAY)
        #       Value    250
        #     Event code 1 (REP_PERIOD)
        #       Value     33
        # Properties:
        N: Delcom Products Inc. USB Button
        I: 0003 0fc5 b080 0111
        P: 00 00 00 00 00 00 00 00
        B: 00 0b 00 00 00 00 00 00 00
        B: 01 00 00 00 10 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 01 00 00 00 00 00 00 00 00
        B: 02 00 00 00 00 00 00 00 00
        B: 03 00 00 00 00 00 00 00 00
        B: 04 10 00 00 00 00 00 00 00
        B: 05 00 00 00 00 00 00 00 00
        B: 11 00 00 00 00 00 00 00 00
        B: 12 00 00 00 00 00 00 00 00
        B: 14 03 00 00 00 00 00 00 00
        B: 15 00 00 00 00 00 00 00 00
        B: 15 00 00 00 00 00 00 00 00
        B: 17 00 00 00 00 00 00 00 00
        ################################
        #      Waiting for events      #
        ################################
        E: 0.000001 0004 0004 458792	# EV_MSC / MSC_SCAN             458792
        E: 0.000001 0001 001c 0001	# EV_KEY / KEY_ENTER            1
        E: 0.000001 0000 0000 0000	# ------------ SYN_REPORT (0) ---------- +0ms
        E: 0.250112 0001 001c 0002	# EV_KEY / KEY_ENTER            2
        E: 0.250112 0000 0000 0001	# ------------ SYN_REPORT (1) ---------- +250ms
        E: 0.412008 0004 0004 458792	# EV_MSC / MSC_SCAN             458792
        E: 0.412008 0001 001c 0000	# EV_KEY / KEY_ENTER            0
        E: 0.412008 0000 0000 0000	# ------------ SYN_REPORT (0) ---------- +162ms

        """

    @Test func aRecordingAsEvemuWritesItIsRead() throws {
        let recording = try EvemuRecording(parsing: Self.usbBox)
        #expect(recording.name == "Delcom Products Inc. USB Button")
        #expect(recording.identity == InputDeviceIdentity(busType: 3, vendor: 0x0fc5, product: 0xb080, version: 0x111))
        #expect(recording.keys == [28])
        #expect(recording.codes(of: InputEventNames.evMsc) == [4])
        #expect(recording.events.count == 8)
        #expect(recording.events[1] == InputEvent(seconds: 0, microseconds: 1, type: 1, code: 28, value: 1))
        #expect(recording.events[6] == InputEvent(seconds: 0, microseconds: 412_008, type: 1, code: 28, value: 0))
    }

    @Test func writingThenReadingGivesTheSameRecordingAndEvemusLayout() throws {
        let recording = try EvemuRecording(parsing: Self.usbBox)
        let text = recording.render(kernel: "6.1.0-rpi7-rpi-v8")
        #expect(try EvemuRecording(parsing: text) == recording)
        let lines = text.split(separator: "\n")
        // One B: line for EV_SYN, then 12 for EV_KEY (KEY_MAX 0x2ff), as evemu writes them.
        #expect(lines.filter { $0.hasPrefix("B: 01 ") }.count == 12)
        #expect(lines.filter { $0.hasPrefix("B: 15 ") }.count == 2)
        #expect(lines.contains("E: 0.412008 0001 001c 0000\t# EV_KEY / KEY_ENTER            0"))
        #expect(lines.contains("E: 0.412008 0000 0000 0000\t# ------------ SYN_REPORT (0) ---------- +162ms"))
        #expect(lines.contains("I: 0003 0fc5 b080 0111"))
    }

    @Test(arguments: [
        ("E: 0.1 0001 001c 0001", "line 3: '0.1' is not a time in seconds.microseconds, e.g. 1.000250"),
        ("E: 0.000001 0020 001c 0001", "line 3: '0020' is not an event type (hex, up to 001f)"),
        ("E: 0.000001 0001 001c", "line 3: an E: line needs time, type, code and value, e.g. 'E: 0.000001 0001 0094 0001'"),
        ("B: 01 00 00", "line 3: a B: line needs an event type and 8 bytes in hex, e.g. 'B: 01 00 00 00 00 00 00 00 00'"),
        ("X: 1", "line 3: 'X: 1' is not an evemu line: each line of a recording begins with N:, I:, P:, B:, A:, L:, S:, E: or # (a comment)"),
        ("N: another", "line 3: a second N: line ('N: another'; the first is on line 1): this file holds more than one recording; keep one"),
        ("E: 2.000000 0001 001c 0001\nE: 1.000000 0001 001c 0000", "line 4: time 1.000000 goes back before the previous event's"),
    ])
    func eachBrokenLineIsNamed(line: String, message: String) {
        let text = "N: box\nI: 0003 0001 0002 0003\n" + line + "\n"
        let error = #expect(throws: EvemuError.self) { try EvemuRecording(parsing: text) }
        #expect(error?.description == message)
    }

    @Test func aFileWithoutADescriptionIsNotARecording() {
        let error = #expect(throws: EvemuError.self) { try EvemuRecording(parsing: "hello\n# not evemu\n\n") }
        #expect(error?.description == "line 1: 'hello' is not an evemu line: each line of a recording begins with N:, I:, P:, B:, A:, L:, S:, E: or # (a comment)")
        let empty = #expect(throws: EvemuError.self) { try EvemuRecording(parsing: "# nothing\n") }
        #expect(empty?.description == "no N: line: this is not an evemu recording")
    }

    /// In Swift "\r\n" is one Character: split on "\n" it gave one line, and every such file was refused.
    @Test func aRecordingWithWindowsLineEndingsIsReadAsTheSame() throws {
        let windows = Self.usbBox.replacingOccurrences(of: "\n", with: "\r\n")
        let (recording, reading) = try EvemuRecording.read(windows)
        #expect(recording == (try EvemuRecording(parsing: Self.usbBox)))
        #expect(recording.name == "Delcom Products Inc. USB Button")
        #expect(reading.windowsLineEndings)
        #expect(reading.version == "1.3")
        #expect(reading.description == "evemu 1.3, Windows line endings")
        // A byte-order mark in front, as a Windows editor writes it.
        #expect(try EvemuRecording(parsing: "\u{FEFF}" + windows) == recording)
    }

    @Test func aRecordingQuotedFromAMailOrIndentedIsReadAsTheSame() throws {
        let original = try EvemuRecording(parsing: Self.usbBox)
        let quoted = Self.usbBox.split(separator: "\n", omittingEmptySubsequences: false).map { "> " + $0 }.joined(separator: "\n")
        let (fromMail, reading) = try EvemuRecording.read(quoted)
        #expect(fromMail == original)
        #expect(reading.quotedWith == "> ")
        #expect(reading.description == "evemu 1.3, quoted from a mail with '> ' (read without the quote marks)")
        let twice = Self.usbBox.split(separator: "\n").map { "> > " + $0 }.joined(separator: "\n")
        #expect(try EvemuRecording(parsing: twice) == original)
        let indented = Self.usbBox.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        let (fromIndented, indentation) = try EvemuRecording.read(indented)
        #expect(fromIndented == original)
        #expect(indentation.indented)
        // A broken line of a quoted recording is named with what it holds, not as "'N:' is not an evemu line".
        let broken = quoted.replacingOccurrences(of: "> I: 0003 0fc5 b080 0111", with: "> I: 0003 0fc5")
        let error = #expect(throws: EvemuError.self) { try EvemuRecording(parsing: broken) }
        #expect(error?.description == "line 20: an I: line needs bus, vendor, product and version in hex, e.g. 'I: 0003 046d c52b 0111'")
    }

    /// evemu 1.0: no # EVEMU line, A: lines without resolution, and the events in a separate .events file
    /// with the kernel's own timestamps.
    static let oldDescription = """
        N: Delcom Products Inc. USB Button
        I: 0003 0fc5 b080 0111
        P: 00 00 00 00 00 00 00 00
        B: 00 0b 00 00 00 00 00 00 00
        B: 01 00 00 00 10 00 00 00 00
        B: 02 00 00 00 00 00 00 00 00
        B: 03 00 00 00 00 00 00 00 00
        B: 04 10 00 00 00 00 00 00 00
        A: 20 0 255 0 0

        """
    static let oldEvents = """
        E: 1328181540.912180 0004 0004 458792
        E: 1328181540.912180 0001 001c 0001
        E: 1328181540.912180 0000 0000 0000
        E: 1328181541.024180 0001 001c 0000
        E: 1328181541.024180 0000 0000 0000

        """

    @Test func theOldFormatIsReadWithItsDescriptionInFront() throws {
        let (recording, reading) = try EvemuRecording.read(Self.oldDescription + Self.oldEvents)
        #expect(reading.version == nil)
        #expect(reading.description == "evemu's old format (no # EVEMU line)")
        #expect(recording.keys == [28])
        #expect(recording.events.count == 5)
        let button = RecordedButton(recording: recording, key: 28)
        #expect(button.edges == [ButtonEdge(down: true, at: .zero), ButtonEdge(down: false, at: .milliseconds(112))])
    }

    @Test func anOldFormatEventsFileAloneSaysToPutItsDescriptionInFront() {
        let error = #expect(throws: EvemuError.self) { try EvemuRecording(parsing: Self.oldEvents) }
        #expect(error?.description == "there is no description, only events (E: lines from line 1): this is the .events half of an old-format evemu recording; put its description (the .desc file, with the N:, I:, P: and B: lines) in front of it, e.g. cat button.desc button.events > button.evemu")
        let backwards = #expect(throws: EvemuError.self) { try EvemuRecording(parsing: Self.oldEvents + Self.oldDescription) }
        #expect(backwards?.description.hasPrefix("line 6: the description (N:, I:, P:, B: lines) comes after the events (the first E: line is line 1)") == true)
    }

    @Test(arguments: ["1.1", "1.2", "1.3"])
    func everyEvemuVersionIsRead(version: String) throws {
        let text = Self.usbBox.replacingOccurrences(of: "# EVEMU 1.3", with: "# EVEMU \(version)")
        let (recording, reading) = try EvemuRecording.read(text)
        #expect(reading.version == version)
        #expect(recording.events.count == 8)
    }

    @Test func propertiesAndAxesAreReadAndWrittenBack() throws {
        let touchscreen = Recordings.touchscreen(taps: [(0, 100)])
        let text = touchscreen.render()
        #expect(text.contains("\nP: 02 00 00 00 00 00 00 00\n"))
        #expect(text.contains("\nB: 03 03 00 00 00 00 00 00 00\n"))
        let parsed = try EvemuRecording(parsing: text)
        let info = parsed.deviceInfo(path: "touch.evemu")
        #expect(info.properties == [1])
        #expect(info.absoluteAxes == [0, 1])
        #expect(info.eventTypes == [0, 1, 3])
        #expect(info.pointing?.kind == "a touchscreen")
    }

    /// `diag record`'s pipeline over a FIFO, then the replay backend plays the file back.
    @Test func aRecordingMadeByDiagRecordReplaysTheSamePresses() async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        let session = EvdevSession(path: device.path, grab: false, control: control)
        let text = Collected<String>()
        let recording = Task {
            try await onDedicatedThread(name: "record") { flag in
                try session.record(flag, kernel: "test") { text.append($0) }
            }
        }
        try await device.connect()
        try await eventually("the header is written") { !text.all.isEmpty }
        let press = [
            InputEvent(seconds: 100, microseconds: 0, type: 1, code: 148, value: 1),
            InputEvent(seconds: 100, microseconds: 0, type: 0, code: 0, value: 0),
        ]
        let release = [
            InputEvent(seconds: 100, microseconds: 300_000, type: 1, code: 148, value: 0),
            InputEvent(seconds: 100, microseconds: 300_000, type: 0, code: 0, value: 0),
        ]
        try device.send(press + release)
        try await eventually("four events recorded") { text.all.count == 5 }
        recording.cancel()
        #expect(try await recording.value == .cancelled)

        let file = device.directory + "/press.evemu"
        try text.all.joined().write(toFile: file, atomically: true, encoding: .utf8)
        let parsed = try EvemuRecording(parsing: String(contentsOfFile: file, encoding: .utf8))
        #expect(parsed.keys == [148])
        #expect(parsed.name == "sos-button")
        #expect(parsed.events.map(\.value) == [1, 0, 0, 0])
        #expect(parsed.events[2].time - parsed.events[0].time == .milliseconds(300))

        let log = ButtonEventLog()
        try await ReplayButtonSource(settings: .init(file: file), speed: 4).run { log.append($0) }
        #expect(ReplayButtonSourceTests.verdicts(log.all) == [.pressed(at: .zero), .released(heldFor: .milliseconds(300))])
    }

    /// A USB button box has autorepeat (EV_REP), for which the kernel has no EVIOCGBIT bitmap (EINVAL): the
    /// recording still starts, with the two repeat codes set, as libevdev and so evemu-record write them.
    @Test func aDeviceWithAutorepeatIsRecordedWithTheRepeatCodesEvemuWrites() async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        control.eventTypes = [0, 1, 4, 0x14]
        control.codes = [4: [4]]
        let session = EvdevSession(path: device.path, grab: false, control: control)
        let text = Collected<String>()
        let ended = Collected<EvdevSession.End>()
        let recording = Task {
            let end = try await onDedicatedThread(name: "record") { flag in
                try session.record(flag, kernel: "test") { text.append($0) }
            }
            ended.append(end)
        }
        // No writer is needed: the header comes as soon as the device is open.
        try await eventually("the header is written or the recording ends") { !text.all.isEmpty || !ended.all.isEmpty }
        recording.cancel()
        try await recording.value
        #expect(ended.all == [.cancelled])
        let lines = text.all.joined().split(separator: "\n")
        #expect(lines.contains("B: 14 03 00 00 00 00 00 00 00"))
        #expect(lines.contains("B: 04 10 00 00 00 00 00 00 00"))
        #expect(lines.contains("B: 00 0b 00 00 00 00 00 00 00"))
        #expect(!control.calls.contains("EVIOCGBIT(20)"))
    }

    @Test func aReplayOfAKeyTheRecordingLacksSaysWhichKeysItHas() throws {
        let directory = NSTemporaryDirectory() + "devicekit-evemu-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.usbBox.write(toFile: directory + "/box.evemu", atomically: true, encoding: .utf8)
        let error = #expect(throws: ButtonSourceError.self) {
            try ReplayButtonSource(settings: .init(file: directory + "/box.evemu", key: 148)).load()
        }
        #expect(error?.description.contains("cannot send KEY_PROG1; it sends KEY_ENTER") == true)
        #expect(try ReplayButtonSource(settings: .init(file: directory + "/box.evemu")).load().key == 28)
    }
}

@Suite struct ButtonWatchTests {
    static func key(_ value: Int32, ms: Int64, code: UInt16 = 148) -> InputEvent {
        InputEvent(seconds: 50 + ms / 1000, microseconds: (ms % 1000) * 1000, type: 1, code: code, value: value)
    }

    @Test func pressesBouncesAndRepeatsAreNamedWithTheirTimes() {
        var watch = ButtonWatch(debounce: .milliseconds(30))
        #expect(watch.start(held: []) == [])
        #expect(watch.feed(Self.key(1, ms: 0)) == [.pressed(key: 148, at: .zero, sinceLastRelease: nil)])
        #expect(watch.feed(Self.key(2, ms: 250)) == [.autorepeat(key: 148, at: .milliseconds(250))])
        #expect(watch.feed(Self.key(2, ms: 283)) == [])
        #expect(watch.feed(Self.key(0, ms: 400)) == [.released(key: 148, at: .milliseconds(400), heldFor: .milliseconds(400))])
        // A bounce: pressed again 12 ms after the release.
        #expect(watch.feed(Self.key(1, ms: 412)) == [
            .bounce(key: 148, at: .milliseconds(412), sinceLastEdge: .milliseconds(12)),
            .pressed(key: 148, at: .milliseconds(412), sinceLastRelease: .milliseconds(12)),
        ])
        _ = watch.feed(Self.key(0, ms: 450))
        #expect(watch.presses == 2)
        #expect(watch.bounces == 1)
        #expect(watch.autorepeats == 2)
        let summary = watch.summary().joined(separator: "\n")
        #expect(summary.contains("2 presses, held 38–400 ms"))
        #expect(summary.contains("shorter than the 100 ms hold time"))
        #expect(summary.contains("1 bounce shorter than the 30 ms debounce window"))
    }

    @Test func aKeyHeldAtStartAndDroppedEventsAreReported() {
        var watch = ButtonWatch()
        #expect(watch.start(held: [148]) == [.heldAtStart([148])])
        _ = watch.feed(Self.key(0, ms: 0))
        let drop = InputEvent(seconds: 51, microseconds: 0, type: 0, code: 3, value: 0)
        #expect(watch.feed(drop) == [.dropped(at: .seconds(1))])
        #expect(ButtonWatch.line(.dropped(at: .seconds(1))).hasPrefix("1.000000  SYN_DROPPED"))
        #expect(ButtonWatch.line(.heldAtStart([148])).contains("KEY_PROG1 already held down"))
    }

    /// Seen in the VM test: a press lost with the events the kernel dropped showed nowhere, and its release
    /// came out as "released after 0 ms". The rest of the cut packet is ignored and the keys are read again.
    @Test func afterDroppedEventsTheKeysAreReadAgainAndTheCutPacketIsIgnored() {
        var watch = ButtonWatch()
        #expect(watch.start(held: []) == [])
        #expect(watch.feed(InputEvent(seconds: 50, microseconds: 0, type: 0, code: 3, value: 0)) == [.dropped(at: .zero)])
        #expect(watch.feed(Self.key(0, ms: 10)) == [])
        #expect(!watch.needsKeyState)
        #expect(watch.feed(InputEvent(seconds: 50, microseconds: 10_000, type: 0, code: 0, value: 0)) == [])
        #expect(watch.needsKeyState)
        #expect(watch.resynchronised(held: [148]) == [.heldAfterDrop([148], at: .milliseconds(10))])
        #expect(!watch.needsKeyState)
        #expect(watch.feed(Self.key(0, ms: 400)) == [.released(key: 148, at: .milliseconds(400), heldFor: .milliseconds(390))])
        #expect(ButtonWatch.line(.heldAfterDrop([148], at: .milliseconds(10))) == "0.010000  after the loss, the keys read again: KEY_PROG1 is down")

        // A release lost in a second drop: up again, and no press counted for it.
        _ = watch.feed(Self.key(1, ms: 500))
        _ = watch.feed(InputEvent(seconds: 50, microseconds: 600_000, type: 0, code: 3, value: 0))
        _ = watch.feed(InputEvent(seconds: 50, microseconds: 610_000, type: 0, code: 0, value: 0))
        #expect(watch.resynchronised(held: []) == [.heldAfterDrop([], at: .milliseconds(610))])
        #expect(watch.presses == 1)
        #expect(watch.feed(Self.key(1, ms: 700)) == [.pressed(key: 148, at: .milliseconds(700), sinceLastRelease: .milliseconds(300))])
        #expect(ButtonWatch.line(.heldAfterDrop([], at: .zero)).hasSuffix("none is down"))
    }

    @Test func noPressSaysWhatToCheck() {
        let summary = ButtonWatch().summary().joined()
        #expect(summary.contains("no press was seen"))
    }

    /// A HID button reporting press and release in one report: each press is a glitch, counted as the
    /// firmware's PressDetector counts it, and the summary says the button would never raise an alarm.
    @Test func pressesShorterThanTheDebounceAreCountedAsGlitches() {
        var watch = ButtonWatch(debounce: .milliseconds(30), hold: .milliseconds(100))
        #expect(watch.feed(Self.key(1, ms: 0)) == [.pressed(key: 148, at: .zero, sinceLastRelease: nil)])
        #expect(watch.feed(Self.key(0, ms: 0)) == [
            .glitch(key: 148, at: .zero, lasted: .zero), .released(key: 148, at: .zero, heldFor: .zero),
        ])
        _ = watch.feed(Self.key(1, ms: 1000))
        #expect(watch.feed(Self.key(0, ms: 1012)).first == .glitch(key: 148, at: .milliseconds(1012), lasted: .milliseconds(12)))
        #expect(watch.glitches == 2)
        #expect(watch.bounces == 0)
        #expect(ButtonWatch.line(.glitch(key: 148, at: .zero, lasted: .zero)).contains("KEY_PROG1 glitch: a press of 0 ms, shorter than the debounce window"))
        let summary = watch.summary().joined(separator: "\n")
        #expect(summary.contains("every press (2) was shorter than the 30 ms debounce window and would raise no alarm: this button would NEVER raise an alarm"))
        #expect(!summary.contains("the button works"))
    }
}
