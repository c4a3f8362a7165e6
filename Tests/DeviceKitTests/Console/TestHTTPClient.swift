#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOPosix

/// A small HTTP/1.1 client over a real loopback socket, for the console's tests: one connection per request
/// (`Connection: close`, read to the end), and server-sent event streams read event by event. Its blocking
/// calls run on NIO's thread pool, never on the tasks' cooperative threads, which the console's feed needs.
struct TestHTTPClient: Sendable {
    let port: Int

    struct Response: Sendable {
        var status: Int
        /// Lower-cased names; the last value of a repeated header.
        var headers: [String: String]
        var cookies: [String]
        var body: String

        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
        }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    func request(
        _ method: String, _ path: String, cookie: String? = nil, csrf: String? = nil, headers: [String: String] = [:],
        body: String = "", contentType: String = "application/json"
    ) async throws -> Response {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        if let cookie { text += "Cookie: dk_session=\(cookie)\r\n" }
        if let csrf { text += "X-CSRF-Token: \(csrf)\r\n" }
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !body.isEmpty || method != "GET" {
            text += "Content-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n"
        }
        text += "\r\n" + body
        let request = text
        let port = port
        let raw = try await NIOThreadPool.singleton.runIfActive {
            let socket = try Self.connect(port: port)
            defer { close(socket) }
            try Self.send(socket, Array(request.utf8))
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = read(socket, &buffer, buffer.count)
                if count <= 0 { break }
                received += buffer[0..<count]
            }
            return received
        }
        return try Self.parse(raw)
    }

    /// A login: the session token and its CSRF token, or the failed answer.
    func logIn(_ name: String, _ password: String) async throws -> (token: String, csrf: String) {
        let form = "name=\(name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? name)&password=\(password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password)"
        let answer = try await request("POST", "/login", body: form, contentType: "application/x-www-form-urlencoded")
        guard answer.status == 303, let cookie = answer.cookies.first(where: { $0.hasPrefix("dk_session=") }) else {
            throw Failure(description: "login of \(name) answered \(answer.status): \(answer.body.prefix(200))")
        }
        let token = String(cookie.dropFirst("dk_session=".count).prefix { $0 != ";" })
        let me = try await request("GET", "/api/me", cookie: token)
        guard let csrf = me.json["csrf"] as? String else { throw Failure(description: "no csrf in /api/me: \(me.body)") }
        return (token, csrf)
    }

    /// Opens `GET path` as an event stream.
    func stream(_ path: String = "/api/stream", cookie: String?) async throws -> EventStream {
        let port = port
        let socket = try await NIOThreadPool.singleton.runIfActive { () -> Int32 in
            let socket = try Self.connect(port: port)
            var text = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\n"
            if let cookie { text += "Cookie: dk_session=\(cookie)\r\n" }
            try Self.send(socket, Array((text + "\r\n").utf8))
            return socket
        }
        return EventStream(socket: socket)
    }

    /// A server-sent event stream on its own socket (chunked transfer encoding, undone).
    final class EventStream: @unchecked Sendable {
        private let socket: Int32
        private var pending: [UInt8] = []
        private var headerRead = false
        private(set) var status = 0
        private var decoded: [UInt8] = []

        init(socket: Int32) { self.socket = socket }
        deinit { close(socket) }

        /// The next event (`event` name and `data`), or `nil` if the stream ended or none came in `seconds`.
        func next(within seconds: Int = 10) async throws -> (event: String, data: [String: Any])? {
            guard let (name, data) = try await NIOThreadPool.singleton.runIfActive({ try self.readEvent(seconds: seconds) }) else { return nil }
            let object = (try? JSONSerialization.jsonObject(with: Data(data.utf8))) as? [String: Any] ?? [:]
            return (name, object)
        }

        /// Events until one matches, or `nil` past `seconds` in all.
        func first(within seconds: Int = 10, where match: (String, [String: Any]) -> Bool) async throws -> (event: String, data: [String: Any])? {
            let deadline = Date().addingTimeInterval(Double(seconds))
            while Date() < deadline {
                guard let event = try await next(within: max(1, Int(deadline.timeIntervalSinceNow.rounded(.up)))) else { return nil }
                if match(event.event, event.data) { return event }
            }
            return nil
        }

        private func readEvent(seconds: Int) throws -> (String, String)? {
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            while true {
                if let event = takeEvent() { return event }
                var buffer = [UInt8](repeating: 0, count: 65_536)
                let count = read(socket, &buffer, buffer.count)
                if count <= 0 { return nil }
                pending += buffer[0..<count]
                if !headerRead, let end = find(Array("\r\n\r\n".utf8), in: pending) {
                    let head = String(decoding: pending[0..<end], as: UTF8.self)
                    status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                    pending.removeFirst(end + 4)
                    headerRead = true
                    if status != 200 { return nil }
                }
                if headerRead { dechunk() }
            }
        }

        private func dechunk() {
            while let lineEnd = find(Array("\r\n".utf8), in: pending),
                let size = Int(String(decoding: pending[0..<lineEnd], as: UTF8.self), radix: 16),
                pending.count >= lineEnd + 2 + size + 2
            {
                decoded += pending[(lineEnd + 2)..<(lineEnd + 2 + size)]
                pending.removeFirst(lineEnd + 2 + size + 2)
            }
        }

        private func takeEvent() -> (String, String)? {
            while let end = find(Array("\n\n".utf8), in: decoded) {
                let text = String(decoding: decoded[0..<end], as: UTF8.self)
                decoded.removeFirst(end + 2)
                var name = "message"
                var data = ""
                for line in text.split(separator: "\n") {
                    if line.hasPrefix("event: ") { name = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: ") { data += line.dropFirst(6) }
                }
                if data.isEmpty { continue }  // a keep-alive comment
                return (name, data)
            }
            return nil
        }

        private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
            guard haystack.count >= needle.count else { return nil }
            for index in 0...(haystack.count - needle.count) where haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            return nil
        }
    }

    private static func connect(port: Int) throws -> Int32 {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(socket)
            throw Failure(description: "connect to port \(port): errno \(errno)")
        }
        return socket
    }

    private static func send(_ socket: Int32, _ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(socket, $0.baseAddress, $0.count) }
            guard written > 0 else { throw Failure(description: "write: errno \(errno)") }
            offset += written
        }
    }

    static func parse(_ raw: [UInt8]) throws -> Response {
        let text = String(decoding: raw, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw Failure(description: "no HTTP answer: \(text.prefix(200))") }
        let head = text[..<split.lowerBound].split(separator: "\r\n")
        guard let statusLine = head.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw Failure(description: "bad status line: \(head.first ?? "")")
        }
        var headers: [String: String] = [:]
        var cookies: [String] = []
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            headers[name] = value
            if name == "set-cookie" { cookies.append(value) }
        }
        var body = String(text[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            var decoded = ""
            var rest = Substring(body)
            while let lineEnd = rest.range(of: "\r\n"), let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 {
                let start = lineEnd.upperBound
                let bytes = Array(rest[start...].utf8.prefix(size))
                decoded += String(decoding: bytes, as: UTF8.self)
                rest = rest[rest.utf8.index(start, offsetBy: size)...].dropFirst(2)
            }
            body = decoded
        }
        return Response(status: status, headers: headers, cookies: cookies, body: body)
    }
}
