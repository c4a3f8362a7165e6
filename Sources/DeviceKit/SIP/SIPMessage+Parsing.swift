/// Parsing and serialising whole SIP messages (RFC 3261 §7, §18.3, §25), replies (§8.2.6) and the 400 that
/// answers malformed requests (§8.2, §16.3). Pure: bytes in, values or a typed error out.
///
/// ```
///  start-line CRLF                 INVITE sip:bob@biloxi.com SIP/2.0  |  SIP/2.0 200 OK
///  *( field-name HCOLON value CRLF )   folded lines (CRLF SP/HTAB) join with one SP; bare LF taken too
///  CRLF
///  body                            Content-Length bytes (a datagram without it: the rest)
/// ```
extension SIPMessage {
    /// Parses one whole message: a UDP datagram, or one message `SIPStreamFramer` cut from a stream.
    ///
    /// Bytes after the Content-Length body are ignored (§18.3). A request must carry Via (the top one with a
    /// branch), From, To, Call-ID and CSeq with the request's method, and Max-Forwards, when present, of
    /// 0-255; a response Via, From, To, Call-ID and CSeq.
    public init(parsing bytes: some Collection<UInt8>) throws(SIPParseError) {
        let count = bytes.count
        guard count <= SIPParseError.maximumMessageBytes else { throw .messageTooLarge(count) }
        let bytes = Array(bytes)
        let scan = try SIPMessage.scanHeaderSection(bytes, lenient: false)
        guard let bodyStart = scan.bodyStart else { throw .noEndOfHeaders }
        let headers = SIPHeaders(scan.fields)

        let body: [UInt8]
        if let length = try SIPMessage.contentLength(of: headers) {
            let received = bytes.count - bodyStart
            guard received >= length else { throw .bodyTruncated(declared: length, received: received) }
            body = Array(bytes[bodyStart..<(bodyStart + length)])
        } else {
            body = Array(bytes[bodyStart...])
        }

        let line = bytes[scan.startLine]
        if String(decoding: line.prefix(4), as: UTF8.self).equalsIgnoringASCIICase("SIP/") {
            let (code, reason) = try Self.statusLine(line)
            let vias = headers.all("via")
            guard let topVia = vias.first else { throw .missingHeader("Via") }
            _ = try SIPVia(parsing: SIPHeaderValues.split(topVia)[0])
            _ = try headers.from()
            _ = try headers.to()
            _ = try headers.callID()
            _ = try headers.cseq()
            self = .response(SIPResponse(statusCode: code, reasonPhrase: reason, headers: headers, body: body))
        } else {
            let (method, uri) = try Self.requestLine(line)
            let vias = headers.all("via")
            guard let topVia = vias.first else { throw .missingHeader("Via") }
            let top = SIPHeaderValues.split(topVia)[0]
            guard try SIPVia(parsing: top).branch != nil else { throw .badHeaderValue("Via", top, "has no branch") }
            _ = try headers.from()
            _ = try headers.to()
            _ = try headers.callID()
            let cseq = try headers.cseq()
            guard cseq.method == method else { throw .cseqMethodMismatch(cseq: cseq.method.rawValue, method: method.rawValue) }
            if !headers.all("max-forwards").isEmpty {
                let value = try headers.single("Max-Forwards")
                // Leading zeros are allowed (RFC 4475 "wsinv": 0068).
                let digits = Array(value.utf8).drop(while: { $0 == .zero })
                guard !value.isEmpty, digits.count <= 3, value.utf8.allSatisfy(\.isDigit),
                    digits.reduce(0, { $0 * 10 + Int($1 - .zero) }) <= 255
                else { throw .badHeaderValue("Max-Forwards", value, "is not a number of 0-255") }
            }
            self = .request(SIPRequest(method: method, uri: uri, headers: headers, body: body))
        }
    }

    /// The bytes to send: the start line, the header fields in order as `Name: value`, Content-Length set to
    /// the body's size (replacing any, written even when 0), a blank line, the body.
    public func serialized() -> [UInt8] {
        switch self {
        case .request(let request): request.serialized()
        case .response(let response): response.serialized()
        }
    }

    // MARK: Start lines

