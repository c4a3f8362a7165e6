/// Device id → slot: `DeviceTable`'s index, an open-addressed hash table without SipHash.
///
/// Why not `[UInt32: UInt32]`: every frame looks a device up in several tables (sessions, supervision), and
/// the dictionary's SipHash-1-3 of the id and its generic probing were 7 % of the centre's time a heartbeat
/// (docs/benchmarks.md). The ids here are registered devices' (a frame under an id without a key is refused
/// before it reaches a table), not chosen by whoever sends, so the flood resistance SipHash buys is not
/// needed, and a multiplicative (Fibonacci) hash spreads consecutive ids evenly.
///
/// Layout: 256 shards chosen by the id's low byte, so that growing rehashes at most a 256th of the index while
/// the event loop waits. A shard is a power-of-two array of entries `id << 32 | (slot + 1)`, 0 for empty,
/// probed linearly and kept at most three quarters full; a removal shifts the entries after it back
/// (no tombstones, so lookups never slow down with churn).
struct DeviceIndex {
    private struct Shard {
        var entries: [UInt64] = []
        var count = 0
        /// 32 − log2(entries.count): the hash's top bits are the home position.
        var shift: UInt32 = 32
        /// entries.count − 1, kept here: a lookup then touches the entries' memory only at the one it probes,
        /// not also the array's header for its count (each a cache miss at a million devices: the lookup
        /// spent four fifths of its time waiting for that header).
        var mask = -1

        func home(_ device: UInt32) -> Int {
            Int((device &* 0x9E37_79B1) >> shift)
        }

        /// The position of `device`'s entry and the entry, or nil.
        @inline(__always)
        func find(_ device: UInt32) -> (position: Int, entry: UInt64)? {
            guard mask >= 0 else { return nil }
            return entries.withUnsafeBufferPointer { buffer in
                let entries = buffer.baseAddress.unsafelyUnwrapped
                var position = home(device)
                while true {
                    let entry = entries[position]
                    if entry == 0 { return nil }
                    if UInt32(truncatingIfNeeded: entry >> 32) == device { return (position, entry) }
                    position = (position + 1) & mask
                }
            }
        }

        /// Adds an entry whose id is not present, growing first if the shard would pass three quarters full.
        mutating func insert(_ entry: UInt64) {
            if (count + 1) * 4 > entries.count * 3 { grow() }
            place(entry)
            count += 1
        }

        /// Stores an entry whose id is not present; the shard has room.
        private mutating func place(_ entry: UInt64) {
            var position = home(UInt32(truncatingIfNeeded: entry >> 32))
            while entries[position] != 0 { position = (position + 1) & mask }
            entries[position] = entry
        }

        private mutating func grow() {
            let old = entries
            let capacity = max(16, entries.count * 2)
            entries = Array(repeating: 0, count: capacity)
            shift = 32 - UInt32(capacity.trailingZeroBitCount)
            mask = capacity - 1
            for entry in old where entry != 0 { place(entry) }
        }

        /// Empties `position` and moves back each later entry of the run that may then sit nearer its home.
        mutating func remove(at position: Int) {
            var hole = position
            var next = position
            while true {
                next = (next + 1) & mask
                let entry = entries[next]
                if entry == 0 { break }
                let home = home(UInt32(truncatingIfNeeded: entry >> 32))
                // The hole lies on this entry's probe path (from its home to where it is): it may move there.
                if (next - home) & mask >= (next - hole) & mask {
                    entries[hole] = entry
                    hole = next
                }
            }
            entries[hole] = 0
            count -= 1
        }
    }

    private var shards = [Shard](repeating: Shard(), count: 256)

    /// The slot of `device`, or nil.
    func slot(of device: UInt32) -> Int? {
        guard let (_, entry) = shards[Int(device & 0xFF)].find(device) else { return nil }
        return Int(UInt32(truncatingIfNeeded: entry) - 1)
    }

    /// Records `device` at `slot` (`slot` < 2³² − 1); the device must not be present.
    mutating func insert(_ device: UInt32, slot: Int) {
        shards[Int(device & 0xFF)].insert(UInt64(device) << 32 | UInt64(slot + 1))
    }

    /// Forgets `device`, if present.
    mutating func remove(_ device: UInt32) {
        let index = Int(device & 0xFF)
        guard let (position, _) = shards[index].find(device) else { return }
        shards[index].remove(at: position)
    }
}

extension DeviceIndex: Sendable {}
