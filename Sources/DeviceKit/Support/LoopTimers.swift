import NIOCore

/// The timers of one event loop's many owners (a load shard's devices, the centre's sessions and cases)
/// through one scheduled task of the loop: the earliest of a `TimerQueue`, whose doc says why.
///
/// Use it on `loop` only. There is no cancel: an owner that no longer wants a wake-up ignores it when it
/// comes. After `stop()` nothing fires.
final class LoopTimers {
    let loop: any EventLoop
    private var queue = TimerQueue<NIODeadline>()
    /// The loop's one task: when it fires, the earliest timer is due.
    private var wakeUp: (deadline: NIODeadline, task: Scheduled<Void>)?
    private var stopped = false

    init(loop: any EventLoop) { self.loop = loop }

    /// Runs `body` on the loop after `after` (at once if it is not positive), unless stopped by then.
    func schedule(in after: Duration, _ body: @escaping () -> Void) {
        guard !stopped else { return }
        let deadline = NIODeadline.now() + .nanoseconds(max(0, after.nanoseconds))
        if queue.schedule(at: deadline, body) { armWakeUp() }
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
        for body in queue.popDue(at: .now()) {
            guard !stopped else { return }
            body()
        }
        armWakeUp()
    }
}
