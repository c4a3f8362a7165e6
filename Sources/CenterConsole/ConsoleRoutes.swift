import DeviceKit
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A request's context: where it came from, and the operator's session once `ConsoleGate` found it.
struct ConsoleContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// The source address, for the login limit.
    let source: String
    var session: ConsoleSession?

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        self.source = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// The registry's CSV is the largest body (100,000 rows).
    var maxUploadSize: Int { 32 << 20 }

    /// The session; every route behind `ConsoleGate` has one.
    func operatorSession() throws -> ConsoleSession {
        guard let session else { throw HTTPError(.unauthorized, message: "login required") }
        return session
    }
}

extension HTTPField.Name {
    static let csrfToken = Self("X-CSRF-Token")!
    static let contentSecurityPolicy = Self("Content-Security-Policy")!
    static let contentTypeOptions = Self("X-Content-Type-Options")!
    static let frameOptions = Self("X-Frame-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let acceptLanguage = Self("Accept-Language")!
    static let origin = Self("Origin")!
}

/// Nothing without a session but the login page (docs/console.md, "Security"): `GET /` goes to the login
/// page, anything else is `401`. A state-changing request needs the session's CSRF token in `X-CSRF-Token`
/// and, when the browser says where it comes from (`Origin`), this origin. Every answer gets the headers
/// that keep pages out of frames, types unsniffed, referrers within this origin and nothing cached. (Under
/// `Referrer-Policy: no-referrer` Chromium sends `Origin: null` with a form's POST, which the origin check
/// refuses: `same-origin` keeps the origin for our own requests and tells other sites nothing.)
struct ConsoleGate: RouterMiddleware {
    typealias Context = ConsoleContext
    let server: ConsoleServer

    func handle(_ request: Request, context: ConsoleContext, next: (Request, ConsoleContext) async throws -> Response) async throws -> Response {
        var response = try await admit(request, context: context, next: next)
        response.headers[.contentTypeOptions] = "nosniff"
        response.headers[.frameOptions] = "DENY"
        response.headers[.referrerPolicy] = "same-origin"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    private func admit(_ request: Request, context: ConsoleContext, next: (Request, ConsoleContext) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let changes = request.method != .get && request.method != .head
        if changes, !Self.sameOrigin(request) {
            return ConsoleRoutes.error(.forbidden, "the request comes from another site (Origin)")
        }
        if path == "/login", request.method == .get || request.method == .post {
            return try await next(request, context)
        }
        let token = request.cookies[ConsoleRoutes.cookieName]?.value
        guard let session = server.sessions.session(token, now: server.now) else {
            if request.method == .get, path == "/" {
                return Response(status: .seeOther, headers: [.location: "/login"])
            }
            return ConsoleRoutes.error(.unauthorized, "login required")
        }
        if changes {
            guard let sent = request.headers[.csrfToken], ConsoleSessions.sameToken(sent, session.csrf) else {
                return ConsoleRoutes.error(.forbidden, "missing or wrong X-CSRF-Token: reload the page")
            }
        }
        var context = context
        context.session = session
        return try await next(request, context)
    }

    /// No `Origin`, or one whose host and port are this request's `Host`.
    static func sameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        guard let host = request.head.authority else { return false }
        let stripped = origin.split(separator: "://", maxSplits: 1).last.map(String.init) ?? origin
        return stripped == host
    }
}

/// The console's routes (docs/console.md, "HTTP interface").
struct ConsoleRoutes: Sendable {
    static let cookieName = "dk_session"
    static let pageSecurityPolicy = "default-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    static let loginSecurityPolicy = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    let server: ConsoleServer
    let centre: CenterServer

