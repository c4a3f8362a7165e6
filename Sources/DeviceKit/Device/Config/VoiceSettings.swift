import Foundation
import NIOCore

/// `[voice]` in device.toml: for a centre whose voice is SIP, the device places the voice call itself once its
/// alarm is acknowledged, and answers the centre's calls back (docs/sip.md, "A home that calls out over SIP").
///
/// ```toml
/// [voice]
/// sip = "sip:arc@arc.example:5060;transport=tcp"   # whom to call; its host is the only one whose calls are answered
/// sip_port = 5060                                   # local SIP port, UDP and TCP (0: any free one)
/// srtp = "optional"                                 # optional | required | off
/// sip_user = "1001"                                 # digest user name; the device id by default
/// ```
/// The digest password is read from `<state_dir>/sip-password` (one line, mode 0600); without that file the
/// device calls without credentials, and a 401/407 ends the call with a log that says so.
public struct VoiceSettings: Hashable, Sendable {
    public enum SRTP: String, Hashable, Sendable, CaseIterable {
        case optional, required, off

        public var policy: SRTPPolicy {
            switch self {
            case .optional: .optional
            case .required: .required
            case .off: .off
            }
        }
    }

    /// The centre's SIP URI, as written (`sip:arc@HOST[:PORT][;transport=tcp]`).
    public var sip: SIPURI
    public var sipPort: UInt16
    public var srtp: SRTP
    /// The digest user name; `nil`: the device id.
    public var sipUser: String?

    public init(sip: SIPURI, sipPort: UInt16 = 5060, srtp: SRTP = .optional, sipUser: String? = nil) {
        self.sip = sip
        self.sipPort = sipPort
        self.srtp = srtp
        self.sipUser = sipUser
    }

    static let keys = ["sip", "sip_port", "srtp", "sip_user"]

    /// The centre's SIP URI from `text` (`key` names it in the errors: `voice.sip`, `--sip`).
    public static func centre(_ text: String, key: String) throws(DeviceConfigError) -> SIPURI {
        let uri: SIPURI
        do { uri = try SIPURI(parsing: text) } catch {
            throw DeviceConfigError(key, "\"\(text)\" is not a SIP URI (\(error)); write e.g. sip:arc@arc.example:5060")
        }
        guard uri.transport == nil || uri.transport == "udp" || uri.transport == "tcp" else {
            throw DeviceConfigError(key, "transport=\(uri.transport ?? "") is not udp or tcp; write ;transport=tcp or leave it out (udp)")
        }
        return uri
    }

    /// The password file's name in the state directory.
    public static let passwordFileName = "sip-password"

    static func read(_ table: inout TableReader) throws(DeviceConfigError) -> VoiceSettings {
        guard let text = try table.string("sip") else {
            throw DeviceConfigError("voice.sip", "missing; write the centre's SIP address, e.g. sip = \"sip:arc@arc.example\"")
        }
        let uri = try centre(text, key: "voice.sip")
        let port = try table.integer("sip_port", in: 0...65_535, example: "sip_port = 5060") ?? 5060
        let srtp = try table.choice("srtp", SRTP.self) ?? .optional
        let user = try table.string("sip_user")
        if let user, user.isEmpty || user.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") }) {
            throw DeviceConfigError("voice.sip_user", "\"\(user)\" is empty or holds spaces, quotes or control characters; write the user name the centre gave, or leave it out (the device id)")
        }
        try table.finish(known: keys)
        return VoiceSettings(sip: uri, sipPort: UInt16(port), srtp: srtp, sipUser: user)
    }

    var rendered: [String] {
        var lines = ["", "[voice]", "sip = \(TOMLText.quote(sip.description))", "sip_port = \(sipPort)", "srtp = \(TOMLText.quote(srtp.rawValue))"]
        if let sipUser { lines.append("sip_user = \(TOMLText.quote(sipUser))") }
        return lines
    }

    /// The digest credentials: `user` (or `deviceID`) with the password in `<stateDirectory>/sip-password`;
    /// `nil` when there is no such file. A file that others can read, or that cannot be read, is an error.
    public func credentials(deviceID: UInt32, stateDirectory: String) throws(DeviceConfigError) -> SIPDigestCredentials? {
        let path = stateDirectory + "/" + Self.passwordFileName
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw DeviceConfigError("voice", "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & 0o077 == 0 else {
            throw DeviceConfigError(
                "voice", "\(path) is readable by others (mode 0\(String(info.st_mode & 0o777, radix: 8))); it holds the SIP password: chmod 600 \(path)")
        }
        let bytes: [UInt8]?
        do { bytes = try DurableFile(path: path).read() } catch {
            throw DeviceConfigError("voice", "cannot read \(path): \(error)")
        }
        let password = String(decoding: bytes ?? [], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !password.isEmpty else {
            throw DeviceConfigError("voice", "\(path) is empty; write the SIP password on one line, or remove the file to call without credentials")
        }
        return SIPDigestCredentials(username: sipUser ?? String(deviceID), password: password)
    }
}

extension VoiceSettings {
    /// The device's SIP line: the centre's URI resolved (its `transport` parameter, UDP otherwise), our identity
    /// `sip:<user>@<our address towards the centre>`, the password from the state directory.
    public func line(deviceID: UInt32, stateDirectory: String) throws(DeviceConfigError) -> DeviceSIPSettings {
        let host = sip.host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let address: SocketAddress
        do { address = try SocketAddress.makeAddressResolvingHost(host, port: sip.port ?? 5060) } catch {
            throw DeviceConfigError("voice.sip", "cannot resolve \(host): \(error); check the name or write the centre's address")
        }
        let transport: SIPTarget.Transport = sip.transport?.lowercased() == "tcp" ? .tcp : .udp
        let local = SIPEndpoint.localAddress(towards: address) ?? (address.protocol == .inet6 ? "::1" : "127.0.0.1")
        let user = sipUser ?? String(deviceID)
        let identity: SIPURI
        do { identity = try SIPURI(parsing: "sip:\(user)@\(local.contains(":") ? "[\(local)]" : local)") } catch {
            throw DeviceConfigError("voice.sip_user", "\"\(user)\" cannot be the user part of a SIP URI: \(error)")
        }
        return DeviceSIPSettings(
            uri: sip, target: SIPTarget(transport, address), identity: identity, host: local, port: Int(sipPort), srtp: srtp.policy,
            credentials: try credentials(deviceID: deviceID, stateDirectory: stateDirectory))
    }

}
