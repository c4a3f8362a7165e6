// TEMPORARY: stand-ins for the helper's CenterJournal+Console.swift (branch console-store), deleted at its merge.
import DeviceKit

public enum OperatorRole: String, Sendable, Hashable, CaseIterable { case `operator`, supervisor }
public enum ConsoleLanguage: String, Sendable, Hashable, CaseIterable { case en, zh }
public struct OperatorAccount: Hashable, Sendable {
    public var name: String
    public var passwordHash: String
    public var role: OperatorRole
    public var language: ConsoleLanguage
    public var disabled: Bool
    public var createdAt: WireTime
}
public struct OperatorAction: Hashable, Sendable {
    public var at: WireTime
    public var operatorName: String
    public var action: String
    public var caseID: Int64?
    public var device: UInt32?
    public var note: String?
}
public struct Resident: Hashable, Sendable {
    public var device: UInt32
    public var name: String
    public var address: String
    public var contacts: String
    public var notes: String
}
public struct RecordedAlarmDetail: Hashable, Sendable {
    public var kind: String
    public var triggeredAt: WireTime
    public var battery: UInt8?
    public var onBattery: Bool
    public var clockVerified: Bool
    public var receivedAt: WireTime
    public var pressCount: UInt16?
    public var holdMilliseconds: UInt16?
}
public struct CaseStateChange: Hashable, Sendable {
    public var state: CaseState
    public var at: WireTime
}
public struct CaseRecord: Hashable, Sendable {
    public var `case`: CasePolicy.Case
    public var alarm: RecordedAlarmDetail?
    public var updates: [CaseStateChange]
    public var actions: [OperatorAction]
    public var cancelled: Bool
}
struct OperatorAccountError: Error {}
extension CenterJournal {
    func addOperator(_ account: OperatorAccount) throws { fatalError() }
    func operatorAccount(named: String) throws -> OperatorAccount? { fatalError() }
    func operatorAccounts() throws -> [OperatorAccount] { fatalError() }
    func setOperator(_ name: String, disabled: Bool) throws -> Bool { fatalError() }
    func setOperator(_ name: String, language: ConsoleLanguage) throws -> Bool { fatalError() }
    func recordOperatorAction(_ action: OperatorAction) throws { fatalError() }
    func importResidents(_ residents: [Resident], at: WireTime) throws { fatalError() }
    func resident(device: UInt32) throws -> Resident? { fatalError() }
    func residents() throws -> [UInt32: Resident] { fatalError() }
    func caseRecord(id: Int64) throws -> CaseRecord? { fatalError() }
    func caseRecords(search: String?, before: Int64?, limit: Int) throws -> [CaseRecord] { fatalError() }
    func lastHeard() throws -> [UInt32: (online: Bool, at: WireTime)] { fatalError() }
}
enum OperatorPassword {
    static func hash(_ password: String) throws -> String { fatalError() }
    static func verify(_ password: String, hash: String) -> Bool { fatalError() }
}
enum ResidentCSV {
    static func parse(_ text: String) throws -> [Resident] { fatalError() }
}
