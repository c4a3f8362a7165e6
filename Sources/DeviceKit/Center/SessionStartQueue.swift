import DequeModule

/// The UDP socket's session starts, put off behind the frames of sessions (docs/center.md, "The centre under
/// load").
///
/// A session start costs the centre about 17 µs (a key derivation, a handshake, a journal write); a frame of a
/// session (a heartbeat, an alarm) a few. Worked on in the order they were read, a burst of session starts (a
/// fleet reconnecting after the centre restarted) queues the alarms of the sessions behind it, first in the
/// socket's receive buffer and, once that is full, in the kernel's drops. So the centre's reader works on the
/// frames of sessions as it reads them and puts the frames of devices without a session here, once they passed
/// the checks that cost nothing (their direction, their source's forgery budget); after each read it works on
/// up to `batch` of them, oldest first, and reads the socket again. The queue is the backlog the receive buffer
/// was, without alarms in it.
///
/// Past `limit` waiting a session start is shed: dropped unworked and counted; its device asks again (after
/// 1 s, then 3 s). The limit keeps the wait short of that retry: 8,192 starts are about 140 ms of work.
///
/// A frame read from the socket is a view into the socket's one receive buffer: kept, it would make the next
/// read allocate that buffer anew and keep the old one alive. So it is copied here (a start is small, and
/// costs a derivation anyway).
final class SessionStartQueue {
    struct Start {
        let frame: SealedFrame
        let path: ReplyPath
        let source: SourceAddress
    }

    /// The default `limit` (`CenterConfiguration.udpSessionStartsWaiting`).
    static let defaultLimit = 8192

    /// Session starts waiting at most; past it they are shed.
    let limit: Int
    /// Session starts worked on between two reads of the socket.
    let batch: Int
    private var waiting = Deque<Start>()

    init(limit: Int, batch: Int = 32) {
        precondition(limit >= 0 && batch >= 1)
        self.limit = limit
        self.batch = batch
    }

    var count: Int { waiting.count }
    var isEmpty: Bool { waiting.isEmpty }

    /// Queues a copy of `frame`; false, queueing nothing, when `limit` wait already.
    func putOff(_ frame: SealedFrame, path: ReplyPath, source: SourceAddress) -> Bool {
        guard waiting.count < limit else { return false }
        waiting.append(Start(frame: frame.copied(), path: path, source: source))
        return true
    }

    /// The oldest waiting, taken from the queue.
    func next() -> Start? { waiting.popFirst() }
}
