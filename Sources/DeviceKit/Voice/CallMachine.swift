/// One side of a call's life (protocol.md §4.8), the same for the centre that places it, the device that
/// takes it, and the load tester's devices: offer, answer, media, end — and the replaced offers, late answers
/// and crossing ends that each side used to sort out with its own `callID` comparisons.
///
/// ```
///  caller:  idle ──place──► binding ──mediaBound──► offered ──answerReceived──► active
///  callee:  idle ──offerReceived──► binding ──mediaBound──► active
///           any call ──endReceived / hangUp / mediaSilent / answerTimeout / offerRefused──► idle
/// ```
/// At most one call at a time: a new one (placed, or offered by the peer) replaces the one in progress,
/// which ends as `hangUp` (the peer is told only when this side ended it). The media (ports, SRTP, RTP) is the
/// driver's: the machine asks for it (`bindMedia`, `startMedia`, `stopMedia`) and is told what happened.
///
/// Pure: no clock, no sockets; the driver draws call ids, ssrc and key material and carries the messages.
public struct CallMachine: Sendable {
    public enum Role: Hashable, Sendable {
        /// Places calls (the centre).
        case caller
        /// Takes calls (a device).
        case callee
    }

    public enum Action: Hashable, Sendable {
        /// Bind media ports for `callID`; report `mediaBound` or `mediaBindFailed`.
        case bindMedia(callID: UInt32)
        /// Offer the call to the peer (a reliable `callOffer` with this side's media).
        case sendOffer(callID: UInt32, alarmID: UInt32, local: MediaDescription)
        /// Answer the peer's offer (a reliable `callAnswer` with this side's media).
        case sendAnswer(callID: UInt32, local: MediaDescription)
        /// Tell the peer the call is over (a reliable `callEnd`).
        case sendEnd(callID: UInt32, reason: CallEndReason)
        /// Start the media bound for `callID` towards the peer's `remote` description.
        case startMedia(callID: UInt32, local: MediaDescription, remote: MediaDescription)
        /// Stop the media of `callID` (RTCP BYE), if any was bound.
        case stopMedia(callID: UInt32, reason: CallEndReason)
        /// Report `answerTimeout(callID:)` after `after` (the caller's offer waits so long for an answer).
        case scheduleAnswerTimeout(callID: UInt32, after: Duration)
        /// The call is set up and media flows.
        case started(callID: UInt32, alarmID: UInt32)
        /// The call is over; `byPeer` when the peer ended it (its `callEnd`, or it refused the offer).
        case ended(callID: UInt32, reason: CallEndReason, byPeer: Bool)
        /// The peer's offer was declined (no alarm open and none named): told with `callEnd(declined)`.
        case declined(callID: UInt32)
    }

    private enum Phase: Hashable, Sendable {
        /// Ports being bound: the caller's offer, or the callee's answer, waits for them.
        case binding(remote: MediaDescription?)
        /// The caller's offer is out, awaiting the answer.
        case offered(local: MediaDescription)
        case active
    }

    private struct Call: Hashable, Sendable {
        var callID: UInt32
        var alarmID: UInt32
        var phase: Phase
    }

    public let role: Role
    /// How long the caller's offer waits for an answer: a little more than the retransmissions of §4.7 take.
    public var answerTimeout: Duration
    private var call: Call?

    public init(role: Role, answerTimeout: Duration = .seconds(45)) {
        self.role = role
        self.answerTimeout = answerTimeout
    }

    /// The call in progress, if any.
    // `@inline(never)`: Swift 6.3's optimizer (CopyPropagation) crashed compiling `-c release` when this
    // getter was inlined into a driver that borrows the machine ("Found outside of lifetime use").
    @inline(never) public var callID: UInt32? { call?.callID }
    /// The alarm the call in progress is about (0: none).
    @inline(never) public var alarmID: UInt32? { call?.alarmID }
    public var isActive: Bool { call?.phase == .active }

    /// Where the call in progress is, for an operator's list.
    public enum Stage: Hashable, Sendable { case binding, offered, active }
    public var stage: Stage? {
        switch call?.phase {
        case nil: nil
        case .binding?: .binding
        case .offered?: .offered
        case .active?: .active
        }
    }

    // MARK: The caller

    /// Place a call about `alarmID` (0: none) with a new `callID`, replacing any call in progress.
    public mutating func place(callID: UInt32, alarmID: UInt32) -> [Action] {
        guard role == .caller else { return impossibleTransition("CallMachine.place on the callee's side: only a caller places calls") }
        var actions = replaceCurrent()
        call = Call(callID: callID, alarmID: alarmID, phase: .binding(remote: nil))
        actions.append(.bindMedia(callID: callID))
        return actions
    }

    /// The peer's `callAnswer` (recorded): start the media, if it answers the call offered now.
    public mutating func answerReceived(callID: UInt32, remote: MediaDescription) -> [Action] {
        guard let current = call, current.callID == callID, case .offered(let local) = current.phase else { return [] }
        call?.phase = .active
        return [.started(callID: callID, alarmID: current.alarmID), .startMedia(callID: callID, local: local, remote: remote)]
    }

