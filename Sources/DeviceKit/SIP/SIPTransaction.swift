/// The SIP transaction machines (RFC 3261 §17, with the Accepted states of RFC 6026): what makes a request
/// and its responses survive UDP — retransmissions, absorbing duplicates, the ACK of a non-2xx final
/// response — so that the user agent above sees each request once and each response once.
///
/// Two types, each for INVITE and non-INVITE alike (the method of the request picks the diagram):
/// `SIPClientTransaction` (Figures 5 and 6) and `SIPServerTransaction` (Figures 7 and 8). Both are pure: no
/// clock, no socket. Timers are actions with durations (`.schedule(.a, after: .milliseconds(500))`); the
/// shell reports `timerFired(.a)`. A `.schedule` replaces a pending timer of the same name, and `.terminated`
/// ends all of them. A timer that fires late, in a state where it no longer means anything (the shell had
/// not yet run the `.cancel`), is ignored. Over a reliable transport (TCP) nothing is retransmitted and the
/// timers RFC 3261 sets to zero there (D, I, J, K) are not scheduled: the transaction ends at once.
///
/// Timers (RFC 3261 Table 4, RFC 6026 §8):
/// ```
///  A  INVITE retransmit (UDP)            T1, doubling without cap      client, Calling
///  B  INVITE timeout                     64·T1                          client, Calling
///  D  wait for final-response copies     32 s (UDP), 0 (TCP)            client INVITE, Completed
///  E  non-INVITE retransmit (UDP)        T1, doubling to T2; T2 once Proceeding
///  F  non-INVITE timeout                 64·T1                          client, Trying/Proceeding
///  G  final-response retransmit (UDP)    T1, doubling to T2             server INVITE, Completed
///  H  wait for ACK                       64·T1                          server INVITE, Completed
///  I  wait for ACK copies                T4 (UDP), 0 (TCP)              server INVITE, Confirmed
///  J  wait for request copies            64·T1 (UDP), 0 (TCP)           server non-INVITE, Completed
///  K  wait for response copies           T4 (UDP), 0 (TCP)              client non-INVITE, Completed
///  L  wait for INVITE copies after 2xx   64·T1                          server INVITE, Accepted
///  M  wait for 2xx copies                64·T1                          client INVITE, Accepted
/// ```
public enum SIPTimer: Hashable, Sendable {
    case a, b, d, e, f, g, h, i, j, k, l, m
}

/// The base timer values of RFC 3261 §17.1.1.1 (T1, T2, T4) and Timer D; overridable for tests and for
/// networks with a known round trip.
public struct SIPTimerValues: Hashable, Sendable {
    /// The round-trip estimate: 500 ms.
    public var t1: Duration
    /// The longest retransmission interval for non-INVITE requests and INVITE responses: 4 s.
    public var t2: Duration
    /// How long a message may stay in the network: 5 s.
    public var t4: Duration
    /// How long an INVITE client waits for copies of a final response over UDP: at least 32 s.
    public var d: Duration

    public init(t1: Duration = .milliseconds(500), t2: Duration = .seconds(4), t4: Duration = .seconds(5), d: Duration = .seconds(32)) {
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.d = d
    }

    /// 64·T1: timers B, F, H, J, L, M.
    public var timeout: Duration { t1 * 64 }
}

/// Why a message cannot be matched to a transaction (RFC 3261 §17.1.3, §17.2.3). A request that gets one is
/// answered 400 Bad Request by the user agent (an ACK is dropped); a response is dropped.
public struct SIPTransactionError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// What identifies a transaction: the branch of the top Via, the method (an ACK's is INVITE's: it belongs to
/// the INVITE's transaction; a CANCEL has its own) and, for a server transaction, the Via's sent-by, since
/// two clients could draw the same branch. Only RFC 3261 branches (starting `z9hG4bK`) are matched; the
/// RFC 2543 rules are not implemented.
public struct SIPTransactionKey: Hashable, Sendable, CustomStringConvertible {
    public enum Side: Hashable, Sendable { case client, server }

    /// The magic cookie every RFC 3261 branch starts with (§8.1.1.7).
    public static let magicCookie = "z9hG4bK"

    public var branch: String
    public var method: SIPMethod
    /// The top Via's host and port, lower case (server side only; empty for a client transaction).
    public var sentBy: String
    public var side: Side

