/// Values kept per device, keyed by device id: the values in contiguous storage read and changed in place, a
/// small index from id to slot.
///
/// Why not `[UInt32: Value]`:
/// - A dictionary's getter copies the value out: `sessions[id]?.key.epoch` copied a whole `CenterSession`
///   (and retained what it holds) to read two bytes, several times a frame (`memmove`, retain and release were
///   an eighth of the centre's time a heartbeat). Here a read yields the value where it lies (`_read`), and a
///   change is made where it lies (`_modify`).
/// - A dictionary grows by rehashing all of itself, values included, into storage twice the size: a million
///   sessions' table moved its hundreds of megabytes in one insert, on the event loop, while datagrams queued
///   behind it until the socket overflowed (docs/benchmarks.md). Here the values sit in chunks of
///   `chunkSize` slots that never move; what rehashes is the index (`DeviceIndex`, 8 bytes an entry), split
///   256 ways so that one insert rehashes at most a 256th of it.
///
/// A slot freed (its value set to nil) is reused by the next device added.
struct DeviceTable<Value> {
    /// Slots a chunk (a test makes it small to cross chunks).
    let chunkSize: Int

    private var index = DeviceIndex()
    /// Slot n is `chunks[n / chunkSize][n % chunkSize]`; nil when free.
    private var chunks: [[Value?]] = []
    private var freeSlots: [UInt32] = []
    private(set) var count = 0

    init(chunkSize: Int = 4096) {
        precondition(chunkSize > 0)
        self.chunkSize = chunkSize
    }

    init(_ values: [UInt32: Value]) {
        self.init()
        for (device, value) in values { self[device] = value }
    }

    subscript(device: UInt32) -> Value? {
        _read {
            if let slot = index.slot(of: device) {
                yield chunks[slot / chunkSize][slot % chunkSize]
            } else {
                yield nil
            }
        }
        _modify {
            if let slot = index.slot(of: device) {
                yield &chunks[slot / chunkSize][slot % chunkSize]
                if chunks[slot / chunkSize][slot % chunkSize] == nil { release(device, slot: slot) }
            } else {
                var value: Value? = nil
                yield &value
                if let value { insert(device, value) }
            }
        }
    }

    private mutating func insert(_ device: UInt32, _ value: Value) {
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = Int(free)
        } else {
            if chunks.last.map({ $0.count == chunkSize }) ?? true {
                chunks.append([])
                chunks[chunks.count - 1].reserveCapacity(chunkSize)
            }
            slot = (chunks.count - 1) * chunkSize + chunks[chunks.count - 1].count
            chunks[chunks.count - 1].append(nil)
        }
        chunks[slot / chunkSize][slot % chunkSize] = value
        index.insert(device, slot: slot)
        count += 1
    }

    private mutating func release(_ device: UInt32, slot: Int) {
        index.remove(device)
        freeSlots.append(UInt32(slot))
        count -= 1
    }

    /// Every device and its value, in no order.
    var entries: [(key: UInt32, value: Value)] {
        var all: [(key: UInt32, value: Value)] = []
        all.reserveCapacity(count)
        index.forEach { device, slot in
            if let value = chunks[slot / chunkSize][slot % chunkSize] { all.append((device, value)) }
        }
        return all
    }
}

extension DeviceTable: Sendable where Value: Sendable {}
