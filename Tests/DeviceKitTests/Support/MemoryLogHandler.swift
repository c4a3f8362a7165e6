import Logging
import Synchronization

/// Keeps log records in memory, so a test can read what a component logged (never the global bootstrap).
final class MemoryLog: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
    }

    private let records = Mutex<[Record]>([])

    var all: [Record] { records.withLock { $0 } }

    /// The messages logged at `level` or above.
    func messages(atLeast level: Logger.Level) -> [String] { all.filter { $0.level >= level }.map(\.message) }

    func logger(label: String = "test", level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: label, factory: { _ in Handler(log: self) })
        logger.logLevel = level
        return logger
    }

    fileprivate func append(_ record: Record) { records.withLock { $0.append(record) } }

    private struct Handler: LogHandler {
        let log: MemoryLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.append(Record(level: event.level, message: event.message.description))
        }
    }
}