    public init(branch: String, method: SIPMethod, sentBy: String = "", side: Side) {
        self.branch = branch
        self.method = method
        self.sentBy = sentBy
        self.side = side
    }

    /// The client transaction a response belongs to: its top Via's branch and its CSeq method (§17.1.3).
    public static func client(for response: SIPResponse) throws(SIPTransactionError) -> SIPTransactionKey {
        let via = try TransactionVia(response.headers)
        let (_, method) = try transactionCSeq(response.headers)
        return SIPTransactionKey(branch: via.branch, method: method, side: .client)
    }

    /// The client transaction this side's request opens: its top Via's branch and its method.
    public static func client(for request: SIPRequest) throws(SIPTransactionError) -> SIPTransactionKey {
        SIPTransactionKey(branch: try TransactionVia(request.headers).branch, method: request.method, side: .client)
    }

    /// The server transaction a request belongs to (§17.2.3): top Via branch and sent-by, and the method,
    /// with an ACK matching its INVITE. The CSeq method must be the request's.
    public static func server(for request: SIPRequest) throws(SIPTransactionError) -> SIPTransactionKey {
        let via = try TransactionVia(request.headers)
        let (_, method) = try transactionCSeq(request.headers)
        guard method == request.method else {
            throw SIPTransactionError("the CSeq method \(method) is not the request's \(request.method) (RFC 3261 §8.1.1.5)")
        }
        return SIPTransactionKey(branch: via.branch, method: request.method == .ack ? .invite : request.method, sentBy: via.sentBy, side: .server)
    }

    public var description: String { "\(side) \(method) \(branch)" + (sentBy.isEmpty ? "" : " from \(sentBy)") }
}

// MARK: - The client transaction

/// A request this side sent, until its final response is in (RFC 3261 §17.1, RFC 6026 §8.4).
///
/// ```
///  INVITE (Figure 5 + RFC 6026):
///    Calling ─1xx─► Proceeding ─300-699─► Completed (send ACK) ─Timer D─► Terminated
///    Calling ─300-699─► Completed          Calling/Proceeding ─2xx─► Accepted ─Timer M─► Terminated
///    Calling ─Timer B─► Terminated (timedOut)
///  non-INVITE (Figure 6):
///    Trying ─1xx─► Proceeding ─200-699─► Completed ─Timer K─► Terminated
///    Trying/Proceeding ─Timer F─► Terminated (timedOut)
/// ```
/// Every provisional response goes to the TU, and the final one once; for INVITE every 2xx goes up (each
/// fork's, and copies in Accepted), since the TU ACKs 2xx itself.
public struct SIPClientTransaction: Sendable {
    public enum State: Hashable, Sendable {
        /// INVITE, request sent, nothing heard.
        case calling
        /// non-INVITE, request sent, nothing heard.
        case trying
        case proceeding
        case completed
        /// INVITE, a 2xx passed up (RFC 6026).
        case accepted
        case terminated
    }

    public enum Action: Hashable, Sendable {
        /// Send the request, a copy of it, or the ACK of a non-2xx final response.
        case send(SIPMessage)
        case schedule(SIPTimer, after: Duration)
        case cancel(SIPTimer)
        /// A response for the TU.
        case deliver(SIPResponse)
        /// Timer B or F: no final response; the TU acts as on 408 Request Timeout.
        case timedOut
        /// The transport could not send; the TU acts as on 503 (RFC 3261 §8.1.3.1).
        case transportError
        /// Forget the transaction and all its timers.
        case terminated
    }

    public let request: SIPRequest
    public let reliable: Bool
    public let timers: SIPTimerValues
    public private(set) var state: State
    private var started = false
    /// The interval of the next Timer A or E.
    private var retransmitInterval: Duration
    /// The ACK sent for the non-2xx final response, sent again for each copy of it.
    private var ack: SIPRequest?

    public init(request: SIPRequest, reliable: Bool, timers: SIPTimerValues = SIPTimerValues()) {
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = request.method == .invite ? .calling : .trying
        self.retransmitInterval = timers.t1
    }

    private var isInvite: Bool { request.method == .invite }
    public var isTerminated: Bool { state == .terminated }

    /// Sends the request and starts the retransmission (UDP) and timeout timers.
    public mutating func start() -> [Action] {
        guard !started else { return impossibleTransition("SIPClientTransaction.start twice: the layer starts a transaction once") }
        started = true
        var actions: [Action] = [.send(.request(request))]
        if !reliable { actions.append(.schedule(isInvite ? .a : .e, after: retransmitInterval)) }
        actions.append(.schedule(isInvite ? .b : .f, after: timers.timeout))
        return actions
    }

