/// What `devicesim diag watch` makes of a live event stream, for a technician: each key press with how long
/// it was held and the gap since the previous one, glitches and bounces as the firmware's `PressDetector`
/// defines them (each key's edges go through one), autorepeat, lost events, and a summary with advice in
/// plain words.
///
/// Pure: fed decoded events with their (monotonic) timestamps; the command prints what it returns.
public struct ButtonWatch: Sendable {
    public enum Note: Hashable, Sendable {
        /// Keys already held when watching started.
        case heldAtStart([UInt16])
        case pressed(key: UInt16, at: Duration, sinceLastRelease: Duration?)
        case released(key: UInt16, at: Duration, heldFor: Duration)
        /// An edge that came sooner than the debounce window after the previous edge of the same key
        /// (`PressDetector.Action.bounce`): ignored by the firmware.
        case bounce(key: UInt16, at: Duration, sinceLastEdge: Duration)
        /// A press released within the debounce window (`PressDetector.Action.glitch`): too brief for the
        /// firmware to count at all, so it raises no alarm.
        case glitch(key: UInt16, at: Duration, lasted: Duration)
        /// The first autorepeat of a hold (the kernel repeats a key held for its repeat delay).
        case autorepeat(key: UInt16, at: Duration)
        /// The kernel's buffer overflowed and events were lost (`SYN_DROPPED`).
        case dropped(at: Duration)
        /// The keys held down once the loss was over, read again with `EVIOCGKEY` (`resynchronised(held:)`).
        case heldAfterDrop([UInt16], at: Duration)
        /// Another event (`EV_MSC MSC_SCAN`, ...), shown as it is.
        case other(InputEvent, at: Duration)
    }

    public let configuration: PressDetector.Configuration
    public var debounce: Duration { configuration.debounce }
    private var origin: Duration?
    private var down: [UInt16: Duration] = [:]
    private var detectors: [UInt16: PressDetector] = [:]
    private var lastRelease: Duration?
    private var repeating: Set<UInt16> = []
    /// Between `SYN_DROPPED` and the `SYN_REPORT` that ends the packet it cut: those events are ignored.
    private var dropping = false
    /// When the loss ended, until the owner has read the keys again.
    private var lossEndedAt: Duration?

    /// Events were lost and the packet they cut has ended: read the keys held now (`EVIOCGKEY`) and pass
    /// them to `resynchronised(held:)`, as libevdev does, since a press or release may have been among them.
    public var needsKeyState: Bool { lossEndedAt != nil }

    public private(set) var presses = 0
    public private(set) var shortest: Duration?
    public private(set) var longest: Duration?
    public private(set) var bounces = 0
    public private(set) var glitches = 0
    public private(set) var autorepeats = 0
    public private(set) var drops = 0
    public private(set) var keysSeen: Set<UInt16> = []

    public init(debounce: Duration = .milliseconds(30), hold: Duration = .milliseconds(100)) {
        configuration = PressDetector.Configuration(debounce: debounce, hold: hold)
    }

    /// The keys held when watching starts (`EVIOCGKEY`).
    public mutating func start(held: [UInt16]) -> [Note] {
        for key in held {
            down[key] = .zero
            var detector = PressDetector(configuration: configuration)
            _ = detector.initialLevel(down: true, at: .zero)
            detectors[key] = detector
        }
        return held.isEmpty ? [] : [.heldAtStart(held)]
    }

    /// Time of `event` from the first event seen.
    public mutating func time(of event: InputEvent) -> Duration {
        if origin == nil { origin = event.time }
        return event.time - (origin ?? .zero)
    }

    public mutating func feed(_ event: InputEvent) -> [Note] {
        let at = time(of: event)
        if dropping {
            if event.isSynReport {
                dropping = false
                lossEndedAt = at
            }
            return []
        }
        if event.isSynDropped {
            drops += 1
            dropping = true
            return [.dropped(at: at)]
        }
        if event.type == InputEventNames.evSyn { return [] }
        guard event.type == InputEventNames.evKey else { return [.other(event, at: at)] }
        let key = event.code
        keysSeen.insert(key)
        var notes: [Note] = []
        if event.value == 0 || event.value == 1 {
            var detector = detectors[key] ?? PressDetector(configuration: configuration)
            for action in detector.edge(down: event.value == 1, at: at) {
                switch action {
                case .glitch(let lasted):
                    glitches += 1
                    notes.append(.glitch(key: key, at: at, lasted: lasted))
                case .bounce(_, let lasted):
                    bounces += 1
                    notes.append(.bounce(key: key, at: at, sinceLastEdge: lasted))
                case .wakeUp, .pressed, .longPressed, .released, .tooShort, .stuck:
                    continue  // the press itself is shown from the raw edges, with its length
                }
            }
            detectors[key] = detector
        }
        switch event.value {
        case 1:
            down[key] = at
            repeating.remove(key)
            notes.append(.pressed(key: key, at: at, sinceLastRelease: lastRelease.map { at - $0 }))
        case 0:
            let heldFor = down[key].map { at - $0 } ?? .zero
            down[key] = nil
            lastRelease = at
            presses += 1
            shortest = min(shortest ?? heldFor, heldFor)
            longest = max(longest ?? heldFor, heldFor)
            notes.append(.released(key: key, at: at, heldFor: heldFor))
        case 2:
            autorepeats += 1
            if repeating.insert(key).inserted { notes.append(.autorepeat(key: key, at: at)) }
        default:
            notes.append(.other(event, at: at))
        }
        return notes
    }

