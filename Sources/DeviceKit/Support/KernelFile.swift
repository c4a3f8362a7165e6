#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Small, typed reads of the kernel's files (sysfs attributes, directories and links, `/proc`); every failure
/// is an `Errno`.
///
/// Read to the end, call after call: these files report a size of 0, and Foundation's readers
/// (`String(contentsOfFile:)`, `Data(contentsOf:)`, `FileManager.contents(atPath:)`) stop after the first
/// read of such a file, about a page: 3,793 of `/proc/self/smaps`' 28,971 bytes in a small process.
enum KernelFile {
    /// The whole file as text (up to 1 MiB: a sysfs attribute is at most a page); `nil` when it does not exist.
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

    /// The whole file as text; `nil` when it does not exist or cannot be read.
    static func text(_ path: String) -> String? { (try? read(path)) ?? nil }

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
