import NIOCore

/// The test vectors of protocol.md §7, parsed from its ```` ```vector ```` blocks, and their check.
///
/// A vector block is `name: value` lines:
/// ```
/// name:      heartbeat
/// key:       <root key hex>            or   master: <master key hex>
/// epoch:     1                         (optional: the key epoch, 0 when absent)
/// device:    1
/// direction: up                        or   down, with anchor:, salt:, sequence:
/// counter:   1                         (up only)
/// message:   {"battery":87,...}
/// body:      02 05 57
/// frame:     10 00 20 ...
/// ```
public struct ProtocolVector: Sendable, Equatable {
    public var name: String
    public var rootKey: [UInt8]?
    public var masterKey: [UInt8]?
    /// The key epoch (protocol.md §3.2).
    public var epoch: UInt16 = 0
    public var deviceID: UInt32
    public var direction: Wire.Direction
    /// Up: the frame counter. Down: `salt << 32 | sequence`.
    public var counter: UInt64
    /// Down only: the session anchor that selects the key.
    public var anchor: UInt64
    public var messageJSON: String
    public var body: [UInt8]
    public var frame: [UInt8]

    public init(
        name: String, rootKey: [UInt8]? = nil, masterKey: [UInt8]? = nil, deviceID: UInt32,
        direction: Wire.Direction, counter: UInt64, anchor: UInt64 = 0, messageJSON: String = "",
        body: [UInt8] = [], frame: [UInt8] = []
    ) {
        self.name = name
        self.rootKey = rootKey
        self.masterKey = masterKey
        self.deviceID = deviceID
        self.direction = direction
        self.counter = counter
        self.anchor = anchor
        self.messageJSON = messageJSON
        self.body = body
        self.frame = frame
    }

    /// The key this vector seals with.
    public func key() throws -> DeviceKey {
        if let masterKey { return DeviceKey(deviceID: deviceID, master: try FleetMasterKey(bytes: masterKey), epoch: epoch) }
        return try DeviceKey(deviceID: deviceID, rootKey: rootKey ?? [], epoch: epoch)
    }

    /// Seals `message` as this vector describes, filling `messageJSON`, `body` and `frame`.
    public func sealing(_ message: Message) throws -> ProtocolVector {
        let key = try key()
        var copy = self
        var body = ByteBuffer()
        try message.encodeBody(into: &body)
        copy.body = Array(body.readableBytesView)
        copy.messageJSON = message.json
        var frame = ByteBuffer()
        try SealedFrame.seal(
            message, direction: direction, deviceID: deviceID, counter: counter,
            key: direction == .up ? key.upKey : key.downKey(anchor: anchor), keyEpoch: epoch, into: &frame)
        copy.frame = Array(frame.readableBytesView)
        return copy
    }

    /// Decodes the frame and compares everything; returns the differences, empty when the vector holds.
    public func check() -> [String] {
        var problems: [String] = []
        do {
            let key = try key()
            let frame = try SealedFrame(datagram: ByteBuffer(bytes: self.frame))
            let expectedHeader = FrameHeader(
                direction: direction, length: self.frame.count, deviceID: deviceID, counter: counter,
                keyEpochBits: UInt8(truncatingIfNeeded: epoch))
            if frame.header != expectedHeader { problems.append("header is \(frame.header), expected \(expectedHeader)") }
            let message = try frame.open(with: direction == .up ? key.upKey : key.downKey(anchor: anchor))
            if message.json != messageJSON { problems.append("message decodes to \(message.json)") }
            let resealed = try sealing(message)
            if resealed.body != body { problems.append("body encodes to \(Hex.encode(resealed.body, separator: " "))") }
            if resealed.frame != self.frame { problems.append("frame seals to \(Hex.encode(resealed.frame, separator: " "))") }
        } catch {
            problems.append("\(error)")
        }
        return problems
    }