    public mutating func received(_ response: SIPResponse) -> [Action] {
        switch state {
        case .calling:
            if response.isProvisional {
                state = .proceeding
                return stopTimers([.a, .b]) + [.deliver(response)]
            }
            return final(response, stopping: [.a, .b])
        case .trying:
            if response.isProvisional {
                state = .proceeding
                return [.deliver(response)]
            }
            return final(response, stopping: [.e, .f])
        case .proceeding:
            if response.isProvisional { return [.deliver(response)] }
            return final(response, stopping: isInvite ? [] : [.e, .f])
        case .completed:
            // Copies of the final response: an INVITE's is ACKed again, a non-INVITE's absorbed; neither goes up.
            guard isInvite, !response.isProvisional, let ack else { return [] }
            return [.send(.request(ack))]
        case .accepted:
            // RFC 6026 §8.4: further 2xx (copies, or other forks) go to the TU, which ACKs each; others are dropped.
            return (200..<300).contains(response.statusCode) ? [.deliver(response)] : []
        case .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: SIPTimer) -> [Action] {
        switch (state, timer) {
        case (.calling, .a):
            retransmitInterval = retransmitInterval * 2
            return [.send(.request(request)), .schedule(.a, after: retransmitInterval)]
        case (.trying, .e):
            retransmitInterval = min(retransmitInterval * 2, timers.t2)
            return [.send(.request(request)), .schedule(.e, after: retransmitInterval)]
        case (.proceeding, .e) where !isInvite:
            return [.send(.request(request)), .schedule(.e, after: timers.t2)]
        // RFC 3261 §17.1.1.2: an INVITE times out on Timer B in Calling only (in Proceeding the TU decides);
        // §17.1.2.2: a non-INVITE on Timer F in Trying or Proceeding. Calling is INVITE's, Trying the other's.
        case (.calling, .b), (.trying, .f):
            state = .terminated
            return [.timedOut, .terminated]
        case (.proceeding, .f) where !isInvite:
            state = .terminated
            return [.timedOut, .terminated]
        case (.completed, .d) where isInvite, (.completed, .k) where !isInvite, (.accepted, .m):
            state = .terminated
            return [.terminated]
        case (.calling, _), (.trying, _), (.proceeding, _), (.completed, _), (.accepted, _), (.terminated, _):
            return []
        }
    }

    /// The transport could not send the request, a copy, or the ACK.
    public mutating func transportFailed() -> [Action] {
        switch state {
        case .calling, .trying, .proceeding, .completed, .accepted:
            state = .terminated
            return [.transportError, .terminated]
        case .terminated:
            return []
        }
    }

    private func stopTimers(_ names: [SIPTimer]) -> [Action] {
        names.filter { reliable ? $0 != .a && $0 != .e : true }.map { .cancel($0) }
    }

    private mutating func final(_ response: SIPResponse, stopping: [SIPTimer]) -> [Action] {
        var actions = stopTimers(stopping)
        if isInvite, (200..<300).contains(response.statusCode) {
            state = .accepted
            return actions + [.deliver(response), .schedule(.m, after: timers.timeout)]
        }
        state = .completed
        if isInvite {
            let ack = Self.ack(for: request, response: response)
            self.ack = ack
            actions.append(.send(.request(ack)))
        }
        actions.append(.deliver(response))
        if reliable {
            state = .terminated
            actions.append(.terminated)
        } else {
            actions.append(.schedule(isInvite ? .d : .k, after: isInvite ? timers.d : timers.t4))
        }
        return actions
    }

    /// The ACK of a non-2xx final response to an INVITE (RFC 3261 §17.1.1.3): the INVITE's Request-URI,
    /// Call-ID, From, CSeq number and only top Via; the response's To (with its tag); the INVITE's Route
    /// header fields; Max-Forwards 70; no body.
    static func ack(for invite: SIPRequest, response: SIPResponse) -> SIPRequest {
        var headers = SIPHeaders()
        if let via = invite.headers.all("Via").first.flatMap({ SIPHeaderValues.split($0).first }) { headers.add("Via", via) }
        for route in invite.headers.all("Route") { headers.add("Route", route) }
        headers.add("Max-Forwards", "70")
        if let from = invite.headers["From"] { headers.add("From", from) }
        if let to = response.headers["To"] { headers.add("To", to) }
        if let callID = invite.headers["Call-ID"] { headers.add("Call-ID", callID) }
        if let (number, _) = try? transactionCSeq(invite.headers) { headers.add("CSeq", "\(number) ACK") }
        headers.add("Content-Length", "0")
        return SIPRequest(method: .ack, uri: invite.uri, headers: headers)
    }
}

// MARK: - The server transaction

/// A request a peer sent, until this side's final response has surely arrived (RFC 3261 §17.2, RFC 6026 §8.7).
///
/// ```
///  INVITE (Figure 7 + RFC 6026):   (100 Trying sent at once)
///    Proceeding ─TU 1xx─► Proceeding   ─TU 300-699─► Completed ─ACK─► Confirmed ─Timer I─► Terminated
///    Proceeding ─TU 2xx─► Accepted ─Timer L─► Terminated           Completed ─Timer H─► Terminated (timedOut)
///  non-INVITE (Figure 8):
///    Trying ─TU 1xx─► Proceeding ─TU 200-699─► Completed ─Timer J─► Terminated
/// ```
/// The request goes to the TU once; copies of it are answered with the last response sent (or absorbed
/// before there is one). Retransmitting a 2xx to INVITE until its ACK arrives is the TU's job.
public struct SIPServerTransaction: Sendable {
    public enum State: Hashable, Sendable {
        /// non-INVITE, no response yet.
        case trying
        case proceeding
        case completed
        /// INVITE, the ACK of the non-2xx final response is in.
        case confirmed
        /// INVITE, a 2xx sent (RFC 6026).
        case accepted
        case terminated
    }

