import NIOCore

/// Where a SIP message goes or came from: a transport and a resolved address. For a response, and for the
/// requests of a dialog, it is the *flow* the dialog's messages came on (the source address and port, the
/// same TCP connection): symmetric, as RFC 3581 and RFC 5626 make user agents behind NATs and on loopback
/// work, rather than a fresh resolution of the Contact.
public struct SIPTarget: Hashable, Sendable, CustomStringConvertible {
    public enum Transport: String, Hashable, Sendable {
        case udp = "UDP"
        case tcp = "TCP"
    }

    public var transport: Transport
    public var address: SocketAddress

    public init(_ transport: Transport, _ address: SocketAddress) {
        self.transport = transport
        self.address = address
    }

    var isReliable: Bool { transport == .tcp }
    public var description: String { "\(transport.rawValue.lowercased()):\(address.ipAddress ?? "?"):\(address.port ?? 0)" }
}

/// A call of a `SIPUserAgent`, incoming or outgoing, for as long as it lasts.
public struct SIPCallHandle: Hashable, Sendable, CustomStringConvertible {
    public let value: UInt64
    public var description: String { "sip-call-\(value)" }
}

/// The user agent core of RFC 3261 (§8, §10, §12–§15) over the transaction layer (§17): registration
/// with its refresh, calls in both directions with their dialogs, CANCEL, BYE, digest challenges, the
/// retransmission of a 2xx until its ACK (§13.3.1.4), and the answers a user agent owes to everything
/// else (405, 481, 486, 488, 503). What to say in a call (SDP) is the application's: the core carries
/// bodies and tells the application what happened (`Event`).
///
/// Pure: no clock, no sockets. The shell (`SIPEndpoint`) parses what arrives, passes it in with its
/// source, sends what comes out and runs the timers. Call tags, branches and Call-IDs are random.
public struct SIPUserAgent: Sendable {
    public struct Configuration: Sendable {
        /// Our address of record (From of our requests, To of a REGISTER): `sip:centre@10.0.0.1`.
        public var identity: SIPURI
        public var displayName: String?
        /// What goes into our Via sent-by and Contact: the address and port peers reach us at.
        public var contactHost: String
        public var contactPort: Int
        /// Digest credentials for challenges from a registrar, a proxy or a peer.
        public var credentials: SIPDigestCredentials?
        /// Register `identity` here (the registrar's URI, `sip:pbx.example`) when set; `registrarTarget` is
        /// where the REGISTER is sent.
        public var registrar: SIPURI?
        public var registrarTarget: SIPTarget?
        public var registerExpires: Int
        /// Send every request out of a dialog here (a proxy such as Kamailio) instead of to the callee's address.
        public var outboundProxy: SIPTarget?
        public var userAgent: String
        /// Calls held at once; another INVITE is answered 486 Busy Here.
        public var maximumCalls: Int
        public var timers: SIPTimerValues

        public init(
            identity: SIPURI, displayName: String? = nil, contactHost: String, contactPort: Int,
            credentials: SIPDigestCredentials? = nil, registrar: SIPURI? = nil, registrarTarget: SIPTarget? = nil,
            registerExpires: Int = 600, outboundProxy: SIPTarget? = nil, userAgent: String = "devicesim",
            maximumCalls: Int = 1_000, timers: SIPTimerValues = SIPTimerValues()
        ) {
            self.identity = identity
            self.displayName = displayName
            self.contactHost = contactHost
            self.contactPort = contactPort
            self.credentials = credentials
            self.registrar = registrar
            self.registrarTarget = registrarTarget
            self.registerExpires = registerExpires
            self.outboundProxy = outboundProxy
            self.userAgent = userAgent
            self.maximumCalls = maximumCalls
            self.timers = timers
        }
    }

    /// Why a call ended, in the application's terms.
    public enum CallEnd: Hashable, Sendable {
        /// This side hung up (BYE sent, or CANCEL before the answer, or the incoming call refused).
        case hungUp
        /// The peer hung up (its BYE), or its caller cancelled before we answered.
        case byPeer
        case cancelledByCaller
        /// The callee refused the call with this final response (busy, declined, not found, …).
        case refused(statusCode: Int, reason: String)
        /// No final response within timer B (or the transport failed).
        case timedOut
        /// Our 2xx was never acknowledged (64 × T1): the call was ended with a BYE.
        case noAcknowledgement
        /// The peer's description could not be used (the application said so).
        case failed(String)
    }

    public enum Event: Hashable, Sendable {
        /// A new call: answer with `ring`, `answer` or `reject`. `offer` is its SDP body (empty: no offer).
        case incomingCall(SIPCallHandle, from: SIPNameAddress, offer: [UInt8])
        /// A provisional response to our INVITE (180 Ringing, 183 Session Progress).
        case progress(SIPCallHandle, statusCode: Int)
        /// Our INVITE was answered (2xx, ACK sent): `answer` is the callee's SDP.
        case answered(SIPCallHandle, answer: [UInt8])
        /// The caller acknowledged our 2xx: the call is confirmed.
        case confirmed(SIPCallHandle)
        case ended(SIPCallHandle, CallEnd)
        /// The registrar accepted our binding for `expires` seconds.
        case registered(expires: Int)
        case registrationFailed(String)
        /// Something from outside was refused (a malformed message, a request we could not take), for logs
        /// and counters.
        case refused(String)
    }

