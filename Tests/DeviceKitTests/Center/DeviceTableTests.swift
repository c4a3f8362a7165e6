import Testing

@testable import DeviceKit

/// The per-device table (an index split 256 ways, values in chunks of slots) behaves as one dictionary.
@Suite struct DeviceTableTests {
    /// Chunks of 64 slots, so that 3,000 devices fill many chunks and freed slots are reused across them.
    @Test func itKeepsWhatADictionaryWouldAcrossItsShardsAndChunks() {
        var table = DeviceTable<Int>(chunkSize: 64)
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
                Self.clear(&table[device], if: step % 3 == 0)  // freed through _modify
                if step % 3 == 0 { reference[device] = nil }
            default:
                table[device] = nil
                reference[device] = nil
            }
            #expect(table[device] == reference[device])
            #expect(table.contains(device) == (reference[device] != nil))
            #expect(table.withValue(device) { $0 } == reference[device])
        }
        #expect(table.count == reference.count)
        #expect(Dictionary(uniqueKeysWithValues: table.entries.map { ($0.key, $0.value) }) == reference)
        let copied = DeviceTable(reference)
        #expect(copied.count == reference.count && reference.allSatisfy { copied[$0.key] == $0.value })

        // A walk changes each device's own value once, freed slots (reused or not) skipped; a copy taken
        // before keeps its values.
        let before = table
        var visited: [UInt32: Int] = [:]
        table.updateEach { device, value in
            visited[device, default: 0] += 1
            value = value * 2 + Int(device)
        }
        #expect(visited == reference.mapValues { _ in 1 })
        let changed = Dictionary(uniqueKeysWithValues: reference.map { ($0.key, $0.value * 2 + Int($0.key)) })
        #expect(Dictionary(uniqueKeysWithValues: table.entries.map { ($0.key, $0.value) }) == changed)
        #expect(reference.allSatisfy { before[$0.key] == $0.value }, "the copy is unchanged")
    }

    private static func clear(_ value: inout Int?, if clearing: Bool) {
        if clearing { value = nil }
    }

    /// Values that hold references: a value read is the one stored, and a device removed releases its value.
    @Test func removedValuesAreReleasedAndSlotsReused() {
        final class Box { let n: Int; init(_ n: Int) { self.n = n } }
        var table = DeviceTable<Box>(chunkSize: 4)
        weak var first: Box?
        do {
            let box = Box(1)
            first = box
            table[10] = box
        }
        for device in UInt32(11)..<UInt32(20) { table[device] = Box(Int(device)) }
        #expect(table[10]?.n == 1 && table[19]?.n == 19 && table[20] == nil)
        table[10] = nil
        #expect(first == nil, "the removed value is released")
        table[30] = Box(30)
        #expect(table.count == 10 && table[30]?.n == 30 && table[10] == nil)
    }

    /// A copy is a value: changing it (in place, adding, removing) leaves the original as it was, and the last
    /// copy gone releases the values.
    @Test func aCopyIsAValueAndTheLastOneReleasesTheValues() {
        final class Box { var n: Int; init(_ n: Int) { self.n = n } }
        weak var watched: Box?
        do {
            var original = DeviceTable<Int>(chunkSize: 2)
            for device in UInt32(1)...5 { original[device] = Int(device) }
            var copy = original
            copy[1]? += 100
            copy[2] = nil
            copy[6] = 6
            copy.withValue(3) { $0 += 30 }
            #expect((1...5).map { original[UInt32($0)] } == [1, 2, 3, 4, 5] && original[6] == nil && original.count == 5)
            #expect((1...6).map { copy[UInt32($0)] } == [101, nil, 33, 4, 5, 6] && copy.count == 5)

            var boxes = DeviceTable<Box>(chunkSize: 2)
            let box = Box(7)
            watched = box
            boxes[1] = box
            let shared = boxes
            boxes[1]?.n = 8  // the box is shared by reference: both tables see it
            #expect(shared[1]?.n == 8)
            boxes[1] = nil
            #expect(shared[1] === box, "the copy keeps its value")
        }
        #expect(watched == nil, "the tables gone, the value is released")
    }
}
