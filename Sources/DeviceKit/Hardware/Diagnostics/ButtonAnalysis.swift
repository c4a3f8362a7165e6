/// The technician's verdict on a recording of a button (`devicesim diag analyze`, and `diag selftest` of a
/// replay): the device's identity and whether it is a sensible call button, every press of the call
/// button's key with its recorded length, bounces, autorepeat, and what the firmware would make of it with
/// the given settings — the same `PressDetector`, in the recording's own time (`RecordedButton.judged`) —
/// with the setting that would change each verdict, and, when the button would raise no alarm at all, a
/// setting checked to make it raise one (the recording judged again with it).
///
/// Pure: a parsed recording and the settings in, plain values, lines and JSON out.
public struct ButtonAnalysis: Sendable {
    /// One press of the call button's key: a down edge, and what became of it.
    public struct Press: Hashable, Sendable {
        public var number: Int
        /// The down edge, from the recording's first event.
        public var at: Duration
        /// Until the up edge; `nil` when the key is still down at the end of the recording.
        public var lasted: Duration?
        /// The kernel's autorepeat events during the press.
        public var autorepeats: Int
        /// The detector's verdicts that belong to this press (never `.wakeUp` or `.released`).
        public var verdicts: [PressDetector.Action]
        /// The setting that would change the verdict, in words; `nil` when nothing simple would.
        public var change: String?
    }

    /// A setting that makes the recording raise alarms, verified by judging it again.
    public struct Suggestion: Hashable, Sendable {
        /// `alarm.debounce_ms = 0 and alarm.hold_ms = 0`.
        public var settings: String
        public var configuration: PressDetector.Configuration
        /// Alarms the recording raises with it.
        public var alarms: Int
    }

    public let source: String
    public let reading: EvemuRecording.Reading?
    public let recording: EvemuRecording
    public let device: EvdevDeviceInfo
    public let configuration: PressDetector.Configuration
    /// Where the settings come from (`/etc/devicekit/device.toml`); `nil`: the defaults.
    public let settingsSource: String?
    /// The call button's key; `nil` when none could be chosen (`keyProblem` says why).
    public let key: UInt16?
    public let keyProblem: String?
    public let button: RecordedButton?
    public let timeline: [PressTimeline.Entry]
    public let presses: [Press]
    public let suggestion: Suggestion?
    /// Whether the device may be the call button (not a pointing device unless allowed, no system key).
    public let identity: [SelfTestResult]

    public init(
        recording: EvemuRecording, reading: EvemuRecording.Reading? = nil, source: String, key configured: UInt16? = nil,
        allowPointerDevice: Bool = false, configuration: PressDetector.Configuration = .init(), settingsSource: String? = nil
    ) {
        self.source = source
        self.reading = reading
        self.recording = recording
        self.configuration = configuration
        self.settingsSource = settingsSource
        let device = recording.deviceInfo(path: source)
        self.device = device
        var identity: [SelfTestResult] = []
        var key: UInt16?
        var keyProblem: String?
        do {
            key = try device.chooseKey(configured: configured)
        } catch {
            keyProblem = error.description
            identity.append(.init("button", .fail, error.description))
        }
        if let key {
            let name = InputEventNames.code(type: InputEventNames.evKey, code: key)
            if let pointing = device.pointing {
                identity.append(allowPointerDevice
                    ? .init("button", .warn, "\"\(device.name)\" is \(pointing), chosen as the call button with button.allow_pointer_device = true: every touch or click of \(name) raises an alarm")
                    : .init("button", .fail, pointing.refusal(path: source, name: device.name, key: key, configured: configured != nil)))
            }
            if let action = InputEventNames.systemKeys[key] {
                identity.append(.init("button", .fail, "\(name) is a key the system acts on (\(action)): a press could shut the device down, or an alarm come with nobody pressing. Use another key code (hardware/rpi overlay: KEY_PROG1)"))
            }
            if identity.isEmpty {
                identity.append(.init("button", .pass, "\"\(device.name)\" (\(device.busDescription)) is a sensible call button; its key \(name)\(configured == nil ? " is its only key" : " is configured")"))
            }
        }
        self.identity = identity
        self.key = key
        self.keyProblem = keyProblem
        guard let key else {
            (button, timeline, presses, suggestion) = (nil, [], [], nil)
            return
        }
        let button = RecordedButton(recording: recording, key: key)
        let timeline = button.judged(configuration)
        self.button = button
        self.timeline = timeline
        self.presses = Self.presses(of: button, recording: recording, timeline: timeline, configuration: configuration)
        let alarms = timeline.count { if case .pressed = $0.verdict { true } else { false } }
        self.suggestion = alarms == 0 && !presses.isEmpty ? Self.suggest(for: button, configuration: configuration, presses: presses) : nil
    }

