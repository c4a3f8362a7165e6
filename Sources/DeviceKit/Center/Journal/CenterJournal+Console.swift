import Foundation

/// What the operators' web console (docs/console.md) keeps in the journal: operators' accounts, every action
/// an operator took (the audit), the registry of residents, and the reads of cases and devices it shows.
///
/// Writes take the writer lock and `BEGIN IMMEDIATE` like every other write of the journal, so they queue
/// behind the centre's batches instead of failing at once. Blocking: call it from a thread pool.
extension CenterJournal {
    // MARK: Accounts

    /// Stores a new account; throws `OperatorAccountError.exists` when the name is taken (by an enabled or a
    /// disabled account: a name is never given to a second person) and `.invalidName` for a name outside
    /// `OperatorAccount.checkName`.
    public func addOperator(_ account: OperatorAccount) throws {
        try OperatorAccount.checkName(account.name)
        let inserted = try write { sql in
            try sql.execute(
                """
                INSERT INTO operator_account (name, hash, role, language, disabled, created_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (name) DO NOTHING
                """,
                .text(account.name), .text(account.passwordHash), .text(account.role.rawValue), .text(account.language.rawValue),
                JournalValue(account.disabled), JournalValue(account.createdAt))
        }
        guard inserted == 1 else { throw OperatorAccountError.exists(account.name) }
    }

    public func operatorAccount(named name: String) throws -> OperatorAccount? {
        try read { sql in try sql.queryOne("SELECT * FROM operator_account WHERE name = ?", .text(name)).map(Self.account) }
    }

    /// Every account, by name.
    public func operatorAccounts() throws -> [OperatorAccount] {
        try read { sql in try sql.query("SELECT * FROM operator_account ORDER BY name").map(Self.account) }
    }

    /// Disables or enables an account; false when there is none of that name.
    @discardableResult
    public func setOperator(_ name: String, disabled: Bool) throws -> Bool {
        try write { sql in try sql.execute("UPDATE operator_account SET disabled = ? WHERE name = ?", JournalValue(disabled), .text(name)) == 1 }
    }

    /// Sets the language an operator's console is shown in; false when there is no account of that name.
    @discardableResult
    public func setOperator(_ name: String, language: ConsoleLanguage) throws -> Bool {
        try write { sql in
            try sql.execute("UPDATE operator_account SET language = ? WHERE name = ?", .text(language.rawValue), .text(name)) == 1
        }
    }

    /// A row of a journal written by a later version (a role or language this one does not know) reads as the
    /// least privilege and English rather than failing every read of the accounts.
    private static func account(_ row: JournalRow) throws -> OperatorAccount {
        OperatorAccount(
            name: try row.string("name"), passwordHash: try row.string("hash"),
            role: OperatorRole(rawValue: try row.string("role")) ?? .operator,
            language: ConsoleLanguage(rawValue: try row.string("language")) ?? .en,
            disabled: try row.bool("disabled"), createdAt: try row.wireTime("created_at"))
    }

    // MARK: Audit

    /// Records what an operator did, with who and when.
    public func recordOperatorAction(_ action: OperatorAction) throws {
        try write { sql in
            try sql.execute(
                "INSERT INTO operator_action (at, operator, action, case_id, device, note) VALUES (?, ?, ?, ?, ?, ?)",
                JournalValue(action.at), .text(action.operatorName), .text(action.action), JournalValue(action.caseID),
                JournalValue(action.device.map { Int64($0) }), JournalValue(action.note))
        }
    }

    private static func operatorAction(_ row: JournalRow) throws -> OperatorAction {
        OperatorAction(
            at: try row.wireTime("at"), operatorName: try row.string("operator"), action: try row.string("action"),
            caseID: try row.optionalInt64("case_id"), device: try row.optionalInt64("device").map { UInt32(truncatingIfNeeded: $0) },
            note: try row.optionalString("note"))
    }

    // MARK: Residents