    /// The vector as a protocol.md block.
    public var markdown: String {
        var lines = ["```vector", "name:      \(name)"]
        if let masterKey { lines.append("master:    \(Hex.encode(masterKey))") }
        if let rootKey { lines.append("key:       \(Hex.encode(rootKey))") }
        if epoch > 0 { lines.append("epoch:     \(epoch)") }
        lines.append("device:    \(deviceID)")
        lines.append("direction: \(direction == .up ? "up" : "down")")
        switch direction {
        case .up: lines.append("counter:   \(counter)")
        case .down:
            lines.append("anchor:    \(anchor)")
            lines.append("salt:      0x\(Hex.encode(withUnsafeBytes(of: UInt32(counter >> 32).bigEndian, Array.init)))")
            lines.append("sequence:  \(counter & 0xFFFF_FFFF)")
        }
        lines.append("message:   \(messageJSON)")
        lines.append("body:      \(Hex.encode(body, separator: " "))")
        lines.append("frame:     \(Hex.encode(frame, separator: " "))")
        lines.append("```")
        return lines.joined(separator: "\n")
    }

    /// Every vector block in a markdown text.
    public static func parse(markdown: String) throws(VectorFileError) -> [ProtocolVector] {
        var vectors: [ProtocolVector] = []
        var fields: [String: String]? = nil
        for (number, rawLine) in markdown.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: " \t\r")
            if line == "```vector" {
                fields = [:]
            } else if line == "```", let f = fields {
                vectors.append(try vector(from: f, line: number + 1))
                fields = nil
            } else if fields != nil {
                guard let colon = line.firstIndex(of: ":") else { throw .badLine(number + 1, line) }
                let key = String(line[..<colon])
                fields?[key] = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            }
        }
        return vectors
    }

    private static func vector(from f: [String: String], line: Int) throws(VectorFileError) -> ProtocolVector {
        func need(_ k: String) throws(VectorFileError) -> String {
            guard let v = f[k] else { throw .missingField(line, k) }
            return v
        }
        func hex(_ k: String) throws(VectorFileError) -> [UInt8] {
            guard let v = Hex.decode(try need(k)) else { throw .badValue(line, k) }
            return v
        }
        func number(_ k: String) throws(VectorFileError) -> UInt64 {
            let text = try need(k)
            let value = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
            guard let value else { throw .badValue(line, k) }
            return value
        }
        let direction: Wire.Direction
        switch try need("direction") {
        case "up": direction = .up
        case "down": direction = .down
        default: throw .badValue(line, "direction")
        }
        guard let deviceID = UInt32(exactly: try number("device")) else { throw .badValue(line, "device") }
        var v = ProtocolVector(
            name: try need("name"), rootKey: f["key"] == nil ? nil : try hex("key"),
            masterKey: f["master"] == nil ? nil : try hex("master"), deviceID: deviceID, direction: direction,
            counter: 0, messageJSON: try need("message"), body: try hex("body"), frame: try hex("frame"))
        if f["epoch"] != nil {
            guard let epoch = UInt16(exactly: try number("epoch")) else { throw .badValue(line, "epoch") }
            v.epoch = epoch
        }
        switch direction {
        case .up: v.counter = try number("counter")
        case .down:
            v.anchor = try number("anchor")
            v.counter = try number("salt") << 32 | (try number("sequence") & 0xFFFF_FFFF)
        }
        return v
    }
}

/// Why protocol.md's vector blocks could not be read.
public enum VectorFileError: Error, Equatable, CustomStringConvertible {
    case badLine(Int, String)
    case missingField(Int, String)
    case badValue(Int, String)

    public var description: String {
        switch self {
        case .badLine(let n, let l): "line \(n): expected 'name: value', found '\(l)'"
        case .missingField(let n, let k): "vector ending at line \(n) has no '\(k):' line"
        case .badValue(let n, let k): "vector ending at line \(n): '\(k)' is not valid"
        }
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s.removeFirst() }
        while let c = s.last, set.contains(c) { s.removeLast() }
        return String(s)
    }
}
