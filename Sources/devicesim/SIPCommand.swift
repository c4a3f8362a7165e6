import ArgumentParser
import DeviceKit
import Foundation
import NIOCore
import NIOPosix

/// `devicesim sip`: a SIP phone on the command line (protocol.md §8), to check that a PBX, a softphone or an
/// operator's desk phone sets up calls and carries voice with us, before a centre depends on it.
struct SIPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sip",
        abstract: "Place or take SIP calls with voice (PCMU over RTP or SRTP) and report set-up time, loss and jitter.",
        discussion: """
            `devicesim sip call sip:desk1@192.0.2.10` calls a phone, talks (a synthetic voice) for a few \
            seconds and hangs up; `devicesim sip answer --port 5060` takes calls. Each call's report gives the \
            set-up time (INVITE to 200 OK), the RTP packets sent and received, the loss and the jitter \
            (RFC 3550), and how it ended. Each command's --help lists its exit status: 1 when a call failed or \
            no voice came back.
            """,
        subcommands: [SIPCallCommand.self, SIPAnswerCommand.self]
    )
}

/// The options both `sip` commands share: where to listen, credentials, registration, SRTP.
struct SIPPhoneOptions: ParsableArguments {
    @Option(help: "The address to listen on (and to put in Via, Contact and SDP).")
    var bind = "127.0.0.1"

    @Option(help: "Our SIP address of record: the From of our calls, and what we register.")
    var identity = "sip:devicesim@127.0.0.1"

    @Option(help: "SRTP: off (plain RTP only), optional (SRTP when the peer offers or accepts it), required.")
    var srtp = "optional"

    @Option(help: "The user name for digest challenges (401/407), with --password-file.")
    var user: String?

    @Option(help: "A file holding the password for digest challenges (never on the command line).")
    var passwordFile: String?

    @Option(help: "Register our identity with this registrar first (a URI, e.g. sip:127.0.0.1:5070).")
    var register: String?

    @Option(help: "Send our requests through this proxy, HOST:PORT (e.g. a Kamailio).")
    var proxy: String?

    @Option(help: "The transport towards the peer, the registrar and the proxy: udp or tcp.")
    var transport = "udp"

    @Flag(help: "One JSON object a line for each call's report, instead of sentences.")
    var json = false

    @Flag(help: "A measurement mode: write the send time into our voice and report the one-way delay of the peer's stamped voice (both on this machine; the stamps click).")
    var stampVoice = false

    func validate() throws {
        guard ["off", "optional", "required"].contains(srtp) else { throw ValidationError("--srtp must be off, optional or required, not \(srtp)") }
        guard ["udp", "tcp"].contains(transport) else { throw ValidationError("--transport must be udp or tcp, not \(transport)") }
        guard (user == nil) == (passwordFile == nil) else { throw ValidationError("--user and --password-file go together") }
        _ = try SIPCommandSupport.uri(identity, what: "--identity")
    }

    var policy: SRTPPolicy {
        switch srtp {
        case "off": .off
        case "required": .required
        default: .optional
        }
    }

    var targetTransport: SIPTarget.Transport { transport == "tcp" ? .tcp : .udp }

