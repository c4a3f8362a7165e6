extension CenterJournal {
    /// Every alarm recorded in the journal at `location`, read without writing to it (no migration, no pragma),
    /// for a check after the centre stopped or while it runs: `devicesim load --spawn-center`.
    public static func recordedAlarms(readOnly location: JournalLocation) throws -> [RecordedAlarm] {
        switch location {
        case .sqlite(let path):
            return try SQLiteJournalStore.readOnly(path: path) { sql in try fetchAlarms(sql) }
        case .postgres(let configuration):
            let store = try PostgresJournalStore(configuration: configuration, lockTimeout: .seconds(10), migrate: false)
            defer { try? store.close() }
            return try store.read { sql in try fetchAlarms(sql) }
        }
    }

    /// `recordedAlarms(readOnly:)` of an SQLite file.
    public static func recordedAlarms(readOnly path: String) throws -> [RecordedAlarm] {
        try recordedAlarms(readOnly: .sqlite(path))
    }
}
