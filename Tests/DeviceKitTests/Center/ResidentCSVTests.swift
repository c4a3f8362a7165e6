import PropertyBased
import Testing

@testable import DeviceKit

/// The residents' registry from CSV: RFC 4180, and every bad row said in words with its line.
@Suite struct ResidentCSVTests {
    static func parse(_ text: String) throws(ResidentCSVError) -> [Resident] { try ResidentCSV.parse(Array(text.utf8)) }

    /// The problems `text` is refused with, as `line N: …` lines.
    static func problems(_ text: String) -> [String] { problems(Array(text.utf8)) }

    static func problems(_ bytes: [UInt8]) -> [String] {
        do {
            let residents = try ResidentCSV.parse(bytes)
            return ["accepted \(residents.count)"]
        } catch {
            return error.rows.map { "line \($0.line): \($0.error)" }
        }
    }

    @Test func aFileWithEveryColumnInAnyOrderIsRead() throws {
        let residents = try Self.parse("notes,name,device,contacts,address\r\ndog,Wang Fang,1001,son 555,1 Lane\r\n,Anna,1002,,\r\n")
        #expect(residents == [
            Resident(device: 1001, name: "Wang Fang", address: "1 Lane", contacts: "son 555", notes: "dog"),
            Resident(device: 1002, name: "Anna"),
        ])
    }

    @Test func quotedFieldsHoldCommasQuotesAndNewlinesAndABOMIsSkipped() throws {
        let text = "\u{FEFF}device,name,notes\n7,\"Berg, Anna\",\"key safe \"\"1234\"\"\r\nsecond line\"\n8,Li,\n"
        #expect(try Self.parse(text) == [
            Resident(device: 7, name: "Berg, Anna", notes: "key safe \"1234\"\r\nsecond line"),
            Resident(device: 8, name: "Li"),
        ])
    }

    @Test func blankLinesAndAMissingLastNewlineAreFineAndBlanksAroundIdsAndNamesAreTrimmed() throws {
        #expect(try Self.parse("device,name\n\n 5 ,  Li  \n\n6,Wu") == [Resident(device: 5, name: "Li"), Resident(device: 6, name: "Wu")])
        #expect(try Self.parse("device,name\n").isEmpty)
    }

    /// Every bad row at once, each on the line its record starts on (a quoted newline counts as a line).
    @Test func everyBadRowIsListedWithItsLine() {
        let text = """
            device,name,address
            1,"Anna
            Berg",Road 1
            abc,Li,
            0,Wu,
            2,,x
            1,Dup,
            3,Short
            4,Long,x,y
            99999999999,Big,
            5,"bad"quote,
            6,Fine,
            """
        #expect(Self.problems(text) == [
            "line 4: device 'abc' is not a number from 1 to 4294967295",
            "line 5: device '0' is not a number from 1 to 4294967295",
            "line 6: the name is empty",
            "line 7: device 1 is also on line 2: give each device once",
            "line 8: 2 fields where the header has 3 columns (a field with a comma must be in double quotes)",
            "line 9: 4 fields where the header has 3 columns (a field with a comma must be in double quotes)",
            "line 10: device '99999999999' is not a number from 1 to 4294967295",
            "line 11: text after the closing quote of field 2: put the whole field in double quotes and write each quote inside it twice",
        ])
    }

    @Test func anUnterminatedQuoteIsNamedAtTheLineItOpens() {
        #expect(Self.problems("device,name\n1,Anna\n2,\"Li\n3,Wu\n") == [
            "line 3: a quoted field is not closed: end it with a double quote (a quote inside it is written twice)",
        ])
    }

    @Test(arguments: [
        ("", ["line 1: the file is empty: its first line must name the columns, e.g. device,name,address,contacts,notes"]),
        ("device,name,phone\n", ["line 1: unknown column 'phone': the columns are device, name, address, contacts, notes"]),
        ("device,name,Name\n", ["line 1: the column 'name' is named twice"]),
        ("name,address\n", ["line 1: no 'device' column: the header must name device and name (and may name address, contacts, notes)"]),
        ("device\n", ["line 1: no 'name' column: the header must name device and name (and may name address, contacts, notes)"]),
    ])
    func aBadHeaderIsRefused(text: String, problems: [String]) {
        #expect(Self.problems(text) == problems)
    }

    @Test func aFieldOverTheLimitIsRefusedAndOneAtItIsTaken() throws {
        let atLimit = String(repeating: "日", count: ResidentCSV.maximumFieldLength)
        #expect(try Self.parse("device,name,notes\n1,Li,\(atLimit)\n").first?.notes == atLimit)
        #expect(Self.problems("device,name,notes\n1,Li,\(atLimit)x\n") == [
            "line 2: the notes field has 2,001 characters, over the limit of 2,000",
        ])
    }

    @Test func moreThanTheMostRowsIsRefused() throws {
        var text = "device,name\n"
        for device in 1...ResidentCSV.maximumRows { text += "\(device),R\n" }
        #expect(try Self.parse(text).count == ResidentCSV.maximumRows)
        text += "\(ResidentCSV.maximumRows + 1),R\n"
        #expect(Self.problems(text) == ["line 100002: more than 100,000 rows: split the file and import each part"])
    }

    @Test func bytesThatAreNotUTF8AreRefusedByLine() {
        let bytes = Array("device,name\n1,Anna\n2,M".utf8) + [0xFC] + Array("ller\n3,Wu\n4,".utf8) + [0xC3]
        #expect(Self.problems(bytes) == [
            "line 3: not UTF-8 text: save the file as CSV UTF-8",
            "line 5: not UTF-8 text: save the file as CSV UTF-8",
        ])
    }

    /// Whatever residents are written as RFC 4180 (quoted or not, CRLF or LF), the same residents are read.
    @Test func residentsWrittenAsCSVAreReadBack() async {
        let text = Gen<Character>.oneOf(
            Gen<Character?>.element(of: ["a", "Z", "0", " ", ",", "\"", "\n", "\r\n", "é", "日", "🚑", ";", "\t"] as [Character]).map { $0! }.eraseToAny(),
            MessageGen.character.eraseToAny()
        ).string(of: 0...40)
        let name = text.map { "N" + $0 + "n" }  // never empty, no blanks at the ends
        let resident = zip(Gen.uint32(in: 1...UInt32.max), name, text, text, text).map {
            Resident(device: $0, name: $1, address: $2, contacts: $3, notes: $4)
        }
        let residents = resident.array(of: 0...20).map { list in
            var seen = Set<UInt32>()
            return list.filter { seen.insert($0.device).inserted }
        }
        await propertyCheck(input: residents, Gen.bool, Gen.bool, Gen<[String]>.shuffled(ResidentCSV.columns)) { residents, crlf, quoteAll, columns in
            let csv = Self.csv(residents, columns: columns, lineEnd: crlf ? "\r\n" : "\n", quoteAll: quoteAll)
            #expect(Self.read(csv) == residents, "\(csv.debugDescription)")
        }
    }

    /// The residents of `csv`, or nil when it is refused (the error is recorded).
    static func read(_ csv: String) -> [Resident]? {
        do { return try ResidentCSV.parse(Array(csv.utf8)) } catch {
            Issue.record("refused: \(error)")
            return nil
        }
    }

    /// RFC 4180 text for `residents`: a field is quoted when it must be (or always), its quotes doubled.
    static func csv(_ residents: [Resident], columns: [String], lineEnd: String, quoteAll: Bool) -> String {
        func field(_ text: String) -> String {
            // By scalar: a quote followed by a combining mark is one Character, but still a quote to CSV.
            let mustQuote = text.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" } || text.isEmpty && columns.count == 1
            return quoteAll || mustQuote ? "\"" + doubledQuotes(text) + "\"" : text
        }
        func doubledQuotes(_ text: String) -> String {
            var scalars = String.UnicodeScalarView()
            for scalar in text.unicodeScalars {
                if scalar == "\"" { scalars.append(scalar) }
                scalars.append(scalar)
            }
            return String(scalars)
        }
        func value(_ resident: Resident, _ column: String) -> String {
            switch column {
            case "device": String(resident.device)
            case "name": resident.name
            case "address": resident.address
            case "contacts": resident.contacts
            default: resident.notes
            }
        }
        return ([columns.joined(separator: ",")] + residents.map { resident in columns.map { field(value(resident, $0)) }.joined(separator: ",") })
            .map { $0 + lineEnd }.joined()
    }
}
