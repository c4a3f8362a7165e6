import Testing

@testable import DeviceKit

/// The key cache's bound: whatever keys a peer makes up, memory stays at the capacity, and what is in use stays.
@Suite struct BoundedCacheTests {
    @Test func aFloodOfNewKeysNeverHoldsMoreThanTheCapacity() {
        var cache = BoundedCache<UInt32, Int>(capacity: 100)
        for key in UInt32(0)..<10_000 {
            cache.insert(Int(key), for: key)
            #expect(cache.count <= 100)
        }
        #expect(cache.value(for: 9_999) == 9_999)
        #expect(cache.value(for: 0) == nil)
    }

    @Test func aKeyInUseSurvivesAFloodOfNewOnes() {
        var cache = BoundedCache<UInt32, Int>(capacity: 100)
        cache.insert(-1, for: 1_000_000)
        for key in UInt32(0)..<10_000 {
            cache.insert(Int(key), for: key)
            // Asked for once per 49 insertions: never the least recently used half.
            if key % 49 == 0 { #expect(cache.value(for: 1_000_000) == -1) }
        }
        #expect(cache.value(for: 1_000_000) == -1)
    }

    @Test func insertingAKeyAgainReplacesItsValueWithoutGrowing() {
        var cache = BoundedCache<String, Int>(capacity: 4)
        cache.insert(1, for: "a")
        cache.insert(2, for: "b")
        cache.insert(3, for: "c")  // "a" and "b" move to the older generation
        cache.insert(10, for: "a")
        #expect(cache.value(for: "a") == 10)
        #expect(cache.count == 3)
        #expect(cache.contains("b") && !cache.contains("z"))
    }
}
