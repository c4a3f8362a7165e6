import Foundation
import Logging
import Testing

@testable import CenterConsole
@testable import DeviceKit

/// The console served by a real centre on loopback, driven over HTTP as a browser would (docs/console.md).
@Suite(.serialized) struct ConsoleServerTests {
    /// A centre with the console on a free port, two operators and a supervisor in its journal.
    struct Harness {
        let centre: RunningCentre
        let http: TestHTTPClient
        let journal: String

        static let password = "correct horse battery"

        static func start(_ configure: (inout CenterConfiguration) -> Void = { _ in }) async throws -> Harness {
            let journal = temporaryJournal()
            let setup = try CenterJournal(path: journal)
            // A low bcrypt cost keeps the tests fast; the server checks any cost.
            let hash = try OperatorPassword.hash(password, cost: 4)
            for (name, role, language) in [("alice", OperatorRole.operator, ConsoleLanguage.en), ("bob", .operator, .zh), ("sue", .supervisor, .en)] {
                try setup.addOperator(OperatorAccount(name: name, passwordHash: hash, role: role, language: language, createdAt: 1))
            }
            try setup.importResidents([Resident(device: 1, name: "Wang Fang", address: "3 Elm Road", contacts: "son 555-0101", notes: "<img src=x onerror=alert(1)>")], at: 1)
            try setup.close()
            let console = ConsoleServer(
                configuration: ConsoleConfiguration(port: 0), logger: Logger(label: "test.console", factory: { _ in SwiftLogNoOpLogHandler() }))
            let centre = try await RunningCentre.start(journal: journal, attachments: [console], configure)
            return Harness(centre: centre, http: TestHTTPClient(port: try #require(centre.ports.web)), journal: journal)
        }

        func actions() throws -> [OperatorAction] {
            let journal = try CenterJournal(path: self.journal)
            defer { try? journal.close() }
            return try journal.caseRecords(search: nil, before: nil, limit: 100).flatMap(\.actions)
        }
    }

    @Test func nothingButTheLoginPageIsServedWithoutASession() async throws {
        let harness = try await Harness.start()
        defer { Task { await harness.centre.stop() } }
        let http = harness.http
        let root = try await http.request("GET", "/")
        #expect(root.status == 303 && root.headers["location"] == "/login" && root.body.isEmpty)
        for path in ["/assets/console.js", "/assets/console.css", "/assets/catalogue.json", "/api/me", "/api/stream", "/api/cases/1",
            "/api/devices", "/api/history", "/api/operators", "/nowhere"]
        {
            let answer = try await http.request("GET", path)
            #expect(answer.status == 401 && answer.json["error"] as? String == "login required", "GET \(path): \(answer.status)")
        }
        for path in ["/logout", "/api/cases/1/take", "/api/cases/1/close", "/api/operators", "/api/registry"] {
            let answer = try await http.request("POST", path, body: "{}")
            #expect(answer.status == 401, "POST \(path): \(answer.status)")
        }
        let forged = try await http.request("GET", "/api/me", cookie: ConsoleSessions.randomToken())
        #expect(forged.status == 401)
        let stream = try await http.stream(cookie: nil)
        _ = try await stream.next(within: 5)
        #expect(stream.status == 401)
        let login = try await http.request("GET", "/login?lang=zh")
        #expect(login.status == 200 && login.body.contains("lang=\"zh-Hans\""))
        #expect(login.headers["content-security-policy"]?.contains("default-src 'none'") == true)
        #expect(login.headers["x-frame-options"] == "DENY" && login.headers["cache-control"] == "no-store")
    }

    @Test func aWrongPasswordIsRefusedAndARightOneGivesAStrictHttpOnlyCookie() async throws {
        let harness = try await Harness.start()
        defer { Task { await harness.centre.stop() } }
        let http = harness.http
        let wrong = try await http.request("POST", "/login", body: "name=alice&password=nope-nope-nope", contentType: "application/x-www-form-urlencoded")
        #expect(wrong.status == 401 && wrong.cookies.isEmpty)
        let unknown = try await http.request("POST", "/login", body: "name=mallory&password=\(Harness.password)", contentType: "application/x-www-form-urlencoded")
        #expect(unknown.status == 401 && unknown.cookies.isEmpty)
        let right = try await http.request("POST", "/login", body: "name=alice&password=correct+horse+battery", contentType: "application/x-www-form-urlencoded")
        #expect(right.status == 303 && right.headers["location"] == "/")
        let cookie = try #require(right.cookies.first)
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Path=/"))
        let (token, csrf) = try await http.logIn("alice", Harness.password)
        let me = try await http.request("GET", "/api/me", cookie: token)
        #expect(me.json["name"] as? String == "alice" && me.json["role"] as? String == "operator" && me.json["csrf"] as? String == csrf)
        let page = try await http.request("GET", "/", cookie: token)
        #expect(page.status == 200 && page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
        // Logged out, the token is worth nothing.
        let out = try await http.request("POST", "/logout", cookie: token, csrf: csrf)
        #expect(out.status == 303)
        let after = try await http.request("GET", "/api/me", cookie: token)
        #expect(after.status == 401)
        #expect(harness.centre.metric(#"center_console_logins_total{outcome="refused"}"#) == 2)
        #expect(harness.centre.metric(#"center_console_logins_total{outcome="accepted"}"#) == 2)
    }

    @Test func loginsAreLimitedPerAddress() async throws {
        let harness = try await Harness.start()
        defer { Task { await harness.centre.stop() } }
        var statuses: [Int] = []
        for _ in 0..<6 {
            let answer = try await harness.http.request("POST", "/login", body: "name=alice&password=wrong-password", contentType: "application/x-www-form-urlencoded")
            statuses.append(answer.status)
            if answer.status == 429 { #expect(answer.headers["retry-after"] == "10") }
        }
        #expect(statuses == [401, 401, 401, 401, 401, 429])
        // Even the right password waits.
        let right = try await harness.http.request("POST", "/login", body: "name=alice&password=correct+horse+battery", contentType: "application/x-www-form-urlencoded")
        #expect(right.status == 429)
    }

    @Test func aChangeWithoutTheCSRFTokenOrFromAnotherOriginIsRefused() async throws {
        let harness = try await Harness.start()
        defer { Task { await harness.centre.stop() } }
        let (token, csrf) = try await harness.http.logIn("alice", Harness.password)
        let none = try await harness.http.request("PUT", "/api/me/language", cookie: token, body: #"{"language":"zh"}"#)
        #expect(none.status == 403)
        // Another token: its first character changed (to one it is not: "x" + the rest was the same token when
        // the random one began with "x", one run in 64).
        let other = (csrf.first == "x" ? "y" : "x") + csrf.dropFirst()
        let wrong = try await harness.http.request("PUT", "/api/me/language", cookie: token, csrf: other, body: #"{"language":"zh"}"#)
        #expect(wrong.status == 403)
        let foreign = try await harness.http.request(
            "PUT", "/api/me/language", cookie: token, csrf: csrf, headers: ["Origin": "http://evil.example"], body: #"{"language":"zh"}"#)
        #expect(foreign.status == 403)
        let right = try await harness.http.request(
            "PUT", "/api/me/language", cookie: token, csrf: csrf, headers: ["Origin": "http://127.0.0.1:\(harness.http.port)"], body: #"{"language":"zh"}"#)
        #expect(right.status == 200)
        let me = try await harness.http.request("GET", "/api/me", cookie: token)
        #expect(me.json["language"] as? String == "zh")
    }

    /// Issue 18: the console of any node shows every case. Node a (no console) records the alarm and works the
    /// case; node b's console, on the same PostgreSQL journal, shows it as it comes, lists it in a new
    /// console's snapshot, and refuses to act on it in the operator's words: another node works it.
    @Test func aConsoleShowsTheCasesOfAnotherNodeAndSaysWhichNodeWorksThem() async throws {
        let database = try await offThePool {
            let database = try PostgresTestCluster.shared.newDatabase()
            let setup = try CenterJournal(.postgres(database))
            try setup.addOperator(
                OperatorAccount(name: "alice", passwordHash: try OperatorPassword.hash(Harness.password, cost: 4), role: .operator, language: .en, createdAt: 1))
            try setup.close()
            return database
        }
        let nodeA = try await RunningCentre.start(journal: "unused") {
            $0.journal = .postgres(database)
            $0.node = "a"
        }
        let console = ConsoleServer(
            configuration: ConsoleConfiguration(port: 0), logger: Logger(label: "test.console", factory: { _ in SwiftLogNoOpLogHandler() }))
        let nodeB = try await RunningCentre.start(journal: "unused", attachments: [console]) {
            $0.journal = .postgres(database)
            $0.node = "b"
        }
        let http = TestHTTPClient(port: try #require(nodeB.ports.web))
        let alice = try await http.logIn("alice", Harness.password)
        let stream = try await http.stream(cookie: alice.token)
        _ = try await stream.next()  // the snapshot
        let device = try await TestDevice.connect(1, to: nodeA)
        _ = try await device.handshake()
        try await device.send(.testAlarm(7))
        let shown = try await stream.first { _, data in ((data["upsert"] as? [[String: Any]])?.isEmpty == false) }
        let row = try #require((shown?.data["upsert"] as? [[String: Any]])?.first)
        #expect(row["state"] as? String == "received" && row["device"] as? Int == 1 && row["alarm"] as? Int == 7)
        let id = try #require(row["id"] as? Int)
        let take = try await http.request("POST", "/api/cases/\(id)/take", cookie: alice.token, csrf: alice.csrf)
        #expect(take.status == 409 && take.json["code"] as? String == "otherNode" && take.json["node"] as? String == "a", "\(take.status) \(take.body)")
        // A console opened now lists it in its snapshot.
        let later = try await http.stream(cookie: alice.token)
        let snapshot = try #require(try await later.next())
        let listed = (snapshot.data["cases"] as? [[String: Any]])?.map { $0["id"] as? Int }
        #expect(snapshot.event == "snapshot" && listed == [id], "\(snapshot.data)")
        await nodeA.stop()
        await nodeB.stop()
    }

    @Test func aPressShowsUpOnEveryConsoleAndTheCaseIsWorkedToItsClose() async throws {
        let harness = try await Harness.start()
        defer { Task { await harness.centre.stop() } }
        let http = harness.http
        let alice = try await http.logIn("alice", Harness.password)
        let bob = try await http.logIn("bob", Harness.password)
        let aliceStream = try await http.stream(cookie: alice.token)
        let bobStream = try await http.stream(cookie: bob.token)
        let first = try #require(try await aliceStream.next())
        #expect(first.event == "snapshot" && (first.data["cases"] as? [Any])?.isEmpty == true)

        let device = try await TestDevice.connect(1, to: harness.centre)
        _ = try await device.handshake()
        try await device.send(.testAlarm(7))
        func row(_ event: (event: String, data: [String: Any])?) -> [String: Any]? {
            ((event?.data["upsert"] ?? event?.data["cases"]) as? [[String: Any]])?.first
        }
        let shown = try await aliceStream.first { _, data in ((data["upsert"] as? [[String: Any]])?.isEmpty == false) }
        let newCase = try #require(row(shown))
        #expect(newCase["state"] as? String == "received" && newCase["device"] as? Int == 1 && newCase["alarm"] as? Int == 7)
        #expect((newCase["resident"] as? [String: Any])?["name"] as? String == "Wang Fang")
        let id = try #require(newCase["id"] as? Int)
        let seenByBob = try await bobStream.first { _, data in ((data["upsert"] as? [[String: Any]])?.first?["id"] as? Int) == id }
        #expect(seenByBob != nil)

        let early = try await http.request("POST", "/api/cases/\(id)/dispatch", cookie: alice.token, csrf: alice.csrf, body: #"{"note":"ambulance"}"#)
        #expect(early.status == 409 && early.json["code"] as? String == "takeFirst")
        // Two operators cannot take the same case.
        let take = try await http.request("POST", "/api/cases/\(id)/take", cookie: alice.token, csrf: alice.csrf)
        #expect(take.status == 200)
        let second = try await http.request("POST", "/api/cases/\(id)/take", cookie: bob.token, csrf: bob.csrf)
        #expect(second.status == 409 && second.json["by"] as? String == "alice" && second.json["code"] as? String == "taken")
        let taken = try await bobStream.first { _, data in
            ((data["upsert"] as? [[String: Any]])?.first { $0["id"] as? Int == id })?["takenBy"] as? String == "alice"
        }
        #expect(taken != nil, "bob sees that alice took it")

        let noNote = try await http.request("POST", "/api/cases/\(id)/dispatch", cookie: alice.token, csrf: alice.csrf, body: "{}")
        #expect(noNote.status == 400 && noNote.json["code"] as? String == "noteRequired")
        let dispatch = try await http.request("POST", "/api/cases/\(id)/dispatch", cookie: alice.token, csrf: alice.csrf, body: #"{"note":"ambulance called"}"#)
        #expect(dispatch.status == 200)
        let close = try await http.request("POST", "/api/cases/\(id)/close", cookie: bob.token, csrf: bob.csrf, body: #"{"note":"son is with her"}"#)
        #expect(close.status == 200)
        let removed = try await aliceStream.first { _, data in (data["remove"] as? [Int])?.contains(id) == true }
        #expect(removed != nil)
        let again = try await http.request("POST", "/api/cases/\(id)/close", cookie: bob.token, csrf: bob.csrf)
        #expect(again.status == 404 && again.json["code"] as? String == "notOpen")
        #expect(harness.centre.metric(#"center_console_actions_total{action="take"}"#) == 1)
        #expect(harness.centre.metric("center_console_streams") == 2)
        // The device heard each state.
        let states = try await device.received { message in
            if case .caseUpdate(let update) = message { return update.state == .closed } else { return false }
        }
        #expect(states != nil)

        // The case in full, from the journal: who did what, with the notes.
        let detail = try await http.request("GET", "/api/cases/\(id)", cookie: bob.token)
        #expect(detail.status == 200)
        let history = try #require(detail.json["history"] as? [[String: Any]])
        let actions = history.compactMap { entry -> String? in
            guard let by = entry["by"] as? String else { return nil }
            return "\(entry["what"] ?? "") \(by) \(entry["note"] as? String ?? "")"
        }
        #expect(actions == ["take alice ", "dispatch alice ambulance called", "close bob son is with her"])
        #expect((detail.json["resident"] as? [String: Any])?["notes"] as? String == "<img src=x onerror=alert(1)>")
        #expect(detail.headers["content-type"]?.hasPrefix("application/json") == true)
        #expect((detail.json["case"] as? [String: Any])?["state"] as? String == "closed")

        let search = try await http.request("GET", "/api/history?q=ambulance", cookie: alice.token)
        #expect((search.json["cases"] as? [[String: Any]])?.map { $0["id"] as? Int } == [id])
        await device.close()
    }

    @Test func devicesShowWhatTheyLastSaidAndTheOnesThatNeedATechnician() async throws {
        let harness = try await Harness.start()
        defer { Task { await harness.centre.stop() } }
        let (token, _) = try await harness.http.logIn("alice", Harness.password)
        let device = try await TestDevice.connect(2, rootKey: RunningCentre.rootKey.reversed(), to: harness.centre)
        _ = try await device.handshake()
        try await device.send(.heartbeat(Heartbeat(status: [.buttonPresent], battery: 12)))
        _ = try await device.received { if case .heartbeatAck = $0 { true } else { false } }
        let all = try await harness.http.request("GET", "/api/devices", cookie: token)
        let rows = try #require(all.json["devices"] as? [[String: Any]])
        let two = try #require(rows.first { $0["device"] as? Int == 2 })
        #expect(two["online"] as? Bool == true && two["battery"] as? Int == 12 && two["mains"] as? Bool == false && two["button"] as? Bool == true)
        #expect(two["firmware"] as? String != nil)
        #expect(Set(two["attention"] as? [String] ?? []) == ["batteryLow", "mainsLost"])
        // Device 1 is in the registry but was never heard.
        let one = try #require(rows.first { $0["device"] as? Int == 1 })
        #expect(one["attention"] as? [String] == ["neverHeard"] && (one["resident"] as? [String: Any])?["name"] as? String == "Wang Fang")
        let found = try await harness.http.request("GET", "/api/devices?q=wang", cookie: token)
        #expect((found.json["devices"] as? [[String: Any]])?.map { $0["device"] as? Int } == [1])
        await device.close()
    }

    @Test func supervisorsManageAccountsAndTheRegistryAndOperatorsCannot() async throws {
        let harness = try await Harness.start()
        defer { Task { await harness.centre.stop() } }
        let http = harness.http
        let alice = try await http.logIn("alice", Harness.password)
        let sue = try await http.logIn("sue", Harness.password)
        let refused = try await http.request("GET", "/api/operators", cookie: alice.token)
        #expect(refused.status == 403)
        let csv = "device,name,notes\n1,Wang Fang,key safe 4711\nabc,Nobody,\n"
        let bad = try await http.request("POST", "/api/registry", cookie: sue.token, csrf: sue.csrf, body: csv, contentType: "text/csv")
        #expect(bad.status == 400 && (bad.json["rows"] as? [[String: Any]])?.first?["line"] as? Int == 3)
        let good = try await http.request("POST", "/api/registry", cookie: sue.token, csrf: sue.csrf, body: "device,name,address\n1,Wang Fang,5 Oak Lane\n9,Li Wei,\n", contentType: "text/csv")
        #expect(good.status == 200 && good.json["imported"] as? Int == 2)
        let weak = try await http.request("POST", "/api/operators", cookie: sue.token, csrf: sue.csrf, body: #"{"name":"carol","password":"short"}"#)
        #expect(weak.status == 400)
        let added = try await http.request("POST", "/api/operators", cookie: sue.token, csrf: sue.csrf, body: #"{"name":"carol","password":"a long enough one","role":"operator","language":"zh"}"#)
        #expect(added.status == 201)
        let taken = try await http.request("POST", "/api/operators", cookie: sue.token, csrf: sue.csrf, body: #"{"name":"carol","password":"a long enough one"}"#)
        #expect(taken.status == 409)
        let carol = try await http.logIn("carol", "a long enough one")
        let stream = try await http.stream(cookie: alice.token)
        _ = try await stream.next()
        let disabled = try await http.request("POST", "/api/operators/alice/disable", cookie: sue.token, csrf: sue.csrf)
        #expect(disabled.status == 200)
        let gone = try await http.request("GET", "/api/me", cookie: alice.token)
        #expect(gone.status == 401)
        let relogin = try await http.request("POST", "/login", body: "name=alice&password=correct+horse+battery", contentType: "application/x-www-form-urlencoded")
        #expect(relogin.status == 401)
        let own = try await http.request("POST", "/api/operators/sue/disable", cookie: sue.token, csrf: sue.csrf)
        #expect(own.status == 409)
        let me = try await http.request("GET", "/api/me", cookie: carol.token)
        #expect(me.json["language"] as? String == "zh")
        let list = try await http.request("GET", "/api/operators", cookie: sue.token)
        let names = (list.json["operators"] as? [[String: Any]])?.map { "\($0["name"] ?? "") \($0["disabled"] as? Bool == true)" }
        #expect(names == ["alice true", "bob false", "carol false", "sue false"])
    }
}
