import Foundation

/// The git commit a binary was built from, as the build wrote it beside the binary.
///
/// Swift has no way to compile a value into the binary from the package's own files, so the Makefile, after
/// each `swift build`, writes `devicesim.commit` next to the executable: the commit (`-modified` when the work
/// tree differed from it), then the binary's size and modification time. The stamp counts only while those
/// still match the binary, so a binary rebuilt since (`swift build` alone) reads "unknown", never an older
/// commit.
public enum BuildStamp {
    public static let fileName = "devicesim.commit"

    /// The version of devicesim and its firmware.
    public static var version: String { DeviceRuntimeConfiguration.firmwareVersion.description }

    /// This process's commit, or "unknown".
    public static var commit: String { commit(ofExecutable: executablePath) }

    /// This process's executable.
    public static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments.first ?? ""
    }

    /// The commit in the stamp beside `executable`, or "unknown".
    public static func commit(ofExecutable executable: String) -> String {
        let stamp = URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(fileName).path
        guard let text = try? String(contentsOfFile: stamp, encoding: .utf8) else { return "unknown" }
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.count >= 2, !lines[0].isEmpty, lines[1] == identity(of: executable) else { return "unknown" }
        return lines[0]
    }

    /// "SIZE MTIME" of a file, as `stat -c '%s %Y'` prints them.
    static func identity(of path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return "\(status.st_size) \(status.st_mtim.tv_sec)"
    }

    /// The repository `executable` was built in (`<repository>/.build/<triple>/<configuration>/devicesim`):
    /// the nearest directory above it holding Package.swift and protocol.md, or `nil` for an installed binary.
    public static func repository(ofExecutable executable: String) -> String? {
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while directory.path != "/" && !directory.path.isEmpty {
            let package = directory.appendingPathComponent("Package.swift").path
            let document = directory.appendingPathComponent("protocol.md").path
            if FileManager.default.fileExists(atPath: package) && FileManager.default.fileExists(atPath: document) {
                return directory.path
            }
            directory = directory.deletingLastPathComponent()
        }
        return nil
    }
}