    // MARK: Counts

    public func count(_ matches: (PressDetector.Action) -> Bool) -> Int { timeline.count { matches($0.verdict) } }
    public var alarms: Int { count { if case .pressed = $0 { true } else { false } } }
    public var tooShort: Int { count { if case .tooShort = $0 { true } else { false } } }
    public var glitches: Int { count { if case .glitch = $0 { true } else { false } } }
    public var bounces: Int { count { if case .bounce = $0 { true } else { false } } }
    public var longPresses: Int { count { if case .longPressed = $0 { true } else { false } } }
    public var stuck: Int { count { if case .stuck = $0 { true } else { false } } }

    /// Whether the button, as recorded and with these settings, would raise alarms: `diag analyze` exits 0.
    public var raisesAlarms: Bool { alarms > 0 && !identity.contains { $0.status == .fail } }

    /// The verdict on the presses, as `diag selftest` reports it: FAIL at no press of the key at all, and
    /// when no press would raise an alarm (naming a setting that would, when one does); PASS otherwise, with
    /// the glitches, bounces and too-short presses counted.
    public var pressVerdict: SelfTestResult? {
        guard let key, let button else { return nil }
        let name = InputEventNames.code(type: InputEventNames.evKey, code: key)
        let events = "\(recording.events.count) event\(recording.events.count == 1 ? "" : "s")"
        guard !presses.isEmpty else {
            let others = Set(recording.events.filter { $0.type == InputEventNames.evKey && $0.code != key }.map(\.code))
            let hint = others.isEmpty
                ? "; press the button while recording"
                : "; the keys it presses are \(others.sorted().prefix(6).map { InputEventNames.code(type: InputEventNames.evKey, code: $0) }.joined(separator: ", ")): set button.key to the call button's"
            return .init("button", .fail, "\(source) holds no press of \(name) in its \(events): it would never raise an alarm\(hint)")
        }
        let summary = "\(source) holds \(Self.plural(presses.count, "press", "presses")) of \(name) (\(events)): \(tally)"
        guard alarms == 0 else { return .init("button", .pass, summary) }
        let why = glitches == presses.count
            ? "every press was shorter than alarm.debounce_ms = \(configuration.debounce.milliseconds) ms"
            : "no press lasted alarm.hold_ms = \(configuration.hold.milliseconds) ms"
        let fix = suggestion.map { "; with \($0.settings) the recording raises \(Self.plural($0.alarms, "alarm", "alarms")) (judged again)" }
            ?? (button.heldAtEnd ? "; the recording ends with the key held before it lasted alarm.hold_ms" : "")
        return .init("button", .fail, "\(summary). It would never raise an alarm: \(why)\(fix)")
    }

