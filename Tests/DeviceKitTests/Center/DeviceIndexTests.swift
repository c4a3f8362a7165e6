import Testing

@testable import DeviceKit

/// The index's open addressing: lookups stay right through inserts, growth and removals that shift runs back.
@Suite struct DeviceIndexTests {
    /// Every id in one shard (low byte 0x2A), few enough that the shard stays small and its runs long and
    /// wrapping, with removals in the middle of runs; after each step every id is where the dictionary says.
    @Test func itAgreesWithADictionaryThroughRemovalsInsideRuns() {
        var index = DeviceIndex()
        var reference: [UInt32: Int] = [:]
        var random = SplitMix64(seed: 7)
        let ids = (0..<40).map { UInt32($0) << 8 | 0x2A }
        for step in 0..<6_000 {
            let device = ids[Int.random(in: 0..<ids.count, using: &random)]
            if reference[device] == nil, step % 3 != 2 {
                index.insert(device, slot: step)
                reference[device] = step
            } else {
                index.remove(device)
                reference[device] = nil
            }
            for id in ids { #expect(index.slot(of: id) == reference[id], "step \(step), id \(id)") }
        }
    }

    /// Many ids over all shards: growth keeps every entry where it was put.
    @Test func itKeepsEveryEntryAcrossGrowth() {
        var index = DeviceIndex()
        var random = SplitMix64(seed: 11)
        var reference: [UInt32: Int] = [:]
        while reference.count < 50_000 {
            let device = UInt32.random(in: 0...UInt32.max, using: &random)
            guard reference[device] == nil else { continue }
            index.insert(device, slot: reference.count)
            reference[device] = reference.count
        }
        #expect(reference.allSatisfy { index.slot(of: $0.key) == $0.value })
        #expect(index.slot(of: 0) == reference[0])
    }
}
