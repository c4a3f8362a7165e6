/// A string in double quotes with the escapes TOML basic strings (TOML 1.0) and JSON strings (RFC 8259 §7)
/// share: quote, backslash, `\n` `\t` `\r`, and `\u00XX` for the other control characters and DEL. The same
/// text is valid in both.
enum QuotedText {
    static func quoted(_ text: String) -> String {
        var out = "\""
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += text
        } else {
            for scalar in text.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                case _ where scalar.value < 0x20 || scalar.value == 0x7f:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