    /// `2 alarms, 1 too short, 1 glitch, 3 bounces, autorepeat 14`.
    public var tally: String {
        var parts = [Self.plural(alarms, "alarm", "alarms")]
        if tooShort > 0 { parts.append("\(tooShort) too short") }
        if glitches > 0 { parts.append("\(Self.plural(glitches, "glitch", "glitches")) shorter than the debounce") }
        if bounces > 0 { parts.append(Self.plural(bounces, "bounce", "bounces")) }
        if longPresses > 0 { parts.append(Self.plural(longPresses, "long press", "long presses")) }
        if stuck > 0 { parts.append("stuck") }
        if let button, button.autorepeats > 0 { parts.append("\(button.autorepeats) autorepeat events (ignored)") }
        if let button, button.drops > 0 { parts.append("\(Self.plural(button.drops, "SYN_DROPPED", "SYN_DROPPEDs"))") }
        return parts.joined(separator: ", ")
    }

    static func plural(_ n: Int, _ one: String, _ many: String) -> String { "\(n) \(n == 1 ? one : many)" }

    // MARK: Presses

    /// Each down edge with the verdicts that belong to it. A verdict belongs to the press whose down edge
    /// began what it judges: `.pressed`, `.longPressed` and `.stuck` carry that instant; a `.glitch` or a
    /// down `.bounce` began `lasted` before it was reported; `.tooShort` and `.released` settled `debounce`
    /// after an up edge `heldFor` after it; an up `.bounce` is reported at the down edge that ended it.
    static func presses(
        of button: RecordedButton, recording: EvemuRecording, timeline: [PressTimeline.Entry],
        configuration: PressDetector.Configuration
    ) -> [Press] {
        let downs = button.edges.enumerated().filter { $0.element.down }
        let origin = recording.events.first?.time ?? .zero
        let repeats = recording.events.filter { $0.type == InputEventNames.evKey && $0.code == button.key && $0.value == 2 }
            .map { $0.time - origin }
        var presses = downs.enumerated().map { number, indexed in
            let end = button.edges.dropFirst(indexed.offset + 1).first { !$0.down }?.at
            let next = number + 1 < downs.count ? downs[number + 1].element.at : nil
            let autorepeats = repeats.count { time in time >= indexed.element.at && (next.map { time < $0 } ?? true) }
            return Press(
                number: number + 1, at: indexed.element.at, lasted: end.map { $0 - indexed.element.at }, autorepeats: autorepeats,
                verdicts: [], change: nil)
        }
        func owner(of instant: Duration) -> Int? { presses.lastIndex { $0.at <= instant } }
        for entry in timeline {
            let instant: Duration
            switch entry.verdict {
            case .wakeUp, .released: continue
            case .pressed(let at), .longPressed(let at): instant = at
            case .stuck(let since): instant = since
            case .glitch(let lasted): instant = entry.at - lasted
            case .bounce(let down, let lasted): instant = down ? entry.at - lasted : entry.at
            case .tooShort(let heldFor): instant = entry.at - configuration.debounce - heldFor
            }
            if let index = owner(of: instant) { presses[index].verdicts.append(entry.verdict) }
        }
        // What would change each verdict: the settled length of the stable press (`released`/`tooShort`).
        for entry in timeline {
            guard case .released(let heldFor) = entry.verdict,
                let index = owner(of: entry.at - configuration.debounce - heldFor)
            else { continue }
            presses[index].change = presses[index].change ?? "no alarm if alarm.hold_ms were above \(heldFor.milliseconds)"
        }
        for index in presses.indices {
            for verdict in presses[index].verdicts {
                switch verdict {
                case .tooShort(let heldFor):
                    presses[index].change = "an alarm with alarm.hold_ms = \(heldFor.milliseconds) or less"
                case .glitch(let lasted):
                    presses[index].change = "an alarm with alarm.debounce_ms and alarm.hold_ms = \(lasted.milliseconds) or less"
                case .longPressed:
                    if let lasted = presses[index].lasted {
                        presses[index].change = "not a long press if alarm.long_press_ms were above \(lasted.milliseconds)"
                    }
                default: continue
                }
            }
        }
        return presses
    }

