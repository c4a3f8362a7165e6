/// How long a test waits for something before it fails. Generous on purpose: it only runs out when a test
/// fails, and in the full suite on two shared cores other suites can keep the cooperative pool (which resumes
/// the waiting test) busy for tens of seconds. A bound, never a measurement.
let patience = Duration.seconds(120)

/// The tests' one polling loop: checks `condition` every few milliseconds until it holds or `timeout` has
/// passed (or the task is cancelled), and says whether it held.
///
/// Every wait for a condition goes through here, so a test waits for what it needs and no longer; a fixed
/// sleep would be too short on a loaded machine and too long everywhere else.
@discardableResult
func poll(within timeout: Duration = patience, until condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return true }
        guard ContinuousClock.now < deadline else { return false }
        do {
            try await Task.sleep(for: .milliseconds(5))
        } catch {
            return try await condition()  // cancelled: one last look
        }
    }
}

/// Waits until `condition` holds; fails, naming `what`, after `timeout`.
func eventually(within timeout: Duration = patience, _ what: String, _ condition: () async throws -> Bool) async throws {
    guard try await poll(within: timeout, until: condition) else { throw HarnessError("timed out waiting for \(what)") }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
