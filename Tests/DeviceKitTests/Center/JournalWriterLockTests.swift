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
        let other = open(path + "-writer", O_RDWR)
        try #require(other >= 0)
        defer { close(other) }
        #expect(flock(other, LOCK_EX) == 0)
        let write = Task.detached { try journal.record(device: 1, message: .testAlarm(7), at: 1).isNew }
        // The kernel lists the write's wait for the lock file in /proc/locks (a "->" line on its inode).
        var status = stat()
        try #require(stat(path + "-writer", &status) == 0)
        let inode = ":\(status.st_ino) "
        try await eventually("the journal's write waits for the writer lock") {
            let locks = (try? String(contentsOfFile: "/proc/locks", encoding: .utf8)) ?? ""
            return locks.split(separator: "\n").contains { $0.contains("->") && $0.contains("FLOCK") && $0.contains(inode) }
        }
        #expect(try journal.alarms().isEmpty)
        #expect(flock(other, LOCK_UN) == 0)
        #expect(try await write.value)
        #expect(try journal.alarms().map(\.alarmID) == [7])
    }
}
