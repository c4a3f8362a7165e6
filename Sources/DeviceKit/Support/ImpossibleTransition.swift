/// How every pure machine treats an event it cannot take in its state — one rule for the code base.
///
/// Two kinds of "cannot take" look alike in a guard and are not alike:
/// - **Stale or repeated events are normal**: a timer of an old generation, a duplicate ack, a frame for a
///   call that was replaced, an answer that arrives after its offer timed out. The network and the loop
///   produce them; the guard drops them with a comment saying which case it is, and returns no actions.
/// - **Impossible events are a driver's bug**: the driver reports a store the machine never asked for,
///   starts a machine twice, or places a call from the callee's side. They go through
///   `impossibleTransition(_:)`, which stops a debug build (every test run) at the faulty call, with the
///   broken contract in words, the way swift-nio's and postgres-nio's state machines do; a release build
///   (a device in a home) ignores the event and goes on, because halting the firmware would lose a call for
///   help over a bookkeeping error the machine can survive.
///
/// `grep impossibleTransition` lists every contract a driver must keep.
@inline(__always)
func impossibleTransition<Action>(
    _ contract: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) -> [Action] {
    assertionFailure("impossible transition: \(contract())", file: file, line: line)
    return []
}
