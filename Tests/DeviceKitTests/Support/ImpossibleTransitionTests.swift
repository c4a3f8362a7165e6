import Testing

@testable import DeviceKit

/// The one rule for events a machine cannot take (`impossibleTransition`): a driver's bug stops a debug build
/// at the call; a stale event is dropped quietly. Exit tests run each body in a child process.
@Suite struct ImpossibleTransitionTests {
    static let alarm = Alarm(id: 7, kind: .button, triggeredAt: 1, battery: 90, flags: [])

    #if DEBUG
    @Test func aStoreTheAlarmMachineNeverAskedForStopsADebugBuild() async {
        await #expect(processExitsWith: .failure) {
            var machine = AlarmMachine()
            _ = machine.stored(ImpossibleTransitionTests.alarm)
        }
    }

    @Test func aDeviceMachineStartedTwiceStopsADebugBuild() async {
        await #expect(processExitsWith: .failure) {
            let key = try! DeviceKey(deviceID: 7, rootKey: Array(0x00...0x1f))
            var machine = DeviceMachine(
                configuration: .init(
                    link: .init(hasSecondary: false, sessionStart: SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1)),
                    primaryName: "127.0.0.1:7730"),
                key: key,
                storedCounterLimit: 0, seed: 1)
            let now = ClockReading(wall: 0, monotonic: .zero)
            _ = machine.start(pending: [], bootCount: 1, now: now)
            _ = machine.start(pending: [], bootCount: 1, now: now)
        }
    }

    @Test func aCalleeThatPlacesACallStopsADebugBuild() async {
        await #expect(processExitsWith: .failure) {
            var machine = CallMachine(role: .callee)
            _ = machine.place(callID: 1, alarmID: 0)
        }
    }
    #endif

    @Test func staleEventsAreDroppedQuietly() {
        var alarm = AlarmMachine()
        #expect(alarm.delivered(alarmID: 9) == [], "an ack for an alarm that is not open")
        #expect(alarm.cancelRequested(now: .zero) == [], "cancel with nothing open")
        var call = CallMachine(role: .callee)
        #expect(call.endReceived(callID: 3, reason: .hangUp) == [], "the end of a call already replaced")
        #expect(call.mediaSilent(callID: 3) == [])
    }
}
