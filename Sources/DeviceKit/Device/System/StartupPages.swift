#if canImport(Glibc)
import Glibc
#endif

/// Gives back the page mappings that start-up made and the running device no longer uses.
///
/// What holds the idle daemon's resident memory is not its own data (about 3 MB) but clean pages of code and
/// read-only data: those that start-up ran through (argument parsing, device.toml, SQLite's open and
/// migrations, the handshake) and, for each page first touched, the 64 KB around it that the kernel maps at
/// the same time (fault-around). `devicesim` carries the centre, the load tool and SIP too, so those 64 KB
/// hold mostly code a device never runs.
///
/// Once the first session is up, `release()` unmaps the pages of every read-only mapping of a file
/// (`madvise(MADV_DONTNEED)`): they stay in the page cache, so what the device runs afterwards maps again with
/// a minor fault (no read from storage), and the resident set becomes what the device actually runs idle.
/// Pages no process maps are also the first the kernel reclaims under memory pressure.
///
/// Only mappings that are private, not writable, of a file and with no anonymous page are released: a page
/// written after it was mapped (the relocated `.data.rel.ro`, a debugger's breakpoint) is a private copy that
/// `MADV_DONTNEED` would replace with the file's bytes; such a mapping keeps all its pages.
///
/// One writable mapping holds read-only data too: the static build's `.rodata` (37 MB, ICU's 34 MB of data
/// among it) is linked writable, because an input section of that name is, and lands in the segment with
/// `.data`. Its pages that are still the file's (`/proc/self/pagemap`: present, file page) are released one
/// by one; a written page of it, if any, is a private copy and is kept. Nothing else in that mapping is
/// touched: `.data` is written while the device runs, and a page written between the look and the release
/// would lose the write.
public enum StartupPages {
    /// One mapping of `/proc/self/smaps` that may be released.
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var resident: Int
    }

    /// The mappings of an smaps text that `release()` may unmap: `r--p` or `r-xp`, backed by a file, with
    /// `Anonymous: 0 kB`. Lines it does not understand end no mapping early: a mapping without its `Rss:` and
    /// `Anonymous:` lines is left alone.
    static func releasable(smaps: String) -> [Mapping] {
        var found: [Mapping] = []
        var candidate: (start: UInt, end: UInt)?
        var resident: Int?
        var anonymous: Int?
        func finish() {
            if let candidate, let resident, anonymous == 0, resident > 0 {
                found.append(Mapping(start: candidate.start, end: candidate.end, resident: resident))
            }
            candidate = nil
            resident = nil
            anonymous = nil
        }
        for line in smaps.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains("-"), !first.hasSuffix(":") {
                finish()
                let bounds = first.split(separator: "-")
                guard fields.count >= 6, bounds.count == 2, fields[1] == "r--p" || fields[1] == "r-xp",
                    fields[5].hasPrefix("/"),
                    let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16), end > start
                else { continue }
                candidate = (start, end)
            } else if first == "Rss:", fields.count >= 2, let kB = Int(fields[1]) {
                resident = kB * 1024
            } else if first == "Anonymous:", fields.count >= 2, let kB = Int(fields[1]) {
                anonymous = kB
            }
        }
        finish()
        return found
    }

    /// This process's releasable mappings, from the whole of `/proc/self/smaps` (`KernelFile`: Foundation's
    /// readers return its first page only, the main binary's mappings, not the libraries').
    static func ownReleasable() -> [Mapping] { KernelFile.text("/proc/self/smaps").map { releasable(smaps: $0) } ?? [] }

    /// Unmaps the releasable mappings of this process; returns the resident bytes they held. Errors (no
    /// `/proc`, an `madvise` refused) release less, never fail the device.
    @discardableResult
    public static func release() -> Int {
        #if os(Linux)
        var released = 0
        for mapping in ownReleasable() {
            guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
            if madvise(address, Int(mapping.end - mapping.start), MADV_DONTNEED) == 0 { released += mapping.resident }
        }
        if let bias = OwnExecutable.loadBias(), let data = OwnExecutable.ownSections()?.first(where: { $0.name == ".rodata" }),
            data.size > 0, !data.isExecutable
        {
            let start = bias &+ UInt(data.address)
            released += releaseFilePages(start: start, end: start &+ UInt(data.size))
        }
        return released
        #else
        return 0
        #endif
    }

    /// Unmaps the pages within `start..<end` (trimmed to whole pages) that are mapped and still the file's
    /// own (`/proc/self/pagemap`: bit 63 present, bit 61 file page); a private copy (written) is kept. Returns
    /// the bytes unmapped. For data nothing writes: a page written between the look and the unmapping would
    /// lose the write.
    static func releaseFilePages(start: UInt, end: UInt) -> Int {
        #if os(Linux)
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        let first = (start + page - 1) / page, last = end / page
        guard page > 0, last > first, let entries = pagemap(firstPage: first, count: Int(last - first)) else { return 0 }
        var released = 0
        var run: UInt?  // first page of the current run of file pages
        func finish(before pageNumber: UInt) {
            guard let from = run, let address = UnsafeMutableRawPointer(bitPattern: from * page) else { return }
            if madvise(address, Int((pageNumber - from) * page), MADV_DONTNEED) == 0 { released += Int((pageNumber - from) * page) }
            run = nil
        }
        for (index, entry) in entries.enumerated() {
            let pageNumber = first + UInt(index)
            if entry >> 61 & 0b101 == 0b101 {
                if run == nil { run = pageNumber }
            } else {
                finish(before: pageNumber)
            }
        }
        finish(before: last)
        return released
        #else
        return 0
        #endif
    }

    /// `count` entries of `/proc/self/pagemap` from page number `firstPage`, one 64-bit word a page (bit 63
    /// present, bit 61 file page or shared); `nil` when it cannot be read.
    static func pagemap(firstPage: UInt, count: Int) -> [UInt64]? {
        #if os(Linux)
        let fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var entries = [UInt64](repeating: 0, count: count)
        let n = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count * 8, off_t(firstPage * 8)) }
        return n == count * 8 ? entries.map { UInt64(littleEndian: $0) } : nil
        #else
        return nil
        #endif
    }
}
