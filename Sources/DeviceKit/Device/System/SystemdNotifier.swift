#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import Logging
import ServiceLifecycle

/// Tells systemd how the daemon is doing, as `sd_notify(3)` does: ready, stopping, a status line, and
/// watchdog pings, as datagrams to `$NOTIFY_SOCKET`.
///
/// Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing, so the daemon runs the same from a shell.
/// The environment is a parameter, so tests never touch the process's own.
public struct SystemdNotifier: Sendable {
    /// The socket to notify: a path, or an abstract name starting with `@`. `nil` outside systemd.
    public let socketPath: String?
    /// `WATCHDOG_USEC`, when systemd expects pings from this process; `nil` otherwise.
    public let watchdogTimeout: Duration?

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from `environment`.
    ///
    /// The watchdog is on only when `WATCHDOG_USEC` is a positive number and `WATCHDOG_PID`, if present,
    /// is `processID` (systemd sets it so that children do not ping for their parent).
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment, processID: Int32 = getpid()
    ) {
        let socket = environment["NOTIFY_SOCKET"]
        socketPath = (socket?.isEmpty ?? true) ? nil : socket
        if let text = environment["WATCHDOG_USEC"], let microseconds = UInt64(text), microseconds > 0,
            environment["WATCHDOG_PID"].map({ Int32($0) == processID }) ?? true
        {
            watchdogTimeout = .microseconds(microseconds)
        } else {
            watchdogTimeout = nil
        }
    }

    /// How often to ping: half the watchdog timeout, as systemd recommends; `nil` without a watchdog.
    public var watchdogInterval: Duration? { watchdogTimeout.map { $0 / 2 } }

    /// `READY=1`: start-up is complete; `systemctl start` returns and units ordered after us start.
    public func ready() throws(SystemdNotifierError) { try notify("READY=1") }

    /// `STOPPING=1`: shutting down, so systemd does not take the exit for a crash.
    public func stopping() throws(SystemdNotifierError) { try notify("STOPPING=1") }

    /// `WATCHDOG=1`: still alive.
    public func watchdog() throws(SystemdNotifierError) { try notify("WATCHDOG=1") }

    /// `STATUS=…`: one line for `systemctl status`; line breaks become spaces so it stays one assignment.
    public func status(_ text: String) throws(SystemdNotifierError) {
        let line = String(text.map { $0.isNewline ? " " : $0 })
        try notify("STATUS=\(line)")
    }

    /// Sends `state` (newline-separated assignments) as one datagram; does nothing outside systemd.
    public func notify(_ state: String) throws(SystemdNotifierError) {
        guard let socketPath else { return }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var name = Array(socketPath.utf8)
        let abstract = name.first == UInt8(ascii: "@")
        if abstract { name[0] = 0 }
        guard abstract || name.first == UInt8(ascii: "/") else {
            throw SystemdNotifierError("NOTIFY_SOCKET '\(socketPath)' is neither an absolute path nor an abstract name (@…)")
        }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path needs room for its terminating NUL; an abstract name is counted by the length alone.
        guard name.count < capacity || (abstract && name.count == capacity) else {
            throw SystemdNotifierError("NOTIFY_SOCKET '\(socketPath)' is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + name.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemdNotifierError("cannot create a datagram socket: \(Errno.current)") }
        defer { close(fd) }
        let message = Array(state.utf8)
        do {
            let sent = try retryingEINTR {
                withUnsafePointer(to: &address) { pointer in
                    pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                        message.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sockaddrPointer, length) }
                    }
                }
            }
            guard sent == message.count else { throw Errno.ioError }
        } catch {
            throw SystemdNotifierError("cannot notify systemd through \(socketPath): \(error)")
        }
    }
}

/// Why a notification could not be sent to systemd.
public struct SystemdNotifierError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Pings systemd's watchdog at `SystemdNotifier.watchdogInterval` until its task is cancelled.
///
/// Without a watchdog it just waits for shutdown, because a service that returns ends its `ServiceGroup`.
/// The pings prove the process schedules tasks, not that alarms flow; the runtime's own health checks
/// decide whether to keep it running.
public struct SystemdWatchdogService: Service {
    public let notifier: SystemdNotifier
    private let logger: Logger

    public init(notifier: SystemdNotifier, logger: Logger) {
        self.notifier = notifier
        self.logger = logger
    }

    public func run() async throws {
        guard let interval = notifier.watchdogInterval else {
            try? await gracefulShutdown()
            return
        }
        // Runs until its task is cancelled: the daemon cancels it after its own shutdown, so systemd keeps
        // hearing from a device that is still saving its state.
        while !Task.isCancelled {
            do {
                try notifier.watchdog()
            } catch {
                logger.debug("watchdog ping failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}
