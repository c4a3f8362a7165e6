import Foundation
import Testing

@testable import DeviceKit

/// `[center] protocol = "dc09"` in device.toml (issue 15, part 1): read, checked, written back.
@Suite struct DC09SettingsTests {
    static let dc09 = DeviceConfigTests.minimal + """

        transport = "tcp"
        protocol = "dc09"
        account = "12ab"
        receiver = "7"
        line = "3"
        format = "cid"
        dc09_key = "\(Hex.encode(Array(0x40..<0x58)))"
        supervision_s = 90
        """

    @Test func theDC09SettingsAreReadAndRenderedBack() throws {
        let config = try DeviceConfig(toml: Self.dc09)
        let dc09 = try #require(config.dc09)
        #expect(dc09.account == "12AB", "hex digits are written upper-case on the wire")
        #expect(dc09.receiver == "7" && dc09.line == "3" && dc09.format == .cid && dc09.supervisionSeconds == 90)
        #expect(dc09.key == .bytes(Array(0x40..<0x58)))
        let framing = try dc09.frameSession()
        #expect(framing.account == "12AB" && framing.payload == .contactID && framing.key?.byteCount == 24)
        #expect(try DeviceConfig(toml: config.render()) == config)
    }

    /// DC-09 frames are not sealed: a device that reports over DC-09 needs no key of ours (our protocol still
    /// does: `DeviceConfigTests` holds its "key: missing").
    @Test func aDC09DeviceNeedsNoKeyOfOurs() throws {
        let text = Self.dc09.replacingOccurrences(of: "key = \"\(DeviceConfigTests.keyHex)\"\n", with: "")
        #expect(!text.contains("key = \"\(DeviceConfigTests.keyHex)\""))
        let config = try DeviceConfig(toml: text)
        #expect(config.key == nil && config.dc09 != nil)
        #expect(try config.deviceKey().deviceID == 1001, "a placeholder the DC-09 framing never uses")
        #expect(!config.render().contains("key_file") && !config.render().contains("\nkey ="))
        #expect(try DeviceConfig(toml: config.render()) == config)
    }

    @Test func withoutAProtocolTheDeviceSpeaksOurs() throws {
        #expect(try DeviceConfig(toml: DeviceConfigTests.minimal).dc09 == nil)
        #expect(try DeviceConfig(toml: DeviceConfigTests.minimal + "\nprotocol = \"devicekit\"").dc09 == nil)
    }

    @Test(arguments: [
        ("account = \"12ab\"\n", "", "centre.account: missing: protocol = \"dc09\" reports under an account; write e.g. account = \"1234\" (3 to 16 hex digits, as the receiving centre assigned it)"),
        ("account = \"12ab\"", "account = \"12\"", "centre.account: \"12\" is not 3 to 16 hex digits; write e.g. account = \"1234\""),
        ("account = \"12ab\"", "account = \"12xy\"", "centre.account: \"12xy\" is not 3 to 16 hex digits; write e.g. account = \"1234\""),
        ("line = \"3\"", "line = \"1234567\"", "centre.line: \"1234567\" is not 1 to 6 hex digits; write e.g. line = \"0\""),
        ("format = \"cid\"", "format = \"xml\"", "centre.format: 'xml' is not one of \"sia\", \"cid\""),
        ("protocol = \"dc09\"", "protocol = \"scaip\"", "centre.protocol: 'scaip' is not one of \"devicekit\", \"dc09\""),
        ("supervision_s = 90", "supervision_s = 1", "centre.supervision_s: 1 is outside 10...65535; write e.g. supervision_s = 60"),
        ("dc09_key = \"\(Hex.encode(Array(0x40..<0x58)))\"", "dc09_key = \"0011\"", "centre.dc09_key: a DC-09 key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits: AES-128, -192, -256), got 2 bytes"),
        ("supervision_s = 90", "supervision_s = 90\ndc09_key_file = \"/k\"", "centre.dc09_key: both dc09_key and dc09_key_file are set; keep one"),
        ("protocol = \"dc09\"", "protocol = \"devicekit\"", "centre.account: is a DC-09 setting: it needs protocol = \"dc09\" in [centre]"),
    ])
    func eachMistakeSaysWhatToWrite(replacing: String, with: String, message: String) throws {
        let text = Self.dc09.replacingOccurrences(of: replacing, with: with)
        let error = #expect(throws: DeviceConfigError.self) { try DeviceConfig(toml: text) }
        #expect(error?.description == message)
    }

    @Test func aDC09KeyFileIsReadRelativeToTheConfigurationAndCheckedWhenTheDeviceStarts() throws {
        let directory = try makeTemporaryDirectory("dc09-config")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let text = Self.dc09.replacingOccurrences(of: "dc09_key = \"\(Hex.encode(Array(0x40..<0x58)))\"", with: "dc09_key_file = \"aes.hex\"")
        try text.write(toFile: directory + "/device.toml", atomically: true, encoding: .utf8)
        try (Hex.encode(Array(repeating: 7, count: 32)) + "\n").write(toFile: directory + "/aes.hex", atomically: true, encoding: .utf8)
        let config = try DeviceConfig.load(path: directory + "/device.toml")
        #expect(config.dc09?.key == .file(directory + "/aes.hex"))
        #expect(try config.dc09?.frameSession().key?.byteCount == 32)
        try "0011".write(toFile: directory + "/aes.hex", atomically: true, encoding: .utf8)
        let error = #expect(throws: DeviceConfigError.self) { try config.dc09?.frameSession() }
        #expect(error?.description == "center.dc09_key_file: \(directory)/aes.hex: a DC-09 key must be 16, 24 or 32 bytes (32, 48 or 64 hex digits: AES-128, -192, -256), got 2 bytes")
    }
}
