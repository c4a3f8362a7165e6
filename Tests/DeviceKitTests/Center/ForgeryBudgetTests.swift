import Testing

@testable import DeviceKit

/// Frames under unknown ids that fail to authenticate, limited per source before any key derivation
/// (issue 12, finding 7).
@Suite struct ForgeryBudgetTests {
    static let forger = SourceAddress.v4(0x0a00_0001)
    static let town = SourceAddress.v4(0x0a00_0002)

    @Test func aSourceWhoseForgeriesRunOverItsBudgetDerivesNoMoreKeysUntilItRefills() {
        var budget = ForgeryBudget(rate: 2, burst: 4, sources: 16)
        var derived = 0
        for _ in 0..<1_000 where budget.allows(Self.forger, now: .seconds(10)) {
            derived += 1
            budget.charge(Self.forger, now: .seconds(10))
        }
        #expect(derived == 4)
        #expect(budget.allows(Self.town, now: .seconds(10)) == true, "another source keeps its budget")
        #expect(budget.allows(Self.forger, now: .milliseconds(10_400)) == false)
        #expect(budget.allows(Self.forger, now: .milliseconds(10_500)) == true, "2 a second: one more after 0.5 s")
    }

    @Test func framesThatAuthenticateCostNothing() {
        var budget = ForgeryBudget(rate: 1, burst: 1, sources: 16)
        for _ in 0..<1_000 { #expect(budget.allows(Self.town, now: .seconds(1)) == true) }
        #expect(budget.sources == 0)
    }

    @Test func theSourcesRememberedAreBounded() {
        var budget = ForgeryBudget(rate: 1, burst: 1, sources: 64)
        for address in UInt32(0)..<10_000 { budget.charge(.v4(address), now: .seconds(1)) }
        #expect(budget.sources <= 64)
    }
}
