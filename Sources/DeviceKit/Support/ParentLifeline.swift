#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A child process's tie to the process that started it, so that the child never outlives it.
///
/// The parent makes the child's standard input a pipe, holds the write end and never writes to it. However
/// the parent ends, SIGKILL included, the kernel closes that end, and the child reads end of file.
/// `CenterWorkerProcesses`, `LoadCoordinator` and `SpawnedCenter` start their children so; the children
/// (`devicesim center --worker-index` or `--stop-with-stdin`, `devicesim load run --worker`) call `watch`.
public enum ParentLifeline {
    /// Reads standard input on a thread of its own, discarding what comes, and calls `parentGone` on that
    /// thread at end of file (or on a read error other than EINTR).
    public static func watch(parentGone: @escaping @Sendable () -> Void) {
        Thread.detachNewThread {
            var byte: UInt8 = 0
            while true {
                let count = read(STDIN_FILENO, &byte, 1)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
            }
            parentGone()
        }
    }
}
