import Testing

@testable import DeviceKit

@Suite struct AlarmMachineTests {
    static let alarm = Alarm(id: 7, kind: .button, triggeredAt: 1, battery: 90, flags: [])

    @Test func anAlarmGoesFromPressToClosedAndThePersonSeesEachStep() {
        var m = AlarmMachine()
        #expect(m.pressed(kind: .button, at: .seconds(1)) == [.story(.pressed(.button)), .storeAlarm(kind: .button, pressedAt: .seconds(1), holdMilliseconds: nil)])
        #expect(m.stored(Self.alarm) == [.story(.stored(alarmID: 7)), .setIndicator(.sending)])
        #expect(m.delivered(alarmID: 7) == [.story(.delivered(alarmID: 7)), .setIndicator(.delivered)])
        #expect(m.caseUpdated(CaseUpdate(id: 1, alarmID: 7, state: .received, at: 2)) == [.story(.caseUpdated(alarmID: 7, .received))])
        #expect(m.caseUpdated(CaseUpdate(id: 2, alarmID: 7, state: .operatorEngaged, at: 3)) == [.story(.caseUpdated(alarmID: 7, .operatorEngaged)), .setIndicator(.helpComing)])
        #expect(m.callChanged(active: true) == [.setIndicator(.speaking)])
        #expect(m.callChanged(active: false) == [.setIndicator(.helpComing)], "the case stays open when the call drops")
        #expect(m.caseUpdated(CaseUpdate(id: 3, alarmID: 7, state: .closed, at: 4)) == [.story(.closed(alarmID: 7)), .setIndicator(.idle)])
        #expect(m.isIdle)
    }

    @Test func nothingIsShownAsRegisteredBeforeTheAlarmIsStored() {
        var m = AlarmMachine()
        let actions = m.pressed(kind: .button, at: .zero)
        #expect(!actions.contains { if case .setIndicator = $0 { true } else { false } })
        #expect(m.storeFailed() == [.setIndicator(.fault), .scheduleTimer(.retryStore(generation: 1), after: .seconds(1))])
        #expect(m.timerFired(.retryStore(generation: 1)) == [.storeAlarm(kind: .button, pressedAt: .zero, holdMilliseconds: nil)])
    }

    @Test func aCancelWithinTheWindowWithdrawsTheAlarmAndTellsTheCentre() {
        var m = AlarmMachine(cancelWindow: .seconds(10))
        _ = m.pressed(kind: .button, at: .seconds(100))
        _ = m.stored(Self.alarm)
        #expect(m.cancelRequested(now: .seconds(109)) == [.story(.cancelled(alarmID: 7)), .storeCancel(alarmID: 7), .setIndicator(.idle)])
        #expect(m.isIdle)
    }

    @Test func aCancelAfterTheWindowIsRefused() {
        var m = AlarmMachine(cancelWindow: .seconds(10))
        _ = m.pressed(kind: .button, at: .seconds(100))
        _ = m.stored(Self.alarm)
        #expect(m.cancelRequested(now: .seconds(111)) == [.story(.cancelRefused(alarmID: 7))])
        #expect(m.openAlarm == Self.alarm)
    }

    @Test func pressesDuringAnOpenAlarmAreReportedNotANewCase() {
        var m = AlarmMachine()
        _ = m.pressed(kind: .button, at: .zero)
        #expect(m.pressed(kind: .button, at: .milliseconds(50)) == [], "still storing the first")
        _ = m.stored(Self.alarm)
        #expect(m.pressed(kind: .button, at: .seconds(5)) == [.story(.pressedAgain(alarmID: 7)), .storeEvent(.pressDuringAlarm, value: 7)])
    }

    @Test func aCaseStateNeverGoesBack() {
        var m = AlarmMachine()
        _ = m.pressed(kind: .button, at: .zero)
        _ = m.stored(Self.alarm)
        _ = m.caseUpdated(CaseUpdate(id: 2, alarmID: 7, state: .helpDispatched, at: 3))
        #expect(m.caseUpdated(CaseUpdate(id: 1, alarmID: 7, state: .operatorEngaged, at: 2)) == [])
        #expect(m.caseUpdated(CaseUpdate(id: 9, alarmID: 99, state: .closed, at: 2)) == [], "another alarm's case")
    }

    @Test func aTestAlarmIsMarkedAsATest() {
        var m = AlarmMachine()
        #expect(m.pressed(kind: .test, at: .zero).last == .storeAlarm(kind: .test, pressedAt: .zero, holdMilliseconds: nil))
    }
}
