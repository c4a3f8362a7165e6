#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the kernel's and udev's views of the hardware are mounted: the real paths on a device, a temporary
/// tree in tests.
///
/// Everything the inventory, the hotplug poller and `diag list` read comes from under these roots, so a test
/// can lay out a fake `/sys`, `/dev`, `/run/udev/data` and `/proc` and get the same answers a device would.
public struct HardwareRoots: Hashable, Sendable {
    /// The sysfs mount, normally `/sys` (input devices under `class/input`, serial ports under `class/tty`).
    public var sysfs: String
    /// The device nodes, normally `/dev`.
    public var dev: String
    /// udev's database, normally `/run/udev/data`: one file per device, e.g. `c13:67`.
    public var udevData: String
    /// The process file system, normally `/proc`.
    public var proc: String

    public init(
        sysfs: String = "/sys", dev: String = "/dev", udevData: String = "/run/udev/data", proc: String = "/proc"
    ) {
        self.sysfs = sysfs
        self.dev = dev
        self.udevData = udevData
        self.proc = proc
    }

    /// The machine's own paths.
    public static let system = HardwareRoots()

    /// udevd's control socket, beside its database (`/run/udev/control`): it exists while udevd runs.
    public var udevControl: String {
        var directory = udevData
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        guard let slash = directory.lastIndex(of: "/") else { return "control" }
        return String(directory[..<slash]) + "/control"
    }

    /// Whether udevd is running: its control socket exists. libudev itself makes the same test, and without
    /// udevd a `udev` monitor silently receives nothing.
    public var udevIsRunning: Bool { KernelFile.exists(udevControl) }

    /// A path under `dev` for a node name relative to `/dev` (`input/event3`, `input/by-path/...`).
    func devPath(_ relative: String) -> String { dev + "/" + relative }
}

extension StringProtocol {
    /// Without leading and trailing white space and newlines.
    var trimmed: String {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? start
        return String(self[start..<end])
    }
}
