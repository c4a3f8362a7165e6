import Foundation
import Testing

@testable import DeviceKit

/// The journal's hand-written JSON (`JSONObjectText`) read back by Foundation's parser: every string value,
/// control characters, quotes, reverse solidi and non-ASCII included, comes back as it went in.
@Suite struct JSONObjectTextTests {
    static let awkward = [
        "", "plain", "a \"quoted\" word", "back\\slash", "line\nbreak\ttab\rreturn", "\u{01}\u{1f}\u{7f}", "é 中文 🚑",
        #"{"kind":"fall","note":"x"}"#, "\\u0041",
    ]

    @Test func everyStringValueAndNumberComesBackAsItWent() throws {
        for value in Self.awkward {
            var object = JSONObjectText()
            object.add("s", value)
            object.add("n", Int64.min)
            object.add("b", false)
            object.add(key: "key \"\(value)\"", 7)
            object.add("rows", [1, -2, 3] as [Int64])
            var nested = JSONObjectText()
            nested.add("x", 1)
            object.add("o", json: nested.json)
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(object.json.utf8)) as? [String: Any], "\(object.json)")
            #expect(parsed["s"] as? String == value)
            #expect((parsed["n"] as? NSNumber)?.int64Value == Int64.min)
            #expect(parsed["b"] as? Bool == false)
            #expect((parsed["key \"\(value)\""] as? NSNumber)?.intValue == 7)
            #expect(parsed["rows"] as? [Int] == [1, -2, 3])
            #expect((parsed["o"] as? [String: Any])?["x"] as? Int == 1)
        }
    }
}
