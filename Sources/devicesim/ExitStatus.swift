import ArgumentParser
import DeviceKit
import Foundation
import NIOCore

/// How a devicesim command ends: sysexits(3) codes, so that a script or systemd can tell a command line it
/// cannot use (64, the only code that prints the usage) from a missing file, a held lock or a port in use.
/// 1 is a verdict, not a failure: a check that found a problem (selftest FAIL, an objective missed, an
/// invalid frame).
enum ExitStatus: Int32, CaseIterable, Sendable {
    case success = 0
    case verdict = 1
    case usage = 64
    case dataError = 65
    case noInput = 66
    case noHost = 68
    case unavailable = 69
    case software = 70
    case cannotCreate = 73
    case ioError = 74
    case temporaryFailure = 75
    case noPermission = 77
    case configuration = 78

    /// What the code means in general; a command's help adds what it means there.
    var meaning: String {
        switch self {
        case .success: "done"
        case .verdict: "a check found a problem"
        case .usage: "the command line cannot be used (the usage is printed)"
        case .dataError: "an input's content is wrong"
        case .noInput: "an input file is missing or unreadable"
        case .noHost: "a host name does not resolve"
        case .unavailable: "a port is in use or a service cannot be reached"
        case .software: "an internal error (please report it)"
        case .cannotCreate: "a file or directory cannot be created"
        case .ioError: "reading or writing failed"
        case .temporaryFailure: "another process holds what is needed; try again once it stops"
        case .noPermission: "permission denied"
        case .configuration: "a configuration or key file is invalid"
        }
    }

    /// The exit status paragraph of a command's help: the codes it may end with, each with what it means
    /// there (`specific`) or in general.
    static func help(_ codes: [ExitStatus], _ specific: [ExitStatus: String] = [:]) -> String {
        let all = ([.success] + codes + [.usage]).reduce(into: [ExitStatus]()) { if !$0.contains($1) { $0.append($1) } }
            .sorted { $0.rawValue < $1.rawValue }
        return "Exit status: " + all.map { "\($0.rawValue) \(specific[$0] ?? $0.meaning)" }.joined(separator: "; ") + "."
    }
}

/// What a command could not do, in words that say what to do, and the exit status that tells which kind of
/// failure it was. Thrown from `run()` (never from `validate()`, whose errors ArgumentParser reports as usage
/// errors); `DeviceSim.main` prints it without the usage and exits with its status.
struct CommandFailure: Error, CustomStringConvertible {
    var status: ExitStatus
    var message: String

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    var description: String { message }

    /// The failure an error from DeviceKit or the system stands for; `nil` for ArgumentParser's own (usage
    /// errors, help, exit codes), which it reports itself.
    init?(_ error: any Error) {
        // ArgumentParser's own errors (its CommandError and ParserError are internal types) are its to report.
        if String(reflecting: type(of: error)).hasPrefix("ArgumentParser.") { return nil }
        switch error {
        case is ValidationError, is CleanExit, is ExitCode:
            return nil
        case let failure as CommandFailure:
            self = failure
        case let error as DeviceConfigError:
            self.init(.configuration, error.description)
        case let error as StateDirectoryLockError:
            switch error {
            case .held: self.init(.temporaryFailure, error.description)
            case .cannotOpen: self.init(.cannotCreate, error.description)
            }
        case let error as JournalOpenError:
            self.init(.cannotCreate, error.description)
        case let error as PostgresJournalError:
            self.init(.unavailable, error.description)
        case let error as CenterBindError:
            self.init(error.isUnknownHost ? .noHost : error.isPermission ? .noPermission : .unavailable, error.description)
        case let error as DeviceDaemonError:
            switch error.kind {
            case .stateDirectory: self.init(.cannotCreate, error.description)
            case .stateDirectoryHeld: self.init(.temporaryFailure, error.description)
            case .unresolvedCentre: self.init(.noHost, error.description)
            case .other: self.init(.software, error.description)
            }
        case let error as ProvisioningError:
            self.init(.cannotCreate, error.description)
        case let error as DirectoryError:
            self.init(error.problem == .permissionDenied ? .noPermission : .cannotCreate, error.description)
        case let error as RegistryError:
            self.init(.configuration, error.description)
        case let error as CenterWorkerProcesses.WorkerFailed:
            // A worker that failed as a command does (a port in use: 69) makes the whole centre fail the same way.
            let status = error.exitStatus.flatMap(ExitStatus.init(rawValue:)).flatMap { $0.rawValue >= 64 ? $0 : nil }
            self.init(status ?? .software, error.description)
        case let error as IOError:
            self.init(Self.status(errno: error.errnoCode, default: .ioError), "\(error)")
        default:
            self.init(.software, "\(error)")
        }
    }

    /// The status for a failed system call on a file.
    static func status(errno: CInt, default fallback: ExitStatus) -> ExitStatus {
        switch errno {
        case ENOENT, ENOTDIR: .noInput
        case EACCES, EPERM: .noPermission
        case EADDRINUSE, EADDRNOTAVAIL: .unavailable
        default: fallback
        }
    }

    /// Reading `path` failed: missing (66), not permitted (77) or another I/O error (74), said in words.
    static func cannotRead(_ path: String, what: String, errno code: CInt, advice: String = "check the path and its permissions") -> CommandFailure {
        let reason = code == ENOENT ? "it does not exist" : "\(String(cString: strerror(code)).lowercased())"
        return CommandFailure(status(errno: code, default: .ioError), "cannot read \(what) \(path): \(reason); \(advice)")
    }
}

/// Reads a whole text file, or throws a `CommandFailure` that names it (as `what`) and the system's reason.
func readTextFile(_ path: String, what: String, advice: String = "check the path and its permissions") throws(CommandFailure) -> String {
    String(decoding: try readFile(path, what: what, advice: advice), as: UTF8.self)
}

/// Reads a whole file's bytes, or throws a `CommandFailure` that names it (as `what`) and the system's reason.
func readFile(_ path: String, what: String, advice: String = "check the path and its permissions") throws(CommandFailure) -> Data {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw CommandFailure(.noInput, "cannot read \(what) \(path): it is a directory; give the file in it")
    }
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw CommandFailure.cannotRead(path, what: what, errno: errno, advice: advice) }
    // Read through the descriptor: a character device (`/dev/null`, a pipe) reads as what it holds.
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
    do {
        return try handle.readToEnd() ?? Data()
    } catch {
        throw CommandFailure.cannotRead(path, what: what, errno: EIO, advice: advice)
    }
}
