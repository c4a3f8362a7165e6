import Testing

@testable import DeviceKit

@Suite struct TimerQueueTests {
    /// A box the timers' bodies write to: they run synchronously within `popDue`'s caller.
    final class Fired { var order: [String] = [] }

    @Test func dueTimersFireEarliestFirstAndSameInstantsInTheOrderSet() {
        var queue = TimerQueue<Int, () -> Void>()
        let fired = Fired()
        #expect(queue.schedule(at: 30) { fired.order.append("c") })
        #expect(queue.schedule(at: 10) { fired.order.append("a") })
        #expect(!queue.schedule(at: 10) { fired.order.append("a2") })
        #expect(!queue.schedule(at: 20) { fired.order.append("b") })
        #expect(queue.nextDeadline == 10)

        for body in queue.popDue(at: 9) { body() }
        #expect(fired.order.isEmpty)
        for body in queue.popDue(at: 20) { body() }
        #expect(fired.order == ["a", "a2", "b"])
        #expect(queue.count == 1)
        #expect(queue.nextDeadline == 30)
        for body in queue.popDue(at: 100) { body() }
        #expect(fired.order == ["a", "a2", "b", "c"])
        #expect(queue.nextDeadline == nil)
    }

    /// A timer set while due ones run (a heartbeat re-arming itself) waits for the next call, even if due.
    @Test func timersSetWhileFiringWaitForTheNextCall() {
        var queue = TimerQueue<Int, () -> Void>()
        let fired = Fired()
        _ = queue.schedule(at: 5) { fired.order.append("first") }
        let due = queue.popDue(at: 5)
        _ = queue.schedule(at: 5) { fired.order.append("re-armed") }
        for body in due { body() }
        #expect(fired.order == ["first"])
        #expect(queue.nextDeadline == 5)
        for body in queue.popDue(at: 5) { body() }
        #expect(fired.order == ["first", "re-armed"])
    }

    /// Many timers in random order come out sorted, none lost or twice (the heap's invariant, at scale).
    @Test func manyTimersComeOutSortedAndOnce() {
        var queue = TimerQueue<Int, () -> Void>()
        var random = SplitMix64(seed: 42)
        var deadlines: [Int] = []
        final class Seen { var deadlines: [Int] = [] }
        let seen = Seen()
        for _ in 0..<10_000 {
            let deadline = Int(random.next() % 1_000)
            deadlines.append(deadline)
            _ = queue.schedule(at: deadline) { seen.deadlines.append(deadline) }
        }
        var now = 0
        while queue.count > 0 {
            now += 37
            for body in queue.popDue(at: now) { body() }
        }
        #expect(seen.deadlines == deadlines.sorted())
    }
}
