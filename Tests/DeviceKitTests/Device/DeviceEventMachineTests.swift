import Testing

@testable import DeviceKit

@Suite struct DeviceEventMachineTests {
    @Test func tamperIsReportedAtMostOnceAMinuteAndStaysInTheStatus() {
        var m = DeviceEventMachine(seed: 1)
        #expect(!m.status.contains(.tamper))
        #expect(m.tamperDetected(at: .seconds(10)) == [.storeEvent(.tamper, value: 0)])
        #expect(m.tamperDetected(at: .seconds(69)) == [])
        #expect(m.status.contains(.tamper))
        #expect(m.tamperDetected(at: .seconds(70)) == [.storeEvent(.tamper, value: 0)])
    }

    @Test func mainsLostIsReportedAfterARandomDelayWithinTheMaximum() {
        var m = DeviceEventMachine(configuration: .init(mainsLostMaximumDelay: .seconds(120)), seed: 5)
        #expect(m.mainsChanged(present: true) == [])
        let actions = m.mainsChanged(present: false)
        guard case .scheduleTimer(let timer, let after) = actions.first else { Issue.record("no delay"); return }
        #expect(after <= .seconds(120))
        #expect(m.timerFired(timer) == [.storeEvent(.mainsLost, value: 0)])
        #expect(m.mainsChanged(present: true) == [.storeEvent(.mainsRestored, value: 0)])
    }

    @Test func aTownWidePowerCutIsSpreadOverTheDelayWindow() {
        var delays: [Duration] = []
        for seed in 0..<1000 as Range<UInt64> {
            var m = DeviceEventMachine(configuration: .init(mainsLostMaximumDelay: .seconds(120)), seed: seed)
            _ = m.mainsChanged(present: true)
            if case .scheduleTimer(_, let after) = m.mainsChanged(present: false).first { delays.append(after) }
        }
        let perTenSeconds = Dictionary(grouping: delays) { $0.components.seconds / 10 }.mapValues(\.count)
        #expect(perTenSeconds.count == 12)
        #expect(perTenSeconds.values.max()! < 150, "about 83 per 10 s if uniform")
    }

    @Test func aFlickerShorterThanTheDelayIsNotReported() {
        var m = DeviceEventMachine(seed: 1)
        _ = m.mainsChanged(present: true)
        let actions = m.mainsChanged(present: false)
        guard case .scheduleTimer(let timer, _) = actions.first else { Issue.record("no delay"); return }
        #expect(m.mainsChanged(present: true) == [])
        #expect(m.timerFired(timer) == [])
    }

    @Test func lowBatteryHasHysteresis() {
        var m = DeviceEventMachine(seed: 1)
        #expect(m.batteryMeasured(percent: 25) == [])
        #expect(m.batteryMeasured(percent: 19) == [.storeEvent(.lowBattery, value: 19)])
        #expect(m.batteryMeasured(percent: 21) == [])
        #expect(m.batteryMeasured(percent: 18) == [])
        #expect(m.batteryMeasured(percent: 30) == [.storeEvent(.batteryOK, value: 30)])
        #expect(m.status.contains(.mainsPresent))
    }

    @Test func aButtonThatDisappearsAndReturnsIsReportedBothTimes() {
        var m = DeviceEventMachine(seed: 1)
        #expect(m.buttonPresenceChanged(present: true) == [])
        #expect(m.buttonPresenceChanged(present: false) == [.storeEvent(.buttonMissing, value: 0)])
        #expect(!m.status.contains(.buttonPresent))
        #expect(m.buttonPresenceChanged(present: true) == [.storeEvent(.buttonRestored, value: 0)])
        #expect(m.booted(bootCount: 4) == [.storeEvent(.restart, value: 4)])
    }
}