    /// `METHOD SP Request-URI SP SIP/2.0`, one SP between each (RFC 4475 "lwsstart", "trws", "lwsruri" are
    /// refused).
    private static func requestLine(_ line: ArraySlice<UInt8>) throws(SIPParseError) -> (SIPMethod, SIPURI) {
        let text = String(decoding: line, as: UTF8.self)
        let parts = line.split(separator: .space, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty else { throw .badRequestLine(text) }
        guard parts[0].allSatisfy(\.isTokenCharacter) else { throw .badMethod(String(decoding: parts[0], as: UTF8.self)) }
        try checkVersion(parts[2], line: text, isRequest: true)
        let uriText = String(decoding: parts[1], as: UTF8.self)
        let uri = try SIPURI(parsing: uriText)
        // §19.1.1's table: headers are not allowed in a Request-URI (RFC 4475 "escruri").
        guard uri.headers.isEmpty else { throw .badURI(uriText, "has ?headers, which a Request-URI may not carry") }
        return (SIPMethod(rawValue: String(decoding: parts[0], as: UTF8.self)), uri)
    }

    /// `SIP/2.0 SP 3DIGIT SP Reason-Phrase` with a code of 100-699; an empty reason (RFC 4475 "noreason") and
    /// a missing SP before it are taken.
    private static func statusLine(_ line: ArraySlice<UInt8>) throws(SIPParseError) -> (Int, String) {
        let text = String(decoding: line, as: UTF8.self)
        guard let space = line.firstIndex(of: .space) else { throw .badStatusLine(text) }
        try checkVersion(line[..<space], line: text, isRequest: false)
        let afterVersion = line[(space + 1)...]
        let digits = afterVersion.prefix(while: \.isDigit)
        guard digits.count == 3 else { throw .badStatusLine(text) }
        let code = digits.reduce(0) { $0 * 10 + Int($1 - .zero) }
        guard (100...699).contains(code) else { throw .badStatusLine(text) }
        var rest = afterVersion[digits.endIndex...]
        if let first = rest.first {
            guard first == .space else { throw .badStatusLine(text) }
            rest = rest.dropFirst()
        }
        return (code, String(decoding: rest, as: UTF8.self))
    }

    private static func checkVersion(_ version: ArraySlice<UInt8>, line: String, isRequest: Bool) throws(SIPParseError) {
        let text = String(decoding: version, as: UTF8.self)
        if text.equalsIgnoringASCIICase("SIP/2.0") { return }
        if text.count > 4, String(text.prefix(4)).equalsIgnoringASCIICase("SIP/") { throw .unsupportedVersion(text) }
        throw isRequest ? .badRequestLine(line) : .badStatusLine(line)
    }

    // MARK: Header section

    struct HeaderSection {
        /// The start line's bytes, without its line end.
        var startLine: Range<Int>
        var fields: [SIPHeaderField]
        /// Where the body starts (after the blank line); `nil` only in a lenient scan that found no blank line.
        var bodyStart: Int?
    }

    /// Splits the header section into the start line and unfolded fields, within the limits on size and count.
    ///
    /// `lenient` (for answering with a 400, and for the framer that only needs Content-Length) skips lines it
    /// cannot read and stops at a limit instead of throwing; it throws only when there is no start line.
    static func scanHeaderSection(_ bytes: [UInt8], lenient: Bool) throws(SIPParseError) -> HeaderSection {
        var index = 0
        // §7.5: CRLFs before the start line are ignored.
        while index < bytes.count, bytes[index] == .carriageReturn || bytes[index] == .lineFeed { index += 1 }
        guard index < bytes.count else { throw .empty }
        let start = index
        let limit = start + SIPParseError.maximumHeaderBytes

        var startLine: Range<Int>?
        var fields: [SIPHeaderField] = []
        var pendingName: String?
        var pendingValue: [UInt8] = []
        var full = false

        func flush() throws(SIPParseError) {
            guard let name = pendingName else { return }
            pendingName = nil
            guard fields.count < SIPParseError.maximumHeaderFields else {
                if lenient {
                    full = true
                    return
                }
                throw .tooManyHeaderFields
            }
            fields.append(SIPHeaderField(name, SIPScanner.trimmed(pendingValue)))
        }

        var lineStart = index
        while !full {
            var lineFeed = lineStart
            while lineFeed < bytes.count, lineFeed < limit, bytes[lineFeed] != .lineFeed { lineFeed += 1 }
            guard lineFeed < bytes.count, lineFeed < limit else {
                if !lenient { throw bytes.count > limit ? .headerSectionTooLarge : .noEndOfHeaders }
                break
            }
            var lineEnd = lineFeed
            if lineEnd > lineStart, bytes[lineEnd - 1] == .carriageReturn { lineEnd -= 1 }
            let line = bytes[lineStart..<lineEnd]
            if !lenient, line.contains(.carriageReturn) { throw .loneCarriageReturn }
            lineStart = lineFeed + 1

            if startLine == nil {
                startLine = line.startIndex..<line.endIndex
            } else if line.isEmpty {
                try flush()
                return HeaderSection(startLine: startLine ?? 0..<0, fields: fields, bodyStart: lineStart)
            } else if line[line.startIndex] == .space || line[line.startIndex] == .tab {
                // §7.3.1: a continuation line; the line end and the white space around it become one SP.
                guard pendingName != nil else {
                    if lenient { continue }
                    throw .continuationWithoutField(String(decoding: line, as: UTF8.self))
                }
                while let last = pendingValue.last, last == .space || last == .tab { pendingValue.removeLast() }
                pendingValue.append(.space)
                pendingValue += line.drop(while: { $0 == .space || $0 == .tab })
            } else {
                try flush()
                guard let colon = line.firstIndex(of: .colon) else {
                    if lenient { continue }
                    throw .badHeaderLine(String(decoding: line, as: UTF8.self))
                }
                var nameEnd = colon
                while nameEnd > line.startIndex, bytes[nameEnd - 1] == .space || bytes[nameEnd - 1] == .tab { nameEnd -= 1 }
                let name = bytes[line.startIndex..<nameEnd]
                guard !name.isEmpty, name.allSatisfy(\.isTokenCharacter) else {
                    if lenient { continue }
                    throw .badHeaderLine(String(decoding: line, as: UTF8.self))
                }
                pendingName = String(decoding: name, as: UTF8.self)
                pendingValue = Array(bytes[(colon + 1)..<lineEnd])
            }
        }
        // Lenient only: no blank line (or a limit reached); what was read is what there is.
        if !full { try flush() }
        guard let startLine else { throw .noEndOfHeaders }
        return HeaderSection(startLine: startLine, fields: fields, bodyStart: nil)
    }

    /// The index just past the blank line that ends a header section starting at or after `from`
    /// (CRLF CRLF, or LF LF / LF CRLF for peers that send bare LF), or `nil` when it has not come yet.
    static func endOfHeaderSection(in bytes: [UInt8], from: Int) -> Int? {
        var index = from
        while index < bytes.count {
            if bytes[index] == .lineFeed {
                if index + 1 < bytes.count, bytes[index + 1] == .lineFeed { return index + 2 }
                if index + 2 < bytes.count, bytes[index + 1] == .carriageReturn, bytes[index + 2] == .lineFeed { return index + 3 }
            }
            index += 1
        }
        return nil
    }

    /// The Content-Length (`l`) of the header fields, `nil` when absent: one number of 0-65,535; several
    /// fields must agree.
    static func contentLength(of headers: SIPHeaders) throws(SIPParseError) -> Int? {
        let values = headers.all("content-length")
        guard let first = values.first else { return nil }
        let digits = Array(first.utf8)
        guard !digits.isEmpty, digits.allSatisfy(\.isDigit) else { throw .badContentLength(first) }
        var length = 0
        for digit in digits {
            length = length * 10 + Int(digit - .zero)
            guard length <= SIPParseError.maximumBodyBytes else { throw .contentLengthTooLarge(first) }
        }
        for other in values.dropFirst() {
            let otherDigits = Array(other.utf8)
            guard !otherDigits.isEmpty, otherDigits.allSatisfy(\.isDigit),
                otherDigits.drop(while: { $0 == .zero }).elementsEqual(digits.drop(while: { $0 == .zero }))
            else { throw .conflictingContentLengths }
        }
        return length
    }

    static func serialize(startLine: String, headers: SIPHeaders, body: [UInt8]) -> [UInt8] {
        var headers = headers
        headers.set("Content-Length", String(body.count))
        var out: [UInt8] = []
        out.reserveCapacity(startLine.utf8.count + headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + body.count + 4)
        func appendLine(_ text: String) {
            // A line end inside a value would start a header of its own: never on the wire.
            for byte in text.utf8 { out.append(byte == .carriageReturn || byte == .lineFeed ? .space : byte) }
            out += [.carriageReturn, .lineFeed]
        }
        appendLine(startLine)
        for field in headers { appendLine(field.name + ": " + field.value) }
        out += [.carriageReturn, .lineFeed]
        out += body
        return out
    }
}

extension SIPRequest {
    /// See `SIPMessage.serialized()`.
    public func serialized() -> [UInt8] {
        SIPMessage.serialize(startLine: "\(method) \(uri) SIP/2.0", headers: headers, body: body)
    }
}

extension SIPResponse {
    /// See `SIPMessage.serialized()`.
    public func serialized() -> [UInt8] {
        SIPMessage.serialize(startLine: "SIP/2.0 \(statusCode) \(reasonPhrase)", headers: headers, body: body)
    }

