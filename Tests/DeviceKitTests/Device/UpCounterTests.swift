import Foundation
import Testing

@testable import DeviceKit

@Suite struct UpCounterTests {
    @Test func firstBootReservesABlockBeforeTheFirstCounter() throws {
        var counter = UpCounter(storedLimit: 0)
        #expect(try counter.take() == .reserve(limit: 65_536))
        #expect(try counter.take() == .reserve(limit: 65_536), "nothing may be handed out until the limit is stored")
        counter.reservationStored(65_536)
        #expect(try counter.take() == .counter(0))
        #expect(try counter.take() == .counter(1))
    }

    @Test func theNextBlockIsReservedBeforeTheLimitIsReached() throws {
        var counter = UpCounter(storedLimit: 65_536)
        counter.reservationStored(65_538)
        #expect(try counter.take() == .counter(65_536))
        #expect(try counter.take() == .counter(65_537))
        #expect(try counter.take() == .reserve(limit: 65_538 + 65_536))
    }

    @Test func aRestartAfterACrashNeverRepeatsACounter() throws {
        // Boot 1 stores a limit, uses some counters, and is killed without storing anything else.
        var boot1 = UpCounter(storedLimit: 0)
        var stored: UInt64 = 0
        var used: Set<UInt64> = []
        for _ in 0..<70_000 {
            switch try boot1.take() {
            case .counter(let c): used.insert(c)
            case .reserve(let limit):
                stored = limit
                boot1.reservationStored(limit)
            }
        }
        // Boot 2 starts from what is on storage.
        var boot2 = UpCounter(storedLimit: stored)
        guard case .reserve(let limit) = try boot2.take() else { Issue.record("boot 2 must reserve first"); return }
        boot2.reservationStored(limit)
        guard case .counter(let first) = try boot2.take() else { Issue.record("expected a counter"); return }
        #expect(!used.contains(first))
        #expect(first > used.max()!)
    }

    @Test func theCounterRefusesToPassFortyEightBits() throws {
        var counter = UpCounter(storedLimit: Wire.maximumUpCounter)
        #expect(try counter.take() == .reserve(limit: Wire.maximumUpCounter + 1))
        counter.reservationStored(Wire.maximumUpCounter + 1)
        #expect(try counter.take() == .counter(Wire.maximumUpCounter))
        #expect(throws: ProtocolError.counterExhausted) { try counter.take() }
    }
}

@Suite struct CounterReservationFileTests {
    func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "devicekit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The audit: a missing file taken as a first boot reused (key, nonce) pairs under the same key.
    @Test func aMissingFileIsAFaultNeverAFirstBoot() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: CounterFileError.missing(dir + "/counter")) { try CounterReservationFile(path: dir + "/counter").load() }
    }

    @Test func provisioningWritesAFreshReservationOnceAndKeepsAUsedOne() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = CounterReservationFile(path: dir + "/counter")
        try file.provision()
        #expect(try file.load() == 0)
        try file.store(65_536)
        try file.provision()
        #expect(try file.load() == 65_536, "the key's used counters are kept")
    }

    @Test func aReservationBelongsToOneKeyEpoch() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try CounterReservationFile(path: dir + "/counter").store(131_072)
        let next = CounterReservationFile(path: dir + "/counter", epoch: 1)
        #expect(throws: CounterFileError.otherEpoch(dir + "/counter", file: 0, key: 1)) { try next.load() }
        try next.provision()  // the new epoch's new key starts afresh
        #expect(try next.load() == 0)
        #expect(try String(contentsOfFile: dir + "/counter", encoding: .utf8) == "0 epoch 1\n")
        #expect(throws: CounterFileError.otherEpoch(dir + "/counter", file: 1, key: 0)) { try CounterReservationFile(path: dir + "/counter").load() }
    }

    @Test func aStoredLimitIsReadBackAndLeavesNoTemporaryFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = CounterReservationFile(path: dir + "/counter")
        try file.store(131_072)
        try file.store(196_608)
        #expect(try file.load() == 196_608)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["counter"])
    }

    @Test func aDamagedFileIsRefusedNotGuessed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data("12x\n".utf8).write(to: URL(fileURLWithPath: dir + "/counter"))
        #expect(throws: CounterFileError.corrupt(dir + "/counter")) { try CounterReservationFile(path: dir + "/counter").load() }
    }

    @Test func anUnwritableDirectoryGivesATypedError() throws {
        let file = CounterReservationFile(path: "/proc/devicekit-no-such-dir/counter")
        #expect(throws: CounterFileError.self) { try file.store(1) }
    }
}
