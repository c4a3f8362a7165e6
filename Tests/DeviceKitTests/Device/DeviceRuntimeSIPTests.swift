import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// A home whose centre's voice is SIP (`[voice] sip`, issue 16 part 3), end to end over loopback: the reference
/// centre takes the alarm, a `SIPPhone` in the test is the ARC's voice.
@Suite(.serialized) struct DeviceRuntimeSIPTests {
    /// The ARC's phone on `host`, answering (or refusing with `rejectWith`) every call.
    static func arc(host: String = "127.0.0.1", rejectWith: Int? = nil, recorder: SIPPhoneTests.Recorder, on loop: any EventLoop) async throws -> (SIPPhone, Int) {
        let userAgent = SIPUserAgent.Configuration(identity: SIPURI(user: "arc", host: host), contactHost: host, contactPort: 0)
        let phone = try await SIPPhone.start(
            SIPEndpoint.Configuration(host: host, port: 0), userAgent: userAgent, options: SIPPhone.Options(rejectWith: rejectWith), on: loop
        ) { recorder.record($0) }
        return (phone, try await loop.submit { phone.endpoint.port }.get())
    }

    static func settings(arcPort: Int, device: UInt32) throws -> DeviceSIPSettings {
        DeviceSIPSettings(
            uri: SIPURI(user: "arc", host: "127.0.0.1", port: arcPort), target: SIPTarget(.udp, try SocketAddress(ipAddress: "127.0.0.1", port: arcPort)),
            identity: SIPURI(user: "\(device)", host: "127.0.0.1"), host: "127.0.0.1", port: 0,
            voice: SIPVoiceMachine.Configuration(retryAfter: .milliseconds(200)))
    }

    static func harness() throws -> EndToEndHarness {
        // Engaged quickly, closed only when the test says so.
        try EndToEndHarness(cases: .init(autoEngageAfter: .milliseconds(100), autoCloseAfter: nil))
    }

    @Test func anAcknowledgedAlarmCallsTheARCVoiceFlowsBothWaysAndClosingTheCaseHangsUp() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let arcEvents = SIPPhoneTests.Recorder()
        let (arc, arcPort) = try await Self.arc(recorder: arcEvents, on: loop)
        let harness = try Self.harness()
        try await harness.startCentre()
        let device = try harness.device(id: 31, eventLoop: loop, sip: try Self.settings(arcPort: arcPort, device: 31))
        _ = try await device.startSIP()
        device.start()
        try await harness.waitFor(device, "a session") { if case .sessionEstablished = $0 { true } else { false } }
        try await harness.press(device)
        try await harness.waitFor(device, "the SIP call placed") { if case .sipCallPlaced(_, 1) = $0 { true } else { false } }
        let answered = try await harness.waitFor(device, "the SIP call answered") { if case .sipCallAnswered(false, _) = $0 { true } else { false } }
        guard case .sipCallAnswered(_, let setup?) = answered.kind else { throw HarnessError("no set-up time: \(answered.kind)") }
        #expect(setup > .zero)
        let call = try #require(arcEvents.events.withLockedValue { $0.compactMap { if case .incoming(let h, _) = $0 { h } else { nil } } }.first)
        try await eventually("a second of the home's voice at the ARC") {
            (try await loop.submit { arc.statistics(call) }.get()?.audio.received ?? 0) >= 25
        }
        #expect(try await harness.closeCase(of: 31))
        let ended = try await harness.waitFor(device, "the SIP call hung up") { if case .sipCallEnded = $0 { true } else { false } }
        guard case .sipCallEnded(let report) = ended.kind else { return }
        #expect(report.end == .hungUp && report.direction == .outgoing)
        let heard = try #require(report.statistics, "the ARC's voice reached the home")
        #expect(heard.audio.received >= 25 && heard.authenticationFailures == 0)
        try await eventually("the ARC sees the home hang up") { arcEvents.reports.first?.end == .byPeer }
        #expect(!harness.centreEvents.contains { if case .callOffered = $0 { true } else { false } }, "no call of our protocol")
        await device.stop()
        try await loop.submit { arc.stop() }.get()
        await harness.stopCentre()
    }

    @Test func theARCsCallIsAnsweredDuringAnAlarmAndRefusedWithoutOneOrFromAnotherHost() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let arcEvents = SIPPhoneTests.Recorder()
        // The ARC declines the home's own call (603: not tried again) and calls it back instead.
        let (arc, arcPort) = try await Self.arc(rejectWith: 603, recorder: arcEvents, on: loop)
        let strangerEvents = SIPPhoneTests.Recorder()
        let (stranger, _) = try await Self.arc(host: "127.0.0.2", recorder: strangerEvents, on: loop)
        let harness = try Self.harness()
        try await harness.startCentre()
        let device = try harness.device(id: 32, eventLoop: loop, sip: try Self.settings(arcPort: arcPort, device: 32))
        let port = try #require(try await device.startSIP())
        device.start()
        try await harness.waitFor(device, "a session") { if case .sessionEstablished = $0 { true } else { false } }
        let home = SIPURI(user: "32", host: "127.0.0.1", port: port)
        let target = SIPTarget(.udp, try SocketAddress(ipAddress: "127.0.0.1", port: port))

        _ = try await loop.flatSubmit { arc.call(to: home, target: target) }.get()
        try await eventually("the ARC's call without an alarm refused") { arcEvents.reports.count == 1 }
        #expect(arcEvents.reports.first?.end == .refused(statusCode: 603, reason: "Decline"))
        try await harness.waitFor(device, "the refusal logged") { $0 == .sipCallRefused(from: "sip:arc@127.0.0.1", statusCode: 603) }

        try await harness.press(device)
        try await harness.waitFor(device, "the home's call declined by the ARC, not tried again") { if case .sipCallGaveUp(_, 1) = $0 { true } else { false } }
        _ = try await loop.flatSubmit { stranger.call(to: home, target: target) }.get()
        try await eventually("a stranger's call during the alarm refused") { strangerEvents.reports.count == 1 }
        #expect(strangerEvents.reports.first?.end == .refused(statusCode: 603, reason: "Decline"))

        let callBack = try await loop.flatSubmit { arc.call(to: home, target: target) }.get()
        try await harness.waitFor(device, "the ARC's call answered") { $0 == .sipCallAnswered(incoming: true, setupTime: nil) }
        try await eventually("the home's voice at the ARC") {
            (try await loop.submit { arc.statistics(callBack) }.get()?.audio.received ?? 0) >= 25
        }
        try await loop.submit { arc.hangUp(callBack) }.get()
        let ended = try await harness.waitFor(device, "the call ended by the ARC") { if case .sipCallEnded = $0 { true } else { false } }
        guard case .sipCallEnded(let report) = ended.kind else { return }
        #expect(report.end == .byPeer && report.direction == .incoming && (report.statistics?.audio.received ?? 0) > 0)
        await device.stop()
        try await loop.submit { arc.stop(); stranger.stop() }.get()
        await harness.stopCentre()
    }
}