    /// A response to `request` (§8.2.6): every Via in order, From, To (with `;tag=toTag` added when given and
    /// To has none yet), Call-ID and CSeq copied; the reason phrase defaults to the usual one for the code.
    public init(replyingTo request: SIPRequest, statusCode: Int, reasonPhrase: String? = nil, toTag: String? = nil) {
        var headers = SIPHeaders()
        for via in request.headers.all("via") { headers.add("Via", via) }
        if let from = request.headers["from"] { headers.add("From", from) }
        if var to = request.headers["to"] {
            if let toTag, (try? SIPNameAddress(parsing: to))?.tag == nil { to += ";tag=\(toTag)" }
            headers.add("To", to)
        }
        if let callID = request.headers["call-id"] { headers.add("Call-ID", callID) }
        if let cseq = request.headers["cseq"] { headers.add("CSeq", cseq) }
        self.init(statusCode: statusCode, reasonPhrase: reasonPhrase ?? Self.defaultReasonPhrase(statusCode), headers: headers)
    }

    /// The reason phrase RFC 3261 §21 (and RFC 3262, 3265) gives a code; for other codes, that of its class.
    public static func defaultReasonPhrase(_ statusCode: Int) -> String {
        switch statusCode {
        case 100: "Trying"
        case 180: "Ringing"
        case 181: "Call Is Being Forwarded"
        case 182: "Queued"
        case 183: "Session Progress"
        case 200: "OK"
        case 202: "Accepted"
        case 300: "Multiple Choices"
        case 301: "Moved Permanently"
        case 302: "Moved Temporarily"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 407: "Proxy Authentication Required"
        case 408: "Request Timeout"
        case 413: "Request Entity Too Large"
        case 415: "Unsupported Media Type"
        case 416: "Unsupported URI Scheme"
        case 420: "Bad Extension"
        case 480: "Temporarily Unavailable"
        case 481: "Call/Transaction Does Not Exist"
        case 482: "Loop Detected"
        case 483: "Too Many Hops"
        case 486: "Busy Here"
        case 487: "Request Terminated"
        case 488: "Not Acceptable Here"
        case 491: "Request Pending"
        case 500: "Server Internal Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 504: "Server Time-out"
        case 505: "Version Not Supported"
        case 513: "Message Too Large"
        case 600: "Busy Everywhere"
        case 603: "Decline"
        case 604: "Does Not Exist Anywhere"
        case 606: "Not Acceptable"
        case 100..<200: "Session Progress"
        case 200..<300: "OK"
        case 300..<400: "Redirection"
        case 400..<500: "Client Error"
        case 500..<600: "Server Error"
        default: "Global Failure"
        }
    }

