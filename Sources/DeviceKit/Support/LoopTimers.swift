import NIOCore

/// The timers of one event loop's many owners (a load shard's devices, the centre's sessions and cases)
/// through one scheduled task of the loop: the earliest of a `TimerQueue`, whose doc says why.
///
/// Use it on `loop` only. There is no cancel: an owner that no longer wants a wake-up ignores it when it
/// comes. After `stop()` nothing fires.
///
/// Each timer carries a `Payload` that `fire` acts on when it is due: `LoopTimers<() -> Void>` runs closures
/// (`ClosureTimers`); a load shard's devices' timers are plain values (`TimerQueue` says why).
///
/// With a `slack`, the loop wakes only at multiples of it (on the uptime clock), so timers due within one
/// slack fire together, up to a slack late: a load shard's 10,000 heartbeats a second then wake its loop about
/// 1,000 times a second instead of 10,000, and their datagrams leave in one `sendmmsg` a wake-up. Timers whose
/// lateness would be measured (alarm arrivals, against their intended instant) belong in timers without slack.
final class LoopTimers<Payload> {
    let loop: any EventLoop
    private var queue = TimerQueue<NIODeadline, Payload>()
    private let fire: (Payload) -> Void
    private let slackNanoseconds: UInt64
    /// The loop's one task: when it fires, the earliest timer is due.
    private var wakeUp: (deadline: NIODeadline, task: Scheduled<Void>)?
    private var stopped = false

    /// `fire` must not hold the timers' owner strongly (the owner holds these timers).
    init(loop: any EventLoop, slack: Duration = .zero, fire: @escaping (Payload) -> Void) {
        self.loop = loop
        self.fire = fire
        slackNanoseconds = UInt64(max(0, slack.nanoseconds))
    }

    /// Acts on `payload` on the loop after `after` (at once if it is not positive), unless stopped by then.
    func schedule(in after: Duration, _ payload: Payload) {
        guard !stopped else { return }
        let deadline = NIODeadline.now() + .nanoseconds(max(0, after.nanoseconds))
        if queue.schedule(at: deadline, payload) { armWakeUp() }
    }

    /// No timer fires after this.
    func stop() {
        stopped = true
        wakeUp?.task.cancel()
        wakeUp = nil
    }

    private func armWakeUp() {
        guard !stopped, let earliest = queue.nextDeadline else { return }
        let next = Self.roundedUp(earliest, to: slackNanoseconds)
        if let wakeUp, wakeUp.deadline <= next { return }
        wakeUp?.task.cancel()
        let bound = NIOLoopBound(self, eventLoop: loop)
        wakeUp = (next, loop.scheduleTask(deadline: next) { bound.value.timersDue() })
    }

    /// `deadline` moved up to the next multiple of `slack` nanoseconds (itself if it is one, or with no slack).
    static func roundedUp(_ deadline: NIODeadline, to slack: UInt64) -> NIODeadline {
        guard slack > 1 else { return deadline }
        let (steps, rest) = deadline.uptimeNanoseconds.quotientAndRemainder(dividingBy: slack)
        return rest == 0 ? deadline : .uptimeNanoseconds((steps + 1) * slack)
    }

    private func timersDue() {
        wakeUp = nil
        for payload in queue.popDue(at: .now()) {
            guard !stopped else { return }
            fire(payload)
        }
        armWakeUp()
    }
}

/// Timers that run closures.
typealias ClosureTimers = LoopTimers<() -> Void>

extension LoopTimers where Payload == () -> Void {
    convenience init(loop: any EventLoop) { self.init(loop: loop) { $0() } }
}
