import Prometheus

/// The text the metrics endpoint serves (Prometheus's text format 0.0.4): the families recorded through
/// swift-metrics into `registry`, each with its help text, then the process's own (`process_*`).
struct MetricsExposition: Sendable {
    let registry: PrometheusCollectorRegistry
    /// Help texts by family name (`CenterMetrics.help`).
    let help: [String: String]

    func render() -> [UInt8] {
        var text = Self.addingHelp(help, to: registry.emitToBuffer())
        if let process = ProcessMetrics.read() { text += Array(process.text.utf8) }
        return text
    }

    /// `text` with a `# HELP` line before the `# TYPE` line of each family that `help` names and that has
    /// none: swift-prometheus's `MetricsFactory` registers every family with an empty help text, since
    /// swift-metrics has no place for one, and the registry then writes no `# HELP` line.
    static func addingHelp(_ help: [String: String], to text: [UInt8]) -> [UInt8] {
        guard !help.isEmpty else { return text }
        var result: [UInt8] = []
        result.reserveCapacity(text.count + help.values.reduce(0) { $0 + $1.utf8.count + 64 })
        var previous: ArraySlice<UInt8> = []
        for line in text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: Self.typePrefix) {
                let name = line.dropFirst(Self.typePrefix.count).prefix { $0 != UInt8(ascii: " ") }
                let helpPrefix = Self.helpPrefix + name + [UInt8(ascii: " ")]
                if let text = help[String(decoding: name, as: UTF8.self)], !previous.starts(with: helpPrefix) {
                    result += helpPrefix
                    // The format escapes a backslash and a line feed in help text, nothing else.
                    for byte in text.utf8 {
                        switch byte {
                        case UInt8(ascii: "\\"): result += Array(#"\\"#.utf8)
                        case UInt8(ascii: "\n"): result += Array(#"\n"#.utf8)
                        default: result.append(byte)
                        }
                    }
                    result.append(UInt8(ascii: "\n"))
                }
            }
            result += line
            result.append(UInt8(ascii: "\n"))
            previous = line
        }
        // One line feed was added after each piece, one more than the text had between them.
        result.removeLast()
        return result
    }

    private static let typePrefix = Array("# TYPE ".utf8)
    private static let helpPrefix = Array("# HELP ".utf8)
}
