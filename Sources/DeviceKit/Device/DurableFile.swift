#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A small file replaced atomically and durably: after `write` returns, the new content survives a power
/// cut, and at no moment can a reader see a mix of old and new.
///
/// Write to `path.tmp`, fsync it, rename over `path`, fsync the directory (the rename is only durable once
/// the directory is). Used for the up-counter reservation and the boot count.
public struct DurableFile: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// The file's bytes, or `nil` when it does not exist.
    public func read() throws(Errno) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let error = Errno.current
            if error == .noSuchFileOrDirectory { return nil }
            throw error
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try retryingEINTR { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n == 0 { return bytes }
            bytes += chunk[0..<n]
            if bytes.count > 1 << 20 { throw Errno(rawValue: EFBIG) }
        }
    }

    public func write(_ bytes: [UInt8]) throws(Errno) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Errno.current }
        do throws(Errno) {
            var offset = 0
            while offset < bytes.count {
                let n = try retryingEINTR {
                    bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                }
                offset += n
            }
            _ = try retryingEINTR { fsync(fd) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw Errno.current }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw Errno.current }
        defer { close(dfd) }
        _ = try retryingEINTR { fsync(dfd) }
    }
}

/// The stored up-counter limit: one decimal number and a newline, in a `DurableFile`.
public struct CounterReservationFile: Sendable {
    public let file: DurableFile

    public init(path: String) { file = DurableFile(path: path) }

    /// The stored limit, 0 when the file does not exist yet (a device's first boot).
    public func load() throws(CounterFileError) -> UInt64 {
        let bytes: [UInt8]?
        do { bytes = try file.read() } catch { throw .unreadable(file.path, error) }
        guard let bytes else { return 0 }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix("\n"), let limit = UInt64(text.dropLast()) else { throw .corrupt(file.path) }
        return limit
    }

    public func store(_ limit: UInt64) throws(CounterFileError) {
        do { try file.write(Array("\(limit)\n".utf8)) } catch { throw .unwritable(file.path, error) }
    }
}

/// Why the counter reservation could not be read or kept. Without it no frame may be sealed.
public enum CounterFileError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(String, Errno)
    case unwritable(String, Errno)
    case corrupt(String)

    public var description: String {
        switch self {
        case .unreadable(let p, let e): "cannot read the frame counter file \(p): \(e)"
        case .unwritable(let p, let e): "cannot store the frame counter in \(p): \(e); no frame is sent until it can be stored"
        case .corrupt(let p): "the frame counter file \(p) is damaged: reusing counters would break encryption, so this device must be re-provisioned (devicesim provision)"
        }
    }
}