    public enum Timer: Hashable, Sendable {
        case transaction(SIPTransactionKey, SIPTimer)
        /// Retransmit our 2xx to an INVITE until its ACK (§13.3.1.4).
        case successRetransmission(SIPCallHandle)
        case registerRefresh
    }

    public enum Action: Hashable, Sendable {
        case send(SIPMessage, to: SIPTarget)
        case schedule(Timer, after: Duration)
        case cancel(Timer)
        case event(Event)
    }

    enum Direction: Hashable, Sendable { case outgoing, incoming }

    enum CallPhase: Hashable, Sendable {
        /// Our INVITE is out (`transaction`): no final response yet.
        case inviting(transaction: SIPTransactionKey, invite: SIPRequest, challenged: Bool, provisional: Bool, cancelWanted: Bool)
        /// A peer's INVITE waits for the application (`transaction` is its server transaction).
        case offered(transaction: SIPTransactionKey, invite: SIPRequest)
        /// We answered 2xx and retransmit it until the ACK.
        case answered(ok: SIPResponse, interval: Duration, elapsed: Duration)
        case confirmed
    }

    struct Call: Hashable, Sendable {
        var handle: SIPCallHandle
        var direction: Direction
        var callID: String
        var localTag: String
        var remoteTag: String?
        /// Our From (outgoing) or To (incoming), and theirs, as name-addresses without tags.
        var local: SIPNameAddress
        var remote: SIPNameAddress
        var localSequence: UInt32
        var remoteTarget: SIPURI
        /// Record-Route of the dialog, in the order our requests carry them as Route.
        var routeSet: [String]
        var flow: SIPTarget
        var phase: CallPhase
        /// Our last ACK for a 2xx, sent again when the 2xx is retransmitted.
        var lastACK: SIPRequest?
    }

    struct DialogKey: Hashable, Sendable {
        var callID: String
        var localTag: String
    }

    public let configuration: Configuration
    private(set) var transactions: SIPTransactionLayer
    /// Where each transaction's messages go: a client's request target, a server's request source.
    private var targets: [SIPTransactionKey: SIPTarget] = [:]
    private var calls: [SIPCallHandle: Call] = [:]
    private var dialogs: [DialogKey: SIPCallHandle] = [:]
    /// A client transaction's call, so that its responses reach it.
    private var callOfTransaction: [SIPTransactionKey: SIPCallHandle] = [:]
    private var nextHandle: UInt64 = 1
    /// Our requests still waiting for their final response (a BYE, a CANCEL, a REGISTER, an INVITE).
    private var unanswered: Set<SIPTransactionKey> = []
    private var registration = Registration()

