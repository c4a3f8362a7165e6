import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// The firmware's runtime reporting over SIA DC-09 to a receiver on loopback (issue 15, part 1): the same
/// driver as over our protocol, with the DC-09 framing chosen at configuration.
@Suite struct DeviceRuntimeDC09Tests {
    static let master = try! FleetMasterKey(bytes: Array(repeating: 0x42, count: 32))

    func device(port: Int, transport: Transport, key: DC09Key?) throws -> (DeviceRuntime, ObservationLog, InMemoryOutbox) {
        var configuration = DeviceRuntimeConfiguration(
            key: DeviceKey(deviceID: 31, master: Self.master), primary: try SocketAddress(ipAddress: "127.0.0.1", port: port),
            transport: transport, connectTimeout: .seconds(1), backoff: Backoff(base: .milliseconds(100), cap: .milliseconds(500)),
            // No retransmission on a loaded machine: each test counts the frames the receiver stored.
            delivery: .init(initialTimeout: .seconds(3), maximumTimeout: .seconds(6)))
        configuration.dc09 = (DC09FrameSession.Configuration(account: "1F2E", payload: .siaDCS, key: key), .seconds(30))
        let outbox = InMemoryOutbox()
        let device = try DeviceRuntime(
            configuration: configuration, outbox: outbox, counterStore: InMemoryCounterStore(), indicators: RecordingIndicators(),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: Logger(label: "test.dc09-device"))
        let log = ObservationLog()
        let observations = device.observations
        Task { for await o in observations { log.append(o) } }
        return (device, log, outbox)
    }

    func waitFor(_ log: ObservationLog, _ what: String, _ match: (DeviceObservation.Kind) -> Bool) async throws {
        var found = false
        guard await poll(until: { found = log.next(where: match) != nil; return found }) else {
            throw HarnessError("timed out waiting for \(what); the device observed: \(log.summary)")
        }
    }

    @Test(arguments: [Transport.tcp, .udp])
    func anAlarmReachesTheReceiverWithItsCodeAndLeavesTheOutboxOnItsACK(transport: Transport) async throws {
        let key = try DC09Key(bytes: Array(repeating: 0x5A, count: 16))
        // Over TCP, each answer comes in two reads.
        let receiver = try await DC09TestReceiver.start(
            transport: transport == .tcp ? .tcp : .udp, accounts: ["1F2E": .init(key: key)], splitAnswers: true)
        defer { Task { await receiver.stop() } }
        let (device, log, outbox) = try device(port: receiver.port, transport: transport, key: key)
        device.start()
        try await waitFor(log, "the link up") { if case .sessionEstablished = $0 { true } else { false } }
        device.raiseAlarm(kind: .pendant)
        try await waitFor(log, "the alarm delivered") { if case .delivered(.alarm) = $0 { true } else { false } }
        #expect(receiver.stored.all.map(\.data) == ["#1F2E|Nri1/RR000", "#1F2E|Nri1/QA002"], "the restart, then the alarm")
        #expect(receiver.stored.all.allSatisfy { $0.encrypted })
        #expect(try outbox.count() == 0)
        await device.stop()
    }

    @Test func aReceiverWhoseClockIsAheadNAKsOnceAndTheCorrectedFrameIsTaken() async throws {
        let receiver = try await DC09TestReceiver.start(transport: .tcp, accounts: ["1F2E": .init()], clockAhead: 600)
        defer { Task { await receiver.stop() } }
        let (device, log, outbox) = try device(port: receiver.port, transport: .tcp, key: nil)
        device.start()
        try await waitFor(log, "the link up") { if case .sessionEstablished = $0 { true } else { false } }
        // The device reports its restart first: refused for its time, corrected, taken.
        try await waitFor(log, "the NAK") { if case .dc09Refused = $0 { true } else { false } }
        try await waitFor(log, "the restart report delivered") { if case .delivered(.event) = $0 { true } else { false } }
        #expect(Array(receiver.answers.all.prefix(2)) == ["outsideWindow", "ack"], "one NAK, then taken")
        let stamped = try #require(receiver.stored.all.first?.timestamp)
        #expect(abs(stamped.secondsSince1970 - Int64(wallClockMilliseconds() / 1000) - 600) < 30, "stamped with the receiver's clock")
        #expect(try outbox.count() == 0)
        await device.stop()
    }
}
