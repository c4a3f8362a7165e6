import Glibc

/// One process at a time owns a device's state directory: its outbox and, above all, its frame counter.
///
/// Two processes sealing frames under the same key would each reserve their own block of counters; the
/// centre would then refuse the lower block as stale and lock the other process out until its counter
/// caught up (protocol.md §3.3–3.4). So `devicesim run`, `diag link` and `diag selftest` take this lock
/// (`flock` on `state_dir/lock`, which the kernel releases when the process dies, even on kill -9) and the
/// second one is told plainly who holds it.
public final class StateDirectoryLock: Sendable {
    public let path: String
    private let fd: CInt

    /// Takes the lock or throws, without waiting.
    public init(stateDirectory: String) throws(StateDirectoryLockError) {
        path = stateDirectory + "/lock"
        let fd: CInt
        do { fd = try DeviceFile.open(path, O_RDWR | O_CREAT) } catch {
            throw .cannotOpen(path: path, error)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let error = Errno.current
            let holder = Self.holder(fd)
            Glibc.close(fd)
            if error.rawValue == EWOULDBLOCK { throw .held(path: path, pid: holder) }
            throw .cannotOpen(path: path, error)
        }
        ftruncate(fd, 0)
        try? DeviceFile.write(fd, Array("\(getpid())\n".utf8))
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    /// The process id the holder wrote into the file, if readable.
    private static func holder(_ fd: CInt) -> Int32? {
        guard let bytes = try? DeviceFile.read(fd, capacity: 32) else { return nil }
        return Int32(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

public enum StateDirectoryLockError: Error, Hashable, Sendable, CustomStringConvertible {
    case held(path: String, pid: Int32?)
    case cannotOpen(path: String, Errno)

    /// Whether another process holds the lock (rather than the file not opening).
    public var isHeld: Bool {
        if case .held = self { true } else { false }
    }

    public var description: String {
        switch self {
        case let .held(path, pid):
            "another devicesim (\(pid.map { "process \($0)" } ?? "a process") holding \(path)) is using this device's state: it is probably the running device (systemctl stop devicekit first, and start it again afterwards)"
        case let .cannotOpen(path, error):
            "cannot lock \(path): \(error) (is the state directory writable by this user?)"
        }
    }
}