    func router() -> Router<ConsoleContext> {
        let router = Router(context: ConsoleContext.self)
        router.add(middleware: ConsoleGate(server: server))
        router.get("/login") { request, _ in login(request) }
        router.post("/login") { request, context in try await logIn(request, context: context) }
        router.post("/logout") { request, context in try await logOut(request, context: context) }
        router.get("/") { _, _ in page(ConsoleAssets.consoleHTML, type: "text/html; charset=utf-8") }
        router.get("/assets/console.js") { _, _ in page(ConsoleAssets.consoleJS, type: "text/javascript; charset=utf-8") }
        router.get("/assets/console.css") { _, _ in page(ConsoleAssets.consoleCSS, type: "text/css; charset=utf-8") }
        router.get("/assets/catalogue.json") { _, _ in page(ConsoleAssets.catalogue, type: "application/json; charset=utf-8") }
        router.get("/api/me") { _, context in try me(context) }
        router.put("/api/me/language") { request, context in try await setLanguage(request, context: context) }
        router.get("/api/stream") { _, context in try stream(context) }
        router.get("/api/cases/{id}") { _, context in try await caseDetail(context) }
        for action in CaseAction.allCases {
            router.post("/api/cases/{id}/\(action.rawValue)") { request, context in
                try await act(action, request: request, context: context)
            }
        }
        router.get("/api/devices") { request, context in try await devices(request, context: context) }
        router.get("/api/history") { request, context in try await history(request, context: context) }
        router.get("/api/operators") { _, context in try await operators(context) }
        router.post("/api/operators") { request, context in try await addOperator(request, context: context) }
        router.post("/api/operators/{name}/disable") { _, context in try await disableOperator(context) }
        router.post("/api/registry") { request, context in try await importRegistry(request, context: context) }
        return router
    }

    // MARK: Answers

    /// The refusals the page says in the operator's language (`error.code.NAME` in the catalogue).
    enum ErrorCode: String, CaseIterable, Sendable {
        case noteRequired, noteTooLong, notOpen, noCall, takeFirst, alreadyDispatched, taken, otherNode
        case badName, weakPassword, accountExists, ownAccount, noAccount
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `{"error": MESSAGE, "code": CODE}`: the message in English for people reading the API, the code for
    /// the page, which says it in the operator's language (`error.code.CODE` in the catalogue).
    static func error(_ status: HTTPResponse.Status, _ message: String, code: ErrorCode? = nil, extra: [String: String] = [:]) -> Response {
        var body = extra.merging(["error": message]) { _, new in new }
        if let code { body["code"] = code.rawValue }
        return json(body, status: status)
    }

    private func page(_ bytes: [UInt8], type: String) -> Response {
        var headers: HTTPFields = [.contentType: type]
        if type.hasPrefix("text/html") { headers[.contentSecurityPolicy] = Self.pageSecurityPolicy }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    private func loginPage(_ language: ConsoleLanguage, status: HTTPResponse.Status = .ok, errorKey: String? = nil, retryAfter: Int? = nil) -> Response {
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.loginSecurityPolicy]
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        return Response(
            status: status, headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(string: server.pages.login(language, errorKey: errorKey, retryAfter: retryAfter))))
    }

    private func language(of request: Request) -> ConsoleLanguage {
        ConsoleLanguage.preferred(
            query: request.uri.queryParameters["lang"].map(String.init), acceptLanguage: request.headers[.acceptLanguage])
    }

    // MARK: Logging in and out

    private func login(_ request: Request) -> Response {
        // Already logged in: straight to the console.
        if server.sessions.session(request.cookies[Self.cookieName]?.value, now: server.now) != nil {
            return Response(status: .seeOther, headers: [.location: "/"])
        }
        return loginPage(language(of: request))
    }

    private struct LoginForm: Decodable {
        var name: String
        var password: String
    }

