/// A JSON object written straight into text, for hot paths: `JSONSerialization` boxes every value (an
/// `NSDictionary` of `NSNumber`s per object) and, writing the PostgreSQL journal's batches, took 84 % of the
/// journal thread in an alarm storm. Keys are the caller's (plain ASCII, not escaped); string values are
/// escaped as RFC 8259 §7 requires (`QuotedText`).
struct JSONObjectText {
    private(set) var text = "{"
    private var empty = true

    private mutating func key(_ key: StaticString) {
        text += empty ? "\"" : ",\""
        empty = false
        text += key.description
        text += "\":"
    }

    /// A member whose key is data (escaped like a string value).
    mutating func add(key: String, _ value: Int) {
        if !empty { text += "," }
        empty = false
        Self.appendString(key, to: &text)
        text += ":" + String(value)
    }

    mutating func add(_ key: StaticString, _ value: Int64) {
        self.key(key)
        text += String(value)
    }

    mutating func add(_ key: StaticString, _ value: Int) { add(key, Int64(value)) }

    mutating func add(_ key: StaticString, _ value: Bool) {
        self.key(key)
        text += value ? "true" : "false"
    }

    mutating func add(_ key: StaticString, _ value: String) {
        self.key(key)
        Self.appendString(value, to: &text)
    }

    /// A value that is JSON already (an object or array another writer made).
    mutating func add(_ key: StaticString, json: String) {
        self.key(key)
        text += json
    }

    mutating func add(_ key: StaticString, _ values: [Int64]) {
        self.key(key)
        text += "[" + values.map(String.init).joined(separator: ",") + "]"
    }

    /// The object, closed.
    var json: String { text + "}" }

    /// `value` as a JSON string, quotes included.
    static func appendString(_ value: String, to out: inout String) { out += QuotedText.quoted(value) }
}
