import Testing

@testable import DeviceKit

/// The per-device table split 256 ways behaves as one dictionary.
@Suite struct DeviceTableTests {
    @Test func itKeepsWhatADictionaryWouldAcrossItsShards() {
        var table = DeviceTable<Int>()
        var reference: [UInt32: Int] = [:]
        var random = SplitMix64(seed: 19)
        for step in 0..<20_000 {
            let device = UInt32.random(in: 0..<3_000, using: &random) * 97  // ids in every shard, and collisions
            switch step % 4 {
            case 0, 1:
                table[device] = step
                reference[device] = step
            case 2:
                table[device]? += 1  // in place, through _modify
                reference[device]? += 1
            default:
                table[device] = nil
                reference[device] = nil
            }
            #expect(table[device] == reference[device])
        }
        #expect(table.count == reference.count)
        #expect(Dictionary(uniqueKeysWithValues: table.entries.map { ($0.key, $0.value) }) == reference)
        let copied = DeviceTable(reference)
        #expect(copied.count == reference.count && reference.allSatisfy { copied[$0.key] == $0.value })
    }
}
