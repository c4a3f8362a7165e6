import CDeviceSys

#if canImport(Glibc)
import Glibc
#endif

/// The sections of this process's own executable, from its ELF section headers (`/proc/self/exe`), and where
/// the executable is loaded: for `StartupPages`, which needs to know where `.rodata` lies in memory.
///
/// Only what that needs is read: ELF64, little-endian (x86-64, arm64), the section header table and its
/// names. Anything else (another format, a truncated file, a name out of bounds) is `nil`, never a guess.
enum OwnExecutable {
    struct Section: Equatable {
        var name: String
        /// `SHF_*`: write 0x1, alloc 0x2, execute 0x4.
        var flags: UInt64
        /// Its address as linked; add `loadBias()` for where it is in this process.
        var address: UInt64
        var size: UInt64

        var isExecutable: Bool { flags & 0x4 != 0 }
    }

    /// The section headers of the ELF file `read(offset, count)` reads (`nil` for a short read or past the end).
    static func sections(read: (_ offset: UInt64, _ count: Int) -> [UInt8]?) -> [Section]? {
        guard let header = read(0, 64), header.count == 64, header[0...3] == [0x7F, 0x45, 0x4C, 0x46],
            header[4] == 2, header[5] == 1  // ELFCLASS64, ELFDATA2LSB
        else { return nil }
        let tableOffset = header.little(UInt64.self, at: 0x28)
        let entrySize = Int(header.little(UInt16.self, at: 0x3A))
        let count = Int(header.little(UInt16.self, at: 0x3C))
        let namesIndex = Int(header.little(UInt16.self, at: 0x3E))
        guard entrySize >= 64, count > 0, namesIndex < count, let table = read(tableOffset, entrySize * count),
            table.count == entrySize * count
        else { return nil }
        func field<T: FixedWidthInteger>(_ type: T.Type, _ index: Int, _ offset: Int) -> T {
            table.little(T.self, at: index * entrySize + offset)
        }
        let namesSize = field(UInt64.self, namesIndex, 32)
        guard namesSize <= 1 << 20, let names = read(field(UInt64.self, namesIndex, 24), Int(namesSize)),
            names.count == Int(namesSize)
        else { return nil }
        var sections: [Section] = []
        for index in 0..<count {
            let nameStart = Int(field(UInt32.self, index, 0))
            guard nameStart < names.count else { return nil }
            let name = String(decoding: names[nameStart...].prefix { $0 != 0 }, as: UTF8.self)
            sections.append(
                Section(name: name, flags: field(UInt64.self, index, 8), address: field(UInt64.self, index, 16), size: field(UInt64.self, index, 32)))
        }
        return sections
    }

    /// This process's executable's sections, read from `/proc/self/exe`.
    static func ownSections() -> [Section]? {
        #if os(Linux)
        let fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return sections { offset, count in
            guard count >= 0, offset <= UInt64(Int.max) else { return nil }
            var bytes = [UInt8](repeating: 0, count: count)
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? bytes : nil
        }
        #else
        return nil
        #endif
    }

    /// How far the executable was moved from its linked addresses (a position-independent executable is
    /// loaded anywhere): where its program headers are (`AT_PHDR`) less the address its `PT_PHDR` names.
    static func loadBias() -> UInt? {
        #if os(Linux)
        let headers = getauxval(UInt(AT_PHDR)), count = Int(getauxval(UInt(AT_PHNUM)))
        guard headers != 0, count > 0, let base = UnsafeRawPointer(bitPattern: headers) else { return nil }
        for index in 0..<count {
            let entry = base + index * 56  // Elf64_Phdr
            guard entry.loadUnaligned(as: UInt32.self) == 6 else { continue }  // PT_PHDR
            let linked = UInt(entry.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            return headers >= linked ? headers - linked : nil
        }
        return nil
        #else
        return nil
        #endif
    }
}

extension [UInt8] {
    /// The little-endian integer at `offset` (callers check the bounds).
    fileprivate func little<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var value: T = 0
        for byte in 0..<MemoryLayout<T>.size { value |= T(self[offset + byte]) << (8 * byte) }
        return value
    }
}