    /// The smallest change of debounce and hold that lets the presses count: both lowered to the shortest
    /// press's whole milliseconds (to 0 for a press of less than a millisecond), then, if that is not enough,
    /// to 0. Each candidate is checked by judging the recording again; `nil` when none raises an alarm.
    static func suggest(for button: RecordedButton, configuration: PressDetector.Configuration, presses: [Press]) -> Suggestion? {
        let lengths = presses.map { $0.lasted ?? (button.duration - $0.at) }
        guard let shortest = lengths.min() else { return nil }
        var candidates: [Duration] = [.milliseconds(shortest.milliseconds)]
        if shortest.milliseconds > 0 { candidates.append(.zero) }
        for threshold in candidates {
            let debounce = min(configuration.debounce, threshold)
            let hold = min(configuration.hold, threshold)
            let tried = PressDetector.Configuration(
                debounce: debounce, hold: hold, longPress: configuration.longPress, stuckAfter: configuration.stuckAfter)
            let alarms = button.judged(tried).count { if case .pressed = $0.verdict { true } else { false } }
            guard alarms > 0 else { continue }
            var settings: [String] = []
            if debounce != configuration.debounce { settings.append("alarm.debounce_ms = \(debounce.milliseconds)") }
            if hold != configuration.hold { settings.append("alarm.hold_ms = \(hold.milliseconds)") }
            return Suggestion(settings: settings.joined(separator: " and "), configuration: tried, alarms: alarms)
        }
        return nil
    }
}

// MARK: Output

