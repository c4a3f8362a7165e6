/// Something counted often and said in the log at most once a minute, with how many since it was last said.
struct CountedLog {
    private var since = 0
    private var last: Duration?

    /// Counts one at `now` (monotonic); returns the count to log when a minute has passed since the last.
    mutating func count(now: Duration) -> Int? {
        since += 1
        guard last.map({ now - $0 >= .seconds(60) }) ?? true else { return nil }
        defer { (since, last) = (0, now) }
        return since
    }
}
