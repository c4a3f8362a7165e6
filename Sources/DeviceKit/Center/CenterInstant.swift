/// A reading of the centre's two clocks, handed to the pure state machines so that they never read one.
public struct CenterInstant: Hashable, Sendable {
    /// Wall-clock time for the wire (`centreTime`, `senderTime`, case times): milliseconds since the Unix epoch.
    public var wall: WireTime
    /// Monotonic time for rates and supervision, which must not jump when someone sets the wall clock.
    public var monotonic: Duration

    public init(wall: WireTime, monotonic: Duration) {
        self.wall = wall
        self.monotonic = monotonic
    }
}
