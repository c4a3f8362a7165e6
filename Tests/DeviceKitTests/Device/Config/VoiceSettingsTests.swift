import Foundation
import Testing

@testable import DeviceKit

/// `[voice]` in device.toml (issue 16, part 3): read, checked, written back; the password file's rules.
@Suite struct VoiceSettingsTests {
    static func file(_ voice: String) -> String { DeviceConfigTests.minimal + "\n[voice]\n" + voice }

    @Test func theVoiceSettingsAreReadAndRenderedBack() throws {
        let config = try DeviceConfig(toml: Self.file("""
            sip = "sip:arc@127.0.0.1:5070;transport=tcp"
            sip_port = 0
            srtp = "required"
            sip_user = "home-1001"
            """))
        let voice = try #require(config.voice)
        #expect(voice.sip.host == "127.0.0.1" && voice.sip.port == 5070 && voice.sip.transport == "tcp")
        #expect(voice.sipPort == 0 && voice.srtp == .required && voice.sipUser == "home-1001")
        #expect(try DeviceConfig(toml: config.render()) == config)
    }

    @Test func theDefaultsArePort5060OptionalSRTPAndTheDeviceID() throws {
        let voice = try #require(try DeviceConfig(toml: Self.file("sip = \"sip:arc@arc.example\"")).voice)
        #expect(voice.sipPort == 5060 && voice.srtp == .optional && voice.sipUser == nil)
        #expect(try DeviceConfig(toml: DeviceConfigTests.minimal).voice == nil, "no [voice]: our protocol's calls")
    }

    @Test(arguments: [
        ("sip_port = 5060", "voice.sip", "missing"),
        ("sip = \"tel:+4930123\"", "voice.sip", "not a SIP URI"),
        ("sip = \"sip:arc@arc.example;transport=sctp\"", "voice.sip", "not udp or tcp"),
        ("sip = \"sip:arc@h\"\nsip_port = 70000", "voice.sip_port", "outside"),
        ("sip = \"sip:arc@h\"\nsrtp = \"maybe\"", "voice.srtp", "is not one of"),
        ("sip = \"sip:arc@h\"\nsip_user = \"a b\"", "voice.sip_user", "spaces"),
        ("sip = \"sip:arc@h\"\npassword = \"x\"", "voice.password", "unknown setting"),
    ])
    func aBadVoiceSettingIsNamed(line: String, key: String, words: String) {
        #expect {
            try DeviceConfig(toml: Self.file(line))
        } throws: { error in
            guard let error = error as? DeviceConfigError else { return false }
            return error.key == key && error.message.contains(words)
        }
    }

    @Test func thePasswordComesFromTheStateDirectoryAndMustBePrivate() throws {
        let directory = try makeTemporaryDirectory("sip-password")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let voice = VoiceSettings(sip: try SIPURI(parsing: "sip:arc@127.0.0.1"))
        #expect(try voice.credentials(deviceID: 1001, stateDirectory: directory) == nil, "no file: calls without credentials")

        let path = directory + "/sip-password"
        FileManager.default.createFile(atPath: path, contents: Array("s3cret\n".utf8).withUnsafeBytes { Data($0) })
        chmod(path, 0o644)
        #expect {
            try voice.credentials(deviceID: 1001, stateDirectory: directory)
        } throws: { error in
            (error as? DeviceConfigError)?.message.contains("chmod 600") == true && !"\(error)".contains("s3cret")
        }
        chmod(path, 0o600)
        #expect(try voice.credentials(deviceID: 1001, stateDirectory: directory) == SIPDigestCredentials(username: "1001", password: "s3cret"))
        var named = voice
        named.sipUser = "home"
        #expect(try named.credentials(deviceID: 1001, stateDirectory: directory)?.username == "home")
    }
}
