import Testing

@testable import DeviceKit

@Suite struct DeliveryMachineTests {
    static func alarm(_ id: UInt32) -> Message { .alarm(Alarm(id: id, kind: .button, triggeredAt: 1, battery: 90, flags: [])) }
    static func event(_ id: UInt32) -> Message { .event(DeviceEvent(id: id, kind: .mainsLost, at: 1, value: 0)) }

    func sent(_ actions: [DeliveryMachine.Action]) -> [UInt32] {
        actions.compactMap { if case .send(let m) = $0 { m.reliableID } else { nil } }
    }

    @Test func nothingIsSentUntilTheLinkIsUpThenAlarmsGoFirstOldestFirst() {
        var m = DeliveryMachine(configuration: .init(window: 3), seed: 1)
        #expect(m.loaded([Self.event(1), Self.alarm(2), Self.event(3), Self.alarm(4)]) == [])
        #expect(sent(m.linkUp()) == [2, 4, 1])
        #expect(sent(m.ackReceived(id: 2)) == [3])
    }

    @Test func anAckRemovesTheItemFromTheOutboxAndReportsDelivery() {
        var m = DeliveryMachine(seed: 1)
        _ = m.linkUp()
        _ = m.enqueued(Self.alarm(7))
        let actions = m.ackReceived(id: 7)
        #expect(actions == [.remove(id: 7), .delivered(Self.alarm(7))])
        #expect(m.ackReceived(id: 7) == [], "a duplicate ack changes nothing")
        #expect(!m.isBusy)
    }

    /// The timeouts of `count` unanswered sends of `message`.
    func waits(of message: Message, _ count: Int, configuration: DeliveryMachine.Configuration = .init()) -> [Duration] {
        var m = DeliveryMachine(configuration: configuration, seed: 9)
        _ = m.linkUp()
        var actions = m.enqueued(message)
        var timeouts: [Duration] = []
        for _ in 0..<count {
            guard case .scheduleTimer(let timer, let after) = actions.last else { Issue.record("no timer"); return timeouts }
            timeouts.append(after)
            actions = m.timerFired(timer)
            #expect(actions.first == .send(message), "the same message, same id")
        }
        return timeouts
    }

    /// A routine message backs off: 1 s, 2 s, … up to 30 s, each ±20 %.
    @Test func anUnansweredEventIsRetransmittedWithGrowingJitteredTimeouts() {
        let timeouts = waits(of: Self.event(7), 7)
        #expect(timeouts[0] >= .milliseconds(800) && timeouts[0] <= .milliseconds(1200))
        #expect(timeouts[1] >= .milliseconds(1600) && timeouts[1] <= .milliseconds(2400))
        #expect(timeouts[6] >= .seconds(24) && timeouts[6] <= .seconds(36), "capped at 30 s ± 20 %")
    }

    /// An alarm keeps its pace: a try a second (±20 %) for as long as it goes unanswered, so that at 20 % loss
    /// each way its slowest tries are seconds late, not half a minute.
    @Test func anUnansweredAlarmIsRetransmittedEverySecondWithJitter() {
        let timeouts = waits(of: Self.alarm(7), 12)
        #expect(timeouts.allSatisfy { $0 >= .milliseconds(800) && $0 <= .milliseconds(1200) }, "\(timeouts)")
        #expect(Set(timeouts).count > 1, "jittered")
        // Over DC-09 (`reportOverDC09`) the urgent cap is the routine one: alarms back off as before.
        var dc09 = DeliveryMachine.Configuration()
        dc09.urgentMaximumTimeout = dc09.maximumTimeout
        #expect(waits(of: Self.alarm(7), 7, configuration: dc09)[6] >= .seconds(24))
    }

    /// A centre that says "later" (`nak busy`) spreads even alarms out: the wait after it backs off.
    @Test func aBusyCentresAlarmWaitsLongerEachTime() {
        var m = DeliveryMachine(seed: 3)
        _ = m.linkUp()
        _ = m.enqueued(Self.alarm(1))
        var waits: [Duration] = []
        for _ in 0..<5 {
            guard case .scheduleTimer(let timer, let after) = m.nakReceived(Nak(id: 1, reason: .busy, senderTime: 0)).last else {
                Issue.record("no timer"); return
            }
            waits.append(after)
            _ = m.timerFired(timer)
        }
        #expect(waits[4] >= .milliseconds(12_800), "\(waits)")
    }

    @Test func aLostLinkRequeuesWhatWasInFlightInOrderAndItIsSentAgainOnReconnect() {
        var m = DeliveryMachine(configuration: .init(window: 2), seed: 1)
        _ = m.linkUp()
        _ = m.loaded([Self.alarm(1), Self.alarm(2), Self.alarm(3)])
        m.linkDown()
        #expect(m.timerFired(.retransmit(id: 1, generation: 1)) == [], "timers of the old link are void")
        #expect(sent(m.linkUp()) == [1, 2])
    }

    @Test func anAlarmIsNeverDroppedOnANakButAnEventIs() {
        var m = DeliveryMachine(seed: 1)
        _ = m.linkUp()
        _ = m.loaded([Self.alarm(1), Self.event(2)])
        let alarmNak = m.nakReceived(Nak(id: 1, reason: .invalid, senderTime: 0))
        #expect(alarmNak.count == 1)
        guard case .scheduleTimer(.retransmit(id: 1, _), _) = alarmNak[0] else { Issue.record("alarm must be retried"); return }
        #expect(m.nakReceived(Nak(id: 2, reason: .invalid, senderTime: 0)) == [.remove(id: 2), .refused(Self.event(2), .invalid)])
    }

    @Test func aThousandPendingItemsAreAllDelivered() {
        var m = DeliveryMachine(seed: 1)
        _ = m.loaded((1...1000).map { $0 % 10 == 0 ? Self.alarm(UInt32($0)) : Self.event(UInt32($0)) })
        var queue = sent(m.linkUp())
        var delivered: [UInt32] = []
        while let id = queue.first {
            queue.removeFirst()
            delivered.append(id)
            queue += sent(m.ackReceived(id: id))
        }
        #expect(delivered.count == 1000)
        #expect(Array(delivered.prefix(100)) == (1...100).map { UInt32($0 * 10) }, "all alarms before any event")
        #expect(!m.isBusy)
    }
}
