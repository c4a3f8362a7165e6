import Testing

@testable import DeviceKit

@Suite struct HandledIDsTests {
    @Test func aRetransmissionIsNotNewAndOnlyTheLatestIDsAreRemembered() {
        var ids = HandledIDs(capacity: 3)
        #expect(ids.firstTime(1))
        #expect(!ids.firstTime(1), "a retransmission")
        #expect(ids.firstTime(2) && ids.firstTime(3) && ids.firstTime(4))
        #expect(!ids.firstTime(4) && !ids.firstTime(3) && !ids.firstTime(2))
        #expect(ids.firstTime(1), "forgotten after three newer ids")
    }
}
