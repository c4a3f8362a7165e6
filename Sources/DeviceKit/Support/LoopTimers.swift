import NIOCore

/// The timers of one event loop's many owners (a load shard's devices, the centre's sessions and cases)
/// through one scheduled task of the loop: the earliest of a `TimerQueue`, whose doc says why.
///
/// Use it on `loop` only. There is no cancel: an owner that no longer wants a wake-up ignores it when it
/// comes. After `stop()` nothing fires.
///
/// Each timer carries a `Payload` that `fire` acts on when it is due: `LoopTimers<() -> Void>` runs closures
/// (`ClosureTimers`); a load shard's devices' timers are plain values (`TimerQueue` says why).
final class LoopTimers<Payload> {
    let loop: any EventLoop
    private var queue = TimerQueue<NIODeadline, Payload>()
    private let fire: (Payload) -> Void
    /// The loop's one task: when it fires, the earliest timer is due.
    private var wakeUp: (deadline: NIODeadline, task: Scheduled<Void>)?
    private var stopped = false

    /// `fire` must not hold the timers' owner strongly (the owner holds these timers).
    init(loop: any EventLoop, fire: @escaping (Payload) -> Void) {
        self.loop = loop
        self.fire = fire
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
        guard !stopped, let next = queue.nextDeadline else { return }
        if let wakeUp, wakeUp.deadline <= next { return }
        wakeUp?.task.cancel()
        let bound = NIOLoopBound(self, eventLoop: loop)
        wakeUp = (next, loop.scheduleTask(deadline: next) { bound.value.timersDue() })
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
