import Synchronization

/// The simulated indicator backend: remembers every state shown, in order, for the simulator and for tests.
public final class RecordingIndicators: IndicatorOutput {
    private struct Record {
        var states: [IndicatorState] = []
        var failure: IndicatorError?
    }

    private let record = Mutex(Record())

    public init() {}

    public func show(_ state: IndicatorState) throws(IndicatorError) {
        let failure: IndicatorError? = record.withLock { record in
            if let failure = record.failure { return failure }
            record.states.append(state)
            return nil
        }
        if let failure { throw failure }
    }

    /// Every state shown so far, oldest first.
    public var states: [IndicatorState] { record.withLock { $0.states } }

    /// The state shown last, `nil` before the first.
    public var current: IndicatorState? { record.withLock { $0.states.last } }

    /// Makes every later `show` fail with `error` (a broken LED), or succeed again with `nil`.
    public func fail(with error: IndicatorError?) {
        record.withLock { $0.failure = error }
    }
}
