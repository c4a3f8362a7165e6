/// The call button's key in an evemu recording: its edges with the recorded timestamps, followed through
/// the same `EvdevKeyTracker` as a live device (packets, autorepeat, `SYN_DROPPED`), and what the firmware's
/// `PressDetector` makes of them in the recording's own time (`PressTimeline`).
///
/// Times are from the recording's first event. Pure.
public struct RecordedButton: Hashable, Sendable {
    public let key: UInt16
    /// The key's level changes.
    public let edges: [ButtonEdge]
    /// From the first event to the last.
    public let duration: Duration
    /// Still down at the last event: the rest of that press is not in the recording.
    public let heldAtEnd: Bool
    /// The key's autorepeat events (the kernel repeats a key held past its repeat delay).
    public let autorepeats: Int
    /// `SYN_DROPPED` events: the recording lost events there.
    public let drops: Int

    public init(recording: EvemuRecording, key: UInt16) {
        self.key = key
        let origin = recording.events.first?.time ?? .zero
        var tracker = EvdevKeyTracker(key: key, initiallyDown: false)
        var edges: [ButtonEdge] = []
        for event in recording.events {
            for output in tracker.feed(event) {
                switch output {
                case .level(let down): edges.append(ButtonEdge(down: down, at: event.time - origin))
                case .resynchronise: _ = tracker.resynchronised(down: tracker.isDown)  // nothing to read back
                }
            }
        }
        self.edges = edges
        self.duration = (recording.events.last?.time ?? origin) - origin
        self.heldAtEnd = tracker.isDown
        self.autorepeats = tracker.autorepeats
        self.drops = tracker.drops
    }

    /// Presses of the key: down edges.
    public var presses: Int { edges.count { $0.down } }

    /// What the firmware with `configuration` makes of the recording. A key up at the end stays up (the
    /// recorder saw nothing more), so its last release settles; a key still held is judged only up to the
    /// last event: no press the recording did not complete is invented.
    public func judged(_ configuration: PressDetector.Configuration) -> [PressTimeline.Entry] {
        PressTimeline.judge(edges, configuration: configuration, until: heldAtEnd ? duration : duration + configuration.debounce)
    }
}
