/// A cache of at most `capacity` entries that forgets the least recently used ones first, approximately.
///
/// Entries live in two generations of `capacity / 2`: a hit in the older one moves the entry to the newer, and
/// when the newer is full the older is dropped whole and the newer takes its place. Every operation is O(1)
/// with no bookkeeping per entry, and memory is bounded by the capacity whatever keys a peer makes up: what a
/// flood of new keys evicts is what nobody asked for during the last `capacity / 2` insertions.
struct BoundedCache<Key: Hashable, Value> {
    let capacity: Int
    private var recent: [Key: Value] = [:]
    private var older: [Key: Value] = [:]

    /// - Parameter capacity: at least 2.
    init(capacity: Int) {
        self.capacity = max(2, capacity)
    }

    /// Entries held now, at most `capacity`.
    var count: Int { recent.count + older.count }

    /// The value for `key`, which becomes the most recently used.
    mutating func value(for key: Key) -> Value? {
        if let value = recent[key] { return value }
        guard let value = older.removeValue(forKey: key) else { return nil }
        store(value, for: key)
        return value
    }

    func contains(_ key: Key) -> Bool { recent[key] != nil || older[key] != nil }

    /// Stores `value` for `key` as the most recently used, evicting the older generation if the newer is full.
    mutating func insert(_ value: Value, for key: Key) {
        older.removeValue(forKey: key)
        store(value, for: key)
    }

    private mutating func store(_ value: Value, for key: Key) {
        if recent[key] == nil && recent.count >= capacity / 2 {
            older = recent
            recent = [:]
        }
        recent[key] = value
    }
}
