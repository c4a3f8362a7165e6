import Testing

@testable import DeviceKit

/// The one retransmission policy of both ends (protocol.md §4.7).
@Suite struct RetransmitBackoffTests {
    @Test func eachRetryDoublesTheWaitUpToTheMaximumWithinTwentyPerCent() {
        let backoff = RetransmitBackoff(initial: .seconds(1), maximum: .seconds(30))
        var random = SplitMix64(seed: 42)
        for (retries, base) in [(0, 1.0), (1, 2.0), (2, 4.0), (4, 16.0), (5, 30.0), (40, 30.0)] {
            for _ in 0..<200 {
                let wait = Double(backoff.wait(retries: retries, using: &random).milliseconds) / 1000
                #expect(wait >= base * 0.8 - 0.001 && wait <= base * 1.2, "retries \(retries): \(wait) s")
            }
        }
    }

    @Test func aSlowLinkWaitsThreeRoundTripsAtLeast() {
        let backoff = RetransmitBackoff(initial: .seconds(1), maximum: .seconds(30))
        var random = SplitMix64(seed: 7)
        let wait = backoff.wait(retries: 0, roundTrip: .seconds(2), using: &random)
        #expect(wait >= .milliseconds(4_800) && wait <= .milliseconds(7_200))
    }

    @Test func theWaitsAreSpreadNotInStep() {
        let backoff = RetransmitBackoff()
        var random = SplitMix64(seed: 1)
        let waits = Set((0..<100).map { _ in backoff.wait(retries: 0, using: &random) })
        #expect(waits.count > 90)
    }
}
