import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// Two `SIPPhone`s on real loopback sockets, UDP and TCP: a call is set up, voice flows both ways (SRTP or
/// plain RTP by policy), and the hang-up of either side ends it on both.
@Suite struct SIPPhoneTests {
    final class Recorder: Sendable {
        let events = NIOLockedValueBox<[SIPPhone.Event]>([])
        func record(_ event: SIPPhone.Event) { events.withLockedValue { $0.append(event) } }
        var reports: [SIPPhone.CallReport] {
            events.withLockedValue { $0.compactMap { if case .ended(let r) = $0 { r } else { nil } } }
        }
    }

    static func phone(_ name: String, srtp: SRTPPolicy = .optional, options: SIPPhone.Options? = nil, recorder: Recorder, on loop: any EventLoop) async throws -> SIPPhone {
        var options = options ?? SIPPhone.Options()
        options.srtp = srtp
        let userAgent = SIPUserAgent.Configuration(identity: SIPURI(user: name, host: "127.0.0.1"), contactHost: "127.0.0.1", contactPort: 0)
        return try await SIPPhone.start(SIPEndpoint.Configuration(host: "127.0.0.1", port: 0), userAgent: userAgent, options: options, on: loop) {
            recorder.record($0)
        }
    }

    @Test(arguments: [SIPTarget.Transport.udp, .tcp], [SRTPPolicy.optional, .off])
    func aCallCarriesVoiceBothWaysAndEndsOnBothSides(transport: SIPTarget.Transport, srtp: SRTPPolicy) async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let callerEvents = Recorder()
        let calleeEvents = Recorder()
        let caller = try await Self.phone("caller", srtp: srtp, recorder: callerEvents, on: loop)
        let callee = try await Self.phone("callee", recorder: calleeEvents, on: loop)
        let port = try await loop.submit { callee.endpoint.port }.get()
        let target = SIPTarget(transport, try SocketAddress(ipAddress: "127.0.0.1", port: port))
        let handle = try await loop.flatSubmit { caller.call(to: SIPURI(user: "callee", host: "127.0.0.1", port: port), target: target) }.get()
        try await eventually("a second of voice back at the caller") {
            let s = try await loop.submit { caller.statistics(handle) }.get()
            return (s?.audio.received ?? 0) >= 25
        }
        try await loop.submit { caller.hangUp(handle) }.get()
        try await eventually("both sides report the call") { callerEvents.reports.count == 1 && calleeEvents.reports.count == 1 }
        let mine = try #require(callerEvents.reports.first)
        let theirs = try #require(calleeEvents.reports.first)
        #expect(mine.end == .hungUp && mine.direction == .outgoing)
        #expect(theirs.end == .byPeer && theirs.direction == .incoming)
        #expect(mine.srtp == (srtp == .optional) && theirs.srtp == mine.srtp)
        #expect(mine.setupTime != nil)
        let heard = try #require(mine.statistics)
        #expect(heard.audio.received >= 25 && heard.audio.cumulativeLost == 0)
        #expect(heard.authenticationFailures == 0 && heard.malformed == 0)
        #expect((theirs.statistics?.audio.received ?? 0) >= 10)  // it started later, and ended at our BYE
        try await loop.submit { caller.stop(); callee.stop() }.get()
    }

    @Test func aRefusedCallIsReportedWithItsStatus() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let callerEvents = Recorder()
        let calleeEvents = Recorder()
        let caller = try await Self.phone("caller", recorder: callerEvents, on: loop)
        let callee = try await Self.phone("callee", options: SIPPhone.Options(rejectWith: 486), recorder: calleeEvents, on: loop)
        let port = try await loop.submit { callee.endpoint.port }.get()
        let target = SIPTarget(.udp, try SocketAddress(ipAddress: "127.0.0.1", port: port))
        _ = try await loop.flatSubmit { caller.call(to: SIPURI(user: "callee", host: "127.0.0.1", port: port), target: target) }.get()
        try await eventually("the refusal reported") { callerEvents.reports.count == 1 }
        #expect(callerEvents.reports.first?.end == .refused(statusCode: 486, reason: "Busy Here"))
        #expect(callerEvents.reports.first?.statistics == nil)
        try await loop.submit { caller.stop(); callee.stop() }.get()
    }

    @Test func garbageAtTheSIPPortIsAnsweredOrDroppedAndTheCallsGoOn() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let calleeEvents = Recorder()
        let callee = try await Self.phone("callee", recorder: calleeEvents, on: loop)
        let port = try await loop.submit { callee.endpoint.port }.get()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let replies = NIOLockedValueBox<[String]>([])
        let stranger = try await DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TextDatagramCollector(replies)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let badMaxForwards = """
            OPTIONS sip:callee@127.0.0.1 SIP/2.0\r
            Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKbad1\r
            Max-Forwards: many\r
            From: <sip:x@127.0.0.1>;tag=1\r
            To: <sip:callee@127.0.0.1>\r
            Call-ID: bad-1\r
            CSeq: 1 OPTIONS\r
            Content-Length: 0\r
            \r

            """
        let options = badMaxForwards.replacingOccurrences(of: "Max-Forwards: many", with: "Max-Forwards: 70").replacingOccurrences(of: "bad1", with: "good1")
            .replacingOccurrences(of: "Call-ID: bad-1", with: "Call-ID: good-1")
        for text in ["", "\u{0}\u{1}garbage", "SIP/2.0 200 OK\r\n\r\n", String(repeating: "A", count: 60_000), badMaxForwards, options] {
            var buffer = stranger.allocator.buffer(capacity: text.utf8.count)
            buffer.writeString(text)
            try await stranger.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: buffer))
        }
        try await eventually("a 400 and a 200") { replies.withLockedValue { $0.count } >= 2 }
        let answers = replies.withLockedValue { $0 }
        #expect(answers.contains { $0.hasPrefix("SIP/2.0 400") && $0.contains("Call-ID: bad-1") })
        #expect(answers.contains { $0.hasPrefix("SIP/2.0 200") && $0.contains("Call-ID: good-1") })
        let counters = try await loop.submit { callee.endpoint.counters }.get()
        #expect(counters.malformed >= 4)
        try await stranger.close()
        try await loop.submit { callee.stop() }.get()
    }
}

