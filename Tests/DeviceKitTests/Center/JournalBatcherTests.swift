import Foundation
import NIOCore
import NIOPosix
import MetricsTestKit
import Testing

@testable import DeviceKit

/// Group commit, on a real SQLite journal and a real writer thread: writes that arrive while a batch is on
/// the writer thread go together in the next one, and each answer comes in order after its batch committed.
@Suite struct JournalBatcherTests {
    @Test func writesQueuedTogetherCommitAsOneBatchAndAreAnsweredInOrder() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batcher-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("center.sqlite").path
        let journal = try CenterJournal(path: path)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let recorded = TestMetrics()
        let metrics = CenterMetrics(factory: recorded)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let bound = try await loop.submit {
            NIOLoopBound(JournalBatcher(loop: loop, journal: journal, pool: pool, metrics: metrics, batchLimit: 3), eventLoop: loop)
        }.get()
        let answered = NIOLoopBoundBox<[UInt32]>.makeBoxSendingValue([], eventLoop: loop)
        let done = loop.makePromise(of: Void.self)
        // Seven anchors written in one turn of the loop: batches of 3, 3 and 1, answered in order.
        try await loop.submit {
            for device in UInt32(1)...7 {
                bound.value.write(.anchor(device: device, anchor: UInt64(device) * 100)) { result in
                    if case .success(.anchor(let outcome)) = result, outcome.raised { answered.value.append(device) }
                    if device == 7 { done.succeed() }
                }
            }
        }.get()
        try await done.futureResult.get()
        #expect(try await loop.submit { answered.value }.get() == Array(1...7))
        #expect(try recorded.expectCounter("center_journal_batches_total").values == [1, 1, 1], "3 + 3 + 1")
        #expect(try recorded.expectCounter("center_journal_batched_writes_total").values == [3, 3, 1])
        #expect(try recorded.expectTimer("center_journal_commit_seconds").values.count == 3)
        try await pool.shutdownGracefully()
    }

    /// An alarm queued behind a fleet's session anchors and supervision reports goes in the next batch, ahead
    /// of them; they keep their order among themselves.
    @Test func anAlarmGoesAheadOfAnchorsAndSupervisionQueuedBeforeIt() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("batcher-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let journal = try CenterJournal(path: directory.appendingPathComponent("center.sqlite").path)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let recorded = TestMetrics()
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let bound = try await loop.submit {
            NIOLoopBound(
                JournalBatcher(loop: loop, journal: journal, pool: pool, metrics: CenterMetrics(factory: recorded), batchLimit: 3),
                eventLoop: loop)
        }.get()
        let answered = NIOLoopBoundBox<[String]>.makeBoxSendingValue([], eventLoop: loop)
        let done = loop.makePromise(of: Void.self)
        try await loop.submit {
            let writes: [(String, CenterJournal.Write)] = [
                ("anchor 1", .anchor(device: 1, anchor: 100)), ("online 1", .supervision(device: 1, online: true, at: 1)),
                ("anchor 2", .anchor(device: 2, anchor: 200)), ("online 2", .supervision(device: 2, online: true, at: 1)),
                ("alarm 9", .message(device: 9, message: .testAlarm(1), at: 1, opensCase: true)),
            ]
            for (name, write) in writes {
                bound.value.write(write) { result in
                    if case .failure = result { answered.value.append(name + " failed") } else { answered.value.append(name) }
                    if answered.value.count == writes.count { done.succeed() }
                }
            }
        }.get()
        try await done.futureResult.get()
        #expect(try await loop.submit { answered.value }.get() == ["alarm 9", "anchor 1", "online 1", "anchor 2", "online 2"])
        #expect(try recorded.expectCounter("center_journal_batched_writes_total").values == [3, 2])
        try await pool.shutdownGracefully()
    }
}
