import TOMLKit

/// One phase of a run as the report shows it: its name, when it began and how long it lasted.
public struct PhaseSummary: Codable, Equatable, Sendable {
    public var name: String
    public var startSeconds: Double
    public var durationSeconds: Double

    public init(name: String, startSeconds: Double, durationSeconds: Double) {
        self.name = name
        self.startSeconds = startSeconds
        self.durationSeconds = durationSeconds
    }
}

/// A scenario file for repeatable load tests: the steady part of a run as phases, each with its length,
/// its alarm and event rates and what happens to the homes' mains, read from TOML.
///
/// ```toml
/// name = "power cut"
/// [[phase]]
/// name = "power cut"
/// duration_s = 600
/// alarm_rate = 5            # alarms a second across the fleet (Poisson)
/// mains_lost_share = 0.3    # 30 % of the homes lose mains at the phase's start
/// [[phase]]
/// name = "alarm spike"
/// duration_s = 120
/// alarm_rate = 200
/// mains_restored_share = 1  # mains come back in every home without, at random instants of the phase
/// ```
/// The simulated devices report mains changes with the firmware's `DeviceEventMachine`, whose random delay
/// for "mains lost" is set to the phase's length, so the reports spread over the phase as a town's would.
public struct LoadScenario: Equatable, Sendable {
    public struct Phase: Equatable, Sendable {
        public var name: String
        public var duration: Duration
        /// Alarms and other device events (battery low/OK, tamper) a second across the whole fleet.
        public var alarmRate: Double
        public var eventRate: Double
        /// Share of the homes with mains that lose it when the phase begins.
        public var mainsLostShare: Double
        /// Share of the homes without mains whose mains come back, each at a random instant of the phase.
        public var mainsRestoredShare: Double

        public init(
            name: String, duration: Duration, alarmRate: Double, eventRate: Double = 0, mainsLostShare: Double = 0,
            mainsRestoredShare: Double = 0
        ) {
            self.name = name
            self.duration = duration
            self.alarmRate = alarmRate
            self.eventRate = eventRate
            self.mainsLostShare = mainsLostShare
            self.mainsRestoredShare = mainsRestoredShare
        }
    }

    public var name: String
    public var phases: [Phase]

    public init(name: String, phases: [Phase]) {
        self.name = name
        self.phases = phases
    }

    /// All phases together.
    public var duration: Duration { phases.reduce(.zero) { $0 + $1.duration } }

    /// Parses a scenario file; `file` names it in the errors, which say what to write instead.
    public init(toml text: String, file: String) throws(LoadError) {
        let document: TOMLTable
        do {
            document = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw LoadError("\(file) is not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw LoadError("\(file) is not valid TOML")
        }
        let example = "write for example [[phase]] name = \"power cut\" duration_s = 600 alarm_rate = 5 mains_lost_share = 0.3"
        for key in document.keys where key != "name" && key != "phase" {
            throw LoadError("\(file): unknown setting '\(key)'; a scenario has name = \"…\" and [[phase]] tables")
        }
        var name = file
        if let value = document["name"] {
            guard let text = value.string else { throw LoadError("\(file): name must be text in double quotes, as name = \"power cut\"") }
            name = text
        }
        guard let tables = document["phase"]?.array, !tables.isEmpty else {
            throw LoadError("\(file) has no phase: \(example)")
        }
        var phases: [Phase] = []
        for (index, element) in tables.enumerated() {
            let at = "\(file): phase \(index + 1)"
            guard let table = element.table else { throw LoadError("\(at) is not a table: \(example)") }
            let known: Set<String> = ["name", "duration_s", "alarm_rate", "event_rate", "mains_lost_share", "mains_restored_share"]
            for key in table.keys where !known.contains(key) {
                throw LoadError("\(at): unknown setting '\(key)'; a phase has \(known.sorted().joined(separator: ", "))")
            }
            func number(_ key: String, default value: Double?, in range: ClosedRange<Double>) throws(LoadError) -> Double {
                guard let item = table[key] else {
                    guard let value else { throw LoadError("\(at) has no \(key): \(example)") }
                    return value
                }
                guard let number = item.double ?? item.int.map(Double.init) else {
                    throw LoadError("\(at): \(key) must be a number, as \(key) = \(key == "duration_s" ? "600" : "0.3")")
                }
                guard range.contains(number), number.isFinite else {
                    throw LoadError("\(at): \(key) = \(number) is outside \(range.lowerBound) … \(range.upperBound)")
                }
                return number
            }
            var phaseName = "phase \(index + 1)"
            if let value = table["name"] {
                guard let text = value.string else { throw LoadError("\(at): name must be text in double quotes") }
                phaseName = text
            }
            let seconds = try number("duration_s", default: nil, in: 0.001...31_536_000)
            phases.append(
                Phase(
                    name: phaseName, duration: .milliseconds(Int64((seconds * 1000).rounded())),
                    alarmRate: try number("alarm_rate", default: 0, in: 0...10_000_000),
                    eventRate: try number("event_rate", default: 0, in: 0...10_000_000),
                    mainsLostShare: try number("mains_lost_share", default: 0, in: 0...1),
                    mainsRestoredShare: try number("mains_restored_share", default: 0, in: 0...1)))
        }
        self.init(name: name, phases: phases)
    }
}
