import ArgumentParser
import DeviceKit
import Foundation
import Glibc

/// `devicesim diag analyze`: the technician's verdict on a recording, or on a few seconds of a live device.
struct DiagAnalyzeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "analyze",
        abstract: "Judge a recording (or N seconds of a live button) as the device would: every press and its verdict.",
        discussion: """
            Offline, no centre needed. Prints the device's identity and whether it is a sensible call button \
            (not a mouse, touchpad, touchscreen, pen tablet or joystick; not a key the system acts on), every \
            press of the call button's key with its recorded length and autorepeat, and what the device's \
            press detector makes of it with the [alarm] settings of --config (without it: the defaults): \
            alarm, too short, glitch (shorter than the debounce), bounce, long press, stuck, with the setting \
            that would change each verdict. When no press would raise an alarm it names a setting that would, \
            checked by judging the recording again. Times are the recording's own. Reads evemu 1.1 to 1.3 and \
            the old format (description in front of the events), also with Windows line endings or quoted \
            from a mail.

            \(ExitStatus.help(
                [.verdict, .noInput, .configuration],
                [.success: "the button would raise alarms",
                 .verdict: "no press would raise an alarm, or the recording or the device cannot be read (the PROBLEM line says which)",
                 .noInput: "--config's device.toml is missing", .configuration: "--config's device.toml is invalid"]))
            """)

    @Argument(help: "An evemu recording (devicesim diag record, evemu-record), or a live input device such as /dev/input/sos-button.")
    var source: String

    @Option(help: "The device configuration: its [alarm] settings, and its [button] key and allow_pointer_device.")
    var config: String?

    @Option(help: "The call button's key (a name such as KEY_PROG1, or a number); overrides button.key.")
    var key: String?

    @Option(parsing: .unconditional, help: "For a live device: how many seconds to read before judging.")
    var seconds: Double = 10

    @Flag(help: "Print the analysis as JSON.")
    var json = false

    func validate() throws {
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be between 0 and 3600, e.g. --seconds 10") }
        if let key, InputEventNames.keyCode(named: key) == nil {
            throw ValidationError("--key '\(key)' is not a key name or number; write e.g. --key KEY_PROG1 (devicesim diag list shows a device's keys)")
        }
    }

    func run() async throws {
        let device = try config.map(loadDeviceConfig)
        let text: String
        if Self.isCharacterDevice(source) {
            let toStandardError = json
            let progress: @Sendable (String) -> Void = { line in
                if toStandardError { FileHandle.standardError.write(Data((line + "\n").utf8)) } else { say(line) }
            }
            guard let recorded = try await Self.record(source, seconds: seconds, progress: progress) else { throw ExitCode(ExitStatus.verdict.rawValue) }
            text = recorded
        } else {
            do { text = try readTextFile(source, what: "the recording") } catch {
                say("PROBLEM: \(error.message)")
                throw ExitCode(ExitStatus.verdict.rawValue)
            }
        }
        let analysis: ButtonAnalysis
        do {
            analysis = try Self.analyze(text, source: source, config: device, configPath: config, key: key.flatMap(InputEventNames.keyCode(named:)))
        } catch {
            say("PROBLEM: \(source) is not a valid evemu recording: \(error)")
            throw ExitCode(ExitStatus.verdict.rawValue)
        }
        if json {
            say(String(decoding: try JSONEncoder.sorted.encode(analysis.report), as: UTF8.self))
        } else {
            analysis.lines.forEach(say)
        }
        if !analysis.raisesAlarms { throw ExitCode(ExitStatus.verdict.rawValue) }
    }

    /// The analysis of a recording's text with the settings of `config` (the defaults without one).
    static func analyze(
        _ text: String, source: String, config: DeviceConfig?, configPath: String?, key: UInt16?
    ) throws(EvemuError) -> ButtonAnalysis {
        let (recording, reading) = try EvemuRecording.read(text)
        var configuredKey: UInt16?
        var allowPointer = false
        switch config?.button {
        case .evdev(let settings)?: (configuredKey, allowPointer) = (settings.key, settings.allowPointerDevice)
        case .replay(let settings)?: (configuredKey, allowPointer) = (settings.key, settings.allowPointerDevice)
        case .simulated?, .serial?, nil: break
        }
        return ButtonAnalysis(
            recording: recording, reading: reading, source: source, key: key ?? configuredKey, allowPointerDevice: allowPointer,
            configuration: config?.alarm.pressDetection ?? .init(), settingsSource: configPath)
    }

    static func isCharacterDevice(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFCHR
    }

    /// `seconds` of a live device, recorded as `diag record` records it (same session, same evemu text);
    /// `nil` after saying the problem when the device cannot be read.
    static func record(_ path: String, seconds: Double, progress: @escaping @Sendable (String) -> Void) async throws -> String? {
        let session = EvdevSession(path: path, grab: false, pathSetting: nil)
        let text = Locked("")
        let result = Locked<EvdevSession.End?>(nil)
        let kernel = ProcessInfo.processInfo.operatingSystemVersionString
        try await untilInterrupted(seconds: seconds) {
            result.value = try await onDedicatedThread(name: "diag analyze") { flag in
                try session.record(flag, kernel: kernel) { info in
                    describe(info).forEach(progress)
                    progress("Reading \(path) for \(seconds) s; press the button as the person would (Ctrl-C to stop early).")
                } write: { chunk in text.update { $0 += chunk } }
            }
        }
        if case .gone(let reason) = result.value {
            progress("PROBLEM: \(reason)")
            return nil
        }
        return text.value
    }
}