    /// Replaces the rows of the devices `residents` names and leaves the others, in one transaction: all or
    /// nothing.
    public func importResidents(_ residents: [Resident], at: WireTime) throws {
        try write { sql in
            for resident in residents {
                try sql.execute(
                    """
                    INSERT INTO resident (device, name, address, contacts, notes, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (device) DO UPDATE SET name = excluded.name, address = excluded.address,
                        contacts = excluded.contacts, notes = excluded.notes, updated_at = excluded.updated_at
                    """,
                    JournalValue(resident.device), .text(resident.name), Self.nullIfEmpty(resident.address),
                    Self.nullIfEmpty(resident.contacts), Self.nullIfEmpty(resident.notes), JournalValue(at))
            }
        }
    }

    public func resident(device: UInt32) throws -> Resident? {
        try read { sql in try sql.queryOne("SELECT * FROM resident WHERE device = ?", JournalValue(device)).map(Self.resident) }
    }

    /// The whole registry, by device.
    public func residents() throws -> [UInt32: Resident] {
        try read { sql in
            var residents: [UInt32: Resident] = [:]
            for row in try sql.query("SELECT * FROM resident") {
                let resident = try Self.resident(row)
                residents[resident.device] = resident
            }
            return residents
        }
    }

    private static func nullIfEmpty(_ text: String) -> JournalValue { text.isEmpty ? .null : .text(text) }

    private static func resident(_ row: JournalRow) throws -> Resident {
        Resident(
            device: try row.uint32("device"), name: try row.string("name"),
            address: try row.optionalString("address") ?? "", contacts: try row.optionalString("contacts") ?? "",
            notes: try row.optionalString("notes") ?? "")
    }

    // MARK: Cases

    /// One case with its alarm, its states, the operators' actions on it and whether the person withdrew it.
    public func caseRecord(id: Int64) throws -> CaseRecord? {
        try read { sql in try sql.queryOne("SELECT * FROM dispatch_case WHERE id = ?", .integer(id)).map { try Self.caseRecord(sql, $0) } }
    }

    /// Cases newest first, at most `limit`, with ids below `before` when given (the next page).
    ///
    /// `search`, when not empty: a number is a device id, matched exactly; other text is found in residents'
    /// names (case-insensitive) and in the notes operators wrote on cases.
    public func caseRecords(search: String?, before: Int64?, limit: Int) throws -> [CaseRecord] {
        guard limit > 0 else { return [] }
        let text = search?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !text.isEmpty, text.allSatisfy(\.isASCIIDigit), UInt32(text) == nil { return [] }  // a number, but no device id
        return try read { sql in
            var conditions: [String] = []
            var arguments: [JournalValue] = []
            if let before {
                conditions.append("c.id < ?")
                arguments.append(.integer(before))
            }
            if !text.isEmpty {
                if text.allSatisfy(\.isASCIIDigit), let device = UInt32(text) {
                    conditions.append("c.device = ?")
                    arguments.append(JournalValue(device))
                } else {
                    let needle = text.lowercased()
                    conditions.append("""
                        (c.device IN (SELECT device FROM resident WHERE \(sql.dialect.lowercasedContains("name")))
                         OR c.id IN (SELECT case_id FROM operator_action WHERE case_id IS NOT NULL AND \(sql.dialect.lowercasedContains("note"))))
                        """)
                    arguments += [.text(needle), .text(needle)]
                }
            }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            arguments.append(JournalValue(limit))
            return try sql.query("SELECT c.* FROM dispatch_case c \(filter) ORDER BY c.id DESC LIMIT ?", arguments)
                .map { try Self.caseRecord(sql, $0) }
        }
    }

