import Testing

@testable import DeviceKit

@Suite struct HandledIDsTests {
    @Test func aRetransmissionIsNotNewAndOnlyTheLatestIDsAreRemembered() {
        var ids = HandledIDs(capacity: 3)
        let seen = [1, 1, 2, 3, 4, 4, 3, 2, 1].map { ids.firstTime($0) }
        // 1 again is a retransmission; after three newer ids (2, 3, 4) it is forgotten.
        #expect(seen == [true, false, true, true, true, false, false, false, true])
    }
}
