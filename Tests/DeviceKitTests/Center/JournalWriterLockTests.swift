import Foundation
import Testing

@testable import DeviceKit

/// The processes sharing a journal take turns at writing through the lock beside it.
@Suite struct JournalWriterLockTests {
    /// Another open of the lock file (as another process makes) cannot take it while a write holds it,
    /// and can once the write is done; a failed write lets go too.
    @Test func aWriteHoldsTheLockAgainstOtherOpensAndLetsGo() throws {
        let journal = temporaryJournal()
        let lock = try JournalWriterLock(journal: journal)
        let other = open(lock.path, O_RDWR)
        try #require(other >= 0)
        defer { close(other) }

        try lock.withLock {
            #expect(flock(other, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK)
        }
        #expect(flock(other, LOCK_EX | LOCK_NB) == 0)
        #expect(flock(other, LOCK_UN) == 0)

        struct Failed: Error {}
        #expect(throws: Failed.self) { try lock.withLock { throw Failed() } }
        #expect(flock(other, LOCK_EX | LOCK_NB) == 0)
        #expect(flock(other, LOCK_UN) == 0)
    }

    /// The journal takes it for its writes: a write waits while another process holds it.
    @Test func theJournalWritesUnderTheLock() async throws {
        let path = temporaryJournal()
        let journal = try CenterJournal(path: path)
        let other = try OtherWriter(journal: path)
        let write = other.startWrite { try journal.record(device: 1, message: .testAlarm(7), at: 1).isNew }
        try await other.waitUntilAWriteWaits()
        #expect(try journal.alarms().isEmpty)
        other.release()
        #expect(try await write.value)
        #expect(try journal.alarms().map(\.alarmID) == [7])
    }
}

/// Another process's hold of a journal's writer lock (an open of the lock file of its own, locked), for
/// tests of writes that must wait for it.
final class OtherWriter {
    private let descriptor: Int32
    private let path: String

    init(journal: String) throws {
        path = journal + "-writer"
        descriptor = open(path, O_RDWR)
        try #require(descriptor >= 0)
        #expect(flock(descriptor, LOCK_EX) == 0)
    }

    deinit { close(descriptor) }

    /// Starts `write`, which blocks in `flock` until `release()`, on a thread of its own. Never on a task's
    /// cooperative thread: the pool has one thread per core, and two tests whose writes each blocked one on a
    /// two-core machine left none to run the `release()` that would free them (CI hung so).
    func startWrite<T: Sendable>(_ write: @escaping @Sendable () throws -> T) -> Task<T, any Error> {
        Task {
            try await withCheckedThrowingContinuation { continuation in
                Thread { continuation.resume(with: Result { try write() }) }.start()
            }
        }
    }

    /// Returns once a write waits for the lock: the kernel lists the wait in /proc/locks (a "->" line on the
    /// lock file's inode).
    func waitUntilAWriteWaits() async throws {
        var status = stat()
        try #require(stat(path, &status) == 0)
        let inode = ":\(status.st_ino) "
        try await eventually("a write waits for the writer lock") {
            let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
            return locks.split(separator: "\n").contains { $0.contains("->") && $0.contains("FLOCK") && $0.contains(inode) }
        }
    }

    func release() {
        #expect(flock(descriptor, LOCK_UN) == 0)
    }
}