extension ButtonAnalysis {
    /// The report for a person, one line each.
    public var lines: [String] {
        var lines: [String] = []
        let span = button?.duration ?? .zero
        lines.append("Recording: \(source)" + (reading.map { " (\($0.description))" } ?? "")
            + ", \(recording.events.count) events over \(Self.seconds(span)) s")
        let keys = device.keys.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) }
        lines.append("Device: \"\(device.name)\", \(device.busDescription); "
            + (keys.count <= 8 ? "keys: \(keys.isEmpty ? "none" : keys.joined(separator: ", "))" : "\(keys.count) keys (a keyboard or similar)"))
        lines += identity.map { "  " + $0.line }
        let settings = "debounce_ms = \(configuration.debounce.milliseconds), hold_ms = \(configuration.hold.milliseconds), long_press_ms = \(configuration.longPress.milliseconds), stuck_after_s = \(configuration.stuckAfter.milliseconds / 1000)"
        lines.append(settingsSource.map { "Settings: [alarm] of \($0): \(settings)" }
            ?? "Settings: the defaults (no --config given): \(settings)")
        guard let key else { return lines + ["Verdict: no call button could be chosen in this recording."] }
        let name = InputEventNames.code(type: InputEventNames.evKey, code: key)
        lines.append("Presses of \(name): \(presses.count)")
        for press in presses {
            let length = press.lasted.map { "held \($0.readable)" }
                ?? "still held at the end of the recording (\((span - press.at).readable) so far)"
            let repeats = press.autorepeats > 0 ? ", \(press.autorepeats) autorepeat" : ""
            let verdicts = press.verdicts.compactMap { configuration.explain($0) }
            lines.append("  #\(press.number)  at \(Self.seconds(press.at)) s  \(length)\(repeats): "
                + (!verdicts.isEmpty ? verdicts.joined(separator: "; ")
                    : press.lasted == nil ? "not yet an alarm when the recording ends" : "part of the press before it")
                + (press.change.map { " — \($0)" } ?? ""))
        }
        if let button {
            if button.heldAtEnd { lines.append("  the recording ends with \(name) held: that press is judged up to the end, no release is invented") }
            if button.drops > 0 { lines.append("  \(Self.plural(button.drops, "SYN_DROPPED", "SYN_DROPPEDs")): the recorder lost events there; the key's state was taken as the next report gives it") }
        }
        lines.append("Summary: \(tally)")
        if let verdict = pressVerdict { lines.append("  " + verdict.line) }
        lines.append(raisesAlarms
            ? "Verdict: this button raises alarms with these settings."
            : "Verdict: this button would NOT raise an alarm as it is; see the FAIL lines above.")
        return lines
    }

    /// `0.412008`: seconds with the recording's microseconds.
    static func seconds(_ duration: Duration) -> String {
        let micros = duration.microseconds
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }

    /// The same, for tools (`diag analyze --json`).
    public var report: Report {
        func ms(_ d: Duration) -> Double { Double(d.microseconds) / 1000 }
        func words(_ action: PressDetector.Action) -> Report.Verdict {
            let kind: String
            switch action {
            case .wakeUp: kind = "wake-up"
            case .pressed: kind = "alarm"
            case .longPressed: kind = "long press"
            case .released: kind = "released"
            case .tooShort: kind = "too short"
            case .stuck: kind = "stuck"
            case .glitch: kind = "glitch"
            case .bounce: kind = "bounce"
            }
            return Report.Verdict(verdict: kind, text: configuration.explain(action) ?? kind)
        }
        return Report(
            source: source, format: reading?.description, name: device.name, bus: device.busDescription,
            keys: device.keys.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) },
            pointingDevice: device.pointing?.description,
            key: key.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) },
            settings: .init(
                from: settingsSource ?? "defaults", debounceMs: configuration.debounce.milliseconds,
                holdMs: configuration.hold.milliseconds, longPressMs: configuration.longPress.milliseconds,
                stuckAfterS: configuration.stuckAfter.milliseconds / 1000),
            events: recording.events.count, durationMs: ms(button?.duration ?? .zero),
            presses: presses.map { press in
                .init(
                    number: press.number, atMs: ms(press.at), lastedMs: press.lasted.map(ms), autorepeats: press.autorepeats,
                    verdicts: press.verdicts.map(words), change: press.change)
            },
            alarms: alarms, tooShort: tooShort, glitches: glitches, bounces: bounces, longPresses: longPresses,
            stuck: stuck, autorepeats: button?.autorepeats ?? 0, drops: button?.drops ?? 0, heldAtEnd: button?.heldAtEnd ?? false,
            suggestion: suggestion.map { .init(settings: $0.settings, alarms: $0.alarms) },
            checks: identity + (pressVerdict.map { [$0] } ?? []), raisesAlarms: raisesAlarms)
    }

    /// `diag analyze --json`: every field a tool needs, times in milliseconds with microsecond precision.
    public struct Report: Hashable, Sendable, Encodable {
        public struct Settings: Hashable, Sendable, Encodable {
            var from: String
            var debounceMs: Int64
            var holdMs: Int64
            var longPressMs: Int64
            var stuckAfterS: Int64
        }
        public struct Verdict: Hashable, Sendable, Encodable {
            var verdict: String
            var text: String
        }
        public struct Press: Hashable, Sendable, Encodable {
            var number: Int
            var atMs: Double
            /// `null`: still held at the end.
            var lastedMs: Double?
            var autorepeats: Int
            var verdicts: [Verdict]
            var change: String?
        }
        public struct Suggestion: Hashable, Sendable, Encodable {
            var settings: String
            var alarms: Int
        }
        var source: String
        var format: String?
        var name: String
        var bus: String
        var keys: [String]
        var pointingDevice: String?
        var key: String?
        var settings: Settings
        var events: Int
        var durationMs: Double
        var presses: [Press]
        var alarms: Int
        var tooShort: Int
        var glitches: Int
        var bounces: Int
        var longPresses: Int
        var stuck: Int
        var autorepeats: Int
        var drops: Int
        var heldAtEnd: Bool
        var suggestion: Suggestion?
        var checks: [SelfTestResult]
        var raisesAlarms: Bool
    }
}
