import Testing

@testable import DeviceKit

/// Which TCP connections give way when there are too many (issue 12, finding 6), as transcripts.
@Suite struct ConnectionTableTests {
    static let attacker = SourceAddress.v4(0x7f00_0002)
    static let home = SourceAddress.v4(0x7f00_0001)

    @Test func anAddressOverItsLimitOfUnauthenticatedConnectionsLosesItsOldest() {
        var table = ConnectionTable(limits: .init(total: 100, unauthenticatedPerAddress: 2))
        #expect(table.opened(1, from: Self.attacker) == .admit(evicting: []))
        #expect(table.opened(2, from: Self.attacker) == .admit(evicting: []))
        #expect(table.opened(3, from: Self.attacker) == .admit(evicting: [1]))
        #expect(table.opened(4, from: Self.home) == .admit(evicting: []), "another address has its own limit")
        #expect(table.count == 3)
    }

    @Test func atTheTotalLimitTheOldestUnauthenticatedConnectionGivesWayNeverAnAuthenticatedOne() {
        var table = ConnectionTable(limits: .init(total: 3, unauthenticatedPerAddress: 10))
        #expect(table.opened(1, from: Self.home) == .admit(evicting: []))
        table.authenticated(1)
        #expect(table.opened(2, from: Self.attacker) == .admit(evicting: []))
        #expect(table.opened(3, from: Self.attacker) == .admit(evicting: []))
        #expect(table.opened(4, from: Self.home) == .admit(evicting: [2]), "the oldest unauthenticated, not the device's")
        table.authenticated(4)
        #expect(table.opened(5, from: Self.attacker) == .admit(evicting: [3]))
        table.authenticated(5)
        #expect(table.opened(6, from: Self.attacker) == .refuse, "all held connections are authenticated")
        table.closed(5)
        #expect(table.opened(7, from: Self.attacker) == .admit(evicting: []))
    }

    @Test func theOldestUnauthenticatedConnectionIsTheOneToCloseWhenDescriptorsRunOut() {
        var table = ConnectionTable(limits: .init(total: 10, unauthenticatedPerAddress: 10))
        _ = table.opened(1, from: Self.home)
        _ = table.opened(2, from: Self.attacker)
        _ = table.opened(3, from: Self.attacker)
        table.authenticated(1)
        #expect(table.oldestUnauthenticated() == 2)
        table.closed(2)
        #expect(table.oldestUnauthenticated() == 3)
        table.authenticated(3)
        #expect(table.oldestUnauthenticated() == nil)
        #expect(table.unauthenticatedCount == 0 && table.count == 2)
    }

    @Test func runningOutOfDescriptorsLowersTheLimitAndEvictsTheOldestUnauthenticatedOverIt() {
        var table = ConnectionTable(limits: .init(total: 1_000, unauthenticatedPerAddress: 100))
        for id in UInt64(1)...10 { _ = table.opened(id, from: Self.attacker) }
        table.authenticated(1)
        #expect(table.descriptorsExhausted(spare: 4) == [2, 3, 4, 5])
        #expect(table.limits.total == 6 && table.count == 6)
        #expect(table.opened(11, from: Self.home) == .admit(evicting: [6]), "accepting goes on by evicting")
    }
}
