extension CenterJournal {
    /// Every alarm recorded in the journal at `path`, read without writing to it (no migration, no pragma),
    /// for a check after the centre stopped or while it runs: `devicesim load --spawn-center`.
    public static func recordedAlarms(readOnly path: String) throws -> [RecordedAlarm] {
        try SQLiteJournalStore.readOnly(path: path) { sql in try fetchAlarms(sql) }
    }
}