    public enum Action: Hashable, Sendable {
        /// Send a response (100 Trying, the TU's, or a copy).
        case send(SIPMessage)
        case schedule(SIPTimer, after: Duration)
        case cancel(SIPTimer)
        /// The request for the TU (only the first copy), or in Accepted an ACK that matched the INVITE.
        case deliver(SIPRequest)
        /// The ACK of the non-2xx final response came.
        case ackReceived
        /// Timer H: the non-2xx final response was never ACKed.
        case timedOut
        /// The transport could not send a response.
        case transportError
        /// Forget the transaction and all its timers.
        case terminated
    }

    public let request: SIPRequest
    public let reliable: Bool
    public let timers: SIPTimerValues
    public private(set) var state: State
    private var started = false
    /// The last response sent, repeated for each copy of the request.
    private var lastResponse: SIPResponse?
    /// The interval of the next Timer G.
    private var retransmitInterval: Duration

    public init(request: SIPRequest, reliable: Bool, timers: SIPTimerValues = SIPTimerValues()) {
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.state = request.method == .invite ? .proceeding : .trying
        self.retransmitInterval = timers.t1
    }

    private var isInvite: Bool { request.method == .invite }
    public var isTerminated: Bool { state == .terminated }

    /// Passes the request up; an INVITE is answered 100 Trying at once (§17.2.1), so the client stops
    /// retransmitting while the TU decides.
    public mutating func start() -> [Action] {
        guard !started else { return impossibleTransition("SIPServerTransaction.start twice: the layer starts a transaction once") }
        started = true
        guard isInvite else { return [.deliver(request)] }
        let trying = SIPResponse(replyingTo: request, statusCode: 100)
        lastResponse = trying
        return [.send(.response(trying)), .deliver(request)]
    }

    /// A response from the TU.
    public mutating func respond(_ response: SIPResponse) -> [Action] {
        switch state {
        case .trying, .proceeding:
            lastResponse = response
            if response.isProvisional {
                state = .proceeding
                return [.send(.response(response))]
            }
            if isInvite, (200..<300).contains(response.statusCode) {
                state = .accepted
                return [.send(.response(response)), .schedule(.l, after: timers.timeout)]
            }
            state = .completed
            if isInvite {
                return [.send(.response(response))] + (reliable ? [] : [.schedule(.g, after: retransmitInterval)])
                    + [.schedule(.h, after: timers.timeout)]
            }
            if reliable {
                state = .terminated
                return [.send(.response(response)), .terminated]
            }
            return [.send(.response(response)), .schedule(.j, after: timers.timeout)]
        case .accepted:
            // RFC 6026 §8.7: the TU's copies of its 2xx go out through the transaction.
            guard (200..<300).contains(response.statusCode) else {
                return impossibleTransition("SIPServerTransaction.respond(\(response.statusCode)) after a 2xx: the UA sends one final answer")
            }
            return [.send(.response(response))]
        case .completed, .confirmed:
            return impossibleTransition("SIPServerTransaction.respond(\(response.statusCode)) after the final response: the UA sends one")
        case .terminated:
            // The transaction ended (transport failure) before the TU heard of it: nothing to send with.
            return []
        }
    }

