import Testing

@testable import DeviceKit

/// `--forward dc09://…`: what it accepts, and what it says about what it does not.
@Suite struct DC09ForwardTargetTests {
    @Test func aFullURLIsRead() throws {
        let target = try DC09ForwardTarget(
            url: "dc09://arc.example:12345?account=12ab&key=000102030405060708090a0b0c0d0e0f&transport=udp&format=sia&receiver=7&line=3&window=16")
        #expect(target.host == "arc.example")
        #expect(target.port == 12345)
        #expect(target.account == "12AB")
        #expect(target.key?.byteCount == 16)
        #expect(target.transport == .udp)
        #expect(target.format == .siaDCS)
        #expect(target.receiver == "7")
        #expect(target.line == "3")
        #expect(target.window == 16)
        #expect(target.account(of: 0x1E240) == "12AB")
    }

    @Test func theDefaultsAreTCPSIAAndAnAccountPerDevice() throws {
        let target = try DC09ForwardTarget(url: "dc09://127.0.0.1:9000")
        #expect(target.transport == .tcp)
        #expect(target.format == .siaDCS)
        #expect(target.account == nil)
        #expect(target.key == nil)
        #expect(target.account(of: 0x1E240) == "0001E240")
        #expect(try DC09ForwardTarget(url: "dc09://[::1]:9000?format=cid&key-file=/k.hex").keyFile == "/k.hex")
    }

    @Test(arguments: [
        ("http://h:1", DC09ForwardURLError.Reason.scheme),
        ("dc09://:1", .noHost),
        ("dc09://h", .noPort),
        ("dc09://h:0", .port(0)),
        ("dc09://h:1/path", .extra),
        ("dc09://h:1?account=1234&account=3456", .repeated("account")),
        ("dc09://h:1?account=", .empty("account")),
        ("dc09://h:1?account=12", .account),
        ("dc09://h:1?account=XYZ1", .account),
        ("dc09://h:1?transport=sctp", .transport("sctp")),
        ("dc09://h:1?format=xml", .format("xml")),
        ("dc09://h:1?receiver=1234567", .number("receiver")),
        ("dc09://h:1?line=G", .number("line")),
        ("dc09://h:1?acount=1234", .unknownParameter("acount")),
        ("dc09://h:1?key=000102030405060708090a0b0c0d0e0f&key-file=k", .twoKeys),
        ("dc09://h:1?format=cid&account=1234", .contactIDWithAccount),
        ("dc09://h:1?window=0", .window("0")),
        ("dc09://h:1?window=many", .window("many")),
    ])
    func aMalformedURLSaysWhatWasWrong(url: String, reason: DC09ForwardURLError.Reason) {
        #expect(throws: DC09ForwardURLError(reason: reason)) { try DC09ForwardTarget(url: url) }
    }

    @Test func aKeyOfAWrongSizeIsRefusedWithoutShowingIt() throws {
        let secret = "00112233445566778899aabbccddeeff0011"  // 18 bytes
        let error = try #require(throws: DC09ForwardURLError.self) { try DC09ForwardTarget(url: "dc09://h:1?key=\(secret)") }
        guard case .key = error.reason else { Issue.record("\(error)"); return }
        #expect(error.description.contains("18"))
        #expect(!error.description.contains(secret))
        for size in [16, 24, 32] {
            let hex = String(repeating: "ab", count: size)
            #expect(try DC09ForwardTarget(url: "dc09://h:1?key=\(hex)").key?.byteCount == size)
        }
    }
}

/// A centre configured in code with more receivers than a primary and a backup is refused with the typed
/// error `--forward` gives, not stopped by a precondition in the sender.
@Suite struct DC09ForwardCountTests {
    @Test func aThirdReceiverIsRefusedWhenTheCentreStarts() async throws {
        let target = try DC09ForwardTarget(url: "dc09://127.0.0.1:9?account=1234")
        let error = await #expect(throws: DC09ForwardURLError.self) {
            _ = try await RunningCentre.start(journal: temporaryJournal()) { $0.forward = [target, target, target] }
        }
        #expect(error?.reason == .tooMany)
    }
}
