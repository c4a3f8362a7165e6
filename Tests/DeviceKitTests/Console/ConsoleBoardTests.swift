import DeviceKit
import Testing

@testable import CenterConsole

@Suite struct ConsoleBoardTests {
    static func alarm(_ id: UInt32, battery: UInt8 = 80, flags: AlarmFlags = [.clockSynchronised]) -> Alarm {
        Alarm(id: id, kind: .button, triggeredAt: 1_000, battery: battery, flags: flags)
    }

    /// An alarm and its case, as the centre emits them.
    static func open(_ board: inout ConsoleBoard, case id: Int64, device: UInt32, alarm: UInt32 = 1, at: WireTime = 1_350) {
        board.apply(.alarm(device: device, alarm: Self.alarm(alarm), lateMilliseconds: 350, dispatched: true), at: at)
        board.apply(.caseUpdate(caseID: id, device: device, alarmID: alarm, state: .received), at: at)
    }

    @Test func aNewCaseCarriesItsAlarmAndResident() throws {
        var board = ConsoleBoard()
        board.residents = [1001: ResidentSummary(name: "Wang Fang", address: "3 Elm Road")]
        Self.open(&board, case: 7, device: 1001)
        let nextbatch = board.nextBatch()
        let batch = try #require(nextbatch)
        let row = try #require(batch.upsert.first)
        #expect(row.id == 7 && row.device == 1001 && row.alarm == 1 && row.state == "received")
        #expect(row.kind == "button" && row.pressedAt == 1_000 && row.receivedAt == 1_350 && row.lateMs == 350)
        #expect(row.battery == 80 && row.clockVerified && !row.onBattery && row.online)
        #expect(row.resident?.name == "Wang Fang")
        #expect(batch.counts.received == 1)
        let after = board.nextBatch()
        #expect(after == nil, "nothing changed since")
    }

    @Test func anUnverifiedClockHasNoLatenessAndUnknownBatteryIsNull() throws {
        var board = ConsoleBoard()
        board.apply(.alarm(device: 5, alarm: Self.alarm(2, battery: 255, flags: [.onBattery]), lateMilliseconds: 99_999, dispatched: true), at: 10)
        board.apply(.caseUpdate(caseID: 1, device: 5, alarmID: 2, state: .received), at: 10)
        let next = board.nextBatch()
        let row = try #require(next?.upsert.first)
        #expect(row.lateMs == nil && !row.clockVerified && row.battery == nil && row.onBattery)
    }

    @Test func takingDispatchingAndClosingMoveTheRowThenRemoveIt() throws {
        var board = ConsoleBoard()
        Self.open(&board, case: 3, device: 9)
        _ = board.nextBatch()
        board.apply(.caseUpdate(caseID: 3, device: 9, alarmID: 1, state: .operatorEngaged), at: 2_000)
        board.taken(3, by: "alice")
        let nextbatch = board.nextBatch()
        var batch = try #require(nextbatch)
        #expect(batch.upsert.map(\.state) == ["operatorEngaged"] && batch.upsert.first?.takenBy == "alice")
        #expect(batch.counts == StateCounts(received: 0, operatorEngaged: 1, helpDispatched: 0))
        board.apply(.caseUpdate(caseID: 3, device: 9, alarmID: 1, state: .helpDispatched), at: 3_000)
        let againbatch = board.nextBatch()
        batch = try #require(againbatch)
        #expect(batch.upsert.first?.state == "helpDispatched")
        board.apply(.caseUpdate(caseID: 3, device: 9, alarmID: 1, state: .closed), at: 4_000)
        let closing = board.nextBatch()
        batch = try #require(closing)
        #expect(batch.remove == [3] && batch.upsert.isEmpty && batch.counts == StateCounts())
    }

    @Test func callsAndSupervisionReachTheRowsOfTheirDevice() throws {
        var board = ConsoleBoard()
        Self.open(&board, case: 1, device: 42)
        Self.open(&board, case: 2, device: 43)
        _ = board.nextBatch()
        board.apply(.callOffered(device: 42, callID: 5, alarmID: 1), at: 0)
        board.apply(.offline(device: 43), at: 0)
        let nextbatch = board.nextBatch()
        let batch = try #require(nextbatch)
        let rows = Dictionary(uniqueKeysWithValues: batch.upsert.map { ($0.id, $0) })
        #expect(rows[1]?.call == "offered" && rows[1]?.online == true)
        #expect(rows[2]?.online == false && rows[2]?.call == "none")
        board.apply(.operatorCall(device: 42, phone: "sip:desk1@x", stage: .bridged), at: 0)
        let bridged = board.nextBatch()
        #expect(bridged?.upsert.first?.call == "bridged")
    }

