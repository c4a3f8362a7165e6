import Testing

@testable import DeviceKit

/// The heartbeats whose answers are awaited, for their round trips: the latest two.
@Suite struct HeartbeatsInFlightTests {
    @Test func anAnswerIsMeasuredOnceAndAnAnswerToAnOlderOneStillCounts() {
        var inFlight = HeartbeatsInFlight()
        inFlight.sent(counter: 10, at: .seconds(30))
        inFlight.sent(counter: 11, at: .seconds(60))
        #expect(inFlight.answered(counter: 10) == .seconds(30), "the answer to the one before the last")
        #expect(inFlight.answered(counter: 10) == nil, "its copy is not measured again")
        #expect(inFlight.answered(counter: 12) == nil, "never sent")
        #expect(inFlight.answered(counter: 11) == .seconds(60))
        #expect(inFlight.answered(counter: 11) == nil)
    }

    @Test func aThirdHeartbeatForgetsTheFirst() {
        var inFlight = HeartbeatsInFlight()
        for counter: UInt64 in 1...3 { inFlight.sent(counter: counter, at: .seconds(Int64(counter))) }
        #expect(inFlight.answered(counter: 1) == nil)
        #expect(inFlight.answered(counter: 2) == .seconds(2))
        #expect(inFlight.answered(counter: 3) == .seconds(3))
    }
}
