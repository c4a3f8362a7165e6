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

/// The stored up-counter limit of one key (protocol.md §3.3), in a `DurableFile`: a decimal number and a
/// newline for key epoch 0, `<limit> epoch <n>` and a newline for a later epoch.
///
/// Provisioning writes it (limit 0) with the key. Afterwards a missing file is never taken as a first boot:
/// the counters the key has used are unknown, and reusing one would break the encryption, so the device
/// seals nothing until it is re-provisioned with the next key epoch (a new key).
public struct CounterReservationFile: Sendable {
    public let file: DurableFile
    /// The key epoch the reservation belongs to.
    public let epoch: UInt16

    public init(path: String, epoch: UInt16 = 0) {
        file = DurableFile(path: path)
        self.epoch = epoch
    }

    /// The stored limit. Throws when the file is missing, damaged or of another key epoch.
    public func load() throws(CounterFileError) -> UInt64 {
        guard let (limit, fileEpoch) = try read() else { throw .missing(file.path) }
        guard fileEpoch == epoch else { throw .otherEpoch(file.path, file: fileEpoch, key: epoch) }
        return limit
    }

    public func store(_ limit: UInt64) throws(CounterFileError) {
        let text = epoch == 0 ? "\(limit)\n" : "\(limit) epoch \(epoch)\n"
        do { try file.write(Array(text.utf8)) } catch { throw .unwritable(file.path, error) }
    }

    /// Provisioning: a fresh reservation (limit 0) for this epoch's new key. A reservation already stored for
    /// this epoch is kept: that key's counters have been used.
    public func provision() throws(CounterFileError) {
        if let (_, fileEpoch) = try? read(), fileEpoch == epoch { return }
        try store(0)
    }

    private func read() throws(CounterFileError) -> (limit: UInt64, epoch: UInt16)? {
        let bytes: [UInt8]?
        do { bytes = try file.read() } catch { throw .unreadable(file.path, error) }
        guard let bytes else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.hasSuffix("\n") else { throw .corrupt(file.path) }
        let words = text.dropLast().split(separator: " ", omittingEmptySubsequences: false)
        switch words.count {
        case 1:
            guard let limit = UInt64(words[0]) else { throw .corrupt(file.path) }
            return (limit, 0)
        case 3:
            guard let limit = UInt64(words[0]), words[1] == "epoch", let epoch = UInt16(words[2]), epoch > 0 else {
                throw .corrupt(file.path)
            }
            return (limit, epoch)
        default: throw .corrupt(file.path)
        }
    }
}

/// Why the counter reservation could not be read or kept. Without it no frame may be sealed.
public enum CounterFileError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(String, Errno)
    case unwritable(String, Errno)
    case corrupt(String)
    case missing(String)
    /// The file belongs to key epoch `file`, the key is of epoch `key`.
    case otherEpoch(String, file: UInt16, key: UInt16)

    private static let reprovision =
        "re-provision the device with the next key epoch (devicesim provision --force, which moves to the next epoch; docs/hardware.md: \"A lost state directory\")"

    public var description: String {
        switch self {
        case .unreadable(let p, let e): "cannot read the frame counter file \(p): \(e); no frame is sent until it can be read"
        case .unwritable(let p, let e): "cannot store the frame counter in \(p): \(e); no frame is sent until it can be stored"
        case .corrupt(let p): "the frame counter file \(p) is damaged: reusing counters would break encryption, so nothing is sent; \(Self.reprovision)"
        case .missing(let p):
            "the frame counter file \(p) is missing (a lost or replaced state directory?): the counters this key has used are unknown and reusing one would break encryption, so nothing is sent; \(Self.reprovision)"
        case .otherEpoch(let p, let file, let key):
            "the frame counter file \(p) belongs to key epoch \(file), but device.toml has key epoch \(key): nothing is sent; \(Self.reprovision)"
        }
    }
}
