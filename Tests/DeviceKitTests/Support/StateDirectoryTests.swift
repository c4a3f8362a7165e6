import Foundation
import Testing

@testable import DeviceKit

/// A state directory created with its parents, or the part of its path in the way named in words.
@Suite struct StateDirectoryTests {
    @Test func aDirectoryIsCreatedWithItsParents() throws {
        let base = try makeTemporaryDirectory("state-directory")
        defer { try? FileManager.default.removeItem(atPath: base) }
        try StateDirectory.create(base + "/a/b/c")
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: base + "/a/b/c", isDirectory: &isDirectory) && isDirectory.boolValue)
        try StateDirectory.create(base + "/a/b/c")  // already there: nothing to do
    }

    /// Foundation said "The operation could not be completed. (NSCocoaErrorDomain error 512.)".
    @Test func aFileInTheWayIsNamed() throws {
        let base = try makeTemporaryDirectory("state-directory")
        defer { try? FileManager.default.removeItem(atPath: base) }
        #expect(FileManager.default.createFile(atPath: base + "/file", contents: nil))
        let error = #expect(throws: DirectoryError.self) { try StateDirectory.create(base + "/file/state/deeper") }
        #expect(error == DirectoryError(path: base + "/file/state/deeper", problem: .notADirectory(base + "/file")))
        #expect(error?.description == "cannot create the directory \(base)/file/state/deeper: \(base)/file is a file, not a directory; choose another directory or move the file")
        #expect(throws: DirectoryError(path: base + "/file", problem: .notADirectory(base + "/file"))) { try StateDirectory.create(base + "/file") }
    }
}
