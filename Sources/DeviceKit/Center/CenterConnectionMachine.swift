/// One TCP connection's life at the centre, pure (protocol.md §2.2, §3.4, §6.1). `CenterStreamHandler`
/// feeds it and carries out its actions; the rules are here:
///
/// ```
///  new ──admitted──► waiting ──frame of a current session──► authenticated ──(closed)──► closing
///   │                  │  └─sessionStart being journalled: the timeout starts again, once
///   └─refused───────►  └─timeout / offences / evicted / slow reader / stalled / broken stream──► closing
/// ```
/// - A connection is closed if no frame of a current session arrives within the authentication timeout; a
///   replayed frame of an old session is no such frame (the runtime's verdict says so).
/// - A `sessionStart` being stored extends the timeout once: a slow journal must not cost a device its
///   connection, and a replay wins nothing by it (the journal refuses it).
/// - `offencesBeforeClose` refused frames close it; so do an eviction (the runtime needs the room), a peer
///   that does not read its answers, answers unacknowledged past the stall timeout, and a broken stream (no
///   resynchronisation, §2.2).
struct CenterConnectionMachine: Hashable, Sendable {
    enum Action: Hashable, Sendable {
        /// Start (or restart) the authentication timeout; report `timeoutFired(generation:)` when it ends.
        case armTimeout(generation: Int)
        case cancelTimeout
        /// Close the connection; `reason` is counted (`center_connections_closed_total{reason}`).
        case close(reason: String)
    }

    enum Admission: Hashable, Sendable { case admitted, refused }

    private enum State: Hashable, Sendable {
        case new
        case waiting(extended: Bool)
        case authenticated
        case closing
    }

    let offencesBeforeClose: Int
    private var state = State.new
    private var offences = 0
    private var timerGeneration = 0

    init(offencesBeforeClose: Int) {
        self.offencesBeforeClose = offencesBeforeClose
    }

    var isAuthenticated: Bool { state == .authenticated }
    var isClosing: Bool { state == .closing }

    /// The runtime admitted the connection, or refused it (every connection held is authenticated).
    mutating func opened(_ admission: Admission) -> [Action] {
        guard state == .new else {
            return impossibleTransition("CenterConnectionMachine.opened twice: the handler admits a connection once")
        }
        switch admission {
        case .refused:
            return close(reason: "connectionLimit")
        case .admitted:
            state = .waiting(extended: false)
            return arm()
        }
    }

    /// What the runtime made of a frame that came on this connection.
    mutating func frameReceived(_ verdict: FrameVerdict) -> [Action] {
        switch (state, verdict) {
        case (.closing, _):
            return []  // frames already read when the close began
        case (_, .authenticated):
            return sessionAuthenticated()
        case (.waiting(extended: false), .pending):
            state = .waiting(extended: true)
            return arm()
        case (_, .pending), (_, .putOff):
            return []  // extended once already, or authenticated; nothing is put off on a connection
        case (_, .refused):
            offences += 1
            return offences >= offencesBeforeClose ? close(reason: "offences") : []
        }
    }

    /// A frame of a current session arrived on this connection (now, or once a journalled `sessionStart`
    /// opened its session): the timeout is off for good.
    mutating func sessionAuthenticated() -> [Action] {
        guard state != .closing, state != .authenticated else { return [] }  // late, or already
        state = .authenticated
        return [.cancelTimeout]
    }

    mutating func timeoutFired(generation: Int) -> [Action] {
        guard generation == timerGeneration, case .waiting = state else { return [] }  // re-armed, or authenticated
        return close(reason: "authTimeout")
    }

    /// The runtime needs the room (`ConnectionTable`).
    mutating func evicted() -> [Action] { close(reason: "evicted") }

    /// The peer does not read its answers: they would pile up in memory.
    mutating func readerTooSlow() -> [Action] { close(reason: "backpressure") }

    /// The kernel gave up on the connection: its answers went unacknowledged past the stall timeout
    /// (`CenterConfiguration.connectionStallTimeout`).
    mutating func stalled() -> [Action] { close(reason: "stalled") }

    /// The stream broke (`reason`: the refusal's category): there is no resynchronising a byte stream.
    mutating func streamBroken(reason: String) -> [Action] { close(reason: reason) }

    /// The connection is gone (the peer closed it, or our close completed).
    mutating func closed() -> [Action] {
        let wasClosing = state == .closing
        state = .closing
        return wasClosing ? [] : [.cancelTimeout]
    }

    private mutating func arm() -> [Action] {
        timerGeneration += 1
        return [.armTimeout(generation: timerGeneration)]
    }

    private mutating func close(reason: String) -> [Action] {
        guard state != .closing else { return [] }  // closing already: one reason is counted
        state = .closing
        return [.cancelTimeout, .close(reason: reason)]
    }
}
