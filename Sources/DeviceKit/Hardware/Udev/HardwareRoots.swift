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
    public var udevIsRunning: Bool { SysfsFile.exists(udevControl) }

    /// A path under `dev` for a node name relative to `/dev` (`input/event3`, `input/by-path/...`).
    func devPath(_ relative: String) -> String { dev + "/" + relative }
}

/// Small, typed reads of sysfs attributes, directories and links; every failure is an `Errno`.
enum SysfsFile {
    /// The whole file as text (a sysfs attribute is at most a page); `nil` when it does not exist.
    static func read(_ path: String) throws(Errno) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let error = Errno.current
            if error == .noSuchFileOrDirectory || error.rawValue == ENOTDIR { return nil }
            throw error
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = try retryingEINTR { buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { break }
            bytes += buffer[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The file's text without surrounding white space; `nil` when it does not exist or cannot be read.
    static func attribute(_ path: String) -> String? {
        guard let text = try? read(path) else { return nil }
        return text.trimmed
    }

    /// Names in a directory without `.` and `..`, in natural order (`event2` before `event10`); empty when it
    /// does not exist or cannot be read.
    static func list(_ directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted(by: naturallyBefore)
    }

    /// `event2` before `event10`: names compare by their text before the trailing number, then by the number
    /// (none before 0), then as text. A total order, so sorting by it is well defined.
    static func naturallyBefore(_ a: String, _ b: String) -> Bool {
        func key(_ name: String) -> (String, Int, String) {
            let digits = name.reversed().prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count < 18, let number = Int(String(digits.reversed())) else {
                return (name, -1, name)
            }
            return (String(name.dropLast(digits.count)), number, name)
        }
        return key(a) < key(b)
    }

    /// A symbolic link's target as written, or `nil` if `path` is not a readable link.
    static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBufferPointer { raw -> Int in
            guard let base = raw.baseAddress else { return -1 }
            return readlink(path, base, raw.count)
        }
        guard n > 0, n < buffer.count else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `lstat` without following a final link: whether anything exists at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// `stat`, following links; `nil` if it fails.
    static func status(_ path: String) -> stat? {
        var info = stat()
        return stat(path, &info) == 0 ? info : nil
    }
}

extension StringProtocol {
    /// Without leading and trailing white space and newlines.
    var trimmed: String {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? start
        return String(self[start..<end])
    }
}
