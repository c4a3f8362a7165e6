import Testing

@testable import DeviceKit

/// Supervision, the case policy, the rate limit and the console commands: the centre's small pure parts.
@Suite struct CenterPoliciesTests {
    @Test func aSilentDeviceIsReportedOfflineOnceAndOnlineWhenItReturns() {
        var supervision = Supervision(offlineAfter: .seconds(2))
        #expect(supervision.deviceSeen(5, now: .seconds(0)) == .online(5))
        #expect(supervision.deviceSeen(5, now: .seconds(1)) == nil)
        #expect(supervision.tick(now: .seconds(3)) == [])
        #expect(supervision.tick(now: .seconds(3.5)) == [.offline(5)])
        #expect(supervision.tick(now: .seconds(9)) == [])
        #expect(supervision.deviceSeen(5, now: .seconds(10)) == .online(5))
    }

    /// A device handed over by the journal (another node died, or this node's previous run) is online without a
    /// report; it is reported offline if not heard in time, and online when first heard here (it came to this
    /// node), once.
    @Test func anAdoptedDeviceIsOfflineIfNotHeardAndOnlineWhenFirstHeardHere() {
        var supervision = Supervision(offlineAfter: .seconds(2))
        let adopted = [supervision.adopt(5, now: .seconds(10)), supervision.adopt(6, now: .seconds(10))]
        #expect(adopted == [true, true])
        #expect(supervision.isOnline(5) && supervision.onlineCount == 2)
        let again = supervision.adopt(5, now: .seconds(11))
        #expect(!again, "already online here")
        #expect(supervision.tick(now: .seconds(11)) == [])
        #expect(supervision.deviceSeen(6, now: .seconds(11)) == .online(6))
        #expect(supervision.deviceSeen(6, now: .seconds(12)) == nil)
        #expect(supervision.onlineCount == 2)
        #expect(supervision.tick(now: .seconds(12.5)) == [.offline(5)])
        #expect(supervision.onlineCount == 1)
        #expect(supervision.deviceSeen(7, now: .seconds(13)) == .online(7))
        let heardFirst = supervision.adopt(7, now: .seconds(13))
        #expect(!heardFirst)
        #expect(supervision.deviceSeen(7, now: .seconds(13.5)) == nil, "heard here first: no second report")
    }

    /// The count of devices online follows each report, whatever the order of comings and goings.
    @Test func theOnlineCountFollowsEveryReport() {
        var supervision = Supervision(offlineAfter: .seconds(2))
        var random = SplitMix64(seed: 3)
        var now = Duration.zero
        for _ in 0..<2_000 {
            now += .milliseconds(Int64(random.next() % 50))
            if random.next() % 4 == 0 {
                _ = supervision.tick(now: now)
            } else if random.next() % 5 == 0 {
                supervision.adopt(UInt32(random.next() % 100), now: now)
            } else {
                _ = supervision.deviceSeen(UInt32(random.next() % 100), now: now)
            }
            #expect(supervision.onlineCount == (0..<100).count { supervision.isOnline($0) })
        }
        #expect(supervision.onlineCount > 0)
    }

    @Test func theAutomaticOperatorEngagesThenClosesACase() {
        var policy = CasePolicy(configuration: .init(autoEngageAfter: .milliseconds(200), autoCloseAfter: .seconds(1)))
        let opened = CasePolicy.Case(id: 1, device: 9, alarmID: 7, state: .received)
        #expect(policy.caseOpened(opened) == [.scheduleTimer(.engage(1), after: .milliseconds(200))])
        var engaged = opened
        engaged.state = .operatorEngaged
        #expect(policy.timerFired(.engage(1)) == [.transition(engaged), .scheduleTimer(.close(1), after: .seconds(1))])
        #expect(policy.engage(1) == [], "states only move forward")
        var closed = opened
        closed.state = .closed
        #expect(policy.timerFired(.close(1)) == [.transition(closed)])
        #expect(policy.openCases.isEmpty)
        #expect(policy.close(1) == [])
    }

    /// After a restart the automatic operator carries on: a received case is engaged, an engaged one closed,
    /// each after its delay; without one, restored cases only wait in the list.
    @Test func theAutomaticOperatorTakesUpRestoredCasesWhereItWas() {
        var automatic = CasePolicy(configuration: .init(autoEngageAfter: .milliseconds(200), autoCloseAfter: .seconds(1)))
        #expect(automatic.restore(CasePolicy.Case(id: 5, device: 1, alarmID: 2, state: .received)) == [.scheduleTimer(.engage(5), after: .milliseconds(200))])
        #expect(automatic.restore(CasePolicy.Case(id: 6, device: 3, alarmID: 4, state: .operatorEngaged)) == [.scheduleTimer(.close(6), after: .seconds(1))])
        #expect(automatic.openCases.map(\.id) == [5, 6])
        var person = CasePolicy(configuration: .init())
        #expect(person.restore(CasePolicy.Case(id: 5, device: 1, alarmID: 2, state: .received)) == [])
        #expect(person.openCases.map(\.id) == [5])
    }

    @Test func helpIsDispatchedOnlyForACaseAnOperatorTook() {
        var policy = CasePolicy(configuration: .init())
        _ = policy.caseOpened(CasePolicy.Case(id: 4, device: 1, alarmID: 2, state: .received))
        #expect(policy.dispatch(4) == [], "take it first")
        _ = policy.engage(4)
        #expect(policy.dispatch(4) == [.transition(CasePolicy.Case(id: 4, device: 1, alarmID: 2, state: .helpDispatched))])
        #expect(policy.dispatch(4) == [] && policy.engage(4) == [], "states only move forward")
        #expect(policy.openCase(4)?.state == .helpDispatched)
        #expect(policy.close(4).count == 1 && policy.dispatch(4) == [] && policy.openCase(4) == nil)
    }

    @Test func withoutAutoAnswerCasesWaitForAPerson() {
        var policy = CasePolicy(configuration: .init())
        #expect(policy.caseOpened(CasePolicy.Case(id: 4, device: 1, alarmID: 2, state: .received)) == [])
        #expect(policy.openCases.map(\.id) == [4])
    }

    @Test func theTokenBucketRefillsAtItsRate() {
        var bucket = TokenBucket(rate: 10, burst: 2)
        let taken = [Duration.zero, .zero, .zero, .milliseconds(100), .milliseconds(100)].map { bucket.take(now: $0) }
        #expect(taken == [true, true, false, true, false])
    }

    @Test func consoleCommandsParseAndBadOnesSayWhatToType() {
        #expect(ConsoleCommand.parse("engage 3") == .success(.engage(3)))
        #expect(ConsoleCommand.parse("  close 12 ") == .success(.close(12)))
        #expect(ConsoleCommand.parse("list") == .success(.list))
        #expect(ConsoleCommand.parse("call 4") == .success(.call(4)))
        #expect(ConsoleCommand.parse("HangUp 4") == .success(.hangUp(4)))
        guard case .failure(let error) = ConsoleCommand.parse("engage x") else {
            Issue.record("engage x parsed")
            return
        }
        #expect(error.description.contains("engage N"))
    }
}