    /// The offer waited `answerTimeout` in vain, or the peer refused it for good (`nak`).
    public mutating func answerTimeoutFired(callID: UInt32) -> [Action] {
        guard let current = call, current.callID == callID, case .offered = current.phase else { return [] }
        return finish(reason: .failed, tell: true, byPeer: false)
    }

    public mutating func offerRefused(callID: UInt32) -> [Action] {
        guard call?.callID == callID, !isActive else { return [] }
        return finish(reason: .failed, tell: false, byPeer: true)
    }

    // MARK: The callee

    /// The peer's `callOffer` (acknowledged, not a retransmission). `mayAnswer`: an alarm is open or the
    /// offer names one, so that a centre cannot listen into a home unasked.
    public mutating func offerReceived(_ offer: CallOffer, mayAnswer: Bool) -> [Action] {
        guard role == .callee else { return impossibleTransition("CallMachine.offerReceived on the caller's side: only a callee takes calls") }
        guard mayAnswer else { return [.sendEnd(callID: offer.callID, reason: .declined), .declined(callID: offer.callID)] }
        if call?.callID == offer.callID { return [] }  // the same offer again: already being taken
        var actions = replaceCurrent()
        call = Call(callID: offer.callID, alarmID: offer.alarmID, phase: .binding(remote: offer.media))
        actions.append(.bindMedia(callID: offer.callID))
        return actions
    }

    // MARK: Both

    /// Ports are bound for `callID`, and `local` describes them: offer (caller) or answer and start (callee).
    public mutating func mediaBound(callID: UInt32, local: MediaDescription) -> [Action] {
        guard let current = call, current.callID == callID, case .binding(let remote) = current.phase else {
            return [.stopMedia(callID: callID, reason: .hangUp)]  // bound for a call that is gone: let go
        }
        switch role {
        case .caller:
            call?.phase = .offered(local: local)
            return [
                .sendOffer(callID: callID, alarmID: current.alarmID, local: local),
                .scheduleAnswerTimeout(callID: callID, after: answerTimeout),
            ]
        case .callee:
            guard let remote else { return finish(reason: .failed, tell: true, byPeer: false) }
            call?.phase = .active
            return [
                .sendAnswer(callID: callID, local: local), .started(callID: callID, alarmID: current.alarmID),
                .startMedia(callID: callID, local: local, remote: remote),
            ]
        }
    }

    /// The ports for `callID` could not be bound, or its media could not start.
    public mutating func mediaFailed(callID: UInt32) -> [Action] {
        guard call?.callID == callID else { return [] }
        return finish(reason: .failed, tell: peerKnows, byPeer: false)
    }

    /// The peer's `callEnd` (recorded or acknowledged): the call it names ends, if it is the one in progress.
    public mutating func endReceived(callID: UInt32, reason: CallEndReason) -> [Action] {
        guard call?.callID == callID else { return [] }
        return finish(reason: reason, tell: false, byPeer: true)
    }

    /// This side hangs up (a person, an operator, the end of a simulated call); nothing without a call.
    public mutating func hangUp(reason: CallEndReason = .hangUp) -> [Action] {
        guard call != nil else { return [] }
        return finish(reason: reason, tell: peerKnows, byPeer: false)
    }

    /// No media from the peer for the silence timeout.
    public mutating func mediaSilent(callID: UInt32) -> [Action] {
        guard call?.callID == callID else { return [] }
        return finish(reason: .mediaSilent, tell: true, byPeer: false)
    }

    /// This side stops (shutdown): the media ends, the peer is not told (its own supervision notices).
    public mutating func stop() -> [Action] {
        guard call != nil else { return [] }
        return finish(reason: .hangUp, tell: false, byPeer: false)
    }

    // MARK: Helpers

    /// A new call replaces the one in progress: the caller tells the peer; a callee's was replaced by the peer.
    private mutating func replaceCurrent() -> [Action] {
        guard call != nil else { return [] }
        return finish(reason: .hangUp, tell: role == .caller && peerKnows, byPeer: role == .callee)
    }

    /// Whether the peer has heard of the call in progress: not while the caller is still binding its ports
    /// (its offer has not gone out), so an end is not sent about a call the peer never saw.
    private var peerKnows: Bool {
        if role == .caller, case .binding? = call?.phase { return false }
        return call != nil
    }

    private mutating func finish(reason: CallEndReason, tell: Bool, byPeer: Bool) -> [Action] {
        guard let ending = call else { return [] }
        call = nil
        return [.stopMedia(callID: ending.callID, reason: reason)]
            + (tell ? [.sendEnd(callID: ending.callID, reason: reason)] : [])
            + [.ended(callID: ending.callID, reason: reason, byPeer: byPeer)]
    }
}
