import DeviceKit
import Foundation

/// The console's catalogue of strings and the login page made from it (docs/console.md, "The page").
///
/// The login page has no script: the server fills its template. `{{t:KEY}}` becomes the escaped text of KEY
/// in the page's language (the key itself if the catalogue lacks it), `{{lang}}` the page's language tag
/// (`en`, `zh-Hans`), `{{language}}` the console's code for it (`en`, `zh`), `{{error}}` the escaped error
/// message or nothing, `{{error-hidden}}` `hidden` when there is no error.
struct ConsolePages: Sendable {
    /// Language code → key → text.
    let catalogue: [String: [String: String]]

    init(catalogue data: [UInt8] = ConsoleAssets.catalogue) {
        let parsed = (try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any] ?? [:]
        var catalogue: [String: [String: String]] = [:]
        for (language, strings) in parsed {
            catalogue[language] = strings as? [String: String] ?? [:]
        }
        self.catalogue = catalogue
    }

    func text(_ key: String, _ language: ConsoleLanguage) -> String {
        catalogue[language.rawValue]?[key] ?? catalogue["en"]?[key] ?? key
    }

    /// The login page in `language`, with the error whose catalogue key is `errorKey`, if any.
    func login(_ language: ConsoleLanguage, errorKey: String? = nil, retryAfter: Int? = nil) -> String {
        var error = errorKey.map { text($0, language) } ?? ""
        if let retryAfter { error = error.replacingOccurrences(of: "{seconds}", with: "\(retryAfter)") }
        return fill(String(decoding: ConsoleAssets.loginHTML, as: UTF8.self), language, error: error)
    }

    /// `template` with its placeholders filled (see the type's documentation).
    func fill(_ template: String, _ language: ConsoleLanguage, error: String) -> String {
        var page = ""
        page.reserveCapacity(template.utf8.count + 1024)
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            page += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                rest = rest[open.lowerBound...]
                break
            }
            let name = rest[open.upperBound..<close.lowerBound]
            switch name {
            case "lang": page += language.tag
            case "language": page += language.rawValue
            case "error": page += HTMLPage.escape(error)
            case "error-hidden": page += error.isEmpty ? "hidden" : ""
            default:
                if name.hasPrefix("t:") {
                    page += HTMLPage.escape(text(String(name.dropFirst(2)), language))
                } else {
                    page += rest[open.lowerBound..<close.upperBound]
                }
            }
            rest = rest[close.upperBound...]
        }
        page += rest
        return page
    }
}

extension ConsoleLanguage {
    /// The BCP 47 tag of the page's `lang` attribute.
    var tag: String {
        switch self {
        case .en: "en"
        case .zh: "zh-Hans"
        }
    }

    /// The language a browser asks for first among ours (`Accept-Language`), else English.
    static func preferred(query: String?, acceptLanguage: String?) -> ConsoleLanguage {
        if let query, let language = ConsoleLanguage(rawValue: query) { return language }
        for part in (acceptLanguage ?? "").split(separator: ",") {
            let tag = part.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
            if tag.hasPrefix("zh") { return .zh }
            if tag.hasPrefix("en") { return .en }
        }
        return .en
    }
}
