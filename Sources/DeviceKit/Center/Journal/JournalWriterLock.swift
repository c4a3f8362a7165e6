#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive lock that the processes sharing one journal (`devicesim center --workers N`) take around each
/// write transaction: `flock(2)` on a file beside the journal.
///
/// Why not only SQLite's own write lock: a process that finds it taken polls, sleeping 1, 2, 5, … up to 100 ms
/// between tries (SQLite's default busy handler), so while several processes write, the lock can sit idle
/// for most of a sleep after its holder committed (a commit here takes about a millisecond). A process
/// blocked in `flock` is woken by the kernel the moment the holder lets go, so the write lock passes from one
/// process to the next without a gap. SQLite's lock still guards the file; this one only orders the writers,
/// and costs two uncontended system calls when one process writes alone.
///
/// The kernel releases the lock when its holder dies, however it dies. Blocking: call it from the writer
/// thread, never from an event loop.
final class JournalWriterLock: Sendable {
    let path: String
    private let descriptor: Int32

    /// Opens (creating if needed) the lock file `journal` + `-writer`.
    init(journal: String) throws {
        path = journal + "-writer"
        descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw JournalLockError(path: path, operation: "open", errno: errno) }
    }

    deinit { close(descriptor) }

    /// Runs `body` holding the lock; waits, without polling, while another process holds it.
    func withLock<T>(_ body: () throws -> T) throws -> T {
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else { throw JournalLockError(path: path, operation: "lock", errno: errno) }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }
}

/// The journal's writer lock could not be opened or taken: the write fails like any other journal write.
struct JournalLockError: Error, CustomStringConvertible {
    var path: String
    var operation: String
    var errno: Int32

    var description: String { "cannot \(operation) the journal's writer lock \(path): \(String(cString: strerror(errno)))" }
}