    @Test func theViewHoldsTheMostUrgentAndCountsTheRest() throws {
        var board = ConsoleBoard(viewLimit: 3)
        for id in 1...6 { Self.open(&board, case: Int64(id), device: UInt32(100 + id)) }
        board.apply(.caseUpdate(caseID: 1, device: 101, alarmID: 1, state: .operatorEngaged), at: 0)
        let snapshot = board.snapshot()
        // Not yet taken first (2, 3, 4), oldest first; case 1 is taken, so it waits behind them.
        #expect(snapshot.cases.map(\.id) == [2, 3, 4] && snapshot.more == 3)
        _ = board.nextBatch()
        board.apply(.caseUpdate(caseID: 2, device: 102, alarmID: 1, state: .closed), at: 0)
        let nextbatch = board.nextBatch()
        let batch = try #require(nextbatch)
        #expect(batch.remove == [2] && batch.upsert.map(\.id) == [5] && batch.more == 2)
    }

    @Test func aLargeQueueSelectsTheSameViewAsASort() {
        var board = ConsoleBoard(viewLimit: 50)
        var generator = SystemRandomNumberGenerator()
        let ids = (1...2_000).map { Int64($0) }.shuffled(using: &generator)
        for id in ids {
            Self.open(&board, case: id, device: UInt32(id))
            if id % 3 == 0 { board.apply(.caseUpdate(caseID: id, device: UInt32(id), alarmID: 1, state: .operatorEngaged), at: 0) }
        }
        let expected = board.rows.values.sorted { ($0.state == "received" ? 0 : 1, $0.id) < ($1.state == "received" ? 0 : 1, $1.id) }
            .prefix(50).map(\.id)
        #expect(board.view().map(\.id) == Array(expected))
    }

    @Test func restoredCasesAndResidentsChangedLaterAreSent() throws {
        var board = ConsoleBoard()
        var row = CaseRow(id: 11, device: 77, alarm: 4, state: "operatorEngaged", receivedAt: 5)
        row.takenBy = "bob"
        board.restore(row)
        _ = board.nextBatch()
        board.residents = [77: ResidentSummary(name: "Li Wei", address: "")]
        let nextbatch = board.nextBatch()
        let batch = try #require(nextbatch)
        #expect(batch.upsert.first?.resident?.name == "Li Wei" && batch.upsert.first?.takenBy == "bob")
    }

    @Test func alarmsWhoseCaseNeverOpensAreNotKeptForever() {
        var board = ConsoleBoard(viewLimit: 1)
        for id in 1...20_000 {
            board.apply(.alarm(device: UInt32(id), alarm: Self.alarm(1), lateMilliseconds: 0, dispatched: false), at: 0)
        }
        #expect(board.pendingAlarmCount <= 4 * 1 + 1024 + 1)
    }
}

@Suite struct LoginThrottleTests {
    @Test func anAddressGetsFiveAttemptsThenOneEveryTenSeconds() {
        var throttle = LoginThrottle()
        let start = Duration.seconds(100)
        let allowed = (0..<6).map { _ in throttle.attempt(from: "10.0.0.1", now: start) }
        #expect(allowed == [true, true, true, true, true, false])
        let other = throttle.attempt(from: "10.0.0.2", now: start)
        #expect(other, "another address is not limited")
        let early = throttle.attempt(from: "10.0.0.1", now: start + .seconds(9))
        let later = throttle.attempt(from: "10.0.0.1", now: start + .seconds(10))
        #expect(!early && later)
    }

    @Test func anAccountIsLockedAfterTenFailuresFromAnywhere() {
        var throttle = LoginThrottle()
        let now = Duration.seconds(5)
        for _ in 0..<10 {
            let may = throttle.accountMayTry("alice", now: now)
            #expect(may)
            throttle.failed("alice", now: now)
        }
        let locked = !throttle.accountMayTry("alice", now: now)
        let bob = throttle.accountMayTry("bob", now: now)
        let later = throttle.accountMayTry("alice", now: now + .seconds(30))
        #expect(locked && bob && later)
    }

    @Test func trackedAddressesAreBounded() {
        var throttle = LoginThrottle(limits: .init(limit: 100))
        for index in 0..<1_000 { _ = throttle.attempt(from: "10.0.\(index / 256).\(index % 256)", now: .seconds(1)) }
        #expect(throttle.trackedAddresses <= 100)
    }
}

