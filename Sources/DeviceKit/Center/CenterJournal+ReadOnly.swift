import GRDB

extension CenterJournal {
    /// Every alarm recorded in the journal at `path`, read without writing to it (no migration, no pragma),
    /// for a check after the centre stopped or while it runs: `devicesim load --spawn-center`.
    public static func recordedAlarms(readOnly path: String) throws -> [RecordedAlarm] {
        var configuration = Configuration()
        configuration.readonly = true
        let database = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? database.close() }
        return try database.read { db in try fetchAlarms(db) }
    }
}
