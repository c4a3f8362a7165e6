/// All live transactions of one user agent, by key: it routes each message to its transaction or makes a
/// new one (RFC 3261 §17.1.3, §17.2.3), and tells the UA core what arrived that no transaction takes — the
/// ACK of a 2xx, a copy of a 2xx after its transaction ended, a CANCEL and the INVITE it names.
///
/// Terminated transactions are removed at once, so the dictionary holds only live ones; at most
/// `maximumServerTransactions` server transactions exist, and a new request beyond that is reported
/// `.overloaded` without making state (the UA answers 503 Service Unavailable).
///
/// Pure: no clock, no I/O. The shell runs each `LayerAction`, keeps timers per (key, timer), and reports
/// `timerFired(key:timer:)` and `transportFailed(key:)`.
public struct SIPTransactionLayer: Sendable {
    public enum LayerAction: Hashable, Sendable {
        /// An action of a client transaction (a `.deliver` is a response for the UA core).
        case client(SIPTransactionKey, SIPClientTransaction.Action)
        /// An action of a server transaction (`.deliver` is turned into `.request`, `.cancel` or `.ackForSuccess`).
        case server(SIPTransactionKey, SIPServerTransaction.Action)
        /// A new request, for the UA core, which answers it with `respond(to:_:)`.
        case request(SIPTransactionKey, SIPRequest)
        /// A CANCEL (its own server transaction, to be answered 200, or 481 when `inviteKey` is nil) and the
        /// INVITE server transaction it cancels (answered 487 by the UA if it has no final response yet).
        case cancel(SIPTransactionKey, inviteKey: SIPTransactionKey?, SIPRequest)
        /// An ACK that no transaction takes: the ACK of a 2xx, which ends the UA's 2xx retransmissions.
        case ackForSuccess(SIPRequest)
        /// A response no client transaction takes: a copy of a 2xx after the INVITE's transaction ended, which
        /// the UA core ACKs again; anything else it drops.
        case strayResponse(SIPResponse)
        /// A new request while `maximumServerTransactions` are live: answer 503 without making state.
        case overloaded(SIPRequest)
        /// A request that cannot be matched (no Via branch with z9hG4bK, a bad CSeq): answer 400 (an ACK is
        /// dropped). A response that cannot be matched is dropped.
        case invalid(SIPMessage, SIPTransactionError)
    }

    private enum Transaction: Sendable {
        case client(SIPClientTransaction)
        case server(SIPServerTransaction)
    }

    public let timers: SIPTimerValues
    public let maximumServerTransactions: Int
    private var transactions: [SIPTransactionKey: Transaction] = [:]
    private var serverCount = 0

    public init(timers: SIPTimerValues = SIPTimerValues(), maximumServerTransactions: Int = 10_000) {
        self.timers = timers
        self.maximumServerTransactions = maximumServerTransactions
    }

    /// How many transactions are live.
    public var count: Int { transactions.count }

    /// Whether the transaction of `key` is live.
    public func contains(_ key: SIPTransactionKey) -> Bool { transactions[key] != nil }

    /// Sends a request of this side in a new client transaction. An ACK has none (a non-2xx's is the
    /// transaction's, a 2xx's the UA's to send directly), and two live transactions cannot share a branch.
    public mutating func sendRequest(_ request: SIPRequest, reliable: Bool) throws(SIPTransactionError) -> [LayerAction] {
        guard request.method != .ack else { throw SIPTransactionError("an ACK is sent without a transaction") }
        let key = try SIPTransactionKey.client(for: request)
        guard transactions[key] == nil else { throw SIPTransactionError("a transaction with branch \(key.branch) is live: draw a new one") }
        var transaction = SIPClientTransaction(request: request, reliable: reliable, timers: timers)
        let actions = transaction.start()
        return store(transaction, key: key, actions: actions)
    }

    /// A message from the transport.
    public mutating func receive(_ message: SIPMessage, reliable: Bool) -> [LayerAction] {
        switch message {
        case .response(let response):
            let key: SIPTransactionKey
            do {
                key = try SIPTransactionKey.client(for: response)
            } catch {
                return [.invalid(message, error)]
            }
            guard case .client(var transaction) = transactions[key] else { return [.strayResponse(response)] }
            let actions = transaction.received(response)
            return store(transaction, key: key, actions: actions)
        case .request(let request):
            let key: SIPTransactionKey
            do {
                key = try SIPTransactionKey.server(for: request)
            } catch {
                return [.invalid(message, error)]
            }
            if case .server(var transaction) = transactions[key] {
                let actions = transaction.received(request: request)
                return store(transaction, key: key, actions: actions)
            }
            if request.method == .ack { return [.ackForSuccess(request)] }
            guard serverCount < maximumServerTransactions else { return [.overloaded(request)] }
            var transaction = SIPServerTransaction(request: request, reliable: reliable, timers: timers)
            let actions = transaction.start()
            return store(transaction, key: key, actions: actions)
        }
    }

    /// The UA core's response to the request of a server transaction. Nothing when the transaction has ended
    /// (a transport failure or a timer the core had not heard of yet).
    public mutating func respond(to key: SIPTransactionKey, _ response: SIPResponse) -> [LayerAction] {
        guard case .server(var transaction) = transactions[key] else { return [] }
        let actions = transaction.respond(response)
        return store(transaction, key: key, actions: actions)
    }

    public mutating func timerFired(key: SIPTransactionKey, timer: SIPTimer) -> [LayerAction] {
        switch transactions[key] {
        case .client(var transaction):
            let actions = transaction.timerFired(timer)
            return store(transaction, key: key, actions: actions)
        case .server(var transaction):
            let actions = transaction.timerFired(timer)
            return store(transaction, key: key, actions: actions)
        case nil:
            return []
        }
    }

    public mutating func transportFailed(key: SIPTransactionKey) -> [LayerAction] {
        switch transactions[key] {
        case .client(var transaction):
            let actions = transaction.transportFailed()
            return store(transaction, key: key, actions: actions)
        case .server(var transaction):
            let actions = transaction.transportFailed()
            return store(transaction, key: key, actions: actions)
        case nil:
            return []
        }
    }

    /// Keeps the client transaction, or forgets it once terminated, and wraps its actions with its key.
    private mutating func store(_ transaction: SIPClientTransaction, key: SIPTransactionKey, actions: [SIPClientTransaction.Action]) -> [LayerAction] {
        transactions[key] = transaction.isTerminated ? nil : .client(transaction)
        return actions.map { .client(key, $0) }
    }

    /// Keeps the server transaction, or forgets it once terminated, and wraps its actions with its key; the
    /// request it passes up becomes `.request`, `.cancel` (with the INVITE it names) or `.ackForSuccess`.
    private mutating func store(_ transaction: SIPServerTransaction, key: SIPTransactionKey, actions: [SIPServerTransaction.Action]) -> [LayerAction] {
        let wasLive = transactions[key] != nil
        transactions[key] = transaction.isTerminated ? nil : .server(transaction)
        serverCount += (transactions[key] != nil ? 1 : 0) - (wasLive ? 1 : 0)
        return actions.map { action in
            guard case .deliver(let request) = action else { return .server(key, action) }
            if request.method == .ack { return .ackForSuccess(request) }
            guard request.method == .cancel else { return .request(key, request) }
            let invite = SIPTransactionKey(branch: key.branch, method: .invite, sentBy: key.sentBy, side: .server)
            return .cancel(key, inviteKey: transactions[invite] != nil ? invite : nil, request)
        }
    }
}