extension SIPPhoneTests {
    /// A connection that begins a message and never ends it held its buffer for ever: it is closed.
    @Test func aTCPStreamLeftMidMessageIsClosed() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let events = Recorder()
        let userAgent = SIPUserAgent.Configuration(identity: SIPURI(user: "callee", host: "127.0.0.1"), contactHost: "127.0.0.1", contactPort: 0)
        let phone = try await SIPPhone.start(
            SIPEndpoint.Configuration(host: "127.0.0.1", port: 0, incompleteMessageTimeout: .milliseconds(200)), userAgent: userAgent, on: loop
        ) { events.record($0) }
        let port = try await loop.submit { phone.endpoint.port }.get()
        let closed = NIOLockedValueBox(false)
        let client = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(CloseWatcher(closed)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var buffer = client.allocator.buffer(capacity: 64)
        buffer.writeString("OPTIONS sip:callee@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;bra")
        try await client.writeAndFlush(buffer)
        try await eventually("the endpoint closed the stalled stream") { closed.withLockedValue { $0 } }
        #expect(events.events.withLockedValue { $0 }.contains { if case .refused(let why) = $0 { why.contains("did not end in time") } else { false } })
        try await loop.submit { phone.stop() }.get()
    }
}

private final class CloseWatcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let closed: NIOLockedValueBox<Bool>
    init(_ closed: NIOLockedValueBox<Bool>) { self.closed = closed }
    func channelInactive(context: ChannelHandlerContext) { closed.withLockedValue { $0 = true } }
}

private final class TextDatagramCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let replies: NIOLockedValueBox<[String]>
    init(_ replies: NIOLockedValueBox<[String]>) { self.replies = replies }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        replies.withLockedValue { $0.append(String(buffer: envelope.data)) }
    }
}
