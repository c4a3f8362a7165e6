import Foundation
import Testing

@testable import DeviceKit

/// Cases shared by centre nodes on one journal (CenterJournal+Lease.swift), on both databases: a node owns
/// the cases it opens, no other node changes them while its lease holds, another takes them over (with the
/// updates their devices never acknowledged) once it lapses, and the node that comes back changes nothing of them.
@Suite struct CaseLeaseTests {
    static func alarm(_ id: UInt32) -> Message { .alarm(Alarm(id: id, kind: .button, triggeredAt: 1_000, battery: 80, flags: [])) }

    @Test(arguments: JournalBackend.allCases)
    func aLapsedNodesCasesAreTakenOverAndItChangesNothingOfThemWhenItComesBack(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            let a = try CenterJournal(location, node: "a")
            let b = try CenterJournal(location, node: "b")
            #expect(try a.renewLease(for: .seconds(30), reclaimingOwn: true).claimed.isEmpty)
            #expect(try b.renewLease(for: .seconds(30), reclaimingOwn: true).claimed.isEmpty)
            // A batch (journal_apply on PostgreSQL) and a single write (statements) each open one of a's cases.
            let outcomes = try a.commit([.message(device: 5, message: Self.alarm(1), at: 1_000, opensCase: true)])
            guard case .recorded(let first) = outcomes.first, let (engaging, _) = first.openedCase else {
                Issue.record("no case opened: \(outcomes)")
                return
            }
            let withdrawn = try #require(try a.record(device: 6, message: Self.alarm(2), at: 1_000, opensCase: true).openedCase?.0)
            #expect(try a.owner(ofCase: engaging.id) == "a")
            #expect(try a.owner(ofCase: withdrawn.id) == "a")

            // While a's lease holds, b takes nothing and changes nothing of a's.
            let early = try b.renewLease(for: .seconds(30))
            #expect(early.claimed.isEmpty && early.owned.isEmpty && early.from.isEmpty)
            var engaged = engaging
            engaged.state = .operatorEngaged
            #expect(try b.updateCase(engaged, at: 1_100) == nil)
            #expect(try b.commit([.caseUpdate(engaged, at: 1_100)]) == [.caseUpdate(nil)])
            #expect(try a.updateCase(engaged, at: 1_100) != nil)
            #expect(try a.renewLease(for: .seconds(30)).owned == [engaging.id, withdrawn.id])

            // a is gone: its lease lapses (here at once, a renewal that ends in the past: no test waits on a
            // clock), and b's next renewal takes both cases, in their states, with their undelivered updates
            // (received and engaged; received).
            _ = try a.renewLease(for: .seconds(-1))
            let later = try b.renewLease(for: .seconds(30))
            #expect(later.from == ["a"])
            #expect(later.claimed.map(\.id).sorted() == [engaging.id, withdrawn.id].sorted())
            #expect(later.claimed.first { $0.id == engaging.id }?.state == .operatorEngaged)
            #expect(later.owned == [engaging.id, withdrawn.id])
            #expect(later.undelivered.map(\.update.state) == [.received, .received, .operatorEngaged])
            #expect(try b.owner(ofCase: engaging.id) == "b")
            #expect(try b.renewLease(for: .seconds(30)).claimed.isEmpty, "taken once")

            // a comes back: it changes nothing of them, batch or statement, and its renewal says they are not its.
            var closed = engaged
            closed.state = .closed
            #expect(try a.commit([.caseUpdate(closed, at: 1_200)]) == [.caseUpdate(nil)])
            #expect(try a.updateCase(closed, at: 1_200) == nil)
            let back = try a.renewLease(for: .seconds(30), reclaimingOwn: true)
            #expect(back.claimed.isEmpty && back.owned.isEmpty)
            #expect(try b.updateCase(closed, at: 1_200) != nil)

            // The person's withdrawal closes a case whichever node records it.
            let cancel = try a.record(device: 6, message: .alarmCancel(AlarmCancel(id: 3, alarmID: 2, cancelledAt: 1_300)), at: 1_300)
            #expect(cancel.closedCase?.0.id == withdrawn.id)
            #expect(try b.renewLease(for: .seconds(30)).owned.isEmpty)
            try a.close()
            try b.close()
        }
    }

    /// A node that restarts under its name takes its own cases back at once; a case of no node (opened before
    /// cases had owners) goes to the first node that starts.
    @Test(arguments: JournalBackend.allCases)
    func aRestartedNodeTakesItsOwnCasesBackAndNobodysCasesAreTaken(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            let old = try CenterJournal(location)
            let nobodys = try #require(try old.record(device: 7, message: Self.alarm(1), at: 1_000, opensCase: true).openedCase?.0)
            let a = try CenterJournal(location, node: "a")
            #expect(try a.renewLease(for: .seconds(30), reclaimingOwn: true).claimed.map(\.id) == [nobodys.id])
            let own = try #require(try a.record(device: 8, message: Self.alarm(1), at: 1_000, opensCase: true).openedCase?.0)
            #expect(try a.renewLease(for: .seconds(30)).claimed.isEmpty)
            // a's next run, within its lease: its own again, and nothing else.
            let again = try CenterJournal(location, node: "a")
            let restart = try again.renewLease(for: .seconds(30), reclaimingOwn: true)
            #expect(restart.claimed.map(\.id).sorted() == [nobodys.id, own.id].sorted())
            #expect(restart.from.isEmpty)
            let b = try CenterJournal(location, node: "b")
            #expect(try b.renewLease(for: .seconds(30), reclaimingOwn: true).claimed.isEmpty)
            for journal in [old, a, again, b] { try journal.close() }
        }
    }
}

