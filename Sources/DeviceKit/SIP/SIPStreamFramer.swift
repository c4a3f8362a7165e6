/// Cuts whole SIP messages out of a byte stream (TCP, RFC 3261 §18.3): the header section up to the blank
/// line, then exactly Content-Length bytes of body. Pure: the NIO shell appends what it reads and calls `next()`
/// until it returns `nil`; each message goes to `SIPMessage(parsing:)`.
///
/// ```
///  [CRLF CRLF]*   keep-alive pings between messages (RFC 5626 §3.5.1): counted in `pingsSeen`, skipped;
///                 the shell answers each with one CRLF ("pong")
///  headers CRLF CRLF body[Content-Length]      Content-Length is mandatory on a stream
/// ```
/// Bounded: a header section over 16,384 bytes without its blank line, a Content-Length over 65,535 or a
/// message over 65,535 bytes is an error. After an error the stream is out of step and unusable: `next()`
/// throws the same error again and the shell closes the connection.
public struct SIPStreamFramer {
    private var buffer: [UInt8] = []
    /// Where the next message (or keep-alive) starts in `buffer`.
    private var readIndex = 0
    /// Where the search for the blank line resumes, so that a message arriving a byte at a time is scanned once.
    private var searchIndex = 0
    /// The end of the header section and the body length of the message being received, once known.
    private var pending: (headerEnd: Int, bodyLength: Int)?
    private var failure: SIPParseError?

    /// How many double-CRLF keep-alive pings came between messages.
    public private(set) var pingsSeen = 0

    public init() {}

    /// Bytes of a message begun and not yet whole (what a stalled or garbage stream holds).
    public var partialBytes: Int { buffer.count - readIndex }

    /// Adds bytes read from the stream. After an error they are dropped.
    public mutating func append(_ bytes: some Collection<UInt8>) {
        guard failure == nil else { return }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole message, `nil` when more bytes are needed, or the error that made the stream unusable.
    public mutating func next() throws(SIPParseError) -> [UInt8]? {
        if let failure { throw failure }
        do {
            return try cut()
        } catch {
            failure = error
            buffer = []
            readIndex = 0
            searchIndex = 0
            pending = nil
            throw error
        }
    }

    private mutating func cut() throws(SIPParseError) -> [UInt8]? {
        if pending == nil {
            guard skipKeepAlives() else { return nil }
            compact()
        }
        let headerEnd: Int
        let bodyLength: Int
        if let pending {
            (headerEnd, bodyLength) = pending
        } else {
            guard let end = SIPMessage.endOfHeaderSection(in: buffer, from: max(searchIndex, readIndex)) else {
                if buffer.count - readIndex > SIPParseError.maximumHeaderBytes { throw .headerSectionTooLarge }
                searchIndex = max(readIndex, buffer.count - 2)
                return nil
            }
            guard end - readIndex <= SIPParseError.maximumHeaderBytes else { throw .headerSectionTooLarge }
            // Only Content-Length matters here; the rest of the header section is the parser's to judge (and
            // to answer with a 400).
            let section = try SIPMessage.scanHeaderSection(Array(buffer[readIndex..<end]), lenient: true)
            guard let length = try SIPMessage.contentLength(of: SIPHeaders(section.fields)) else {
                throw .missingContentLengthOnStream
            }
            let total = end - readIndex + length
            guard total <= SIPParseError.maximumMessageBytes else { throw .messageTooLarge(total) }
            (headerEnd, bodyLength) = (end, length)
            pending = (end, length)
        }
        guard buffer.count - headerEnd >= bodyLength else { return nil }
        let message = Array(buffer[readIndex..<(headerEnd + bodyLength)])
        readIndex = headerEnd + bodyLength
        searchIndex = readIndex
        pending = nil
        return message
    }

    /// Skips CRLFs before a message, counting each CRLF CRLF as a ping. Returns `false` when only line ends
    /// are buffered and the next byte could still make them a ping.
    private mutating func skipKeepAlives() -> Bool {
        while readIndex < buffer.count {
            let byte = buffer[readIndex]
            guard byte == .carriageReturn || byte == .lineFeed else { return true }
            if buffer.count - readIndex >= 4, buffer[readIndex] == .carriageReturn, buffer[readIndex + 1] == .lineFeed,
                buffer[readIndex + 2] == .carriageReturn, buffer[readIndex + 3] == .lineFeed
            {
                readIndex += 4
                pingsSeen += 1
                continue
            }
            // Fewer than four line-end bytes so far: wait, they may yet be a ping.
            if buffer[readIndex...].allSatisfy({ $0 == .carriageReturn || $0 == .lineFeed }), buffer.count - readIndex < 4 {
                return false
            }
            // A lone CRLF (a pong, or a stray line end: §7.5 says ignore it) or a bare CR or LF.
            readIndex += (byte == .carriageReturn && readIndex + 1 < buffer.count && buffer[readIndex + 1] == .lineFeed) ? 2 : 1
        }
        return true
    }

    /// Drops the bytes already cut, so that a long-lived connection does not keep them.
    private mutating func compact() {
        guard readIndex > 0, readIndex == buffer.count || readIndex >= 4_096 else { return }
        buffer.removeFirst(readIndex)
        searchIndex = max(0, searchIndex - readIndex)
        readIndex = 0
    }
}
