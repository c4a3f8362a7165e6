#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import Testing

@testable import DeviceKit

/// A datagram socket bound like systemd's notify socket, at a path or an abstract name.
final class NotifySocket {
    let fd: CInt
    let name: String
    private let path: String?

    /// Binds at a temporary path, or at an abstract name when `abstract` (returned with its `@`).
    init(abstract: Bool = false) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        let unique = "devicekit-notify-\(UUID().uuidString.prefix(8))"
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes: [UInt8]
        if abstract {
            name = "@" + unique
            path = nil
            bytes = [0] + Array(unique.utf8)
        } else {
            let p = NSTemporaryDirectory() + unique + ".sock"
            name = p
            path = p
            bytes = Array(p.utf8) + [0]
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        try #require(result == 0, "bind: \(Errno.current)")
        // Never block a test for ever: a missing datagram fails after two seconds.
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The next datagram, waiting without blocking a thread of the cooperative pool; `nil` after `limit`.
    func nextDatagram(within limit: Duration = patience) async -> String? {
        var datagram: String?
        await poll(within: limit) {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n >= 0 { datagram = String(decoding: buffer[..<n], as: UTF8.self) }
            return datagram != nil
        }
        return datagram
    }

    /// The next datagram as text, or `nil` after the timeout.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : String(decoding: buffer[..<n], as: UTF8.self)
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }
}

@Suite struct SystemdNotifierTests {
    @Test(arguments: [false, true])
    func eachNotificationArrivesAsOneDatagram(abstract: Bool) throws {
        let socket = try NotifySocket(abstract: abstract)
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name])
        try notifier.ready()
        #expect(socket.receive() == "READY=1")
        try notifier.status("3 alarms waiting\nsecond line")
        #expect(socket.receive() == "STATUS=3 alarms waiting second line")
        try notifier.watchdog()
        #expect(socket.receive() == "WATCHDOG=1")
        try notifier.stopping()
        #expect(socket.receive() == "STOPPING=1")
    }

    @Test func outsideSystemdNothingIsSentAndNothingFails() throws {
        let notifier = SystemdNotifier(environment: [:])
        #expect(notifier.socketPath == nil)
        #expect(notifier.watchdogInterval == nil)
        try notifier.ready()
        try notifier.watchdog()
    }

    @Test func aSocketThatIsGoneIsReportedWithItsPath() throws {
        let path = NSTemporaryDirectory() + "devicekit-no-such-socket"
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": path])
        let error = #expect(throws: SystemdNotifierError.self) { try notifier.ready() }
        #expect(error?.description.hasPrefix("cannot notify systemd through \(path): ") == true)
    }

    @Test func aRelativeOrOverlongSocketNameIsRefused() throws {
        #expect(throws: SystemdNotifierError.self) { try SystemdNotifier(environment: ["NOTIFY_SOCKET": "run/notify"]).ready() }
        let long = "/" + String(repeating: "x", count: 200)
        #expect(throws: SystemdNotifierError.self) { try SystemdNotifier(environment: ["NOTIFY_SOCKET": long]).ready() }
    }

    @Test func theWatchdogIsPingedAtHalfItsTimeout() {
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"])
        #expect(notifier.watchdogTimeout == .seconds(30))
        #expect(notifier.watchdogInterval == .seconds(15))
    }

    @Test func theWatchdogIsOnlyForTheProcessSystemdNamed() {
        let mine = SystemdNotifier(environment: ["WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "42"], processID: 42)
        #expect(mine.watchdogInterval == .milliseconds(500))
        let other = SystemdNotifier(environment: ["WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "41"], processID: 42)
        #expect(other.watchdogInterval == nil)
        let off = SystemdNotifier(environment: ["WATCHDOG_USEC": "0"])
        #expect(off.watchdogInterval == nil)
        let garbage = SystemdNotifier(environment: ["WATCHDOG_USEC": "soon"])
        #expect(garbage.watchdogInterval == nil)
    }

    @Test func theWatchdogServicePingsUntilCancelled() async throws {
        let socket = try NotifySocket()
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": socket.name, "WATCHDOG_USEC": "20000"])
        let service = SystemdWatchdogService(notifier: notifier, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let task = Task { try await service.run() }
        #expect(await socket.nextDatagram() == "WATCHDOG=1")
        #expect(await socket.nextDatagram() == "WATCHDOG=1")
        task.cancel()
        try await task.value
    }
}
