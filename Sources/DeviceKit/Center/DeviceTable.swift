/// Values kept per device, keyed by device id: the values in chunks of memory that never move, read and changed
/// where they lie, and a small index from id to slot.
///
/// Why not `[UInt32: Value]`:
/// - A dictionary's getter copies the value out: `sessions[id]?.key.epoch` copied a whole `CenterSession`
///   (and retained what it holds) to read two bytes, several times a frame (`memmove`, retain and release were
///   an eighth of the centre's time a heartbeat). Here a read borrows the value where it lies (`_read` over a
///   pointer's `pointee`), and a change is made where it lies (`_modify`). Chunks of `Array` would not do for
///   reads: `Array`'s subscript has a getter, not a borrowing read, so `yield chunks[c][s]` copied the
///   session all the same (seen in a profile: `CenterSession`'s copy under every frame).
/// - A dictionary grows by rehashing all of itself, values included, into storage twice the size: a million
///   sessions' table moved its hundreds of megabytes in one insert, on the event loop, while datagrams queued
///   behind it until the socket overflowed (docs/benchmarks.md). Here the values sit in chunks of
///   `chunkSize` slots that never move; what rehashes is the index (`DeviceIndex`, 8 bytes an entry), split
///   256 ways so that one insert rehashes at most a 256th of it.
///
/// A slot freed (its value set to nil) is reused by the next device added. A copy of the table shares its
/// chunks until either is changed (copy on write), as an array would.
struct DeviceTable<Value> {
    /// Slots a chunk (a test makes it small to cross chunks).
    var chunkSize: Int { storage.chunkSize }

    private var index = DeviceIndex()
    private var storage: Storage
    private var freeSlots: [UInt32] = []
    private(set) var count = 0

    init(chunkSize: Int = 4096) {
        precondition(chunkSize > 0)
        storage = Storage(chunkSize: chunkSize)
    }

    init(_ values: [UInt32: Value]) {
        self.init()
        for (device, value) in values { self[device] = value }
    }

    func contains(_ device: UInt32) -> Bool { index.slot(of: device) != nil }

    /// `body` of `device`'s value where it lies, or nil without one. For reads of a large value too: a read
    /// through the subscript (`table[id]?.field`) unwraps the optional it borrows by copying the value out
    /// (`CenterSession`'s copy, tag check and destruction were 2 % of the centre's time a heartbeat), where the
    /// mutable access projects the payload in place.
    mutating func withValue<R>(_ device: UInt32, _ body: (inout Value) -> R) -> R? {
        guard let slot = index.slot(of: device) else { return nil }
        makeStorageUnique()
        return body(&storage.slot(slot).pointee!)
    }

    subscript(device: UInt32) -> Value? {
        _read {
            if let slot = index.slot(of: device) {
                yield storage.slot(slot).pointee
            } else {
                yield nil
            }
        }
        _modify {
            if let slot = index.slot(of: device) {
                makeStorageUnique()
                let pointer = storage.slot(slot)
                yield &pointer.pointee
                if case .none = pointer.pointee { release(device, slot: slot) }
            } else {
                var value: Value? = nil
                yield &value
                if let value { insert(device, value) }
            }
        }
    }

    private mutating func insert(_ device: UInt32, _ value: Value) {
        makeStorageUnique()
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = Int(free)
            storage.slot(slot).pointee = value
            storage.setDevice(device, of: slot)
        } else {
            slot = storage.append(value, device: device)
        }
        index.insert(device, slot: slot)
        count += 1
    }

    /// Copy on write: storage shared with a copy of the table is copied before a change.
    private mutating func makeStorageUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
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
        storage.forEachSlot { device, value in
            if let value = value.pointee { all.append((device, value)) }
        }
        return all
    }

    /// Changes every device's value where it lies, in slot order: the order of memory. A walk through the
    /// index reads the values in the hash's order instead, a cache miss each; the centre's supervision walks a
    /// million devices so every second, and before this it also copied them all out first (`entries`): a stall
    /// of its loop of 20-40 ms every second (docs/benchmarks.md, "Issue 19's table, re-measured").
    mutating func updateEach(_ body: (_ device: UInt32, _ value: inout Value) -> Void) {
        makeStorageUnique()
        storage.forEachSlot { device, value in
            if value.pointee != nil { body(device, &value.pointee!) }
        }
    }

    /// The slots: chunks of `chunkSize` allocated as needed, every slot up to `used` initialised (nil when free),
    /// and beside each chunk the device id of each of its slots (a free slot's last).
    private final class Storage {
        let chunkSize: Int
        // Read on every lookup; changed only by `append`, never while a slot's value is borrowed.
        @exclusivity(unchecked) private var chunks: [UnsafeMutablePointer<Value?>] = []
        @exclusivity(unchecked) private var deviceChunks: [UnsafeMutablePointer<UInt32>] = []
        @exclusivity(unchecked) private var used = 0

        init(chunkSize: Int) {
            self.chunkSize = chunkSize
        }

        deinit {
            for (number, chunk) in chunks.enumerated() {
                chunk.deinitialize(count: min(chunkSize, used - number * chunkSize))
                chunk.deallocate()
            }
            for devices in deviceChunks { devices.deallocate() }
        }

        @inline(__always)
        func slot(_ slot: Int) -> UnsafeMutablePointer<Value?> {
            chunks[slot / chunkSize] + slot % chunkSize
        }

        /// A new slot holding `device`'s `value`.
        func append(_ value: Value?, device: UInt32) -> Int {
            if used == chunks.count * chunkSize {
                chunks.append(.allocate(capacity: chunkSize))
                deviceChunks.append(.allocate(capacity: chunkSize))
            }
            slot(used).initialize(to: value)
            setDevice(device, of: used)
            used += 1
            return used - 1
        }

        func setDevice(_ device: UInt32, of slot: Int) {
            deviceChunks[slot / chunkSize][slot % chunkSize] = device
        }

        /// Each slot up to `used`, with its device id, chunk by chunk.
        func forEachSlot(_ body: (_ device: UInt32, _ value: UnsafeMutablePointer<Value?>) -> Void) {
            for (number, values) in chunks.enumerated() {
                let devices = deviceChunks[number]
                for offset in 0..<min(chunkSize, used - number * chunkSize) { body(devices[offset], values + offset) }
            }
        }

        /// Storage of its own with the same values in the same slots.
        func copy() -> Storage {
            let copy = Storage(chunkSize: chunkSize)
            forEachSlot { device, value in _ = copy.append(value.pointee, device: device) }
            return copy
        }
    }
}

/// A value: its storage is shared only while no copy changes it (each change copies storage that is shared).
extension DeviceTable: @unchecked Sendable where Value: Sendable {}