    func userAgent() async throws -> SIPUserAgent.Configuration {
        var credentials: SIPDigestCredentials?
        if let user, let passwordFile {
            let password: String
            do { password = try String(contentsOfFile: passwordFile, encoding: .utf8) } catch {
                throw CommandFailure(.noInput, "cannot read the password file \(passwordFile): \(error.localizedDescription)")
            }
            credentials = SIPDigestCredentials(username: user, password: password.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let registrar = try register.map { try SIPCommandSupport.uri($0, what: "--register") }
        let registrarTarget = try await registrar.map { try SIPCommandSupport.target(for: $0, transport: targetTransport) }
        let proxyTarget = try await proxy.map { try SIPCommandSupport.target(hostPort: $0, transport: targetTransport, what: "--proxy") }
        return SIPUserAgent.Configuration(
            identity: try SIPCommandSupport.uri(identity, what: "--identity"), contactHost: bind, contactPort: 0,
            credentials: credentials, registrar: registrar, registrarTarget: registrarTarget, outboundProxy: proxyTarget,
            userAgent: "devicesim/\(BuildStamp.version)")
    }
}

enum SIPCommandSupport {
    static func uri(_ text: String, what: String) throws -> SIPURI {
        do { return try SIPURI(parsing: text) } catch {
            throw ValidationError("\(what) \"\(text)\" is not a SIP URI (sip:user@host[:port]): \(error)")
        }
    }

    /// Where a URI's requests go: its host and port (5060 by default), over its `transport` parameter or `transport`.
    static func target(for uri: SIPURI, transport: SIPTarget.Transport) throws -> SIPTarget {
        let chosen: SIPTarget.Transport = uri.transport.map { $0 == "tcp" ? .tcp : .udp } ?? transport
        let host = uri.host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return SIPTarget(chosen, try resolve(host: host, port: uri.port ?? 5060))
    }

    static func target(hostPort: String, transport: SIPTarget.Transport, what: String) throws -> SIPTarget {
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]), (1...65_535).contains(port) else {
            throw ValidationError("\(what) must be HOST:PORT, not \(hostPort)")
        }
        let host = String(hostPort[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return SIPTarget(transport, try resolve(host: host, port: port))
    }

    static func resolve(host: String, port: Int) throws -> SocketAddress {
        do { return try SocketAddress.makeAddressResolvingHost(host, port: port) } catch {
            throw CommandFailure(.noHost, "cannot resolve \(host): \(error)")
        }
    }

    /// One call's report, as a sentence or a JSON object.
    static func describe(_ report: SIPPhone.CallReport, json: Bool) -> String {
        let stats = report.statistics
        let lost = stats.map { max(0, Int($0.audio.cumulativeLost)) }
        if json {
            var object: [String: Any] = [
                "call": report.call.value, "direction": report.direction.rawValue, "end": endName(report.end), "srtp": report.srtp,
            ]
            if let setup = report.setupTime { object["setup_ms"] = milliseconds(setup) }
            if let media = report.mediaDuration { object["media_s"] = milliseconds(media) / 1000 }
            if let stats {
                object["sent"] = stats.audioPacketsSent
                object["received"] = stats.audio.received
                object["expected"] = stats.audio.expected
                object["lost"] = lost ?? 0
                object["loss_ratio"] = stats.audio.lossRatio
                object["jitter_ms"] = stats.audio.jitterMilliseconds
                object["refused"] = stats.malformed + stats.authenticationFailures + stats.replayed + stats.unknownSource
                if let delay = stats.stampedDelay {
                    object["delay_packets"] = delay.packets
                    object["delay_p50_ms"] = delay.p50Milliseconds
                    object["delay_p99_ms"] = delay.p99Milliseconds
                    object["delay_max_ms"] = delay.maxMilliseconds
                }
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
        var line = "call \(report.call.value) (\(report.direction.rawValue)): \(endText(report.end))"
        if let setup = report.setupTime { line += String(format: "; set up in %.1f ms", milliseconds(setup)) }
        if let stats, let media = report.mediaDuration {
            line += String(
                format: "; %.1f s of voice, %u packets sent, %u received, %d lost (%.2f %%), jitter %.2f ms, %@",
                milliseconds(media) / 1000, stats.audioPacketsSent, stats.audio.received, lost ?? 0, stats.audio.lossRatio * 100,
                stats.audio.jitterMilliseconds, report.srtp ? "SRTP" : "plain RTP")
            if let delay = stats.stampedDelay {
                line += String(
                    format: "; the peer's stamped voice took %.2f ms (p50), %.2f ms (p99), %.2f ms at most", delay.p50Milliseconds,
                    delay.p99Milliseconds, delay.maxMilliseconds)
            }
        }
        return line
    }

    static func failed(_ report: SIPPhone.CallReport) -> Bool {
        switch report.end {
        case .hungUp, .byPeer: report.statistics.map { $0.audio.received == 0 } ?? true
        default: true
        }
    }

    static func endName(_ end: SIPUserAgent.CallEnd) -> String {
        switch end {
        case .hungUp: "hungUp"
        case .byPeer: "byPeer"
        case .cancelledByCaller: "cancelled"
        case .refused(let code, _): "refused \(code)"
        case .timedOut: "timedOut"
        case .noAcknowledgement: "noAck"
        case .failed: "failed"
        }
    }

    static func endText(_ end: SIPUserAgent.CallEnd) -> String {
        switch end {
        case .hungUp: "we hung up"
        case .byPeer: "the peer hung up"
        case .cancelledByCaller: "the caller cancelled before we answered"
        case .refused(let code, let reason): "refused: \(code) \(reason)"
        case .timedOut: "no answer (the INVITE timed out or the transport failed)"
        case .noAcknowledgement: "our 200 OK was never acknowledged; ended with BYE"
        case .failed(let why): "failed: \(why)"
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }
}

/// `devicesim sip call URI`.
struct SIPCallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call a SIP URI, talk for --seconds, hang up, and report the call.",
        discussion: ExitStatus.help([.verdict, .noHost, .unavailable], [
            .verdict: "the call failed, was refused, or no voice came back",
            .unavailable: "the local port is in use",
        ]))

    @Argument(help: "Whom to call: sip:user@host[:port][;transport=tcp].")
    var uri: String

    @Option(help: "Seconds of voice before we hang up.")
    var seconds = 5.0

    @Option(help: "Hang up after this many seconds if nobody answers (sends CANCEL).")
    var ringTimeout = 30.0

    @OptionGroup var phone: SIPPhoneOptions

    func validate() throws {
        guard seconds > 0, seconds <= 86_400 else { throw ValidationError("--seconds must be more than 0 and at most 86400") }
        guard ringTimeout > 0, ringTimeout <= 600 else { throw ValidationError("--ring-timeout must be more than 0 and at most 600") }
        _ = try SIPCommandSupport.uri(uri, what: "the URI")
    }

    func run() async throws {
        let callee = try SIPCommandSupport.uri(uri, what: "the URI")
        let target = try SIPCommandSupport.target(for: callee, transport: phone.targetTransport)
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (reports, continuation) = AsyncStream.makeStream(of: SIPPhone.CallReport.self)
        let json = phone.json
        let sip = try await SIPPhoneCommandRunner.start(phone, on: loop) { event in
            switch event {
            case .ended(let report): continuation.yield(report)
            case .answered(let call, let setup):
                if !json { say(String(format: "call \(call.value) answered in %.1f ms", SIPCommandSupport.milliseconds(setup))) }
            case .refused(let why), .registrationFailed(let why):
                if !json { say("note: \(why)") }
            case .registered(let expires):
                if !json { say("registered for \(expires) s") }
            default: break
            }
        }
        let seconds = seconds
        let ringTimeout = ringTimeout
        let handle = try await loop.flatSubmit { sip.call(to: callee, target: target) }.get()
        // Hang up after --seconds of voice, or after --ring-timeout without an answer.
        let answeredWatch = loop.scheduleTask(in: .milliseconds(Int64(ringTimeout * 1000))) {
            if sip.statistics(handle) == nil { sip.hangUp(handle) }
        }
        let hangUp = Task {
            while try await loop.submit({ sip.statistics(handle) == nil && sip.callCount > 0 }).get() {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
            try await loop.submit { sip.hangUp(handle) }.get()
        }
        var result: SIPPhone.CallReport?
        for await report in reports where report.call == handle {
            result = report
            break
        }
        hangUp.cancel()
        answeredWatch.cancel()
        try await loop.flatSubmit { sip.stop(grace: .seconds(2)) }.get()
        guard let result else { throw CommandFailure(.software, "the call ended without a report") }
        say(SIPCommandSupport.describe(result, json: json))
        if SIPCommandSupport.failed(result) { throw ExitCode(ExitStatus.verdict.rawValue) }
    }
}

/// `devicesim sip answer`.
struct SIPAnswerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "answer",
        abstract: "Take SIP calls (answer, talk, report each call when it ends).",
        discussion: ExitStatus.help([.verdict, .unavailable], [
            .verdict: "a call failed, or no voice came from the caller",
            .unavailable: "the port is in use",
        ]))

    @Option(help: "The port for SIP over UDP and TCP.")
    var port = 5060

    @Option(help: "Stop after this many calls have ended (0: until --seconds or Ctrl-C).")
    var calls = 0

    @Option(help: "Stop after this many seconds.")
    var seconds: Double?

    @Option(help: "Ring (180) this many milliseconds before answering.")
    var ringMs = 0

    @Option(help: "Refuse every call with this status code instead (486 busy, 603 decline, ...).")
    var reject: Int?

    @OptionGroup var phone: SIPPhoneOptions

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0 to 65535, not \(port)") }
        guard calls >= 0 else { throw ValidationError("--calls must be 0 or more") }
        guard (0...600_000).contains(ringMs) else { throw ValidationError("--ring-ms must be 0 to 600000") }
        if let reject, !(300...699).contains(reject) { throw ValidationError("--reject must be a final status code, 300 to 699, not \(reject)") }
        try checkListeningSeconds(seconds)
    }

    func run() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let (reports, continuation) = AsyncStream.makeStream(of: SIPPhone.CallReport.self)
        let json = phone.json
        var options = SIPPhone.Options(srtp: phone.policy, answerAfter: .milliseconds(ringMs), rejectWith: reject)
        options.cname = "devicesim@\(phone.bind)"
        let sip = try await SIPPhoneCommandRunner.start(phone, port: port, options: options, on: loop) { event in
            switch event {
            case .ended(let report): continuation.yield(report)
            case .incoming(let call, let from): if !json { say("call \(call.value) from \(from)") }
            case .refused(let why), .registrationFailed(let why): if !json { say("note: \(why)") }
            case .registered(let expires): if !json { say("registered for \(expires) s") }
            default: break
            }
        }
        let port = try await loop.submit { sip.endpoint.port }.get()
        if !json { say("listening for SIP on \(phone.bind):\(port) (UDP and TCP)") }
        let wanted = calls
        let failures = FailureCount()
        try await untilInterrupted(seconds: seconds) {
            var ended = 0
            for await report in reports {
                say(SIPCommandSupport.describe(report, json: json))
                if SIPCommandSupport.failed(report) && reject == nil { failures.add() }
                ended += 1
                if wanted > 0 && ended >= wanted { return }
            }
        }
        try await loop.flatSubmit { sip.stop(grace: .seconds(2)) }.get()
        if failures.value > 0 { throw ExitCode(ExitStatus.verdict.rawValue) }
    }
}

private final class FailureCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

enum SIPPhoneCommandRunner {
    static func start(
        _ options: SIPPhoneOptions, port: Int = 0, options phoneOptions: SIPPhone.Options? = nil, on loop: any EventLoop,
        onEvent: @escaping @Sendable (SIPPhone.Event) -> Void
    ) async throws -> SIPPhone {
        let userAgent = try await options.userAgent()
        var phoneOptions = phoneOptions ?? SIPPhone.Options(srtp: options.policy)
        phoneOptions.srtp = options.policy
        phoneOptions.media.stampVoice = options.stampVoice
        let phone: SIPPhone
        do {
            phone = try await SIPPhone.start(
                SIPEndpoint.Configuration(host: options.bind, port: port), userAgent: userAgent, options: phoneOptions, on: loop, onEvent: onEvent)
        } catch {
            throw CommandFailure(.unavailable, "cannot listen for SIP on \(options.bind):\(port): \(error)")
        }
        if userAgent.registrar != nil { try await loop.submit { phone.endpoint.register() }.get() }
        return phone
    }
}
