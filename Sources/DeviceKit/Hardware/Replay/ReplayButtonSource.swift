import Foundation
import Logging

/// Plays an evemu recording back as the call button, so a press recorded in someone's home
/// (`devicesim diag record`) can be replayed against a centre.
///
/// Time-faithful: the recording is judged first, by the firmware's own `PressDetector` in the recording's
/// time (`RecordedButton.judged`), so one recording gives the same verdicts on every run at any CPU load;
/// `speed` only sets when each verdict is handed on (`.judged`, instants mapped onto `CLOCK_MONOTONIC`).
/// A key still held at the recording's end is judged up to the end and never released by invention; the
/// log says so.
public struct ReplayButtonSource: ButtonSource {
    public let file: String
    public let key: UInt16?
    public let allowPointerDevice: Bool
    public let press: PressDetector.Configuration
    /// 2 plays twice as fast; for tests.
    public let speed: Double
    private let logger: Logger

    public init(
        settings: ReplayButtonSettings, press: PressDetector.Configuration = .init(), speed: Double = 1,
        logger: Logger = Logger(label: "replay", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.file = settings.file
        self.key = settings.key
        self.allowPointerDevice = settings.allowPointerDevice
        self.press = press
        self.speed = speed
        self.logger = logger
    }

    public var description: String { "replay of \(file)" }

    /// Reads and parses the recording; every failure names the file and the line.
    public func load() throws(ButtonSourceError) -> (recording: EvemuRecording, key: UInt16) {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw ButtonSourceError("cannot read the recording \(file): \(error.localizedDescription)")
        }
        let recording: EvemuRecording
        do { recording = try EvemuRecording(parsing: text) } catch {
            throw ButtonSourceError("\(file) is not a valid evemu recording: \(error)")
        }
        return (recording, try recording.deviceInfo(path: file).callButtonKey(configured: key, allowPointerDevice: allowPointerDevice))
    }

    public func run(_ emit: @escaping @Sendable (ButtonEvent) -> Void) async throws {
        let (recording, key) = try load()
        let button = RecordedButton(recording: recording, key: key)
        let verdicts = button.judged(press)
        if button.heldAtEnd {
            let since = button.edges.last.map { (button.duration - $0.at).milliseconds } ?? 0
            logger.warning(
                "the recording ends with the call button still held (for \(since) ms at its last event): the press is judged up to the end of the recording, and no release is invented",
                metadata: ["file": "\(file)"])
        }
        emit(.present(initiallyDown: false))
        let clock = ContinuousClock()
        let start = clock.now
        let origin = Duration.monotonicNow
        for entry in verdicts {
            try await clock.sleep(until: start + entry.at / speed)
            emit(.judged(entry.verdict.mappingInstants { origin + $0 / speed }))
        }
    }
}

extension PressDetector.Action {
    /// The same verdict with its instants (not its durations) mapped by `transform`.
    public func mappingInstants(_ transform: (Duration) -> Duration) -> Self {
        switch self {
        case .wakeUp(let at): .wakeUp(at: transform(at))
        case .pressed(let at): .pressed(at: transform(at))
        case .longPressed(let at): .longPressed(at: transform(at))
        case .stuck(let since): .stuck(since: transform(since))
        case .released, .tooShort, .glitch, .bounce: self
        }
    }
}