    struct Registration: Hashable, Sendable {
        var callID = SIPUserAgent.randomToken(16)
        var sequence: UInt32 = 0
        var transaction: SIPTransactionKey?
        var challenged = false
        var expires: Int = 0
        var active = false
    }

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.transactions = SIPTransactionLayer(timers: configuration.timers)
    }

    /// Calls in progress.
    public var callCount: Int { calls.count }
    /// Where a call's messages go and come from: for an incoming call, the address its INVITE came from.
    public func flow(of call: SIPCallHandle) -> SIPTarget? { calls[call]?.flow }

    /// Whether a request of ours still waits for its final response: a shell that stops waits for this to be
    /// false (a little while), so that the answer to our last BYE is read rather than cut by the close.
    public var awaitsAnswers: Bool { !unanswered.isEmpty }

    // MARK: Messages from the network

    /// A message the shell parsed, from `source`.
    public mutating func received(_ message: SIPMessage, from source: SIPTarget) -> [Action] {
        switch message {
        case .request(var request):
            Self.stampReceived(&request, from: source)
            return process(transactions.receive(.request(request), reliable: source.isReliable), source: source)
        case .response(let response):
            return process(transactions.receive(.response(response), reliable: source.isReliable), source: source)
        }
    }

    /// Bytes from `source` that are not a SIP message: a 400 when enough of a request could be read (§8.2).
    public mutating func malformed(_ bytes: [UInt8], error: SIPParseError, from source: SIPTarget) -> [Action] {
        var actions: [Action] = [.event(.refused("malformed SIP from \(source): \(error)"))]
        if let reply = SIPResponse.badRequest(answering: bytes, because: error) {
            actions.append(.send(.response(reply), to: source))
        }
        return actions
    }

    public mutating func timerFired(_ timer: Timer) -> [Action] {
        switch timer {
        case .transaction(let key, let kind):
            return process(transactions.timerFired(key: key, timer: kind), source: nil)
        case .successRetransmission(let handle):
            return retransmitSuccess(handle)
        case .registerRefresh:
            return register()
        }
    }

    /// The shell could not send to `target` (TCP connection refused or lost): its transactions fail.
    public mutating func transportFailed(_ target: SIPTarget) -> [Action] {
        let keys = targets.filter { $0.value == target }.map(\.key)
        return keys.flatMap { process(transactions.transportFailed(key: $0), source: nil) }
    }

    // MARK: Registration

    /// Sends (or refreshes) our REGISTER; nothing without a registrar.
    public mutating func register() -> [Action] {
        registration.challenged = false
        return sendRegister(expires: configuration.registerExpires, authorization: nil)
    }

    /// Removes our binding (Expires: 0), e.g. on shutdown.
    public mutating func unregister() -> [Action] {
        guard registration.active else { return [] }
        registration.active = false
        return [.cancel(.registerRefresh)] + sendRegister(expires: 0, authorization: nil)
    }

    private mutating func sendRegister(expires: Int, authorization: (name: String, value: String)?) -> [Action] {
        guard let registrar = configuration.registrar, let target = configuration.registrarTarget else { return [] }
        registration.sequence += 1
        var headers = SIPHeaders()
        headers.add("Via", via(target: target).description)
        headers.add("Max-Forwards", "70")
        let aor = SIPNameAddress(displayName: nil, uri: configuration.identity, parameters: [])
        var from = aor
        from.tag = Self.randomToken(8)
        headers.add("From", from.description)
        headers.add("To", aor.description)
        headers.add("Call-ID", registration.callID)
        headers.add("CSeq", "\(registration.sequence) REGISTER")
        headers.add("Contact", "<\(contactURI(target.transport).description)>;expires=\(expires)")
        headers.add("Expires", "\(expires)")
        if let authorization { headers.add(authorization.name, authorization.value) }
        headers.add("User-Agent", configuration.userAgent)
        let request = SIPRequest(method: .register, uri: registrar, headers: headers)
        return startClient(request, to: target) { key, this in this.registration.transaction = key }
    }

    private mutating func registerResponse(_ response: SIPResponse, key: SIPTransactionKey) -> [Action] {
        guard registration.transaction == key else { return [] }
        if response.isProvisional { return [] }
        registration.transaction = nil
        switch response.statusCode {
        case 200 ..< 300:
            let granted = Self.grantedExpires(response, fallback: configuration.registerExpires)
            registration.expires = granted
            if granted == 0 { return [.event(.registered(expires: 0))] }
            registration.active = true
            // Refresh at half the binding's life (at least a second): a lost REGISTER has time for timer F.
            return [.event(.registered(expires: granted)), .schedule(.registerRefresh, after: .seconds(max(1, granted / 2)))]
        case 401, 407:
            guard !registration.challenged, let answer = authorization(for: response, method: .register, uri: configuration.registrar?.description ?? "")
            else { return registrationFailed("the registrar refused our credentials (\(response.statusCode) \(response.reasonPhrase))") }
            registration.challenged = true
            return sendRegister(expires: configuration.registerExpires, authorization: answer)
        case 423:
            let minimum = Int(response.headers["Min-Expires"] ?? "") ?? 0
            guard minimum > configuration.registerExpires, !registration.challenged else { return registrationFailed("423 Interval Too Brief") }
            return registrationFailed("the registrar wants bindings of at least \(minimum) s (423); set a longer expiry")
        default:
            return registrationFailed("\(response.statusCode) \(response.reasonPhrase)")
        }
    }

    private mutating func registrationFailed(_ why: String) -> [Action] {
        registration.active = false
        // Try again in 30 s: a registrar that was down comes back, and an operator phone pool must not stay empty.
        return [.event(.registrationFailed(why)), .schedule(.registerRefresh, after: .seconds(30))]
    }

    static func grantedExpires(_ response: SIPResponse, fallback: Int) -> Int {
        let contacts = (try? response.headers.contacts()) ?? []
        for contact in contacts {
            if let value = contact.parameters[parameter: "expires"] ?? nil, let seconds = Int(value) { return seconds }
        }
        return Int(response.headers["Expires"] ?? "") ?? fallback
    }

    // MARK: Calls we place

    /// Places a call to `uri` with `offer` (an SDP body), sent to `target` (or the outbound proxy).
    public mutating func call(to uri: SIPURI, target: SIPTarget, offer: [UInt8]) -> (SIPCallHandle, [Action]) {
        let handle = newHandle()
        let flow = configuration.outboundProxy ?? target
        let local = SIPNameAddress(displayName: configuration.displayName, uri: configuration.identity, parameters: [])
        let remote = SIPNameAddress(displayName: nil, uri: uri, parameters: [])
        var call = Call(
            handle: handle, direction: .outgoing, callID: Self.randomToken(20), localTag: Self.randomToken(10), remoteTag: nil,
            local: local, remote: remote, localSequence: 1, remoteTarget: uri, routeSet: [], flow: flow,
            phase: .confirmed, lastACK: nil)
        let invite = makeInvite(call, offer: offer, authorization: nil)
        call.phase = .inviting(transaction: placeholderKey, invite: invite, challenged: false, provisional: false, cancelWanted: false)
        calls[handle] = call
        dialogs[DialogKey(callID: call.callID, localTag: call.localTag)] = handle
        return (handle, sendInvite(invite, handle: handle))
    }

    private func makeInvite(_ call: Call, offer: [UInt8], authorization: (name: String, value: String)?) -> SIPRequest {
        var headers = SIPHeaders()
        headers.add("Via", via(target: call.flow).description)
        headers.add("Max-Forwards", "70")
        var from = call.local
        from.tag = call.localTag
        headers.add("From", from.description)
        headers.add("To", call.remote.description)
        headers.add("Call-ID", call.callID)
        headers.add("CSeq", "\(call.localSequence) INVITE")
        headers.add("Contact", "<\(contactURI(call.flow.transport).description)>")
        headers.add("Allow", Self.allowed)
        if let authorization { headers.add(authorization.name, authorization.value) }
        headers.add("User-Agent", configuration.userAgent)
        if !offer.isEmpty { headers.add("Content-Type", "application/sdp") }
        return SIPRequest(method: .invite, uri: call.remoteTarget, headers: headers, body: offer)
    }

    private mutating func sendInvite(_ invite: SIPRequest, handle: SIPCallHandle) -> [Action] {
        guard let flow = calls[handle]?.flow else { return [] }
        return startClient(invite, to: flow) { key, this in
            this.callOfTransaction[key] = handle
            if case .inviting(_, let invite, let challenged, let provisional, let cancelWanted)? = this.calls[handle]?.phase {
                this.calls[handle]?.phase = .inviting(transaction: key, invite: invite, challenged: challenged, provisional: provisional, cancelWanted: cancelWanted)
            }
        }
    }

    private mutating func inviteResponse(_ response: SIPResponse, handle: SIPCallHandle) -> [Action] {
        guard var call = calls[handle], case .inviting(let key, let invite, let challenged, _, let cancelWanted) = call.phase else {
            // The 2xx again, from the transaction's Accepted state (RFC 6026): our ACK was lost.
            return resendACK(for: response)
        }
        switch response.statusCode {
        case 100:
            return []
        case 101 ..< 200:
            call.phase = .inviting(transaction: key, invite: invite, challenged: challenged, provisional: true, cancelWanted: cancelWanted)
            calls[handle] = call
            // A CANCEL waits for a provisional response (§9.1): now it may go.
            return cancelWanted ? sendCancel(invite, flow: call.flow) : [.event(.progress(handle, statusCode: response.statusCode))]
        case 200 ..< 300:
            let remoteTag = (try? response.headers.to())?.tag
            call.remoteTag = remoteTag
            if let contact = (try? response.headers.contacts())?.first { call.remoteTarget = contact.uri }
            call.routeSet = Array(response.headers.all("Record-Route").flatMap { SIPHeaderValues.split($0) }.reversed())
            call.phase = .confirmed
            let ack = makeACK(call, sequence: call.localSequence)
            call.lastACK = ack
            calls[handle] = call
            var actions: [Action] = [.send(.request(ack), to: call.flow)]
            if cancelWanted {
                // The callee answered as we hung up: the call exists now, so it ends with a BYE (§9.1).
                actions += hangUp(handle)
            } else {
                actions.append(.event(.answered(handle, answer: response.body)))
            }
            return actions
        case 401 where !challenged && !cancelWanted, 407 where !challenged && !cancelWanted:
            guard let answer = authorization(for: response, method: .invite, uri: invite.uri.description) else {
                return endCall(handle, .refused(statusCode: response.statusCode, reason: response.reasonPhrase))
            }
            call.localSequence += 1
            let again = makeInvite(call, offer: invite.body, authorization: answer)
            call.phase = .inviting(transaction: key, invite: again, challenged: true, provisional: false, cancelWanted: false)
            calls[handle] = call
            return sendInvite(again, handle: handle)
        default:
            if cancelWanted && response.statusCode == 487 { return endCall(handle, .hungUp) }
            return endCall(handle, .refused(statusCode: response.statusCode, reason: response.reasonPhrase))
        }
    }

    /// The ACK for a 2xx (§13.2.2.4): its own transaction-less request to the remote target, through the route set.
    private func makeACK(_ call: Call, sequence: UInt32) -> SIPRequest {
        var headers = SIPHeaders()
        headers.add("Via", via(target: call.flow).description)
        headers.add("Max-Forwards", "70")
        appendDialogIdentity(call, to: &headers)
        headers.add("CSeq", "\(sequence) ACK")
        for route in call.routeSet { headers.add("Route", route) }
        return SIPRequest(method: .ack, uri: call.remoteTarget, headers: headers)
    }

    /// CANCEL (§9.1): the INVITE's Request-URI, Call-ID, From, To, CSeq number and top Via (same branch).
    private mutating func sendCancel(_ invite: SIPRequest, flow: SIPTarget) -> [Action] {
        var headers = SIPHeaders()
        if let via = invite.headers.all("Via").first { headers.add("Via", SIPHeaderValues.split(via).first ?? via) }
        headers.add("Max-Forwards", "70")
        for name in ["From", "To", "Call-ID"] { if let value = invite.headers[name] { headers.add(name, value) } }
        let sequence = (try? invite.headers.cseq().sequence) ?? 1
        headers.add("CSeq", "\(sequence) CANCEL")
        for route in invite.headers.all("Route") { headers.add("Route", route) }
        return startClient(SIPRequest(method: .cancel, uri: invite.uri, headers: headers), to: flow) { _, _ in }
    }

    // MARK: Calls we take

    private mutating func incomingInvite(_ request: SIPRequest, key: SIPTransactionKey, source: SIPTarget) -> [Action] {
        let to = try? request.headers.to()
        if let tag = to?.tag, let callID = try? request.headers.callID() {
            // A re-INVITE within a dialog: keep the call as it is and answer with our last description.
            guard let handle = dialogs[DialogKey(callID: callID, localTag: tag)], let call = calls[handle] else {
                return respond(key, request, 481)
            }
            return reInvite(request, key: key, call: call)
        }
        guard calls.count < configuration.maximumCalls else { return respond(key, request, 486) }
        guard let callID = try? request.headers.callID(), let from = try? request.headers.from(), let to,
            let sequence = try? request.headers.cseq().sequence
        else { return respond(key, request, 400) }
        if !request.body.isEmpty, request.headers.contentType != "application/sdp" { return respond(key, request, 415) }
        let handle = newHandle()
        var remote = from
        remote.tag = nil
        var local = to
        local.tag = nil
        let call = Call(
            handle: handle, direction: .incoming, callID: callID, localTag: Self.randomToken(10), remoteTag: from.tag,
            local: local, remote: remote, localSequence: sequence &+ 1_000,  // our own CSeq space (§12.1.1)
            remoteTarget: (try? request.headers.contacts())?.first?.uri ?? from.uri,
            routeSet: request.headers.all("Record-Route").flatMap { SIPHeaderValues.split($0) }, flow: source,
            phase: .offered(transaction: key, invite: request), lastACK: nil)
        calls[handle] = call
        dialogs[DialogKey(callID: callID, localTag: call.localTag)] = handle
        return [.event(.incomingCall(handle, from: from, offer: request.body))]
    }

    private mutating func reInvite(_ request: SIPRequest, key: SIPTransactionKey, call: Call) -> [Action] {
        return respond(key, request, 488, reason: "Not Acceptable Here (a call's media does not change)", toTag: call.localTag)
    }

    /// Sends 180 Ringing for an incoming call.
    public mutating func ring(_ handle: SIPCallHandle) -> [Action] {
        guard let call = calls[handle], case .offered(let key, let invite) = call.phase else { return [] }
        var ringing = SIPResponse(replyingTo: invite, statusCode: 180, toTag: call.localTag)
        ringing.headers.add("Contact", "<\(contactURI(call.flow.transport).description)>")
        return process(transactions.respond(to: key, ringing), source: nil)
    }

    /// Answers an incoming call with `answer` (SDP): 200 OK, retransmitted until the caller's ACK.
    public mutating func answer(_ handle: SIPCallHandle, with answer: [UInt8]) -> [Action] {
        guard var call = calls[handle], case .offered(let key, let invite) = call.phase else { return [] }
        var ok = SIPResponse(replyingTo: invite, statusCode: 200, toTag: call.localTag)
        for route in invite.headers.all("Record-Route") { ok.headers.add("Record-Route", route) }
        ok.headers.add("Contact", "<\(contactURI(call.flow.transport).description)>")
        ok.headers.add("Allow", Self.allowed)
        ok.headers.add("User-Agent", configuration.userAgent)
        ok.headers.add("Content-Type", "application/sdp")
        ok.body = answer
        let interval = configuration.timers.t1
        call.phase = .answered(ok: ok, interval: interval, elapsed: .zero)
        calls[handle] = call
        var actions = process(transactions.respond(to: key, ok), source: nil)
        // Over TCP the transport is reliable, but the 2xx still waits for its ACK (64 × T1) before the call is given up.
        actions.append(.schedule(.successRetransmission(handle), after: interval))
        return actions
    }

    /// Refuses an incoming call that is not answered yet (486 Busy Here, 488, 603 Decline, …).
    public mutating func reject(_ handle: SIPCallHandle, statusCode: Int, reason: String? = nil) -> [Action] {
        guard let call = calls[handle], case .offered(let key, let invite) = call.phase else { return [] }
        let actions = respond(key, invite, statusCode, reason: reason, toTag: call.localTag)
        return actions + endCall(handle, .hungUp)
    }

    private mutating func retransmitSuccess(_ handle: SIPCallHandle) -> [Action] {
        guard var call = calls[handle], case .answered(let ok, let interval, let before) = call.phase else { return [] }
        let elapsed = before + interval
        if elapsed >= configuration.timers.t1 * 64 {
            // No ACK: the caller is gone; end the dialog with a BYE (§13.3.1.4).
            call.phase = .confirmed
            calls[handle] = call
            return sendBye(handle) + endCall(handle, .noAcknowledgement)
        }
        let next = call.flow.isReliable ? interval : min(interval * 2, configuration.timers.t2)
        call.phase = .answered(ok: ok, interval: next, elapsed: elapsed)
        calls[handle] = call
        var actions: [Action] = call.flow.isReliable ? [] : [.send(.response(ok), to: call.flow)]
        actions.append(.schedule(.successRetransmission(handle), after: next))
        return actions
    }

    // MARK: Ending calls

    /// Hangs up `handle`: CANCEL before the answer, BYE after it, a 480 to a call not answered yet.
    public mutating func hangUp(_ handle: SIPCallHandle) -> [Action] {
        guard let call = calls[handle] else { return [] }
        switch call.phase {
        case .inviting(let key, let invite, let challenged, let provisional, _):
            calls[handle]?.phase = .inviting(transaction: key, invite: invite, challenged: challenged, provisional: provisional, cancelWanted: true)
            // Without a provisional response yet, the CANCEL waits for one (§9.1); the INVITE's timer B ends it otherwise.
            return provisional ? sendCancel(invite, flow: call.flow) : []
        case .offered:
            return reject(handle, statusCode: 480, reason: "Temporarily Unavailable")
        case .answered, .confirmed:
            return sendBye(handle) + endCall(handle, .hungUp)
        }
    }

    private mutating func sendBye(_ handle: SIPCallHandle) -> [Action] {
        guard var call = calls[handle] else { return [] }
        call.localSequence += 1
        calls[handle] = call
        var headers = SIPHeaders()
        headers.add("Via", via(target: call.flow).description)
        headers.add("Max-Forwards", "70")
        appendDialogIdentity(call, to: &headers)
        headers.add("CSeq", "\(call.localSequence) BYE")
        for route in call.routeSet { headers.add("Route", route) }
        headers.add("User-Agent", configuration.userAgent)
        return startClient(SIPRequest(method: .bye, uri: call.remoteTarget, headers: headers), to: call.flow) { _, _ in }
    }

    private mutating func endCall(_ handle: SIPCallHandle, _ reason: CallEnd) -> [Action] {
        guard let call = calls.removeValue(forKey: handle) else { return [] }
        dialogs[DialogKey(callID: call.callID, localTag: call.localTag)] = nil
        for (key, owner) in callOfTransaction where owner == handle { callOfTransaction[key] = nil }
        var actions: [Action] = [.event(.ended(handle, reason))]
        if case .answered = call.phase { actions.insert(.cancel(.successRetransmission(handle)), at: 0) }
        return actions
    }

    // MARK: Requests within or outside dialogs

    private mutating func request(_ request: SIPRequest, key: SIPTransactionKey, source: SIPTarget) -> [Action] {
        switch request.method {
        case .invite:
            return incomingInvite(request, key: key, source: source)
        case .bye:
            guard let handle = dialog(of: request) else { return respond(key, request, 481) }
            var actions = respond(key, request, 200)
            actions += endCall(handle, .byPeer)
            return actions
        case .options:
            var ok = SIPResponse(replyingTo: request, statusCode: 200)
            ok.headers.add("Allow", Self.allowed)
            ok.headers.add("Accept", "application/sdp")
            return process(transactions.respond(to: key, ok), source: nil)
        case .ack, .cancel:
            return []  // handled by the layer's own reports
        default:
            var refusal = SIPResponse(replyingTo: request, statusCode: 405)
            refusal.headers.add("Allow", Self.allowed)
            return process(transactions.respond(to: key, refusal), source: nil)
        }
    }

    private func dialog(of request: SIPRequest) -> SIPCallHandle? {
        guard let callID = try? request.headers.callID(), let tag = (try? request.headers.to())?.tag else { return nil }
        return dialogs[DialogKey(callID: callID, localTag: tag)]
    }

    private mutating func ackForSuccess(_ ack: SIPRequest) -> [Action] {
        guard let handle = dialog(of: ack), var call = calls[handle], case .answered = call.phase else { return [] }
        call.phase = .confirmed
        calls[handle] = call
        return [.cancel(.successRetransmission(handle)), .event(.confirmed(handle))]
    }

    private mutating func cancelReceived(_ cancel: SIPRequest, key: SIPTransactionKey, inviteKey: SIPTransactionKey?) -> [Action] {
        // §9.2: no INVITE transaction → 481; one already answered finally → 200 and nothing else.
        guard let inviteKey else { return respond(key, cancel, 481) }
        guard let handle = calls.values.first(where: {
            if case .offered(let key, _) = $0.phase { return key == inviteKey }
            return false
        })?.handle, let call = calls[handle], case .offered(_, let invite) = call.phase
        else { return respond(key, cancel, 200) }
        var actions = respond(key, cancel, 200)
        actions += respond(inviteKey, invite, 487, toTag: call.localTag)
        actions += endCall(handle, .cancelledByCaller)
        return actions
    }

    // MARK: The transaction layer

    private mutating func startClient(
        _ request: SIPRequest, to target: SIPTarget, _ started: (SIPTransactionKey, inout SIPUserAgent) -> Void
    ) -> [Action] {
        let key: SIPTransactionKey
        do { key = try SIPTransactionKey.client(for: request) } catch {
            return [.event(.refused("cannot send \(request.method): \(error)"))]
        }
        // Known before the first send, so that the transaction's first message finds its target.
        targets[key] = target
        unanswered.insert(key)
        started(key, &self)
        do {
            return process(try transactions.sendRequest(request, reliable: target.isReliable), source: nil)
        } catch {
            targets[key] = nil
            return [.event(.refused("cannot send \(request.method): \(error)"))]
        }
    }

    private mutating func respond(
        _ key: SIPTransactionKey, _ request: SIPRequest, _ statusCode: Int, reason: String? = nil, toTag: String? = nil
    ) -> [Action] {
        let tag = (try? request.headers.to())?.tag == nil ? (toTag ?? Self.randomToken(10)) : nil
        let response = SIPResponse(replyingTo: request, statusCode: statusCode, reasonPhrase: reason, toTag: tag)
        return process(transactions.respond(to: key, response), source: nil)
    }

    /// Carries out what the transaction layer asked for, and hands what it delivered to the core.
    private mutating func process(_ layerActions: [SIPTransactionLayer.LayerAction], source: SIPTarget?) -> [Action] {
        var actions: [Action] = []
        for layerAction in layerActions {
            switch layerAction {
            case .client(let key, let action):
                actions += clientAction(action, key: key)
            case .server(let key, let action):
                actions += serverAction(action, key: key, source: source)
            case .request(let key, let request):
                guard let source else { continue }
                targets[key] = source
                actions += self.request(request, key: key, source: source)
            case .ackForSuccess(let ack):
                actions += ackForSuccess(ack)
            case .cancel(let key, let inviteKey, let cancel):
                guard let source else { continue }
                targets[key] = source
                actions += cancelReceived(cancel, key: key, inviteKey: inviteKey)
            case .strayResponse(let response):
                actions += resendACK(for: response)
            case .overloaded(let request):
                if let source, request.method != .ack {
                    actions.append(.send(.response(SIPResponse(replyingTo: request, statusCode: 503)), to: source))
                }
                actions.append(.event(.refused("too many transactions: \(request.method) answered 503")))
            case .invalid(let message, let error):
                // A request whose transaction cannot be told (no RFC 3261 branch): 400, as for a malformed one.
                if case .request(let request) = message, request.method != .ack, let source {
                    var refusal = SIPResponse(replyingTo: request, statusCode: 400)
                    refusal.headers.add("Warning", "399 devicesim \"\(Self.quoteless(error.description))\"")
                    actions.append(.send(.response(refusal), to: source))
                }
                actions.append(.event(.refused("\(error)")))
            }
        }
        return actions
    }

    private mutating func clientAction(_ action: SIPClientTransaction.Action, key: SIPTransactionKey) -> [Action] {
        switch action {
        case .send(let message):
            guard let target = targets[key] else { return [] }
            return [.send(message, to: target)]
        case .schedule(let timer, let after):
            return [.schedule(.transaction(key, timer), after: after)]
        case .cancel(let timer):
            return [.cancel(.transaction(key, timer))]
        case .deliver(let response):
            if !response.isProvisional { unanswered.remove(key) }
            return clientResponse(response, key: key)
        case .timedOut, .transportError:
            unanswered.remove(key)
            return clientFailed(key)
        case .terminated:
            unanswered.remove(key)
            targets[key] = nil
            callOfTransaction[key] = nil
            return []
        }
    }

    private mutating func serverAction(_ action: SIPServerTransaction.Action, key: SIPTransactionKey, source: SIPTarget?) -> [Action] {
        switch action {
        case .send(let message):
            guard let target = targets[key] ?? source else { return [] }
            return [.send(message, to: target)]
        case .schedule(let timer, let after):
            return [.schedule(.transaction(key, timer), after: after)]
        case .cancel(let timer):
            return [.cancel(.transaction(key, timer))]
        case .terminated:
            targets[key] = nil
            return []
        case .deliver, .ackReceived, .timedOut, .transportError:
            // Requests come up as the layer's own reports; a non-2xx's ACK, or its absence, needs nothing more.
            return []
        }
    }

    private mutating func clientResponse(_ response: SIPResponse, key: SIPTransactionKey) -> [Action] {
        if registration.transaction == key { return registerResponse(response, key: key) }
        guard let handle = callOfTransaction[key] else { return [] }  // BYE, CANCEL: nothing more to do
        return inviteResponse(response, handle: handle)
    }

    private mutating func clientFailed(_ key: SIPTransactionKey) -> [Action] {
        if registration.transaction == key {
            registration.transaction = nil
            return registrationFailed("the registrar did not answer")
        }
        guard let handle = callOfTransaction[key], let call = calls[handle], case .inviting = call.phase else { return [] }
        return endCall(handle, .timedOut)
    }

    /// A 2xx to an INVITE of a call already answered: the callee did not hear our ACK (§13.2.2.4).
    private func resendACK(for response: SIPResponse) -> [Action] {
        guard (200 ..< 300).contains(response.statusCode), (try? response.headers.cseq().method) == .invite,
            let callID = try? response.headers.callID(), let tag = (try? response.headers.from())?.tag,
            let handle = dialogs[DialogKey(callID: callID, localTag: tag)], let ack = calls[handle]?.lastACK,
            let flow = calls[handle]?.flow
        else { return [] }
        return [.send(.request(ack), to: flow)]
    }

    // MARK: Helpers

    static let allowed = "INVITE, ACK, CANCEL, BYE, OPTIONS"

    /// Text for a quoted header value: without quotes and backslashes, at most 100 characters.
    static func quoteless(_ text: String) -> String {
        String(text.filter { $0 != "\"" && $0 != "\\" && !$0.isNewline }.prefix(100))
    }

    private mutating func newHandle() -> SIPCallHandle {
        defer { nextHandle += 1 }
        return SIPCallHandle(value: nextHandle)
    }

    /// A transaction key for a call whose INVITE has not been handed to the layer yet.
    private var placeholderKey: SIPTransactionKey { SIPTransactionKey(branch: "", method: .invite, side: .client) }

    private func via(target: SIPTarget) -> SIPVia {
        var via = SIPVia(transport: target.transport.rawValue, host: configuration.contactHost, port: configuration.contactPort, branch: "z9hG4bK" + Self.randomToken(16))
        via.parameters.append(SIPParameter("rport"))
        return via
    }

    private func contactURI(_ transport: SIPTarget.Transport) -> SIPURI {
        var uri = SIPURI(scheme: "sip", user: configuration.identity.user, host: configuration.contactHost, port: configuration.contactPort)
        if transport == .tcp { uri.parameters.append(SIPParameter("transport", "tcp")) }
        return uri
    }

    /// From, To and Call-ID of a request we send within a dialog: From is ours whoever placed the call (§12.2.1.1).
    private func appendDialogIdentity(_ call: Call, to headers: inout SIPHeaders) {
        var mine = call.local
        mine.tag = call.localTag
        var theirs = call.remote
        theirs.tag = call.remoteTag
        headers.add("From", mine.description)
        headers.add("To", theirs.description)
        headers.add("Call-ID", call.callID)
    }

    private func authorization(for challenge: SIPResponse, method: SIPMethod, uri: String) -> (name: String, value: String)? {
        guard let credentials = configuration.credentials else { return nil }
        let proxy = challenge.statusCode == 407
        let values = challenge.headers.all(proxy ? "Proxy-Authenticate" : "WWW-Authenticate")
        guard let chosen = SIPDigestChallenge.best(of: values) else { return nil }
        let value = credentials.authorization(for: chosen, method: method, uri: uri, cnonce: Self.randomToken(16), nonceCount: 1)
        return (proxy ? "Proxy-Authorization" : "Authorization", value)
    }

    /// §18.2.1: the top Via of a request records where it really came from (`received`, and `rport` per
    /// RFC 3581), so that its responses carry the flow.
    static func stampReceived(_ request: inout SIPRequest, from source: SIPTarget) {
        guard let first = request.headers.all("Via").first, let topText = SIPHeaderValues.split(first).first,
            var top = try? SIPVia(parsing: topText)
        else { return }
        if let address = source.address.ipAddress, address != top.host { top.received = address }
        if top.rport != nil, let port = source.address.port { top.rport = .some(port) }
        var headers = SIPHeaders()
        var replaced = false
        for field in request.headers {
            if !replaced, SIPHeaders.canonical(field.name) == "via" {
                let rest = SIPHeaderValues.split(field.value).dropFirst()
                headers.add(field.name, ([top.description] + rest).joined(separator: ", "))
                replaced = true
            } else {
                headers.add(field.name, field.value)
            }
        }
        request.headers = headers
    }

    static func randomToken(_ length: Int) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789".utf8)
        return String(decoding: (0 ..< length).map { _ in alphabet[Int.random(in: 0 ..< alphabet.count)] }, as: UTF8.self)
    }
}