    /// A copy of the request, or (INVITE) its ACK.
    public mutating func received(request copy: SIPRequest) -> [Action] {
        if copy.method == .ack {
            switch state {
            case .completed:
                state = .confirmed
                let stop: [Action] = (reliable ? [] : [.cancel(.g)]) + [.cancel(.h), .ackReceived]
                if reliable {
                    state = .terminated
                    return stop + [.terminated]
                }
                return stop + [.schedule(.i, after: timers.t4)]
            case .accepted:
                // An ACK for the 2xx that reused the INVITE's branch: it is the TU's (RFC 6026 §8.7).
                return [.deliver(copy)]
            case .trying, .proceeding, .confirmed, .terminated:
                return []
            }
        }
        switch state {
        case .proceeding, .completed:
            return lastResponse.map { [.send(.response($0))] } ?? []
        case .trying, .confirmed, .accepted, .terminated:
            return []
        }
    }

    public mutating func timerFired(_ timer: SIPTimer) -> [Action] {
        switch (state, timer) {
        case (.completed, .g) where isInvite:
            guard let lastResponse else { return [] }
            retransmitInterval = min(retransmitInterval * 2, timers.t2)
            return [.send(.response(lastResponse)), .schedule(.g, after: retransmitInterval)]
        case (.completed, .h) where isInvite:
            state = .terminated
            return [.timedOut, .terminated]
        // RFC 3261 §17.2.1 Timer I (Confirmed, INVITE's), RFC 6026 Timer L (Accepted, INVITE's); §17.2.2 Timer J
        // (Completed, a non-INVITE's: an INVITE's Completed ends on Timer H above).
        case (.confirmed, .i), (.accepted, .l):
            state = .terminated
            return [.terminated]
        case (.completed, .j) where !isInvite:
            state = .terminated
            return [.terminated]
        case (.trying, _), (.proceeding, _), (.completed, _), (.confirmed, _), (.accepted, _), (.terminated, _):
            return []
        }
    }

    /// The transport could not send a response.
    public mutating func transportFailed() -> [Action] {
        switch state {
        case .trying, .proceeding, .completed, .confirmed, .accepted:
            state = .terminated
            return [.transportError, .terminated]
        case .terminated:
            return []
        }
    }
}

// MARK: - The header fields matching needs

/// The parts of the top Via that matching uses (`SIPVia`), with an RFC 3261 branch.
private struct TransactionVia {
    var sentBy: String
    var branch: String

    init(_ headers: SIPHeaders) throws(SIPTransactionError) {
        let top: SIPVia
        do {
            guard let first = try headers.vias().first else { throw SIPTransactionError("the message has no Via header field") }
            top = first
        } catch let error as SIPTransactionError {
            throw error
        } catch {
            throw SIPTransactionError("the top Via cannot be read: \(error)")
        }
        guard let branch = top.branch, !branch.isEmpty else { throw SIPTransactionError("the top Via has no branch parameter") }
        guard branch.hasPrefix(SIPTransactionKey.magicCookie), branch.count > SIPTransactionKey.magicCookie.count else {
            throw SIPTransactionError("the top Via's branch does not start with z9hG4bK (RFC 2543 peers are not supported)")
        }
        self.sentBy = (top.port.map { "\(top.host):\($0)" } ?? top.host).lowercased()
        self.branch = branch
    }
}

/// CSeq: `<number> <method>` (§20.16), the number below 2³¹.
private func transactionCSeq(_ headers: SIPHeaders) throws(SIPTransactionError) -> (UInt32, SIPMethod) {
    guard let cseq = try? headers.cseq(), cseq.sequence < 1 << 31 else {
        throw SIPTransactionError("the CSeq is missing or not <number below 2^31> <method>")
    }
    return (cseq.sequence, cseq.method)
}