    private static func caseRecord(_ sql: any JournalSQL, _ row: JournalRow) throws -> CaseRecord {
        let id = try row.int64("id")
        let device = try row.int64("device")
        let alarmID = try row.int64("alarm_id")
        let reuse = try row.int64("reuse")
        let openedAt = try row.wireTime("opened_at")
        let state = CaseState(rawValue: UInt8(truncatingIfNeeded: try row.int64("state")))
        let updates = try sql.query("SELECT state, at FROM case_update WHERE case_id = ? ORDER BY id", .integer(id)).map {
            CaseStateChange(state: CaseState(rawValue: UInt8(truncatingIfNeeded: try $0.int64("state"))), at: try $0.wireTime("at"))
        }
        let actions = try sql.query("SELECT * FROM operator_action WHERE case_id = ? ORDER BY id", .integer(id)).map(operatorAction)
        // The alarm of a reused id (CenterJournal.recordConflict) is kept apart from the first one.
        let alarmRow =
            reuse == 0
            ? try sql.queryOne(
                "SELECT json, received_at FROM message WHERE device = ? AND id = ? AND kind = 'alarm'", .integer(device), .integer(alarmID))
            : try sql.queryOne(
                "SELECT json, received_at FROM message_conflict WHERE device = ? AND id = ? AND reuse = ? AND kind = 'alarm'",
                .integer(device), .integer(alarmID), .integer(reuse))
        let alarm = try alarmRow.flatMap { RecordedAlarmDetail(json: try $0.string("json"), receivedAt: try $0.wireTime("received_at")) }
        // A cancel closes its alarm's case in the transaction that records it, at its time: withdrawn is a
        // cancel of this alarm received while the case was open, not one of a later alarm under the same id.
        var cancelled = false
        if let closedAt = updates.last(where: { $0.state == .closed })?.at {
            cancelled = try !sql.query(
                "SELECT 1 AS found FROM message WHERE device = ? AND kind = 'alarmCancel' AND ref = ? AND received_at BETWEEN ? AND ? LIMIT 1",
                .integer(device), .integer(alarmID), JournalValue(openedAt), JournalValue(closedAt)
            ).isEmpty
        }
        return CaseRecord(
            case: CasePolicy.Case(
                id: id, device: UInt32(truncatingIfNeeded: device), alarmID: UInt32(truncatingIfNeeded: alarmID),
                state: state, openedAt: openedAt),
            alarm: alarm, updates: updates, actions: actions, cancelled: cancelled)
    }

    // MARK: Devices

    /// Each device's latest supervision report (the last row written for it): online or not, and when.
    public func lastHeard() throws -> [UInt32: (online: Bool, at: WireTime)] {
        try read { sql in
            var heard: [UInt32: (online: Bool, at: WireTime)] = [:]
            let order = sql.dialect.supervisionOrder
            for row in try sql.query(
                "SELECT device, online, at FROM supervision WHERE \(order) IN (SELECT MAX(\(order)) FROM supervision GROUP BY device)")
            {
                heard[try row.uint32("device")] = (try row.bool("online"), try row.wireTime("at"))
            }
            return heard
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Who works cases at the console.
public enum OperatorRole: String, Sendable, Hashable, CaseIterable {
    /// Works cases.
    case `operator`
    /// Also manages accounts and the residents' registry.
    case supervisor
}

/// The language an operator's console is shown in.
public enum ConsoleLanguage: String, Sendable, Hashable, CaseIterable {
    case en, zh
}

/// An operator's account: the password only as its bcrypt hash.
public struct OperatorAccount: Hashable, Sendable {
    public var name: String
    public var passwordHash: String
    public var role: OperatorRole
    public var language: ConsoleLanguage
    public var disabled: Bool
    public var createdAt: WireTime

    public init(
        name: String, passwordHash: String, role: OperatorRole = .operator, language: ConsoleLanguage = .en,
        disabled: Bool = false, createdAt: WireTime
    ) {
        self.name = name
        self.passwordHash = passwordHash
        self.role = role
        self.language = language
        self.disabled = disabled
        self.createdAt = createdAt
    }

    /// The longest account name.
    public static let maximumNameLength = 64

    /// Names are 1 to 64 of the ASCII letters, digits, `.`, `_` and `-`: safe in logs, URLs and file names,
    /// and no two that look alike.
    public static func checkName(_ name: String) throws(OperatorAccountError) {
        let allowed = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
        }
        guard !name.isEmpty, name.utf8.count <= maximumNameLength, allowed else { throw .invalidName(name) }
    }
}

/// An account could not be stored.
public enum OperatorAccountError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An account of that name exists (perhaps disabled).
    case exists(String)
    /// The name is not 1 to 64 letters, digits, `.`, `_` or `-`.
    case invalidName(String)

    public var description: String {
        switch self {
        case .exists(let name):
            "an operator named '\(name)' exists already (perhaps disabled): choose another name"
        case .invalidName(let name):
            "'\(name.prefix(80))' is not an operator name: use 1 to \(OperatorAccount.maximumNameLength) of the letters A-Z and a-z, the digits 0-9, '.', '_' and '-'"
        }
    }
}

/// Something an operator did, for the audit: log in, take, call, dispatch, close, import, account changes.
public struct OperatorAction: Hashable, Sendable {
    public var at: WireTime
    public var operatorName: String
    /// What was done, e.g. `take`, `dispatch`, `login` (docs/console.md).
    public var action: String
    public var caseID: Int64?
    public var device: UInt32?
    public var note: String?