    private func logIn(_ request: Request, context: ConsoleContext) async throws -> Response {
        var request = request
        let language = language(of: request)
        let body = try await request.collectBody(upTo: 16 * 1024)
        guard let form = try? URLEncodedFormDecoder().decode(LoginForm.self, from: String(buffer: body)),
            !form.name.isEmpty, !form.password.isEmpty
        else {
            return loginPage(language, status: .badRequest, errorKey: "login.error.missing")
        }
        let now = server.now
        let name = String(form.name.prefix(64))
        let (addressMay, accountMay) = server.throttle.withLock { throttle in
            (throttle.attempt(from: context.source, now: now), throttle.accountMayTry(name, now: now))
        }
        guard addressMay, accountMay else {
            let retry = server.throttle.withLock { addressMay ? $0.accountRetryAfter : $0.addressRetryAfter }
            centre.countConsoleLogin("limited")
            await server.record("loginLimited", by: name, note: "from \(context.source)", centre: centre)
            return loginPage(language, status: .tooManyRequests, errorKey: "login.error.limited", retryAfter: retry)
        }
        let account = try await centre.withJournal { try $0.operatorAccount(named: name) }
        let password = form.password
        // The same work whether or not the account exists: the time of an answer does not tell names apart.
        let stored = account?.passwordHash
        let verified = try await server.passwords.runIfActive {
            OperatorPassword.verify(password, hash: stored ?? ConsoleServer.unknownAccountHash) && stored != nil
        }
        guard let account, verified, !account.disabled else {
            server.throttle.withLock { $0.failed(name, now: now) }
            centre.countConsoleLogin("refused")
            await server.record("loginRefused", by: name, note: "from \(context.source)", centre: centre)
            return loginPage(language, status: .unauthorized, errorKey: "login.error.credentials")
        }
        let session = server.sessions.open(name: account.name, role: account.role, language: account.language, now: now)
        centre.countConsoleLogin("accepted")
        await server.record("login", by: account.name, note: "from \(context.source)", centre: centre)
        var response = Response(status: .seeOther, headers: [.location: "/"])
        response.setCookie(
            Cookie(
                name: Self.cookieName, value: session.token, maxAge: Int(server.sessions.lifetime.components.seconds), path: "/",
                secure: server.configuration.secureCookie, httpOnly: true, sameSite: .strict))
        return response
    }

    private func logOut(_ request: Request, context: ConsoleContext) async throws -> Response {
        let session = try context.operatorSession()
        server.sessions.close(session.token)
        await server.record("logout", by: session.name, centre: centre)
        var response = Response(status: .seeOther, headers: [.location: "/login"])
        response.setCookie(
            Cookie(name: Self.cookieName, value: "", maxAge: 0, path: "/", secure: server.configuration.secureCookie, httpOnly: true, sameSite: .strict))
        return response
    }

    private struct Me: Encodable {
        var name: String
        var role: String
        var language: String
        var csrf: String
    }

    private func me(_ context: ConsoleContext) throws -> Response {
        let session = try context.operatorSession()
        return Self.json(Me(name: session.name, role: session.role.rawValue, language: session.language.rawValue, csrf: session.csrf))
    }

    private struct LanguageChoice: Decodable {
        var language: String
    }

    private func setLanguage(_ request: Request, context: ConsoleContext) async throws -> Response {
        let session = try context.operatorSession()
        guard let choice = try await decode(LanguageChoice.self, request), let language = ConsoleLanguage(rawValue: choice.language) else {
            return Self.error(.badRequest, "give {\"language\": \"en\"} or {\"language\": \"zh\"}")
        }
        let name = session.name
        _ = try await centre.withJournal { try $0.setOperator(name, language: language) }
        server.sessions.setLanguage(language, token: session.token)
        return Self.json(["language": language.rawValue])
    }

    /// A JSON body of at most 16 KiB, or `nil` if it is not one of `type`.
    private func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T? {
        var request = request
        let body = try await request.collectBody(upTo: 16 * 1024)
        return try? JSONDecoder().decode(T.self, from: Data(buffer: body))
    }

    // MARK: The stream

    private func stream(_ context: ConsoleContext) throws -> Response {
        let token = try context.operatorSession().token
        let messages = server.feed.subscribe()
        let (sessions, server) = (server.sessions, server)
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody { writer in
                for await message in messages {
                    // A session that ended (logged out, expired, account disabled) ends its stream.
                    guard sessions.session(token, now: server.now) != nil else { break }
                    try await writer.write(message)
                }
                try await writer.finish(nil)
            })
    }

    // MARK: Cases

    enum CaseAction: String, CaseIterable, Sendable {
        case take, call, hangup, dispatch, close
    }

    private struct Note: Decodable {
        var note: String?
    }

    private func caseID(_ context: ConsoleContext) -> Int64? {
        context.parameters.get("id", as: Int64.self).flatMap { $0 > 0 ? $0 : nil }
    }

