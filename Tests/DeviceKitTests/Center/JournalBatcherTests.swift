import Foundation
import NIOCore
import NIOPosix
import Prometheus
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
        let registry = PrometheusCollectorRegistry()
        let metrics = CenterMetrics(registry: registry)
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
        let scraped = loop.submit { var buffer = [UInt8](); registry.emit(into: &buffer); return String(decoding: buffer, as: UTF8.self) }
        let text = try await scraped.get()
        #expect(text.contains("center_journal_batches_total 3"), "3 + 3 + 1")
        #expect(text.contains("center_journal_batched_writes_total 7"))
        try await pool.shutdownGracefully()
    }
}