    /// The 400 that answers bytes that did not parse (§8.2, §16.3), or `nil` when none is due: only a request
    /// (not an ACK, which gets no response) whose Via, From, To, Call-ID and CSeq can be read as text is
    /// answered; responses and garbage are dropped in silence. Those fields are copied verbatim and a
    /// `Warning: 399 devicesim "…"` says what was wrong.
    public static func badRequest(answering bytes: some Collection<UInt8>, because error: SIPParseError) -> SIPResponse? {
        let bytes = Array(bytes.prefix(SIPParseError.maximumHeaderBytes))
        guard let section = try? SIPMessage.scanHeaderSection(bytes, lenient: true) else { return nil }
        let parts = bytes[section.startLine].split(separator: .space)
        guard parts.count >= 3, let method = parts.first, method.allSatisfy(\.isTokenCharacter),
            let version = parts.last, version.count >= 4,
            String(decoding: version.prefix(4), as: UTF8.self).equalsIgnoringASCIICase("SIP/"),
            !method.elementsEqual("ACK".utf8)
        else { return nil }

        let received = SIPHeaders(section.fields)
        let vias = received.all("via")
        guard !vias.isEmpty, let from = received["from"], let to = received["to"], let callID = received["call-id"],
            let cseq = received["cseq"]
        else { return nil }
        var headers = SIPHeaders()
        for via in vias { headers.add("Via", via) }
        headers.add("From", from)
        headers.add("To", to)
        headers.add("Call-ID", callID)
        headers.add("CSeq", cseq)
        let text = String(String(error.description.unicodeScalars.filter { $0 != "\"" && $0 != "\\" && $0.value >= 0x20 && $0.value != 0x7F }).prefix(100))
        headers.add("Warning", "399 devicesim \"\(text)\"")
        return SIPResponse(statusCode: 400, reasonPhrase: "Bad Request", headers: headers)
    }
}
