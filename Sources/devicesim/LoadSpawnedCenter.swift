import ArgumentParser
import DeviceKit
import Dispatch
import Foundation
import NIOCore

/// `devicesim load` options for a centre that the tool starts for the run, and crashes on purpose.
struct SpawnedCenterOptions: ParsableArguments {
    @Flag(help: "Start `devicesim center` for the run as a child process, with the same master key (in a 0600 temporary file), on 127.0.0.1 and a free port (or on --center's address); stop it at the end and check its journal against the alarms the devices saw acknowledged (a missing one: exit status 1).")
    var spawnCenter = false

    @Option(help: "The centre's journal, checked at the end against the alarms the devices saw acknowledged (one missing or recorded twice: exit status 1): a file, or postgres://USER@HOST[:PORT]/DATABASE with its password in PGPASSWORD. With --spawn-center, the spawned centre's (default: a file in a temporary directory, removed when the check passes); without, the journal of the centres at --center and --secondary (one process: --workers 1).")
    var centerJournal: String?

    @Option(name: .customLong("center-arg"), parsing: .unconditionalSingleValue, help: "One more argument for the spawned centre, e.g. --center-arg --journal-batch --center-arg 64; repeat for more. They come last, so they override the tool's choices.")
    var centerArguments: [String] = []

    @Option(name: .customLong("restart-center"), parsing: .unconditionalSingleValue, help: "Crash the spawned centre (SIGKILL) this long into the steady phase, e.g. 10s, and start it again at once on the same port and journal; repeat for more.", transform: DurationOption.seconds)
    var restartAt: [DurationOption] = []

    @Option(name: .customLong("restart-center-every"), parsing: .unconditional, help: "Crash and restart the spawned centre this often during the steady phase, e.g. 10s.", transform: DurationOption.seconds)
    var restartEvery: DurationOption?

    @Option(parsing: .unconditional, help: "How long a crashed centre stays down before it starts again, while devices meet refused connections and back off (default 0s).", transform: DurationOption.seconds)
    var centerDown: DurationOption?

    func validate() throws {
        if !spawnCenter, !centerArguments.isEmpty || !restartAt.isEmpty || restartEvery != nil || centerDown != nil {
            throw ValidationError(
                "--center-arg, --restart-center, --restart-center-every and --center-down act on a centre the tool starts: add --spawn-center.")
        }
        if !spawnCenter, let centerJournal { _ = try Self.location(centerJournal) }
    }

    /// `--center-journal` as a journal's location, or a usage error saying what is wrong with it.
    static func location(_ journal: String) throws -> JournalLocation {
        do { return try JournalLocation.parse(journal) } catch { throw ValidationError("--center-journal: \(error)") }
    }

    /// Without `--spawn-center`: the check of the journal of the centres the devices used (`--center-journal`),
    /// or `nil` when none is named.
    func checkGivenJournal(acknowledged: [FleetAlarmID]) throws -> CenterJournalCheck? {
        guard !spawnCenter, let centerJournal else { return nil }
        return try CenterJournalCheck(journal: try Self.location(centerJournal), acknowledged: acknowledged)
    }

    var restartSchedule: CenterRestartSchedule {
        CenterRestartSchedule(at: restartAt.map(\.duration), every: restartEvery?.duration, down: centerDown?.duration ?? .zero)
    }

    /// Starts the centre when `--spawn-center` asks for one; on `address` if given (`--center`), else on
    /// 127.0.0.1 and a free port. `nil` without `--spawn-center`.
    func start(on address: SocketAddress?, masterHex: String, heartbeat: UInt16?) async throws -> SpawnedCenterRun? {
        guard spawnCenter else { return nil }
        return try await SpawnedCenterRun.start(self, on: address, masterHex: masterHex, heartbeat: heartbeat)
    }
}

/// The centre started for one run: its files, the child process, and what becomes of them at the end.
final class SpawnedCenterRun: Sendable {
    let centre: SpawnedCenter
    /// Where the devices find it.
    let address: SocketAddress
    private let schedule: CenterRestartSchedule
    private let directory: String
    private let temporaryJournal: Bool
    private let signals: SignalRelay

