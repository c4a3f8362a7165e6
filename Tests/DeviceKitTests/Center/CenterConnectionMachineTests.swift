import Testing

@testable import DeviceKit

/// A TCP connection's life at the centre as transcripts: what used to be flags in `CenterStreamHandler`.
@Suite struct CenterConnectionMachineTests {
    @Test func aConnectionWithoutAFrameOfACurrentSessionIsClosedAtTheTimeout() {
        var c = CenterConnectionMachine(offencesBeforeClose: 3)
        #expect(c.opened(.admitted) == [.armTimeout(generation: 1)])
        #expect(c.frameReceived(.refused) == [], "a replayed frame of an old session proves nothing")
        #expect(c.timeoutFired(generation: 1) == [.cancelTimeout, .close(reason: "authTimeout")])
        #expect(c.frameReceived(.authenticated) == [], "closing: nothing read late counts")
        #expect(c.closed() == [])
    }

    @Test func aFrameOfACurrentSessionTurnsTheTimeoutOffForGood() {
        var c = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = c.opened(.admitted)
        #expect(c.frameReceived(.authenticated) == [.cancelTimeout])
        #expect(c.isAuthenticated)
        #expect(c.timeoutFired(generation: 1) == [], "a timer that fires anyway is late")
        #expect(c.frameReceived(.authenticated) == [])
    }

    @Test func aSessionStartBeingJournalledExtendsTheTimeoutOnceOnly() {
        var c = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = c.opened(.admitted)
        #expect(c.frameReceived(.pending) == [.armTimeout(generation: 2)])
        #expect(c.timeoutFired(generation: 1) == [], "the first timer was replaced")
        #expect(c.frameReceived(.pending) == [], "a second sessionStart buys no more time")
        #expect(c.timeoutFired(generation: 2) == [.cancelTimeout, .close(reason: "authTimeout")])
    }

    @Test func theJournalledSessionOpeningAuthenticatesTheConnection() {
        var c = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = c.opened(.admitted)
        _ = c.frameReceived(.pending)
        #expect(c.sessionAuthenticated() == [.cancelTimeout])
        #expect(c.timeoutFired(generation: 2) == [])
    }

    @Test func repeatedRefusedFramesCloseTheConnectionOnce() {
        var c = CenterConnectionMachine(offencesBeforeClose: 2)
        _ = c.opened(.admitted)
        _ = c.frameReceived(.authenticated)
        #expect(c.frameReceived(.refused) == [])
        #expect(c.frameReceived(.refused) == [.cancelTimeout, .close(reason: "offences")])
        #expect(c.evicted() == [], "one reason is counted")
    }

    @Test func eachOtherWayOutIsCountedUnderItsReason() {
        var refused = CenterConnectionMachine(offencesBeforeClose: 3)
        #expect(refused.opened(.refused) == [.cancelTimeout, .close(reason: "connectionLimit")])
        var evicted = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = evicted.opened(.admitted)
        #expect(evicted.evicted() == [.cancelTimeout, .close(reason: "evicted")])
        var slow = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = slow.opened(.admitted)
        _ = slow.frameReceived(.authenticated)
        #expect(slow.readerTooSlow() == [.cancelTimeout, .close(reason: "backpressure")])
        var stalled = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = stalled.opened(.admitted)
        _ = stalled.frameReceived(.authenticated)
        #expect(stalled.stalled() == [.cancelTimeout, .close(reason: "stalled")])
        #expect(stalled.readerTooSlow() == [], "closing already: one reason is counted")
        var broken = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = broken.opened(.admitted)
        #expect(broken.streamBroken(reason: "length") == [.cancelTimeout, .close(reason: "length")])
        var gone = CenterConnectionMachine(offencesBeforeClose: 3)
        _ = gone.opened(.admitted)
        #expect(gone.closed() == [.cancelTimeout], "the peer closed it: nothing to count, the timer stops")
    }
}
