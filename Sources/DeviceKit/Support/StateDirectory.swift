#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A directory devicesim keeps state in (a device's state directory), created with its parents; when that
/// fails, the error says why in words (Foundation's says "The operation could not be completed. The file
/// doesn't exist.").
public enum StateDirectory {
    /// Creates `path` and its missing parents, mode 0700 for new ones. Throws a `DirectoryError` naming the
    /// part of the path in the way.
    public static func create(_ path: String) throws(DirectoryError) {
        guard !path.isEmpty else { return }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw DirectoryError(path: path, problem: .notADirectory(path)) }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path {
            // The error names the directory asked for, and the part of its path in the way.
            do { try create(parent) } catch { throw DirectoryError(path: path, problem: error.problem) }
        }
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
            throw DirectoryError(path: path, errno: errno)
        }
    }
}

/// A directory could not be created: which, and why in words.
public struct DirectoryError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Problem: Hashable, Sendable {
        /// This part of the path exists and is a file.
        case notADirectory(String)
        case permissionDenied
        case readOnly
        case noSpace
        case other(String)
    }

    public var path: String
    public var problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    init(path: String, errno code: Int32) {
        let problem: Problem
        switch code {
        case EACCES, EPERM: problem = .permissionDenied
        case EROFS: problem = .readOnly
        case ENOSPC, EDQUOT: problem = .noSpace
        case ENOTDIR: problem = .notADirectory((path as NSString).deletingLastPathComponent)
        default: problem = .other(String(cString: strerror(code)).lowercased())
        }
        self.init(path: path, problem: problem)
    }

    public var description: String {
        switch problem {
        case .notADirectory(let file):
            "cannot create the directory \(path): \(file) is a file, not a directory; choose another directory or move the file"
        case .permissionDenied:
            "cannot create the directory \(path): permission denied; run as a user who may write \((path as NSString).deletingLastPathComponent), or create it for this user"
        case .readOnly:
            "cannot create the directory \(path): the file system is read-only"
        case .noSpace:
            "cannot create the directory \(path): no space left on the device"
        case .other(let reason):
            "cannot create the directory \(path): \(reason)"
        }
    }
}
