/// Turns snapshots of one modem-control line into `ButtonEvent`s for a switch wired across it.
///
/// Pure: `SerialButtonSource` reads the line (`TIOCMGET`) and its change counter (`TIOCGICOUNT`) and feeds
/// each snapshot in. The level is the truth; the counter reveals what happened between two snapshots: a
/// press shorter than the polling interval leaves the level as it was but moves the counter by 2 (by 1 on
/// ring indicator, where UARTs count only the trailing edge), and is reported as a press and a release.
///
/// With `n` counted changes between two snapshots the machine reports
/// - level unchanged: `(n + 1) / 2` hidden presses (two levels each), so 1 change (RI) or 2 changes is one;
/// - level changed: `n / 2` hidden presses first, then the new level.
struct SerialContactMonitor: Sendable {
    /// More hidden presses than this between two snapshots are reported as this many: a contact bouncing
    /// that fast is chatter, and the press detector only needs to see that it happened.
    static let maximumHiddenPresses = 32

    private var down: Bool?
    private var count: Int?

    /// A snapshot: the line is asserted (`down`), and has changed `count` times since the port opened, if
    /// the driver counts (`nil` otherwise). The first snapshot after `reset` reports `.present`.
    mutating func observe(down: Bool, count: Int?) -> [ButtonEvent] {
        defer {
            self.down = down
            self.count = count
        }
        guard let previous = self.down else {
            return [.present(initiallyDown: down)]
        }
        // A counter that went backwards (wrapped, or the driver reset it) tells nothing.
        let changes = max(0, (count ?? 0) - (self.count ?? count ?? 0))
        let hidden = min(Self.maximumHiddenPresses, down == previous ? (changes + 1) / 2 : changes / 2)
        var events: [ButtonEvent] = []
        for _ in 0..<hidden {
            events.append(.level(down: !previous))
            events.append(.level(down: previous))
        }
        if down != previous { events.append(.level(down: down)) }
        return events
    }

    /// The port was closed; the next snapshot starts afresh.
    mutating func reset() {
        down = nil
        count = nil
    }
}
