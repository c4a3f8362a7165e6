import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

@Suite struct LoopTimersTests {
    @Test func deadlinesAreMovedUpToTheNextMultipleOfTheSlack() {
        let at = { (n: UInt64) in NIODeadline.uptimeNanoseconds(n) }
        #expect(LoopTimers<Int>.roundedUp(at(1_000_001), to: 1_000_000) == at(2_000_000))
        #expect(LoopTimers<Int>.roundedUp(at(1_999_999), to: 1_000_000) == at(2_000_000))
        #expect(LoopTimers<Int>.roundedUp(at(2_000_000), to: 1_000_000) == at(2_000_000))
        #expect(LoopTimers<Int>.roundedUp(at(1_234_567), to: 0) == at(1_234_567))
    }

    /// Timers a few milliseconds apart, with a slack of 50 ms, wake the loop once: at the slack's grid point
    /// after the first deadline, so every one fires at or after it, and none before its own deadline.
    @Test func timersWithinOneSlackFireTogetherAtItsGridPoint() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let slack = Duration.milliseconds(50)
        let fired: [(deadline: NIODeadline, at: NIODeadline)] = try await loop.submit {
            let promise = loop.makePromise(of: [(deadline: NIODeadline, at: NIODeadline)].self)
            var times: [(deadline: NIODeadline, at: NIODeadline)] = []
            let timers = LoopTimers<NIODeadline>(loop: loop, slack: slack) { deadline in
                times.append((deadline, .now()))
                if times.count == 3 { promise.succeed(times) }
            }
            for ms in [1, 2, 3] {
                let deadline = NIODeadline.now() + .milliseconds(Int64(ms))
                timers.schedule(in: .milliseconds(ms), deadline)
            }
            return promise.futureResult.map { times in withExtendedLifetime(timers) { times } }
        }.flatMap { $0 }.get()
        #expect(fired.count == 3)
        let gridPoint = LoopTimers<NIODeadline>.roundedUp(fired[0].deadline, to: 50_000_000)
        for timer in fired {
            #expect(timer.at >= timer.deadline)
            #expect(timer.at >= gridPoint - .milliseconds(1), "fired before the wake-up the slack allows")
        }
    }
}
