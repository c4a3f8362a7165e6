import Testing

@testable import DeviceKit

/// Observers of the centre's events hold a bounded buffer each (issue 12, finding 2).
@Suite struct CenterEventHubTests {
    @Test func anObserverThatDoesNotReadHoldsAtMostItsLimitAndIsToldWhatItLost() async {
        let lost = Collected<Int>()
        let hub = CenterEventHub(limit: 8) { lost.append($0) }
        let stream = hub.stream()
        for id in UInt32(0)..<1_000 { hub.emit(.online(device: id)) }
        #expect(lost.all.reduce(0, +) == 992)
        var iterator = stream.makeAsyncIterator()
        var first: [CenterEvent] = []
        for _ in 0..<8 { if let event = await iterator.next() { first.append(event) } }
        #expect(first == (UInt32(0)..<8).map { .online(device: $0) }, "the oldest are kept, in order")
        hub.reportDrops()
        #expect(await iterator.next() == .eventsDropped(count: 992))
        hub.emit(.offline(device: 1))
        #expect(await iterator.next() == .offline(device: 1))
        hub.finish()
        #expect(await iterator.next() == nil)
    }

    @Test func aWarningWaitsForRoomAndEventsAfterItAreCountedInIt() async {
        let hub = CenterEventHub(limit: 2)
        let stream = hub.stream()
        for id in UInt32(0)..<5 { hub.emit(.online(device: id)) }  // 2 kept, 3 lost
        var iterator = stream.makeAsyncIterator()
        _ = await iterator.next()  // one slot free
        hub.emit(.online(device: 5))  // the warning takes the slot: this one is lost too
        _ = await iterator.next()
        #expect(await iterator.next() == .eventsDropped(count: 3))
        hub.reportDrops()
        #expect(await iterator.next() == .eventsDropped(count: 1))
        hub.finish()
    }

    @Test func eachObserverHasItsOwnBuffer() async {
        let hub = CenterEventHub(limit: 4)
        let slow = hub.stream()
        let fast = hub.stream()
        var reader = fast.makeAsyncIterator()
        for id in UInt32(0)..<10 {
            hub.emit(.online(device: id))
            #expect(await reader.next() == .online(device: id))
        }
        var lagging = slow.makeAsyncIterator()
        for id in UInt32(0)..<4 { #expect(await lagging.next() == .online(device: id)) }
        hub.reportDrops()
        #expect(await lagging.next() == .eventsDropped(count: 6))
        hub.finish()
    }
}
