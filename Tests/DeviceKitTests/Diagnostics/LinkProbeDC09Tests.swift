import Foundation
import NIOCore
import Testing

@testable import DeviceKit

/// `diag link` and `diag selftest` of a device that reports over SIA DC-09: NULL supervision frames against a
/// DC-09 receiver, and what its NAK or DUH means in words.
@Suite struct LinkProbeDC09Tests {
    static let key = try! DC09Key(bytes: Array(repeating: 0x21, count: 32))

    /// The timeout is long: no test here waits it out, and at the suite's start, with dozens of tests running,
    /// 2 s was once too short for a TCP NULL to be answered.
    func probe(port: Int, transport: Transport, account: String = "4A1", key: DC09Key? = LinkProbeDC09Tests.key) throws -> LinkProbe {
        var probe = LinkProbe(
            key: try DeviceKey(deviceID: 1, rootKey: RunningCentre.rootKey), address: try SocketAddress(ipAddress: "127.0.0.1", port: port),
            transport: transport, counterStore: InMemoryCounterStore(), bootCount: 1, timeout: .seconds(10))
        probe.dc09 = (DC09FrameSession.Configuration(account: account, key: key), 90)
        return probe
    }

    @Test(arguments: [Transport.tcp, .udp])
    func aReceiverThatKnowsTheAccountAcknowledgesEachNULL(transport: Transport) async throws {
        let receiver = try await DC09TestReceiver.start(transport: transport == .tcp ? .tcp : .udp, accounts: ["4A1": .init(key: Self.key)])
        defer { Task { await receiver.stop() } }
        let report = try await probe(port: receiver.port, transport: transport).run(heartbeats: 3)
        #expect(report.roundTripMilliseconds.count == 3 && report.dc09Account == "4A1" && report.heartbeatIntervalSeconds == 90)
        #expect(receiver.answers.all == ["supervision", "supervision", "supervision"], "three NULLs, each acknowledged")
        let lines = SelfTest.describe(report)
        #expect(lines.map(\.status) == [.pass, .pass])
        #expect(lines.first?.message.contains("acknowledged account 4A1's NULL supervision") == true)
    }

    @Test func anAccountTheReceiverDoesNotKnowIsNamedWithWhatToCheck() async throws {
        let receiver = try await DC09TestReceiver.start(transport: .tcp, accounts: ["999": .init()])
        defer { Task { await receiver.stop() } }
        let error = await #expect(throws: LinkProbe.Failure.self) { try await probe(port: receiver.port, transport: .tcp).run(heartbeats: 1) }
        #expect(error?.description.contains("refused: NAK: it does not know account 4A1") == true, "\(error?.description ?? "")")
    }

    @Test func aClockOutsideTheReceiversWindowIsToldWithBothClocks() async throws {
        let receiver = try await DC09TestReceiver.start(transport: .tcp, accounts: ["4A1": .init(key: Self.key)], clockAhead: 3_600)
        defer { Task { await receiver.stop() } }
        let error = await #expect(throws: LinkProbe.Failure.self) { try await probe(port: receiver.port, transport: .tcp).run(heartbeats: 1) }
        #expect(error?.description.contains("its clock said") == true && error?.description.contains("timedatectl") == true)
    }

    @Test func aClearNULLFromAnAccountWithAKeyIsNotUnderstood() async throws {
        let receiver = try await DC09TestReceiver.start(transport: .tcp, accounts: ["4A1": .init(key: Self.key)])
        defer { Task { await receiver.stop() } }
        let error = await #expect(throws: LinkProbe.Failure.self) {
            try await probe(port: receiver.port, transport: .tcp, key: nil).run(heartbeats: 1)
        }
        #expect(error?.description.contains("refused: DUH") == true, "\(error?.description ?? "")")
    }
}