    public init(at: WireTime, operatorName: String, action: String, caseID: Int64? = nil, device: UInt32? = nil, note: String? = nil) {
        self.at = at
        self.operatorName = operatorName
        self.action = action
        self.caseID = caseID
        self.device = device
        self.note = note
    }
}

/// Who lives at the home of a device, from the registry (docs/console.md); "" for what the registry lacks.
public struct Resident: Hashable, Sendable {
    public var device: UInt32
    public var name: String
    public var address: String
    public var contacts: String
    public var notes: String

    public init(device: UInt32, name: String, address: String = "", contacts: String = "", notes: String = "") {
        self.device = device
        self.name = name
        self.address = address
        self.contacts = contacts
        self.notes = notes
    }
}

/// A case's alarm as the journal recorded it.
public struct RecordedAlarmDetail: Hashable, Sendable {
    /// The alarm's kind by name (`button`, `pendant`, `fall`, …), or `unknown(N)`.
    public var kind: String
    /// When it was raised, by the device's clock (see `clockVerified`).
    public var triggeredAt: WireTime
    /// Percent; nil when the device did not know (255 on the wire).
    public var battery: UInt8?
    public var onBattery: Bool
    /// The device's clock was synchronised with the centre's, so `triggeredAt` can be compared with ours.
    public var clockVerified: Bool
    /// When the centre recorded it.
    public var receivedAt: WireTime
    public var pressCount: UInt16?
    public var holdMilliseconds: UInt16?

    public init(
        kind: String, triggeredAt: WireTime, battery: UInt8?, onBattery: Bool, clockVerified: Bool, receivedAt: WireTime,
        pressCount: UInt16? = nil, holdMilliseconds: UInt16? = nil
    ) {
        self.kind = kind
        self.triggeredAt = triggeredAt
        self.battery = battery
        self.onBattery = onBattery
        self.clockVerified = clockVerified
        self.receivedAt = receivedAt
        self.pressCount = pressCount
        self.holdMilliseconds = holdMilliseconds
    }

    /// Read from the alarm's recorded JSON (`Message.json`); nil if it is not an alarm's.
    init?(json: String, receivedAt: WireTime) {
        guard let alarm = Alarm(recordedJSON: json, id: 0) else { return nil }
        self.init(
            kind: alarm.kind.description, triggeredAt: alarm.triggeredAt, battery: alarm.battery == 255 ? nil : alarm.battery,
            onBattery: alarm.flags.contains(.onBattery), clockVerified: alarm.flags.contains(.clockSynchronised), receivedAt: receivedAt,
            pressCount: alarm.pressCount, holdMilliseconds: alarm.holdMilliseconds)
    }
}

/// A case's state from a time on.
public struct CaseStateChange: Hashable, Sendable {
    public var state: CaseState
    public var at: WireTime

    public init(state: CaseState, at: WireTime) {
        self.state = state
        self.at = at
    }
}

/// One case as the journal holds it.
public struct CaseRecord: Hashable, Sendable {
    /// Its latest state (closed included).
    public var `case`: CasePolicy.Case
    /// Nil when the journal does not hold the alarm's recorded form.
    public var alarm: RecordedAlarmDetail?
    /// Every state it went through, oldest first (`received` first).
    public var updates: [CaseStateChange]
    /// What operators did on it, oldest first.
    public var actions: [OperatorAction]
    /// The person withdrew the alarm (a cancel closed the case).
    public var cancelled: Bool

    public init(case: CasePolicy.Case, alarm: RecordedAlarmDetail?, updates: [CaseStateChange], actions: [OperatorAction], cancelled: Bool) {
        self.case = `case`
        self.alarm = alarm
        self.updates = updates
        self.actions = actions
        self.cancelled = cancelled
    }
}