    private func act(_ action: CaseAction, request: Request, context: ConsoleContext) async throws -> Response {
        let session = try context.operatorSession()
        guard let id = caseID(context) else { return Self.error(.badRequest, "the case number must be a positive whole number") }
        var note: String?
        if action == .dispatch || action == .close {
            var request = request
            let body = try await request.collectBody(upTo: 16 * 1024)
            if body.readableBytes > 0 {
                guard let decoded = try? JSONDecoder().decode(Note.self, from: Data(buffer: body)) else {
                    return Self.error(.badRequest, "give the note as {\"note\": \"ambulance called\"}")
                }
                note = decoded.note?.trimmingCharacters(in: .whitespacesAndNewlines)
                if note?.isEmpty == true { note = nil }
            }
            if let text = note, text.count > 500 { return Self.error(.badRequest, "the note is \(text.count) characters; at most 500", code: .noteTooLong) }
            if action == .dispatch, note == nil { return Self.error(.badRequest, "say what help was sent: a note is needed, e.g. \"ambulance called\"", code: .noteRequired) }
        }
        guard let open = try await centre.openCase(id) else {
            if let node = try await centre.otherNode(working: id) {
                return Self.error(.conflict, "case \(id) is worked by centre node \(node): act on that node's console", code: .otherNode, extra: ["node": node])
            }
            return Self.error(.notFound, "case \(id) is not open", code: .notOpen)
        }
        let done: Bool
        switch action {
        case .take:
            done = try await centre.engage(case: id)
            if !done {
                let by = server.feed.row(id)?.takenBy ?? "another operator"
                return Self.error(.conflict, "taken", code: .taken, extra: ["by": by])
            }
            server.feed.taken(id, by: session.name)
        case .call:
            done = try await centre.call(case: id) != nil
        case .hangup:
            done = try await centre.hangUp(device: open.device)
            if !done { return Self.error(.conflict, "case \(id) has no call to end", code: .noCall) }
        case .dispatch:
            done = try await centre.dispatch(case: id)
            if !done {
                return open.state == .received
                    ? Self.error(.conflict, "take the case first", code: .takeFirst)
                    : Self.error(.conflict, "help was already dispatched for case \(id)", code: .alreadyDispatched)
            }
        case .close:
            done = try await centre.close(case: id)
        }
        guard done else { return Self.error(.notFound, "case \(id) is not open", code: .notOpen) }
        centre.countConsoleAction(action.rawValue)
        await server.record(action.rawValue, by: session.name, case: id, device: open.device, note: note, centre: centre)
        return Self.json(["ok": true])
    }

    private struct HistoryEntry: Encodable {
        var at: WireTime
        var what: String
        var by: String?
        var note: String?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(at, forKey: .at)
            try container.encode(what, forKey: .what)
            try container.encode(by, forKey: .by)
            try container.encode(note, forKey: .note)
        }

