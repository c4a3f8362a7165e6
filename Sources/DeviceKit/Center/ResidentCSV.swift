/// Reads the residents' registry from CSV (docs/console.md "The registry of residents"): RFC 4180 with a
/// header row naming the columns `device`, `name`, `address`, `contacts` and `notes` in any order.
///
/// Quoted fields may hold commas, newlines and quotes (doubled); records end with CRLF or LF; a UTF-8 byte
/// order mark is skipped; blank lines are skipped. A file with any bad row is refused whole, with every bad
/// row's line (the physical line its record starts on) and what is wrong, so that an import is all or
/// nothing. Pure: bytes in, residents or the list of errors out.
public enum ResidentCSV {
    /// The columns in the order this documentation lists them.
    public static let columns = ["device", "name", "address", "contacts", "notes"]
    /// The most data rows in one file.
    public static let maximumRows = 100_000
    /// The longest field, in characters.
    public static let maximumFieldLength = 2_000

    /// The residents of a CSV file's bytes, or every problem with it.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ResidentCSVError) -> [Resident] {
        var bytes = Array(bytes)
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes.removeFirst(3) }
        try checkUTF8(bytes)
        var reader = Reader(bytes: bytes)
        var errors: [(line: Int, error: String)] = []

        guard let header = reader.next() else {
            throw ResidentCSVError(rows: [(1, "the file is empty: its first line must name the columns, e.g. device,name,address,contacts,notes")])
        }
        if let problem = header.problem { throw ResidentCSVError(rows: [(header.line, problem)]) }
        var index: [String: Int] = [:]
        for (position, field) in header.fields.enumerated() {
            let name = field.trimmedOfBlanks.lowercased()
            if !columns.contains(name) {
                errors.append((header.line, "unknown column '\(String(field.prefix(40)))': the columns are \(columns.joined(separator: ", "))"))
            } else if index[name] != nil {
                errors.append((header.line, "the column '\(name)' is named twice"))
            } else {
                index[name] = position
            }
        }
        for required in ["device", "name"] where index[required] == nil {
            errors.append((header.line, "no '\(required)' column: the header must name device and name (and may name address, contacts, notes)"))
        }
        guard errors.isEmpty, let deviceColumn = index["device"], let nameColumn = index["name"] else {
            throw ResidentCSVError(rows: errors)
        }

        var residents: [Resident] = []
        var firstLine: [UInt32: Int] = [:]
        var rows = 0
        while let record = reader.next() {
            rows += 1
            guard rows <= maximumRows else {
                errors.append((record.line, "more than \(maximumRows.formatted) rows: split the file and import each part"))
                break
            }
            if let problem = record.problem {
                errors.append((record.line, problem))
                continue
            }
            guard record.fields.count == header.fields.count else {
                errors.append((record.line, "\(record.fields.count) \(record.fields.count == 1 ? "field" : "fields") where the header has \(header.fields.count) columns (a field with a comma must be in double quotes)"))
                continue
            }
            var problems: [String] = []
            for (position, field) in record.fields.enumerated() where field.count > maximumFieldLength {
                problems.append("the \(columns.first { index[$0] == position } ?? "") field has \(field.count.formatted) characters, over the limit of \(maximumFieldLength.formatted)")
            }
            let deviceText = record.fields[deviceColumn].trimmedOfBlanks
            let device = deviceText.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ? UInt32(deviceText) : nil
            if let device, device > 0 {
                if let earlier = firstLine[device] {
                    problems.append("device \(device) is also on line \(earlier): give each device once")
                } else {
                    firstLine[device] = record.line
                }
            } else {
                problems.append("device '\(String(deviceText.prefix(40)))' is not a number from 1 to 4294967295")
            }
            let name = record.fields[nameColumn].trimmedOfBlanks
            if name.isEmpty { problems.append("the name is empty") }
            guard problems.isEmpty, let device else {
                errors.append(contentsOf: problems.map { (record.line, $0) })
                continue
            }
            func field(_ column: String) -> String { index[column].map { record.fields[$0] } ?? "" }
            residents.append(Resident(device: device, name: name, address: field("address"), contacts: field("contacts"), notes: field("notes")))
        }
        guard errors.isEmpty else { throw ResidentCSVError(rows: errors) }
        return residents
    }

    /// Refuses bytes that are not UTF-8, naming each line that holds some.
    private static func checkUTF8(_ bytes: [UInt8]) throws(ResidentCSVError) {
        var errors: [(line: Int, error: String)] = []
        for (number, line) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
        where String(validating: line, as: UTF8.self) == nil {
            errors.append((number + 1, "not UTF-8 text: save the file as CSV UTF-8"))
        }
        if !errors.isEmpty { throw ResidentCSVError(rows: errors) }
    }

    /// One record: its fields, the line it starts on, or what is wrong with it.
    private struct Record {
        var line: Int
        var fields: [String] = []
        var problem: String?
    }

    /// Splits UTF-8 bytes into records (RFC 4180).
    private struct Reader {
        let bytes: [UInt8]
        var position = 0
        /// The physical line at `position`, from 1.
        var line = 1

        static let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")

        init(bytes: [UInt8]) { self.bytes = bytes }

        /// The next record that is not a blank line; nil at the end.
        mutating func next() -> Record? {
            while position < bytes.count, atEndOfLine {
                skipEndOfLine()
            }
            guard position < bytes.count else { return nil }
            var record = Record(line: line)
            while true {
                if bytes[position] == Self.quote {
                    guard let field = quotedField() else {
                        record.problem = "a quoted field is not closed: end it with a double quote (a quote inside it is written twice)"
                        position = bytes.count
                        return record
                    }
                    record.fields.append(field)
                    if position < bytes.count, !atEndOfLine, bytes[position] != Self.comma, record.problem == nil {
                        record.problem = "text after the closing quote of field \(record.fields.count): put the whole field in double quotes and write each quote inside it twice"
                    }
                    if record.problem != nil { skipRestOfRecord() }
                } else {
                    let start = position
                    while position < bytes.count, bytes[position] != Self.comma, !atEndOfLine { position += 1 }
                    record.fields.append(String(decoding: bytes[start..<position], as: UTF8.self))
                }
                guard position < bytes.count else { return record }
                if atEndOfLine {
                    skipEndOfLine()
                    return record
                }
                position += 1  // the comma
                if position == bytes.count {
                    record.fields.append("")  // a trailing comma: an empty last field
                    return record
                }
            }
        }

        /// LF, CRLF, or a CR that ends the file.
        var atEndOfLine: Bool {
            bytes[position] == Self.lf || (bytes[position] == Self.cr && (position + 1 == bytes.count || bytes[position + 1] == Self.lf))
        }

        mutating func skipEndOfLine() {
            if bytes[position] == Self.cr { position += 1 }
            if position < bytes.count { position += 1 }
            line += 1
        }

        /// After a malformed field: on to the next line.
        mutating func skipRestOfRecord() {
            while position < bytes.count, !atEndOfLine { position += 1 }
        }

        /// The field at an opening quote, unescaped, with `position` after its closing quote; nil if it never closes.
        mutating func quotedField() -> String? {
            var value: [UInt8] = []
            var index = position + 1
            while index < bytes.count {
                let byte = bytes[index]
                if byte == Self.quote {
                    if index + 1 < bytes.count, bytes[index + 1] == Self.quote {
                        value.append(Self.quote)
                        index += 2
                        continue
                    }
                    position = index + 1
                    return String(decoding: value, as: UTF8.self)
                }
                if byte == Self.lf { line += 1 }
                value.append(byte)
                index += 1
            }
            return nil
        }
    }
}

/// A registry file that cannot be imported: every bad row, by the line its record starts on, in plain words.
public struct ResidentCSVError: Error, Sendable, CustomStringConvertible {
    public var rows: [(line: Int, error: String)]

    public init(rows: [(line: Int, error: String)]) {
        self.rows = rows
    }

    /// One line per bad row: `line 7: device 'abc' is not a number from 1 to 4294967295`.
    public var description: String { rows.map { "line \($0.line): \($0.error)" }.joined(separator: "\n") }
}

extension String {
    /// Without spaces and tabs at either end.
    fileprivate var trimmedOfBlanks: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}

extension Int {
    /// 100,000: the thousands separated by commas, whatever the locale.
    fileprivate var formatted: String {
        let digits = String(self)
        var result = ""
        for (offset, character) in digits.enumerated() {
            if offset > 0, (digits.count - offset) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return result
    }
}
