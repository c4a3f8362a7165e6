import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import DeviceKit

/// `MediaLink` on real loopback sockets: two links talk SRTP to each other while a stranger sends garbage.
@Suite struct MediaLinkTests {
    static func description(port: Int, ssrc: UInt32) -> MediaDescription {
        MediaDescription(
            endpoint: Endpoint(address: [127, 0, 0, 1], port: UInt16(port)), audioPayloadType: 0, ssrc: ssrc,
            keyMaterial: SRTPMasterKey.randomKeyMaterial(), videoPayloadType: 0)
    }

    static func statistics(_ link: MediaLink) async throws -> MediaStatistics? {
        try await link.eventLoop.submit { link.statistics }.get()
    }

    @Test func garbageAndForgedDatagramsOnTheWireAreCountedAndIgnored() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let a = try await MediaLink.bind(host: "127.0.0.1", on: loop).get()
        let b = try await MediaLink.bind(host: "127.0.0.1", on: loop).get()
        #expect(a.port % 2 == 0 && b.port % 2 == 0)  // RTP on even ports, RTCP above (RFC 3550 §11)
        let da = Self.description(port: a.port, ssrc: 0xAAAA)
        let db = Self.description(port: b.port, ssrc: 0xBBBB)
        try await loop.submit {
            try a.start(local: da, remote: db, remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: b.port), cname: "a") { _ in }
            try b.start(local: db, remote: da, remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: a.port), cname: "b") { _ in }
        }.get()

        let stranger = try await DatagramBootstrap(group: loop).bind(host: "127.0.0.1", port: 0).get()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: b.port)
        var forged = RTPPacket(payloadType: 0, sequenceNumber: 1, timestamp: 0, ssrc: 0xCCCC, payload: [UInt8](repeating: 0xFF, count: 160)).bytes
        forged += [UInt8](repeating: 0, count: SRTP.tagLength)  // right shape, wrong tag
        for bytes: [UInt8] in [[], [0x80], [0x80, 0x00, 0x00, 0x01], [UInt8](repeating: 0x40, count: 40), forged] {
            var buffer = stranger.allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            try await stranger.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: buffer))
        }

        try await poll {
            guard let s = try await Self.statistics(b) else { return false }
            return s.audio.received >= 50 && s.malformed >= 4 && s.authenticationFailures >= 1
        }
        let s = try #require(try await Self.statistics(b))
        #expect(s.malformed == 4)  // empty, 1 byte, 4 bytes, version 1
        #expect(s.authenticationFailures == 1)
        #expect(s.audio.received >= 50)
        #expect(s.audio.cumulativeLost == 0)
        try await stranger.close()
        let finalA = try await loop.submit { a.stop(reason: "test") }.get()
        let finalB = try await loop.submit { b.stop(reason: "test") }.get()
        #expect((finalA?.audioPacketsSent ?? 0) > 0 && (finalB?.audioPacketsSent ?? 0) > 0)
    }

    @Test func theMediaAddressComesFromTheEndpointOrTheControlPeer() throws {
        let peer = try SocketAddress(ipAddress: "192.0.2.7", port: 7700)
        let explicit = Self.description(port: 40_000, ssrc: 1)
        #expect(try explicit.rtpAddress(controlPeer: peer) == SocketAddress(ipAddress: "127.0.0.1", port: 40_000))
        var unspecified = explicit
        unspecified.endpoint = Endpoint(address: [0, 0, 0, 0], port: 40_002)
        #expect(try unspecified.rtpAddress(controlPeer: peer) == SocketAddress(ipAddress: "192.0.2.7", port: 40_002))
        #expect(throws: MediaLinkError.self) { try unspecified.rtpAddress(controlPeer: nil) }
        var v6 = explicit
        v6.endpoint = Endpoint(address: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1], port: 40_004)
        #expect(try v6.rtpAddress(controlPeer: nil) == SocketAddress(ipAddress: "2001:db8::1", port: 40_004))
        for port: UInt16 in [0, 65_535] {  // no port, and no room for RTCP above it
            var bad = explicit
            bad.endpoint.port = port
            #expect(throws: MediaLinkError.self) { try bad.rtpAddress(controlPeer: peer) }
        }
    }
}

/// A bridge's leg: it sends what it is given at once, hands on what it receives, and fills a silence of the
/// other side with µ-law silence so that the listener's link does not end the call as silent.
@Suite struct MediaLinkRelayTests {
    @Test func aRelayLegSendsWhatItIsGivenAndSilenceWhenGivenNothing() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let relay = try await MediaLink.bind(host: "127.0.0.1", on: loop).get()
        let listener = try await MediaLink.bind(host: "127.0.0.1", on: loop).get()
        let dr = MediaLinkTests.description(port: relay.port, ssrc: 0x1111)
        let dl = MediaLinkTests.description(port: listener.port, ssrc: 0x2222)
        let heard = NIOLockedValueBox<[[UInt8]]>([])
        let handedOn = NIOLockedValueBox(0)
        try await loop.submit {
            var relayParameters = MediaLink.Parameters(video: false)
            relayParameters.relay = true
            try relay.start(local: dr, remote: dl, remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: listener.port), cname: "relay", parameters: relayParameters) { _ in }
            relay.onAudio = { _ in handedOn.withLockedValue { $0 += 1 } }
            var listenerParameters = MediaLink.Parameters(video: false)
            listenerParameters.relay = true  // so that it only listens (and hands on what it hears)
            try listener.start(local: dl, remote: dr, remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: relay.port), cname: "listener", parameters: listenerParameters) { _ in }
            listener.onAudio = { packet in heard.withLockedValue { $0.append(packet.payload) } }
        }.get()
        // Nothing relayed: silence after 200 ms, every 20 ms (and the listener's silence back the same way).
        try await eventually("comfort silence at the listener") { heard.withLockedValue { $0.count } >= 10 }
        #expect(heard.withLockedValue { $0 }.allSatisfy { $0 == [UInt8](repeating: 0xFF, count: 160) })
        #expect(handedOn.withLockedValue { $0 } > 0)
        // Relayed voice goes out at once, as given.
        let voice = [UInt8](repeating: 0x42, count: 160)
        try await loop.submit { relay.relay(voice) }.get()
        try await eventually("the relayed voice") { heard.withLockedValue { $0.contains(voice) } }
        let stats = try #require(try await loop.submit { listener.statistics }.get())
        #expect(stats.audio.cumulativeLost == 0 && stats.authenticationFailures == 0)
        _ = try await loop.submit { relay.stop(reason: "test"); listener.stop(reason: "test") }.get()
    }
}
