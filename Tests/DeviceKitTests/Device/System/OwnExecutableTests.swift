import Foundation
import Testing

@testable import DeviceKit

@Suite struct OwnExecutableTests {
    /// This test binary's own sections: its code is where `.text` says, once moved by the load bias.
    @Test func theTextSectionHoldsThisProcessesCode() throws {
        let sections = try #require(OwnExecutable.ownSections())
        let text = try #require(sections.first { $0.name == ".text" })
        #expect(text.isExecutable && text.size > 0)
        #expect(sections.contains { $0.name == ".rodata" && !$0.isExecutable })
        let bias = try #require(OwnExecutable.loadBias())
        let code: @convention(c) () -> Int32 = { 7 }
        let address = UInt(bitPattern: unsafeBitCast(code, to: UnsafeRawPointer.self))
        let start = bias + UInt(text.address)
        #expect(address >= start && address < start + UInt(text.size))
    }

    /// What is not a whole ELF64 little-endian file has no sections, whatever is cut off.
    @Test func otherFilesAndTruncatedOnesHaveNoSections() throws {
        let handle = try #require(FileHandle(forReadingAtPath: "/proc/self/exe"))
        defer { try? handle.close() }
        let file = Array(try #require(try handle.read(upToCount: 4096)))  // the header, not the table at the end
        func reader(_ bytes: [UInt8]) -> (UInt64, Int) -> [UInt8]? {
            { offset, count in
                guard offset < UInt64(bytes.count), Int(offset) + count <= bytes.count else { return nil }
                return Array(bytes[Int(offset)..<Int(offset) + count])
            }
        }
        #expect(OwnExecutable.sections(read: reader(Array("#!/bin/sh\necho hello, this is not an ELF file at all\n".utf8))) == nil)
        #expect(OwnExecutable.sections(read: reader(Array(file.prefix(40)))) == nil)
        var bigEndian = Array(file)
        bigEndian[5] = 2
        #expect(OwnExecutable.sections(read: reader(bigEndian)) == nil)
        // The header without the table it points to.
        #expect(OwnExecutable.sections(read: reader(Array(file))) == nil)
    }
}
