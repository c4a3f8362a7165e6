import Foundation

/// Where, when and with what a load report was made, for whoever reads the file later: the date, the command
/// line, the devicesim version, the host and the git commit of the build.
public struct LoadRunContext: Codable, Equatable, Sendable {
    /// When the run began, ISO 8601 in UTC (`2026-12-04T19:56:33Z`).
    public var date: String
    /// The arguments after the executable's name, with the value of `--master` hidden: a report is shared.
    public var commandLine: [String]
    public var version: String
    public var host: String
    /// The commit the binary was built from, with `-modified` when the work tree had changes then, or
    /// "unknown" (see `BuildStamp`).
    public var gitCommit: String

    public init(date: String, commandLine: [String], version: String, host: String, gitCommit: String) {
        self.date = date
        self.commandLine = commandLine
        self.version = version
        self.host = host
        self.gitCommit = gitCommit
    }

    /// This process's context: `arguments` as given (without the executable), `began` when the run began.
    public static func current(arguments: [String], began: Date = Date()) -> LoadRunContext {
        LoadRunContext(
            date: format(began), commandLine: hidingKeys(arguments),
            version: BuildStamp.version, host: hostName(), gitCommit: BuildStamp.commit)
    }

    static func format(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// `--master HEX` and `--master=HEX` with the key replaced.
    static func hidingKeys(_ arguments: [String]) -> [String] {
        var hidden: [String] = []
        var hideNext = false
        for argument in arguments {
            if hideNext {
                hidden.append("(hidden)")
                hideNext = false
            } else if argument == "--master" {
                hidden.append(argument)
                hideNext = true
            } else if argument.hasPrefix("--master=") {
                hidden.append("--master=(hidden)")
            } else {
                hidden.append(argument)
            }
        }
        return hidden
    }

    private static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