    /// The keys held down after a loss (`EVIOCGKEY`): a key whose press was lost is down from the end of the
    /// loss on; one whose release was lost is up, and neither counts as a press.
    public mutating func resynchronised(held: [UInt16]) -> [Note] {
        guard let at = lossEndedAt else { return [] }
        lossEndedAt = nil
        for key in down.keys where !held.contains(key) { down[key] = nil }
        for key in held where down[key] == nil {
            down[key] = at
            repeating.remove(key)
        }
        return [.heldAfterDrop(held, at: at)]
    }

    /// One line per note, as the command prints it.
    public static func line(_ note: Note) -> String {
        func key(_ code: UInt16) -> String { InputEventNames.code(type: InputEventNames.evKey, code: code) }
        func stamp(_ at: Duration) -> String {
            let ms = at.microseconds
            let fraction = String(ms % 1_000_000)
            return "\(ms / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
        }
        switch note {
        case .heldAtStart(let keys):
            return "          \(keys.map(key).joined(separator: ", ")) already held down when watching started"
        case let .pressed(code, at, gap):
            return "\(stamp(at))  \(key(code)) pressed" + (gap.map { "  (\($0.milliseconds) ms after the last release)" } ?? "")
        case let .released(code, at, held):
            return "\(stamp(at))  \(key(code)) released after \(held.milliseconds) ms"
        case let .bounce(code, at, gap):
            return "\(stamp(at))  \(key(code)) bounced: \(gap.readable) after its previous edge (shorter than the debounce window)"
        case let .glitch(code, at, lasted):
            return "\(stamp(at))  \(key(code)) glitch: a press of \(lasted.readable), shorter than the debounce window: the device would ignore it (no alarm)"
        case let .autorepeat(code, at):
            return "\(stamp(at))  \(key(code)) held long enough for autorepeat"
        case .dropped(let at):
            return "\(stamp(at))  SYN_DROPPED: the kernel lost events (the reader was too slow); the key state is read again"
        case let .heldAfterDrop(keys, at):
            return "\(stamp(at))  after the loss, the keys read again: "
                + (keys.isEmpty ? "none is down" : keys.map { "\(key($0)) is down" }.joined(separator: ", "))
        case let .other(event, at):
            return "\(stamp(at))  \(event)"
        }
    }

    /// The summary and advice printed on Ctrl-C.
    public func summary() -> [String] {
        let hold = configuration.hold
        var lines = ["Summary:"]
        if presses == 0 {
            lines.append("  no press was seen. Press the button firmly; if nothing shows, check its cable and that this is the right device (devicesim diag list).")
        } else {
            lines.append("  \(presses) press\(presses == 1 ? "" : "es"), held \(shortest?.milliseconds ?? 0)–\(longest?.milliseconds ?? 0) ms; keys: \(keysSeen.sorted().map { InputEventNames.code(type: InputEventNames.evKey, code: $0) }.joined(separator: ", "))")
            if let shortest, shortest < hold {
                lines.append("  some presses were shorter than the \(hold.milliseconds) ms hold time and would not raise an alarm: show the person to press a little longer, or lower alarm.hold_ms.")
            }
        }
        if glitches > 0 {
            lines.append("  \(glitches == presses ? "every press" : "\(glitches) of the presses") (\(glitches)) \(glitches == 1 || glitches == presses ? "was" : "were") shorter than the \(debounce.milliseconds) ms debounce window and would raise no alarm"
                + (glitches == presses ? ": this button would NEVER raise an alarm with these settings (a button that reports press and release at once?)" : "")
                + "; record it (devicesim diag record) and run devicesim diag analyze on the file: it names a setting that would count them.")
        }
        if bounces > 0 {
            lines.append("  \(bounces) bounce\(bounces == 1 ? "" : "s") shorter than the \(debounce.milliseconds) ms debounce window: the device ignores them, but many point to a worn contact or a loose wire.")
        }
        if autorepeats > 0 { lines.append("  autorepeat seen: fine, the device ignores repeats.") }
        if drops > 0 { lines.append("  \(drops) time\(drops == 1 ? "" : "s") the kernel lost events (SYN_DROPPED): the system is overloaded; the device reads the key state again each time.") }
        if presses > 0, bounces == 0, glitches == 0, drops == 0 { lines.append("  the button works.") }
        return lines
    }
}