    private init(centre: SpawnedCenter, address: SocketAddress, schedule: CenterRestartSchedule, directory: String, temporaryJournal: Bool) {
        self.centre = centre
        self.address = address
        self.schedule = schedule
        self.directory = directory
        self.temporaryJournal = temporaryJournal
        // Ctrl-C or a SIGTERM to the tool: the centre goes too, then the tool ends as the signal would have ended it.
        signals = SignalRelay { [centre, directory] signal in
            Task {
                await centre.stop()
                try? FileManager.default.removeItem(atPath: directory + "/master.hex")
                exit(128 + signal)
            }
        }
    }

    static func start(_ options: SpawnedCenterOptions, on address: SocketAddress?, masterHex: String, heartbeat: UInt16?) async throws -> SpawnedCenterRun {
        let directory = NSTemporaryDirectory() + "devicesim-load-center-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let masterFile = directory + "/master.hex"
        guard FileManager.default.createFile(atPath: masterFile, contents: Data(masterHex.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ValidationError("Cannot write the centre's key file in \(directory): check the temporary directory (TMPDIR).")
        }
        let host = address?.ipAddress ?? "127.0.0.1"
        var port = address?.port ?? 0
        if port == 0 { port = try await SpawnedCenter.choosePort(host: host) }
        // The tool's own binary, by its real path so that the process list reads well.
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil } ?? "/proc/self/exe"
        let configuration = SpawnedCenter.Configuration(
            executable: executable, host: host, port: port, masterFile: masterFile,
            journal: options.centerJournal ?? directory + "/center.sqlite", log: directory + "/center.log",
            heartbeatInterval: heartbeat ?? 30, extraArguments: options.centerArguments)
        let run = SpawnedCenterRun(
            centre: SpawnedCenter(configuration: configuration), address: try SocketAddress(ipAddress: host, port: port),
            schedule: options.restartSchedule, directory: directory, temporaryJournal: options.centerJournal == nil)
        do {
            try await run.centre.start()
        } catch {
            await run.abandon()
            throw error
        }
        await run.say("listening on \(host):\(port); journal \(configuration.journal); log \(configuration.log)")
        return run
    }

    /// The crashes of `--restart-center` beside the run of `plan`, or `nil` if none is asked for.
    func crashes(during plan: LoadPlan) -> (@Sendable (NIODeadline) async throws -> Void)? {
        let instants = schedule.instants(steadyStart: plan.steadyStart, steadyDuration: plan.steadyDuration)
        guard !instants.isEmpty else { return nil }
        return { [self] start in
            try await centre.crashAndRestart(instants, down: schedule.down, from: start) { restart in
                Task { await self.say(String(format: "crashed (SIGKILL) at %.1f s, listening again after %.2f s", restart.killedAt, restart.downSeconds)) }
            }
        }
    }

    /// Stops the centre, then adds its restarts and the check of its journal to `report`.
    func finish(_ report: inout LoadReport, acknowledged: [FleetAlarmID]) async throws {
        let killed = await centre.stop()
        signals.cancel()
        try? FileManager.default.removeItem(atPath: centre.configuration.masterFile)
        if killed { await say("did not stop within \(centre.bounds.stop) of SIGTERM and was killed") }
        report.centerRestarts = await centre.restarts
        let journal = centre.configuration.journal
        let check = try CenterJournalCheck(journal: try JournalLocation.parse(journal), acknowledged: acknowledged)
        report.centerJournal = check
        if check.passed, temporaryJournal {
            for suffix in ["", "-wal", "-shm", "-writer"] { try? FileManager.default.removeItem(atPath: journal + suffix) }
        }
    }

    /// Stops the centre after a failed run, keeping its journal and log.
    func abandon() async {
        await centre.stop()
        signals.cancel()
        try? FileManager.default.removeItem(atPath: centre.configuration.masterFile)
    }

    /// A line on standard error about the centre, with the pid of the process now running.
    private func say(_ text: String) async {
        let pid = await centre.pids.last.map(String.init) ?? "?"
        FileHandle.standardError.write(Data("centre (pid \(pid)) \(text)\n".utf8))
    }
}

/// SIGINT and SIGTERM to the tool, handled on a dispatch queue instead of ending it at once.
private final class SignalRelay: @unchecked Sendable {
    private static let signals = [SIGINT, SIGTERM]
    /// Touched at creation and in `cancel()`, both on the task that runs the load.
    private var sources: [any DispatchSourceSignal] = []

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        for number in Self.signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
        sources = []
        for number in Self.signals { signal(number, SIG_DFL) }
    }
}
