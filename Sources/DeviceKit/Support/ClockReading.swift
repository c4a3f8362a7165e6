/// A reading of a program's two clocks, handed to the pure state machines (the centre's sessions, the
/// device's machine) so that they never read one.
public struct ClockReading: Hashable, Sendable {
    /// Wall-clock time for the wire (`centreTime`, `senderTime`, alarm and case times): milliseconds since the
    /// Unix epoch.
    public var wall: WireTime
    /// Monotonic time for timers, rates and supervision, which must not jump when someone sets the wall clock.
    public var monotonic: Duration

    public init(wall: WireTime, monotonic: Duration) {
        self.wall = wall
        self.monotonic = monotonic
    }
}

/// The centre's clock reading.
public typealias CenterInstant = ClockReading
