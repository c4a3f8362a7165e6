/// When `devicesim load` crashes the centre it started (`--restart-center AT`, `--restart-center-every S`),
/// and for how long it keeps it down before starting it again (`--center-down S`).
public struct CenterRestartSchedule: Hashable, Sendable {
    /// Instants into the steady phase.
    public var at: [Duration]
    /// A crash every `every` of the steady phase, from `every` on.
    public var every: Duration?
    /// Between the crash and the next start, while devices meet refused connections and back off.
    public var down: Duration

    public init(at: [Duration] = [], every: Duration? = nil, down: Duration = .zero) {
        self.at = at
        self.every = every
        self.down = down
    }

    public var isEmpty: Bool { at.isEmpty && every == nil }

    /// The crashes as instants from the start of the run, in order, each once.
    public func instants(steadyStart: Duration, steadyDuration: Duration) -> [Duration] {
        var offsets = Set(at.filter { $0 < steadyDuration })
        if let every, every > .zero {
            var offset = every
            while offset < steadyDuration {
                offsets.insert(offset)
                offset += every
            }
        }
        return offsets.sorted().map { steadyStart + $0 }
    }

    /// Checks the schedule against the steady phase's length; the messages say which flag to change.
    public func validate(steadyDuration: Duration) throws(LoadError) {
        guard at.allSatisfy({ $0 >= .zero }), down >= .zero else {
            throw LoadError("--restart-center and --center-down are seconds, 0 or more, for example --restart-center 10")
        }
        if let every, every <= .zero { throw LoadError("--restart-center-every must be above 0 seconds, for example 10") }
        if let late = at.first(where: { $0 >= steadyDuration }) {
            throw LoadError(
                "--restart-center \(Self.seconds(late)) is not within the steady phase (\(Self.seconds(steadyDuration)) s): "
                    + "give an instant below it, or a longer --duration")
        }
    }

    private static func seconds(_ d: Duration) -> String {
        d.seconds == d.seconds.rounded() ? String(Int64(d.seconds)) : String(d.seconds)
    }
}

/// One crash and restart of the centre the tool started, in seconds from the start of the run.
public struct CenterRestart: Codable, Hashable, Sendable {
    /// The centre was killed (SIGKILL: no goodbye to any device, no clean close of the journal).
    public var killedAt: Double
    /// The new centre listened again on the same port and journal.
    public var listeningAt: Double

    public init(killedAt: Double, listeningAt: Double) {
        self.killedAt = killedAt
        self.listeningAt = listeningAt
    }

    public var downSeconds: Double { listeningAt - killedAt }
}
