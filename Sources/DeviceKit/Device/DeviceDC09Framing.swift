/// A device's framing when it reports over SIA DC-09 (`[centre] protocol = "dc09"`, docs/dc09.md): the
/// `DC09FrameSession` (sequence numbers, the clock a `NAK` teaches, answers back to messages) with what
/// `DeviceMachine` needs around it — which event code a message is, the pad's randomness, when the last
/// `NULL` supervision went (for its round trip).
///
/// Which messages DC-09 carries: alarms, cancels and the device events of `DC09EventCodes`. The others (a
/// press during an open alarm; diagnostics and calls, which need our centre's requests) are not sent and
/// leave the outbox at once (`DeviceObservation.Kind.notReported`): the receiver cannot take them, and an
/// outbox that kept them would hold the alarms behind them.
///
/// Pure: the wall clock comes in as a value; randomness from a seeded generator.
struct DeviceDC09Framing: Sendable {
    private(set) var session: DC09FrameSession
    private var random: SplitMix64
    /// When the `NULL` in flight was sent (monotonic), for its round trip.
    private var supervisionSentAt: Duration?
    /// The latest two alarms' ids and kinds: a cancel names its alarm's zone (a cancel is sent after its
    /// alarm, oldest first, and the outbox holds at most one open alarm).
    private var latestAlarm: (id: UInt32, kind: AlarmKind)?
    private var previousAlarm: (id: UInt32, kind: AlarmKind)?

    init(configuration: DC09FrameSession.Configuration, seed: UInt64) {
        session = DC09FrameSession(configuration: configuration)
        random = SplitMix64(seed: seed)
    }

    /// The message's DC-09 code, or nil for one DC-09 does not carry.
    func code(for message: Message) -> DC09EventCode? {
        switch message {
        case .alarm(let alarm): DC09EventCodes.alarm(alarm.kind)
        case .alarmCancel(let cancel): DC09EventCodes.cancel(kind(ofAlarm: cancel.alarmID))
        case .event(let event): DC09EventCodes.event(event.kind)
        default: nil
        }
    }

    /// The frame for `message` (nil: DC-09 does not carry it), timestamped with `wall` (ms since 1970)
    /// corrected by what the receiver's `NAK`s taught.
    mutating func frame(_ message: Message, wall: UInt64) throws(DC09Error) -> [UInt8]? {
        guard let id = message.reliableID, let code = code(for: message) else { return nil }
        if case .alarm(let alarm) = message, latestAlarm?.id != alarm.id {
            previousAlarm = latestAlarm
            latestAlarm = (alarm.id, alarm.kind)
        }
        return try session.frame(messageID: id, code: code, wall: wall, random: &random)
    }

    /// A `NULL` supervision frame; `at` (monotonic) is remembered for the round trip of its `ACK`.
    mutating func supervision(wall: UInt64, at: Duration) throws(DC09Error) -> [UInt8] {
        supervisionSentAt = at
        return try session.supervision(wall: wall, random: &random)
    }

    /// Reads an answer; for an `ACK` of our `NULL`, its round trip too.
    mutating func answer(_ bytes: some Collection<UInt8>, wall: UInt64, at: Duration) -> (DC09FrameSession.Answer, roundTrip: Duration?) {
        let answer = session.answer(bytes, wall: wall)
        guard case .supervisionAnswered = answer, let sent = supervisionSentAt else { return (answer, nil) }
        supervisionSentAt = nil
        return (answer, at - sent)
    }

    /// The link was lost: no answer will come to what was sent on it.
    mutating func reset() {
        session.reset()
        supervisionSentAt = nil
    }

    private func kind(ofAlarm id: UInt32) -> AlarmKind {
        if let latestAlarm, latestAlarm.id == id { return latestAlarm.kind }
        if let previousAlarm, previousAlarm.id == id { return previousAlarm.kind }
        return .button  // an alarm this run did not send (it was delivered before a restart): the button's zone
    }
}
