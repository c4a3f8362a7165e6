/// Why bytes from outside are not a SIP message we can act on (RFC 3261 §7, §25), in words a peer's
/// operator can act on. The text quotes at most ~80 characters of the input, never a password or a
/// digest response, and is what the 400's `Warning` carries (`SIPResponse.badRequest`).
///
/// A struct around a private code (NIO's style), so that new refusals do not break callers that switch.
public struct SIPParseError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case empty
        case messageTooLarge(Int)
        case headerSectionTooLarge
        case tooManyHeaderFields
        case noEndOfHeaders
        case loneCarriageReturn
        case badRequestLine(String)
        case badStatusLine(String)
        case unsupportedVersion(String)
        case badMethod(String)
        case badHeaderLine(String)
        case continuationWithoutField(String)
        case missingHeader(String)
        case duplicateHeader(String)
        case badHeaderValue(header: String, value: String, reason: String)
        case badURI(String, reason: String)
        case badContentLength(String)
        case contentLengthTooLarge(String)
        case conflictingContentLengths
        case bodyTruncated(declared: Int, received: Int)
        case cseqMethodMismatch(cseq: String, method: String)
        case missingContentLengthOnStream
        case incompleteMessage
        case wildcardContact
        case badChallenge(String, reason: String)
        case badAuthorization(reason: String)
    }

    private let code: Code
    private init(_ code: Code) { self.code = code }

    /// The largest message (a datagram or one message cut from a stream) we take: 65,535 bytes.
    public static let maximumMessageBytes = 65_535
    /// The largest header section (start line and header fields, up to the blank line): 16,384 bytes.
    public static let maximumHeaderBytes = 16_384
    /// The most header fields one message may have.
    public static let maximumHeaderFields = 128
    /// The largest Content-Length we take.
    public static let maximumBodyBytes = 65_535

    public static let empty = Self(.empty)
    public static func messageTooLarge(_ bytes: Int) -> Self { Self(.messageTooLarge(bytes)) }
    public static let headerSectionTooLarge = Self(.headerSectionTooLarge)
    public static let tooManyHeaderFields = Self(.tooManyHeaderFields)
    public static let noEndOfHeaders = Self(.noEndOfHeaders)
    public static let loneCarriageReturn = Self(.loneCarriageReturn)
    /// A stream held part of a message that did not become whole in time (`SIPEndpoint`'s timeout).
    public static let incompleteMessage = Self(.incompleteMessage)
    public static func badRequestLine(_ line: String) -> Self { Self(.badRequestLine(line)) }
    public static func badStatusLine(_ line: String) -> Self { Self(.badStatusLine(line)) }
    public static func unsupportedVersion(_ version: String) -> Self { Self(.unsupportedVersion(version)) }
    public static func badMethod(_ method: String) -> Self { Self(.badMethod(method)) }
    public static func badHeaderLine(_ line: String) -> Self { Self(.badHeaderLine(line)) }
    public static func continuationWithoutField(_ line: String) -> Self { Self(.continuationWithoutField(line)) }
    public static func missingHeader(_ name: String) -> Self { Self(.missingHeader(name)) }
    public static func duplicateHeader(_ name: String) -> Self { Self(.duplicateHeader(name)) }
    public static func badHeaderValue(_ header: String, _ value: String, _ reason: String) -> Self {
        Self(.badHeaderValue(header: header, value: value, reason: reason))
    }
    public static func badURI(_ uri: String, _ reason: String) -> Self { Self(.badURI(uri, reason: reason)) }
    public static func badContentLength(_ value: String) -> Self { Self(.badContentLength(value)) }
    public static func contentLengthTooLarge(_ length: String) -> Self { Self(.contentLengthTooLarge(length)) }
    public static let conflictingContentLengths = Self(.conflictingContentLengths)
    public static func bodyTruncated(declared: Int, received: Int) -> Self {
        Self(.bodyTruncated(declared: declared, received: received))
    }
    public static func cseqMethodMismatch(cseq: String, method: String) -> Self {
        Self(.cseqMethodMismatch(cseq: cseq, method: method))
    }
    public static let missingContentLengthOnStream = Self(.missingContentLengthOnStream)
    public static let wildcardContact = Self(.wildcardContact)
    public static func badChallenge(_ value: String, _ reason: String) -> Self { Self(.badChallenge(value, reason: reason)) }
    /// An Authorization value is never quoted: it carries a digest response.
    public static func badAuthorization(_ reason: String) -> Self { Self(.badAuthorization(reason: reason)) }

    public var description: String {
        switch code {
        case .empty:
            return "the message is empty (nothing but line ends)"
        case .messageTooLarge(let bytes):
            return "the message is \(bytes) bytes, more than the \(Self.maximumMessageBytes) a SIP message may have here"
        case .headerSectionTooLarge:
            return "the header section is longer than \(Self.maximumHeaderBytes) bytes"
        case .tooManyHeaderFields:
            return "the message has more than \(Self.maximumHeaderFields) header fields"
        case .noEndOfHeaders:
            return "the header section does not end with an empty line (CRLF CRLF)"
        case .loneCarriageReturn:
            return "the header section has a CR that is not followed by LF"
        case .badRequestLine(let line):
            return "the request line \(Self.quote(line)) is not METHOD SP sip:URI SP SIP/2.0 (one space between each)"
        case .badStatusLine(let line):
            return "the status line \(Self.quote(line)) is not SIP/2.0 SP code SP reason with a code of 100-699"
        case .unsupportedVersion(let version):
            return "the version \(Self.quote(version)) is not SIP/2.0"
        case .badMethod(let method):
            return "the method \(Self.quote(method)) is not a token"
        case .badHeaderLine(let line):
            return "the header line \(Self.quote(line)) is not Name: value with a token for a name"
        case .continuationWithoutField(let line):
            return "the line \(Self.quote(line)) starts with white space (a continuation) but follows no header field"
        case .missingHeader(let name):
            return "the message has no \(name) header field"
        case .duplicateHeader(let name):
            return "the message has more than one \(name) header field"
        case .badHeaderValue(let header, let value, let reason):
            return "the \(header) header \(Self.quote(value)) \(reason)"
        case .badURI(let uri, let reason):
            return "the URI \(Self.quote(uri)) \(reason)"
        case .badContentLength(let value):
            return "Content-Length \(Self.quote(value)) is not a number of bytes"
        case .contentLengthTooLarge(let length):
            return "Content-Length says \(length.prefix(20)) bytes, more than the \(Self.maximumBodyBytes) a body may have here"
        case .conflictingContentLengths:
            return "the message has two Content-Length fields that disagree"
        case .bodyTruncated(let declared, let received):
            return "Content-Length says \(declared) bytes but \(received) followed"
        case .cseqMethodMismatch(let cseq, let method):
            return "the CSeq method \(Self.quote(cseq)) is not the request's method \(Self.quote(method))"
        case .missingContentLengthOnStream:
            return "a message on a stream (TCP) must have Content-Length, and this one has none"
        case .incompleteMessage:
            return "a message begun on this stream did not end in time (garbage, or a stalled peer)"
        case .wildcardContact:
            return "Contact is \"*\" (every binding, for a REGISTER that removes them): it names no address"
        case .badChallenge(let value, let reason):
            return "the digest challenge \(Self.quote(value)) \(reason)"
        case .badAuthorization(let reason):
            return "the digest Authorization \(reason)"
        }
    }

    /// `"text"`, cut to 80 characters (`…` marks the cut), with control characters written as escapes so that
    /// an error text never carries a line end or a quote of the input into a log line or a Warning header.
    static func quote(_ text: String) -> String {
        var out = "\""
        var count = 0
        for scalar in redactingURIPasswords(text) {
            if count == 80 {
                out += "…"
                break
            }
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\x" + String(scalar.value, radix: 16)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
            count += 1
        }
        return out + "\""
    }

    /// The scalars of `text` with the password of any `sip:user:password@host` (or `sips:`) replaced by `***`:
    /// URIs may carry one (§19.1.1, not recommended), and an error text must not.
    static func redactingURIPasswords(_ text: String) -> [Unicode.Scalar] {
        var scalars = Array(text.unicodeScalars)
        let stops: Set<Unicode.Scalar> = [" ", "\t", "<", ">", "\"", "\r", "\n"]
        var index = 0
        while index < scalars.count {
            // At "sip:" or "sips:" (any case), look for user:password@ before the URI can have ended.
            var schemeEnd: Int?
            for scheme in ["sip:", "sips:"] {
                let candidate = scalars[index...].prefix(scheme.unicodeScalars.count)
                if String(String.UnicodeScalarView(candidate)).equalsIgnoringASCIICase(scheme) { schemeEnd = index + candidate.count }
            }
            guard let userStart = schemeEnd else {
                index += 1
                continue
            }
            var end = userStart
            while end < scalars.count, !stops.contains(scalars[end]) { end += 1 }
            if let at = scalars[userStart..<end].lastIndex(of: "@"),
                let colon = scalars[userStart..<at].firstIndex(of: ":")
            {
                scalars.replaceSubrange((colon + 1)..<at, with: Array("***".unicodeScalars))
                index = colon + 4
            } else {
                index = userStart
            }
        }
        return scalars
    }
}
