import Testing

@testable import DeviceKit

/// What the operator types at `--console`, and the list of cases it shows (pure).
@Suite struct CenterConsoleTests {
    @Test func helpQuitAndTheCaseCommandsAreUnderstood() throws {
        #expect(try ConsoleCommand.parse("help").get() == .help)
        #expect(try ConsoleCommand.parse("  QUIT ").get() == .quit)
        #expect(try ConsoleCommand.parse("list").get() == .list)
        #expect(try ConsoleCommand.parse("engage 3").get() == .engage(3))
        #expect(try ConsoleCommand.parse("hangup 12").get() == .hangUp(12))
        #expect(ConsoleCommand.helpText.contains("  help ") && ConsoleCommand.helpText.contains("  quit "))
    }

    /// An unknown word got the whole list of commands again.
    @Test func anUnknownWordIsSaidToBeUnknown() {
        #expect(ConsoleCommand.parse("lsit") == .failure(ConsoleCommandError("unknown command 'lsit': type 'help' for the commands")))
        #expect(ConsoleCommand.parse("engage one") == .failure(ConsoleCommandError("type 'engage N' with N the case number, e.g. 'engage 1'")))
    }

    @Test func theListShowsEachCasesAgeStateOnlineStateAndCall() {
        let now: WireTime = 1_800_000_000_000
        let cases = [
            CaseOverview(case: .init(id: 1, device: 1001, alarmID: 7, state: .received, openedAt: now - 42_500), deviceOnline: true, call: .none),
            CaseOverview(case: .init(id: 12, device: 20, alarmID: 3, state: .operatorEngaged, openedAt: now - 3_725_000), deviceOnline: false, call: .connected),
        ]
        #expect(CaseOverview.table(cases, now: now) == """
            case  device  alarm  age        state            device is  call
            1     1001    7      42 s       received         online     none
            12    20      3      1 h 2 min  operatorEngaged  OFFLINE    connected
            """)
        #expect(CaseOverview.table([], now: now) == "no open cases")
    }

    @Test func agesAreReadable() {
        #expect(CaseOverview.age(59_999) == "59 s")
        #expect(CaseOverview.age(185_000) == "3 min 5 s")
        #expect(CaseOverview.age(90_061_000) == "1 d 1 h")
    }
}