        enum CodingKeys: String, CodingKey { case at, what, by, note }
    }

    private struct ResidentDetail: Encodable {
        var name: String
        var address: String
        var contacts: String
        var notes: String
    }

    private struct CaseDetail: Encodable {
        var `case`: CaseRow
        var resident: ResidentDetail?
        var device: DeviceRow
        var history: [HistoryEntry]

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(`case`, forKey: .case)
            try container.encode(resident, forKey: .resident)
            try container.encode(device, forKey: .device)
            try container.encode(history, forKey: .history)
        }

        enum CodingKeys: String, CodingKey { case `case`, resident, device, history }
    }

    private func caseDetail(_ context: ConsoleContext) async throws -> Response {
        _ = try context.operatorSession()
        guard let id = caseID(context) else { return Self.error(.badRequest, "the case number must be a positive whole number") }
        guard let record = try await centre.withJournal({ try $0.caseRecord(id: id) }) else {
            return Self.error(.notFound, "there is no case \(id)")
        }
        let device = record.case.device
        let resident = try await centre.withJournal { try $0.resident(device: device) }
        let snapshot = try await centre.deviceSnapshots([device]).first
        var row = server.feed.row(id) ?? CaseRow(record: record)
        if row.resident == nil { row.resident = resident?.summary }
        var history: [HistoryEntry] = []
        if let alarm = record.alarm {
            history.append(HistoryEntry(at: alarm.triggeredAt, what: "alarm"))
        }
        history += record.updates.map { HistoryEntry(at: $0.at, what: $0.state.description) }
        history += record.actions.map { HistoryEntry(at: $0.at, what: $0.action, by: $0.operatorName, note: $0.note) }
        if record.cancelled, let closed = record.updates.last(where: { $0.state == .closed }) {
            history.append(HistoryEntry(at: closed.at, what: "cancelled"))
        }
        history.sort { $0.at < $1.at }
        let detail = CaseDetail(
            case: row,
            resident: resident.map { ResidentDetail(name: $0.name, address: $0.address, contacts: $0.contacts, notes: $0.notes) },
            device: DeviceRow(snapshot: snapshot, device: device, lastRecorded: nil, resident: resident?.summary),
            history: history)
        return Self.json(detail)
    }

    // MARK: Devices and history

    private struct DeviceList: Encodable {
        var devices: [DeviceRow]
        var more: Int
    }

    private func devices(_ request: Request, context: ConsoleContext) async throws -> Response {
        _ = try context.operatorSession()
        let attentionOnly = request.uri.queryParameters["filter"] == "attention"
        let query = request.uri.queryParameters["q"].map { String($0).trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        let snapshots = try await centre.deviceSnapshots()
        let (residents, heard) = try await centre.withJournal { journal in
            (try journal.residents(), try journal.lastHeard().mapValues(\.at))
        }
        let known = Dictionary(snapshots.map { ($0.device, $0) }, uniquingKeysWith: { first, _ in first })
        let ids = Set(known.keys).union(residents.keys).union(heard.keys)
        var rows = ids.map { id in
            DeviceRow(snapshot: known[id], device: id, lastRecorded: heard[id], resident: residents[id]?.summary)
        }
        if attentionOnly { rows.removeAll { $0.attention.isEmpty } }
        if !query.isEmpty {
            rows.removeAll { row in
                !String(row.device).hasPrefix(query) && !(row.resident?.name.lowercased().contains(query) ?? false)
                    && !(row.resident?.address.lowercased().contains(query) ?? false)
            }
        }
        rows.sort { ($0.attention.isEmpty ? 1 : 0, $0.device) < ($1.attention.isEmpty ? 1 : 0, $1.device) }
        let limit = 500
        return Self.json(DeviceList(devices: Array(rows.prefix(limit)), more: max(0, rows.count - limit)))
    }

    private struct HistoryPage: Encodable {
        var cases: [CaseRow]
        /// The `before` of the next page, or `null` on the last.
        var next: Int64?

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(cases, forKey: .cases)
            try container.encode(next, forKey: .next)
        }

        enum CodingKeys: String, CodingKey { case cases, next }
    }

    private func history(_ request: Request, context: ConsoleContext) async throws -> Response {
        _ = try context.operatorSession()
        let query = request.uri.queryParameters["q"].map { String($0).trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        var before: Int64?
        if let text = request.uri.queryParameters["before"] {
            guard let value = Int64(text), value > 0 else { return Self.error(.badRequest, "before must be a case number") }
            before = value
        }
        let limit = 100
        let page = before
        let (records, residents) = try await centre.withJournal { journal in
            (try journal.caseRecords(search: query, before: page, limit: limit), try journal.residents())
        }
        let rows = records.map { record -> CaseRow in
            var row = CaseRow(record: record)
            row.resident = residents[record.case.device]?.summary
            return row
        }
        return Self.json(HistoryPage(cases: rows, next: records.count == limit ? records.last?.case.id : nil))
    }

    // MARK: Supervisors: accounts and the registry

    private func supervisor(_ context: ConsoleContext) throws -> ConsoleSession {
        let session = try context.operatorSession()
        guard session.role == .supervisor else { throw HTTPError(.forbidden, message: "only a supervisor may do this") }
        return session
    }

    private struct AccountRow: Encodable {
        var name: String
        var role: String
        var language: String
        var disabled: Bool
        var createdAt: WireTime
    }

    private func operators(_ context: ConsoleContext) async throws -> Response {
        _ = try supervisor(context)
        let accounts = try await centre.withJournal { try $0.operatorAccounts() }
        return Self.json([
            "operators": accounts.map {
                AccountRow(name: $0.name, role: $0.role.rawValue, language: $0.language.rawValue, disabled: $0.disabled, createdAt: $0.createdAt)
            }
        ])
    }

    private struct NewAccount: Decodable {
        var name: String
        var password: String
        var role: String?
        var language: String?
    }

    private func addOperator(_ request: Request, context: ConsoleContext) async throws -> Response {
        let session = try supervisor(context)
        guard let new = try await decode(NewAccount.self, request) else {
            return Self.error(.badRequest, "give {\"name\", \"password\", \"role\", \"language\"}")
        }
        guard Self.validName(new.name) else {
            return Self.error(.badRequest, "a name is 1 to 64 letters, digits, '.', '_' or '-'", code: .badName)
        }
        guard let role = OperatorRole(rawValue: new.role ?? "operator") else { return Self.error(.badRequest, "role is operator or supervisor") }
        guard let language = ConsoleLanguage(rawValue: new.language ?? "en") else { return Self.error(.badRequest, "language is en or zh") }
        let password = new.password
        let hash: String
        do {
            hash = try await server.passwords.runIfActive { try OperatorPassword.hash(password) }
        } catch {
            return Self.error(.badRequest, "\(error)", code: .weakPassword)
        }
        let account = OperatorAccount(name: new.name, passwordHash: hash, role: role, language: language, disabled: false, createdAt: ConsoleServer.wallClock)
        do {
            try await centre.withJournal { try $0.addOperator(account) }
        } catch let error as OperatorAccountError {
            return Self.error(.conflict, "\(error)", code: .accountExists)
        }
        await server.record("addOperator", by: session.name, note: "\(new.name) (\(role.rawValue))", centre: centre)
        return Self.json(["ok": true], status: .created)
    }

    private func disableOperator(_ context: ConsoleContext) async throws -> Response {
        let session = try supervisor(context)
        guard let name = context.parameters.get("name"), Self.validName(name) else { return Self.error(.notFound, "no such account", code: .noAccount) }
        guard name != session.name else { return Self.error(.conflict, "you cannot disable your own account", code: .ownAccount) }
        guard try await centre.withJournal({ try $0.setOperator(name, disabled: true) }) else {
            return Self.error(.notFound, "there is no account \(name)", code: .noAccount)
        }
        server.sessions.closeAll(of: name)
        await server.record("disableOperator", by: session.name, note: name, centre: centre)
        return Self.json(["ok": true])
    }

    static func validName(_ name: String) -> Bool { (try? OperatorAccount.checkName(name)) != nil }

    private struct ImportOutcome: Encodable {
        var imported: Int
    }

    private func importRegistry(_ request: Request, context: ConsoleContext) async throws -> Response {
        let session = try supervisor(context)
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        let residents: [Resident]
        do {
            residents = try ResidentCSV.parse(body.readableBytesView)
        } catch {
            return Self.registryRefused(error)
        }
        let at = ConsoleServer.wallClock
        try await centre.withJournal { try $0.importResidents(residents, at: at) }
        let all = try await centre.withJournal { try $0.residents() }
        server.feed.setResidents(all.mapValues(\.summary))
        await server.record("importRegistry", by: session.name, note: "\(residents.count) residents", centre: centre)
        return Self.json(ImportOutcome(imported: residents.count))
    }

    private struct Refusal: Encodable {
        struct Row: Encodable {
            var line: Int
            var error: String
        }

        var error: String
        var rows: [Row]
    }

    /// A refused registry: every bad row with its line (docs/console.md).
    static func registryRefused(_ refusal: ResidentCSVError) -> Response {
        json(
            Refusal(error: "the registry was not imported: nothing changed", rows: refusal.rows.map { Refusal.Row(line: $0.line, error: $0.error) }),
            status: .badRequest)
    }
}
