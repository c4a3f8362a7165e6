import HeapModule

/// Many timers (a load shard's devices' heartbeats and retransmissions, the centre's retransmissions and
/// case timers) in a heap of our own, so that the event loop holds one scheduled task for all of them
/// (`LoopTimers`) instead of one each.
///
/// Why: SwiftNIO keeps a loop's scheduled tasks in a binary heap whose `cancel()` finds the task by a
/// linear scan. Every TCP connect that `ClientBootstrap` makes schedules its connect timeout and cancels it
/// once connected, and the centre cancelled a retransmission timer for each case update delivered: with
/// thousands of timers on a loop each cancel scanned all of them. In a storm of 2,000 alarms a second the
/// centre spent a fifth of its time in those scans.
///
/// Pure: it knows no clock; the caller says what time it is. Timers are never cancelled: their owner
/// ignores a wake-up that is no longer current (a device's machines by their timer generations, the centre
/// by a token per timer).
///
/// A timer carries a `Payload`: a closure to run (the centre, a shard's own timers), or a plain value that
/// says what is due (a load run's devices: the device and its machine's timer, 48 bytes, where a closure
/// would be a heap object of its own for each of a million devices' timers).
struct TimerQueue<Instant: Comparable, Payload> {
    private struct Entry: Comparable {
        var deadline: Instant
        /// Insertion order, so that timers due at the same instant fire in the order they were set.
        var sequence: UInt64
        var payload: Payload

        static func < (a: Self, b: Self) -> Bool { (a.deadline, a.sequence) < (b.deadline, b.sequence) }
        static func == (a: Self, b: Self) -> Bool { a.sequence == b.sequence }
    }

    private var heap = Heap<Entry>()
    private var nextSequence: UInt64 = 0

    var count: Int { heap.count }

    /// The earliest deadline, if any timer is set.
    var nextDeadline: Instant? { heap.min?.deadline }

    /// Sets a timer; returns true if it is now the earliest, so that the caller must wake earlier.
    mutating func schedule(at deadline: Instant, _ payload: Payload) -> Bool {
        let earliest = heap.min.map { deadline < $0.deadline } ?? true
        heap.insert(Entry(deadline: deadline, sequence: nextSequence, payload: payload))
        nextSequence &+= 1
        return earliest
    }

    /// Removes and returns the payloads of the timers due at `now`, earliest first. Timers set while these
    /// are acted on are not in it: take them with the next call.
    mutating func popDue(at now: Instant) -> [Payload] {
        var due: [Payload] = []
        while let first = heap.min, first.deadline <= now {
            due.append(first.payload)
            heap.removeMin()
        }
        return due
    }
}
