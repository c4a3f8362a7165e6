import ArgumentParser
import DeviceKit
import NIOCore

/// `devicesim demo`: what the product does, on loopback, with no configuration.
///
/// Until the device runtime and the centre land, it shows the wire protocol: an alarm encoded, sealed,
/// shown as hex, tampered with and refused, replayed and refused, then opened and decoded back.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show an alarm sealed, sent as bytes and opened again, with forgery and replay refused.")

    func run() async throws {
        let deviceID: UInt32 = 1001
        let key = try DeviceKey(deviceID: deviceID, rootKey: Array(0..<32))
        let alarm = Message.alarm(
            Alarm(id: 1, kind: .button, triggeredAt: 1_795_000_000_000, battery: 92, flags: [.clockSynchronised]))

        print("A person in home \(deviceID) presses the red button.")
        print("  alarm:   \(alarm.json)")
        var body = ByteBuffer()
        try alarm.encodeBody(into: &body)
        print("  body:    \(Hex.encode(body.readableBytesView, separator: " "))  (\(body.readableBytes) bytes, cleartext, never sent)")
        var wire = ByteBuffer()
        try SealedFrame.seal(alarm, direction: .up, deviceID: deviceID, counter: 65_537, key: key.upKey, into: &wire)
        print("  on wire: \(Hex.encode(wire.readableBytesView, separator: " "))")
        print("           \(wire.readableBytes) bytes: 13 header + \(body.readableBytes) encrypted + 16 tag (ChaCha20-Poly1305)")

        var opener = FrameOpener(deviceID: deviceID, direction: .up, key: key.upKey, floor: 65_536)
        var tampered = Array(wire.readableBytesView)
        tampered[20] ^= 0x01
        print("\nSomeone on the path flips one bit:")
        report(&opener, ByteBuffer(bytes: tampered))
        print("\nThe centre receives the genuine frame:")
        report(&opener, wire)
        print("\nSomeone replays it:")
        report(&opener, wire)
        print("\nRefused frames counted: \(opener.refused.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", "))")
    }

    private func report(_ opener: inout FrameOpener, _ bytes: ByteBuffer) {
        do {
            let message = try opener.open(try SealedFrame(datagram: bytes))
            print("  accepted: \(message.json)")
        } catch {
            print("  refused:  \(error)")
        }
    }
}
