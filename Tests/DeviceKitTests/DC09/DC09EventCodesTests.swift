import Foundation
import Testing

@testable import DeviceKit

/// The mapping of our events to SIA-DCS and Contact ID is written once, in `DC09EventCodes`; docs/dc09.md
/// shows it. This holds the two the same.
@Suite struct DC09EventCodesTests {
    @Test func theDocumentedTableIsTheCodesTable() throws {
        let page = try String(contentsOfFile: #filePath.components(separatedBy: "/Tests/")[0] + "/docs/dc09.md", encoding: .utf8)
        let rows = page.split(separator: "\n").filter { $0.hasPrefix("| ") && $0.split(separator: "|").count == 4 }
            .map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
            .filter { $0[1].count == 2 && $0[1] != "SIA-DCS" }
        let table = DC09EventCodes.table
        #expect(rows.count == table.count, "one documented row per code")
        for (row, code) in zip(rows, table) {
            #expect(row[1] == code.sia, "\(row)")
            #expect(row[2] == "\(code.qualifier) \(code.contactID)", "\(row)")
            if code.contactID != 406 { #expect(row[3] == String(code.zone), "\(row)") }
        }
    }

    @Test func theDataFieldsAreWrittenAsReceiversReadThem() {
        #expect(DC09EventCodes.alarm(.button).data(.siaDCS, account: "1234") == "#1234|Nri1/QA001")
        #expect(DC09EventCodes.alarm(.button).data(.contactID, account: "1234") == "#1234|1101 01 001")
        #expect(DC09EventCodes.event(.mainsRestored)?.data(.contactID, account: "ABC") == "#ABC|3301 01 000")
        #expect(DC09EventCodes.cancel(.pendant).zone == 2)
        #expect(DC09EventCodes.event(.pressDuringAlarm) == nil)
    }
}
