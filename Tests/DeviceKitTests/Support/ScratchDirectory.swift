import Foundation
import Glibc

/// Where a test's files go (journals, state directories): under one directory for this test process, which is
/// removed when the process exits, so that a test run leaves nothing behind in the temporary directory (runs
/// had left about 60 `center-…` journals each). A process killed before it could remove its own (a watchdog, a
/// crash) has its directory removed by the next run: the first use clears the roots of processes no longer
/// running.
enum ScratchDirectory {
    static let prefix = "devicekit-tests-"

    /// This process's root, made on first use.
    static let root: String = {
        let temporary = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: temporary + "/" + name)
        }
        let root = (temporary as NSString).appendingPathComponent(prefix + "\(getpid())")
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: ScratchDirectory.root) }
        return root
    }()

    /// A new, empty directory under the root, its name starting with `name`.
    static func make(_ name: String) -> String {
        let directory = (root as NSString).appendingPathComponent("\(name)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }
}
