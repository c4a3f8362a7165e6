/// Blocking device I/O kept off the event loops and the cooperative pool.
///
/// Button sources read character devices (`/dev/input/event*`, `/dev/tty*`) and call ioctls that block
/// (`TIOCMIWAIT`). Each source runs its loop on a thread of its own with `onDedicatedThread`; the loop waits
/// with `poll(2)` in short slices and checks `CancellationFlag` between them, so cancelling the task ends the
/// loop within one slice. A few threads for a few devices is the right trade on a device; the load tester
/// never uses these sources.
import Foundation

import Glibc

/// Set when the task that started a blocking loop is cancelled.
public final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false

    public init() {}

    public var isCancelled: Bool { lock.withLock { cancelled } }

    public func cancel() { lock.withLock { cancelled = true } }

    /// Sleeps the calling (dedicated) thread for `duration`, or less if the flag is set meanwhile (checked
    /// every `slice`); `false` when it was cut short by the flag.
    @discardableResult
    public func sleep(for duration: Duration, slice: Duration = .milliseconds(100)) -> Bool {
        var left = duration
        while left > .zero, !isCancelled {
            let step = min(left, slice)
            var request = timespec(tv_sec: Int(step.components.seconds), tv_nsec: Int(step.components.attoseconds / 1_000_000_000))
            nanosleep(&request, nil)
            left -= step
        }
        return !isCancelled
    }
}

/// Runs `body` on a new thread and returns its result; cancelling the calling task sets the flag `body`
/// checks. `body` must return (or throw `CancellationError`) soon after the flag is set.
public func onDedicatedThread<T: Sendable>(
    name: String, _ body: @escaping @Sendable (CancellationFlag) throws -> T
) async throws -> T {
    let flag = CancellationFlag()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let thread = Thread {
                continuation.resume(with: Result { try body(flag) })
            }
            thread.name = name
            thread.start()
        }
    } onCancel: {
        flag.cancel()
    }
}

/// Thin, typed wrappers of the file system calls the sources use. Errors are `Errno`.
public enum DeviceFile {
    /// `open(2)` with `O_CLOEXEC` added; `O_NONBLOCK` is the caller's choice.
    public static func open(_ path: String, _ flags: CInt) throws(Errno) -> CInt {
        try retryingEINTR { Glibc.open(path, flags | O_CLOEXEC) }
    }

    public static func close(_ fd: CInt) {
        _ = Glibc.close(fd)
    }

    /// Waits up to `timeoutMilliseconds` for `fd` to be readable. `true` when it is, or when it has hung up
    /// or failed (the next read reports why); `false` on timeout.
    public static func waitReadable(_ fd: CInt, timeoutMilliseconds: CInt) throws(Errno) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, timeoutMilliseconds)
        if ready < 0 {
            let error = Errno.current
            if error == .interrupted { return false }
            throw error
        }
        return ready > 0
    }

    /// One `read(2)` of at most `capacity` bytes; `nil` at end of file. `EAGAIN` and `EINTR` give an empty
    /// array: callers poll first, so they mean "nothing after all".
    public static func read(_ fd: CInt, capacity: Int) throws(Errno) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: capacity)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, capacity) }
        if count < 0 {
            let error = Errno.current
            if error == .interrupted || error.rawValue == EAGAIN { return [] }
            throw error
        }
        if count == 0 { return nil }
        return Array(buffer.prefix(count))
    }

    /// Writes all of `bytes`, retrying short writes and `EINTR`.
    public static func write(_ fd: CInt, _ bytes: [UInt8]) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            let written = try retryingEINTR {
                bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            }
            offset += written
        }
    }
}
