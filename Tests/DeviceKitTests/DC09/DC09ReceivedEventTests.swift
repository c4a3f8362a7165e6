import Testing

@testable import DeviceKit

/// A receiver reads back exactly the table our devices send (`DC09EventCodes`), and nothing else.
@Suite struct DC09ReceivedEventTests {
    static func frame(_ id: DC09Frame.ID, _ code: DC09EventCode, sequence: String = "0001", at seconds: Int64 = 1_796_434_416) -> DC09Frame {
        DC09Frame(
            id: id, sequence: sequence, receiver: "0", line: "0", account: "1234", data: code.data(id, account: "1234"),
            timestamp: DC09Timestamp(secondsSince1970: seconds))
    }

    static let ours: [(DC09ReceivedEvent, DC09EventCode)] =
        [AlarmKind.button, .pendant, .fall, .inactivity, .test].map { (.alarm($0), DC09EventCodes.alarm($0)) }
        + [AlarmKind.button, .pendant, .fall, .inactivity].map { (.cancel, DC09EventCodes.cancel($0)) }
        + [DeviceEventKind.mainsLost, .mainsRestored, .lowBattery, .batteryOK, .buttonMissing, .buttonRestored, .tamper, .restart]
        .compactMap { kind in DC09EventCodes.event(kind).map { (.event(kind), $0) } }

    @Test(arguments: [DC09Frame.ID.siaDCS, .contactID])
    func everyEventOfTheTableReadsBackAsItself(_ id: DC09Frame.ID) {
        for (event, code) in Self.ours {
            #expect(DC09ReceivedEvent(Self.frame(id, code)) == event, "\(id.rawValue) \(code.sia)/\(code.contactID) zone \(code.zone)")
        }
    }

    @Test func codesTheTableDoesNotHaveAreNotTaken() {
        // SIA-DCS BA (burglary), Contact ID 1130 (burglary) and 3101 (a restore of a personal emergency).
        for (id, code) in [(DC09Frame.ID.siaDCS, "BA"), (.contactID, "1130"), (.contactID, "3101"), (.siaDCS, "ZZ")] {
            #expect(!DC09ReceivedEvent.takes(id, code), "\(code)")
        }
        let burglary = DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: "#1234|Nri1/BA001")
        #expect(DC09ReceivedEvent(burglary) == nil)
        #expect(DC09ReceivedEvent.takes(.siaDCS, "QA") && DC09ReceivedEvent.takes(.contactID, "1406"))
    }

    @Test func aZoneNoRowNamesReadsAsTheCodesFirstRow() {
        // A panel's emergency button on zone 7 is a call-button alarm; a medical alarm on zone 9 a fall.
        let qa = DC09Frame(id: .siaDCS, sequence: "0001", account: "1234", data: "#1234|Nri1/QA007")
        let ma = DC09Frame(id: .contactID, sequence: "0001", account: "1234", data: "#1234|1100 01 009")
        #expect(DC09ReceivedEvent(qa) == .alarm(.button))
        #expect(DC09ReceivedEvent(ma) == .alarm(.fall))
    }

    @Test func anIdentityLeavesOutTheTimestampButNotTheSequenceOrData() {
        let alarm = DC09EventCodes.alarm(.button)
        let first = DC09ReceivedEvent.identity(of: Self.frame(.siaDCS, alarm))
        #expect(DC09ReceivedEvent.identity(of: Self.frame(.siaDCS, alarm, at: 1_796_434_500)) == first)
        #expect(DC09ReceivedEvent.identity(of: Self.frame(.siaDCS, alarm, sequence: "0002")) != first)
        #expect(DC09ReceivedEvent.identity(of: Self.frame(.siaDCS, DC09EventCodes.alarm(.fall))) != first)
        #expect(DC09ReceivedEvent.identity(of: Self.frame(.contactID, alarm)) != first)
    }

    @Test func anEventBecomesOurMessage() {
        #expect(DC09ReceivedEvent.alarm(.fall).message(id: 9, at: 5_000, cancelling: 0)
            == .alarm(Alarm(id: 9, kind: .fall, triggeredAt: 5_000, battery: 255, flags: [])))
        #expect(DC09ReceivedEvent.cancel.message(id: 10, at: 6_000, cancelling: 9) == .alarmCancel(AlarmCancel(id: 10, alarmID: 9, cancelledAt: 6_000)))
        #expect(DC09ReceivedEvent.event(.mainsLost).message(id: 11, at: 7_000, cancelling: 0)
            == .event(DeviceEvent(id: 11, kind: .mainsLost, at: 7_000, value: 0)))
    }
}