@Suite struct ConsoleSessionsTests {
    @Test func tokensAreLongRandomAndCookieSafe() {
        let tokens = (0..<100).map { _ in ConsoleSessions.randomToken() }
        #expect(Set(tokens).count == 100)
        #expect(tokens.allSatisfy { $0.count == 43 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } })
    }

    @Test func aSessionEndsWhenItExpiresOrIsClosed() throws {
        let sessions = ConsoleSessions(lifetime: .seconds(60))
        let session = sessions.open(name: "alice", role: .operator, language: .zh, now: .seconds(0))
        #expect(sessions.session(session.token, now: .seconds(59))?.name == "alice")
        #expect(sessions.session(session.token, now: .seconds(60)) == nil)
        let other = sessions.open(name: "bob", role: .supervisor, language: .en, now: .seconds(0))
        sessions.closeAll(of: "bob")
        #expect(sessions.session(other.token, now: .seconds(1)) == nil)
        #expect(sessions.session(nil, now: .zero) == nil && sessions.session("forged", now: .zero) == nil)
    }

    @Test func theOldestSessionGoesWhenTheLimitIsReached() {
        let sessions = ConsoleSessions(lifetime: .seconds(600), limit: 2)
        let first = sessions.open(name: "a", role: .operator, language: .en, now: .seconds(1))
        let second = sessions.open(name: "b", role: .operator, language: .en, now: .seconds(2))
        let third = sessions.open(name: "c", role: .operator, language: .en, now: .seconds(3))
        #expect(sessions.session(first.token, now: .seconds(4)) == nil)
        #expect(sessions.session(second.token, now: .seconds(4)) != nil && sessions.session(third.token, now: .seconds(4)) != nil)
    }

    @Test func tokensCompareWhole() {
        #expect(ConsoleSessions.sameToken("abc", "abc"))
        #expect(!ConsoleSessions.sameToken("abc", "abd") && !ConsoleSessions.sameToken("abc", "ab") && !ConsoleSessions.sameToken("", "a"))
    }
}

@Suite struct ConsolePagesTests {
    @Test func theLoginTemplateIsFilledAndEscaped() {
        let pages = ConsolePages(catalogue: Array(#"{"en": {"login.title": "Log <in>"}, "zh": {"login.title": "登录"}}"#.utf8))
        let template = "<html lang=\"{{lang}}\"><h1>{{t:login.title}}</h1><p {{error-hidden}}>{{error}}</p>{{t:missing}}{{other}}"
        let english = pages.fill(template, .en, error: "")
        #expect(english == "<html lang=\"en\"><h1>Log &lt;in&gt;</h1><p hidden></p>missing{{other}}")
        let chinese = pages.fill(template, .zh, error: "<script>")
        #expect(chinese == "<html lang=\"zh-Hans\"><h1>登录</h1><p >&lt;script&gt;</p>missing{{other}}")
    }

    @Test func theLanguageComesFromTheQueryThenTheBrowser() {
        #expect(ConsoleLanguage.preferred(query: "zh", acceptLanguage: "en") == .zh)
        #expect(ConsoleLanguage.preferred(query: "xx", acceptLanguage: "zh-CN,zh;q=0.9,en;q=0.8") == .zh)
        #expect(ConsoleLanguage.preferred(query: nil, acceptLanguage: "de-DE,en;q=0.5") == .en)
        #expect(ConsoleLanguage.preferred(query: nil, acceptLanguage: nil) == .en)
    }

    @Test func everyRefusalTheServerNamesIsInTheCatalogueInBothLanguages() {
        let pages = ConsolePages()
        for refusal in ConsoleRoutes.ErrorCode.allCases where refusal != .taken {
            for language in ["en", "zh"] {
                #expect(pages.catalogue[language]?["error.code.\(refusal.rawValue)"] != nil, "\(language) lacks error.code.\(refusal.rawValue)")
            }
        }
    }

    @Test func theShippedCatalogueHasTheSameKeysInBothLanguages() {
        let pages = ConsolePages()
        let english = Set(pages.catalogue["en"]?.keys ?? [:].keys)
        let chinese = Set(pages.catalogue["zh"]?.keys ?? [:].keys)
        #expect(english == chinese, "only in en: \(english.subtracting(chinese).sorted()); only in zh: \(chinese.subtracting(english).sorted())")
    }
}
