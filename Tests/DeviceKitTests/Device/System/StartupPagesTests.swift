import Foundation
import NIOCore
import Testing

@testable import DeviceKit

@Suite struct StartupPagesTests {
    /// Four mappings of the kind `/proc/self/smaps` lists: only the read-only ones of a file with no private
    /// copy of a page may go.
    static let smaps = """
        55d0c0000000-55d0c0200000 r--p 00000000 08:01 1234   /usr/bin/devicesim
        Size:               2048 kB
        Rss:                 512 kB
        Anonymous:             0 kB
        VmFlags: rd mr mw me dw sd
        55d0c0200000-55d0c1000000 r-xp 00200000 08:01 1234   /usr/bin/devicesim
        Size:              14336 kB
        Rss:                8192 kB
        Anonymous:             0 kB
        55d0c1000000-55d0c1100000 r--p 01000000 08:01 1234   /usr/bin/devicesim
        Size:               1024 kB
        Rss:                1024 kB
        Anonymous:           900 kB
        55d0c1100000-55d0c1200000 rw-p 01100000 08:01 1234   /usr/bin/devicesim
        Rss:                 100 kB
        Anonymous:           100 kB
        55d0c1200000-55d0c1300000 rw-p 00000000 00:00 0      [heap]
        Rss:                 400 kB
        Anonymous:           400 kB
        7f0000000000-7f0000010000 r-xp 00000000 08:01 99     /usr/lib/x86_64-linux-gnu/libc.so.6
        Rss:                   0 kB
        Anonymous:             0 kB
        7f0000010000-7f0000020000 r--p 00000000 00:00 0
        Rss:                  64 kB
        Anonymous:             0 kB
        7ffd00000000-7ffd00001000 r-xp 00000000 00:00 0      [vdso]
        Rss:                   4 kB
        Anonymous:             0 kB
        7f0000030000-7f0000040000 r-xp 00000000 08:01 98     /usr/lib/libsodium.so
        Rss:                  64 kB
        """

    @Test func onlyReadOnlyFileMappingsWithoutPrivateCopiesAreReleasable() {
        #expect(StartupPages.releasable(smaps: Self.smaps) == [
            .init(start: 0x55d0_c000_0000, end: 0x55d0_c020_0000, resident: 512 * 1024),
            .init(start: 0x55d0_c020_0000, end: 0x55d0_c100_0000, resident: 8192 * 1024),
        ])
    }

    /// This test process's own code: released, and it runs on (its pages map again from the page cache).
    @Test func releasingThisProcessesCodeKeepsItRunningAndLowersItsResidentFilePages() throws {
        let before = try Self.residentFileBytes()
        let released = StartupPages.release()
        let after = try Self.residentFileBytes()
        #expect(released > 0)
        #expect(after < before, "RssFile \(before) → \(after) after releasing \(released) bytes")
        // Code that had run before runs again: the codec round-trips a frame.
        let key = [UInt8](repeating: 7, count: 32)
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        try SealedFrame.seal(.heartbeat(Heartbeat(status: [], battery: 80)), direction: .up, deviceID: 5, counter: 1, key: Data(key), into: &buffer)
        #expect(buffer.readableBytes > 0)
    }

    /// The whole of this process's `/proc/self/smaps` is read: the libraries' code (libc's, listed after the
    /// main binary's mappings) is releasable too, not only the mappings in the first page of it that
    /// Foundation's readers return.
    @Test func theSharedLibrariesMappingsAreReleasableToo() throws {
        let releasable = Set(StartupPages.ownReleasable().map(\.start))
        let maps = try #require(KernelFile.text("/proc/self/maps"))
        let libraryCode = maps.split(separator: "\n").filter { $0.contains(" r-xp ") && $0.contains("/libc.so") }
        let start = try #require(libraryCode.first.flatMap { UInt($0.prefix { $0 != "-" }, radix: 16) })
        #expect(releasable.contains(start), "libc's code at \(String(start, radix: 16)) is not releasable")
    }

    /// A private, writable mapping of a file, as the static build's `.rodata` is: the pages still the file's
    /// are unmapped (and read the file's bytes again), a page written keeps what was written.
    @Test func onlyPagesStillTheFilesAreReleasedFromAWritableMapping() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = NSTemporaryDirectory() + "startup-pages-\(UUID().uuidString)"
        defer { unlink(path) }
        let pages = 8
        try Data((0..<pages * page).map { UInt8(truncatingIfNeeded: $0 / page + 1) }).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let mapped = try #require(mmap(nil, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0))
        try #require(mapped != MAP_FAILED)
        defer { munmap(mapped, pages * page) }
        let bytes = mapped.assumingMemoryBound(to: UInt8.self)
        var sum = 0
        for index in 0..<pages { sum += Int(bytes[index * page]) }  // every page mapped
        #expect(sum == (1...pages).reduce(0, +))
        bytes[3 * page + 1] = 0xEE  // page 3 becomes a private copy
        let start = UInt(bitPattern: mapped)
        #expect(try Self.present(start, pages: pages) == Array(repeating: true, count: pages))

        let released = StartupPages.releaseFilePages(start: start, end: start + UInt(pages * page))
        #expect(released == (pages - 1) * page)
        #expect(try Self.present(start, pages: pages) == (0..<pages).map { $0 == 3 })
        #expect(bytes[3 * page + 1] == 0xEE && bytes[3 * page] == 4)
        #expect(bytes[5 * page] == 6 && bytes[pages * page - 1] == UInt8(pages))
    }

    /// Whether each page from `start` is mapped (`/proc/self/pagemap` bit 63).
    static func present(_ start: UInt, pages: Int) throws -> [Bool] {
        let page = UInt(sysconf(Int32(_SC_PAGESIZE)))
        return try #require(StartupPages.pagemap(firstPage: start / page, count: pages)).map { $0 >> 63 == 1 }
    }

    static func residentFileBytes() throws -> Int {
        let status = try #require(KernelFile.text("/proc/self/status"))
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("RssFile:") })
        return try #require(Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])) * 1024
    }
}
