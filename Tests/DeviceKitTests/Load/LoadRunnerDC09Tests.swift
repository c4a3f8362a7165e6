import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// `devicesim load --protocol dc09` (issue 15, part 4): the load tool's devices run the firmware's DC-09
/// framing against a DC-09 receiver, and event → ACK lands in the same report.
@Suite struct LoadRunnerDC09Tests {
    @Test(arguments: [Transport.tcp, .udp])
    func aFleetReportsOverDC09AndEveryAlarmIsAcknowledgedAndReachesTheReceiver(transport: Transport) async throws {
        let devices: [UInt32] = Array(1...60)
        let key = try DC09Key(bytes: Array(repeating: 0x33, count: 24))
        let receiver = try await DC09TestReceiver.start(
            transport: transport == .tcp ? .tcp : .udp,
            accounts: Dictionary(uniqueKeysWithValues: devices.map { (DC09Load.account(of: $0), DC09Receiving.Account(key: key)) }))
        defer { Task { await receiver.stop() } }
        var plan = LoadPlan(
            centre: try SocketAddress(ipAddress: "127.0.0.1", port: receiver.port),
            master: try FleetMasterKey(bytes: Array(repeating: 0, count: 32)), transport: transport, firstID: 1,
            fleetSize: devices.count, rampRate: 2000, fleetAlarmRate: 40, cancelShare: 0.5, duration: .milliseconds(1500),
            settle: .milliseconds(300), drain: .seconds(60), seed: 5)
        plan.fleetEventRate = 10
        plan.dc09 = DC09Load(framing: .init(account: "0000", receiver: "7", line: "3", payload: .contactID, key: key))
        try plan.validate()
        let report = try await LoadRunner(plan: plan, group: MultiThreadedEventLoopGroup.singleton).run()
        let c = report.counts
        #expect(c.alarmsRaised > 20 && c.alarmsAcknowledged == c.alarmsRaised && c.alarmsLost == 0)
        #expect(c.sessionsOpened == devices.count, "every device's link up, without a handshake")
        let events = receiver.stored.all
        let alarms = Set(events.filter { $0.data.contains("|1101 01 001") }.map { "\($0.account ?? "") \($0.sequence)" })
        #expect(alarms.count == c.alarmsAcknowledged, "each acknowledged alarm reached the receiver, as Contact ID 101 zone 1")
        #expect(events.filter { $0.data.contains("|1406 ") }.count >= c.cancelsAcknowledged)
        #expect(events.allSatisfy { $0.encrypted && $0.receiver == "7" && $0.line == "3" })
        #expect(Set(events.compactMap(\.account)).isSubset(of: Set(devices.map(DC09Load.account(of:)))))
        #expect(report.latency[.alarm]?.count == UInt64(c.alarmsAcknowledged), "event → ACK measured for each")
        #expect(report.transports == ["dc09/\(transport.rawValue)"])
        #expect(report.emptyReason(.engaged)?.contains("DC-09 tells no case's progress") == true, "not a hint to engage cases")
        #expect(report.table.contains("devices over dc09/\(transport.rawValue)"))
    }

    @Test func theAccountsAreTheDeviceIdsInHexWithAtLeastFourDigits() {
        #expect(DC09Load.account(of: 1) == "0001")
        #expect(DC09Load.account(of: 0xABCD) == "ABCD")
        #expect(DC09Load.account(of: 70_000) == "11170")
        #expect(DC09Load.account(of: .max) == "FFFFFFFF")
    }

    @Test func callsAndDatagramLossAreOurProtocolsAndRefusedOverDC09() throws {
        var plan = LoadPlan(centre: try SocketAddress(ipAddress: "127.0.0.1", port: 1), master: try FleetMasterKey(bytes: Array(repeating: 0, count: 32)), fleetSize: 10)
        plan.dc09 = DC09Load(framing: .init(account: "0000"))
        plan.callShare = 0.5
        #expect(throws: LoadError.self) { try plan.validate() }
        plan.callShare = 0
        plan.udpLoss = 0.1
        #expect(throws: LoadError.self) { try plan.validate() }
    }
}