/// Two processes renewing under one node name are found by the second renewal of either (the first of a
/// process cannot tell its previous run's mark from another's).
@Suite struct NodeNameSharedTests {
    @Test(arguments: JournalBackend.allCases)
    func twoProcessesUnderOneNameFindEachOtherAndOneAloneNever(_ backend: JournalBackend) async throws {
        try await offThePool {
            let location = try backend.newLocation()
            let first = try CenterJournal(location, node: "a")
            #expect(try !first.renewLease(for: .seconds(30), reclaimingOwn: true).nameShared)
            #expect(try !first.renewLease(for: .seconds(30)).nameShared)
            #expect(try !first.renewLease(for: .seconds(30)).nameShared, "one process alone, renewing")
            // A restart (or a second process) under the same name: its first renewal says nothing.
            let second = try CenterJournal(location, node: "a")
            #expect(try !second.renewLease(for: .seconds(30), reclaimingOwn: true).nameShared)
            #expect(try first.renewLease(for: .seconds(30)).nameShared, "the first finds the second's mark")
            #expect(try second.renewLease(for: .seconds(30)).nameShared, "and the second the first's")
            let other = try CenterJournal(location, node: "b")
            _ = try other.renewLease(for: .seconds(30), reclaimingOwn: true)
            #expect(try !other.renewLease(for: .seconds(30)).nameShared)
            for journal in [first, second, other] { try journal.close() }
        }
    }
}

/// The follower's cursor over case update ids (CenterJournal+Follow.swift): ids committed out of order are read
/// once each, late ones as long as they come within the gap's lifetime.
@Suite struct FollowCursorTests {
    @Test func idsCommittedOutOfOrderAreEachReadOnce() {
        var cursor = FollowCursor(last: 10, gapLifetime: .seconds(30), gapLimit: 100)
        #expect(cursor.read([11, 14, 12], now: .zero) == [11, 12, 14])
        #expect(cursor.openGaps == [13], "13 was taken by a transaction not committed yet")
        #expect(cursor.read([13, 15], now: .seconds(1)) == [13, 15])
        #expect(cursor.openGaps.isEmpty)
        #expect(cursor.read([13, 15], now: .seconds(2)).isEmpty, "nothing twice")
        #expect(cursor.last == 15)
    }

    @Test func aGapIsGivenUpAfterItsLifetimeAndAtMostTheLimitAreKept() {
        var cursor = FollowCursor(last: 0, gapLifetime: .seconds(30), gapLimit: 5)
        #expect(cursor.read([3], now: .zero) == [3])
        #expect(cursor.openGaps == [1, 2])
        #expect(cursor.read([], now: .seconds(31)).isEmpty)
        #expect(cursor.openGaps.isEmpty, "a rolled-back id never comes: given up")
        #expect(cursor.read([1], now: .seconds(32)).isEmpty)
        _ = cursor.read([100], now: .seconds(33))
        #expect(cursor.openGaps == [95, 96, 97, 98, 99], "a jump keeps only the limit's worth, the latest")
    }
}

@Suite struct CentreNodeNameTests {
    @Test func aWorkerTakesItsSiblingsForItsOwnCentreAndNothingElse() {
        var configuration = CenterConfiguration(journalPath: "unused")
        configuration.node = "host-1/0"
        #expect(configuration.isSameCentre("host-1/0") && configuration.isSameCentre("host-1/3"))
        #expect(!configuration.isSameCentre("host-1") && !configuration.isSameCentre("host-10/0") && !configuration.isSameCentre(nil))
        configuration.node = "a"
        #expect(configuration.isSameCentre("a") && !configuration.isSameCentre("a/1") && !configuration.isSameCentre("b"))
    }
}
