/// Events received on the centre's DC-09 port (`devicesim center --dc09-port`), journalled as our own
/// messages of the account's device, once per event (docs/dc09.md, "The same event twice").
///
/// DC-09 has no message ids: a transmitter numbers its messages 0001–9999, repeats the number on each
/// retransmission and wraps after 9999, and may stamp a retransmission with a new time. So the journal keeps
/// each event's *identity* (`DC09ReceivedEvent.identity`: type, sequence, line, account and data, not the
/// time) in `dc09_message`, and gives it a message id of our own, `0x80000000 | row`. A frame whose
/// identity the journal received within `window` before is a retransmission: the same message id, not new
/// (acknowledged again, acted on once), also after a centre restart between the write and the `ACK`. After
/// the window, or with other data, it is a new message.
extension CenterJournal {
    /// One event from a DC-09 transmitter, for `Write.dc09Event`.
    public struct DC09Event: Sendable {
        public var event: DC09ReceivedEvent
        /// `DC09ReceivedEvent.identity(of:)` of its frame.
        public var identity: String
        public var account: String
        public var sequence: String
        /// The frame's timestamp, or the centre's time of receipt when it had none.
        public var occurredAt: WireTime

        public init(event: DC09ReceivedEvent, identity: String, account: String, sequence: String, occurredAt: WireTime) {
            self.event = event
            self.identity = identity
            self.account = account
            self.sequence = sequence
            self.occurredAt = occurredAt
        }

        public init?(_ frame: DC09Frame, receivedAt: WireTime) {
            guard let event = DC09ReceivedEvent(frame), let account = frame.account else { return nil }
            self.init(
                event: event, identity: DC09ReceivedEvent.identity(of: frame), account: account, sequence: frame.sequence,
                occurredAt: frame.timestamp.map { WireTime(clamping: $0.secondsSince1970) * 1000 } ?? receivedAt)
        }
    }

    /// The high bit of every message id given to a DC-09 event: apart from the ids our own devices count up.
    static let dc09MessageIDBit: UInt32 = 0x8000_0000

    /// Records `event` for `device` received at `at`: a retransmission of an identity received within
    /// `window` milliseconds is not new; a new event becomes our message (a cancel withdraws the device's
    /// latest open alarm, or alarm 0 when none is open: journalled, changing nothing) and goes through
    /// `record` like our own, opening or closing cases in the same transaction (and queued for the DC-09
    /// receivers of `--forward` when `forwards`, as our own).
    static func recordDC09(
        _ sql: any JournalSQL, device: UInt32, event: DC09Event, at: WireTime, window: UInt64, context: WriteContext
    ) throws -> (Message, RecordOutcome) {
        let since = Int64(clamping: at) - Int64(clamping: window)
        if let row = try sql.queryOne(
            "SELECT id FROM dc09_message WHERE device = ? AND identity = ? AND received_at >= ? ORDER BY id DESC LIMIT 1",
            JournalValue(device), .text(event.identity), .integer(since))
        {
            let message = event.event.message(id: messageID(try row.int64("id")), at: event.occurredAt, cancelling: 0)
            return (message, RecordOutcome(isNew: false, alarmRecorded: false))
        }
        guard
            let row = try sql.queryOne(
                "INSERT INTO dc09_message (device, account, sequence, identity, received_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                JournalValue(device), .text(event.account), .text(event.sequence), .text(event.identity), JournalValue(at))
        else { throw JournalReadError(column: "dc09_message.id", found: "no row returned") }
        let id = messageID(try row.int64("id"))
        var cancelling: UInt32 = 0
        if event.event == .cancel,
            let open = try sql.queryOne(
                "SELECT alarm_id FROM dispatch_case WHERE device = ? AND state < ? ORDER BY id DESC LIMIT 1",
                JournalValue(device), JournalValue(Int(CaseState.closed.rawValue)))
        {
            cancelling = try open.uint32("alarm_id")
        }
        let message = event.event.message(id: id, at: event.occurredAt, cancelling: cancelling)
        let opensCase = event.event != .alarm(.test) && { if case .alarm = event.event { true } else { false } }()
        return (message, try record(sql, device: device, message: message, at: at, opensCase: opensCase, note: nil, context: context))
    }

    private static func messageID(_ row: Int64) -> UInt32 {
        dc09MessageIDBit | UInt32(truncatingIfNeeded: row & 0x7FFF_FFFF)
    }

    /// Every DC-09 event journalled for `device`, oldest first: account, sequence and our message id.
    public func dc09Messages(device: UInt32) throws -> [(account: String, sequence: String, messageID: UInt32)] {
        try read { sql in
            try sql.query("SELECT id, account, sequence FROM dc09_message WHERE device = ? ORDER BY id", JournalValue(device)).map { row in
                (try row.string("account"), try row.string("sequence"), Self.messageID(try row.int64("id")))
            }
        }
    }
}
