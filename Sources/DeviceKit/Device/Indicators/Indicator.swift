/// What the device shows the person at home, in states they understand (LEDs, buzzer).
public enum IndicatorState: String, Hashable, Sendable, CaseIterable, Codable {
    /// Ready; nothing to report (green steady, or off).
    case idle
    /// An alarm is raised and being sent (red blinking fast).
    case sending
    /// An alarm is stored on the device and waits for the centre, which cannot be reached (red flashing
    /// slowly, amber blinking): not lost, not yet sent.
    case waiting
    /// The centre has the alarm (red steady).
    case delivered
    /// An operator has the case and help is on its way (green blinking slowly).
    case helpComing
    /// The voice link is open (green steady with the speaker on).
    case speaking
    /// Something needs a technician: no centre, no button, storage failing (amber blinking).
    case fault

    /// What the person at home sees, in words, for logs and the demo.
    public var meaning: String {
        switch self {
        case .idle: "ready"
        case .sending: "sending the alarm"
        case .waiting: "alarm stored, waiting for the centre"
        case .delivered: "the centre has the alarm"
        case .helpComing: "help is coming"
        case .speaking: "talking to the centre"
        case .fault: "fault: needs a technician"
        }
    }
}

/// An output that shows an `IndicatorState`: an LED set through sysfs, a buzzer, or a recording double.
public protocol IndicatorOutput: Sendable {
    func show(_ state: IndicatorState) throws(IndicatorError)
}

public struct IndicatorError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
