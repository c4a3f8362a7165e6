import Testing
@testable import CenterConsole

@Test func assetsAreEmbedded() {
    #expect(!ConsoleAssets.consoleHTML.isEmpty)
}
