/// One of the device's indicator LEDs, by colour.
public enum LEDColor: String, Hashable, Sendable, CaseIterable, Codable {
    case red
    case green
    case amber
}

/// What one LED does while a state is shown.
public enum LEDPattern: Hashable, Sendable {
    case off
    /// On at full brightness.
    case steady
    /// On at about an eighth of full brightness (full on LEDs that only switch on and off).
    case dim
    /// Blinking by the kernel's timer trigger, so it keeps blinking while the process is busy or stuck.
    case blink(onMilliseconds: UInt32, offMilliseconds: UInt32)
}

/// Which LED does what in each `IndicatorState`; an LED a state does not name is off.
///
/// | state      | red            | green          | amber          |
/// |------------|----------------|----------------|----------------|
/// | idle       | off            | dim            | off            |
/// | sending    | blink 100/100  | off            | off            |
/// | waiting    | blink 200/1800 | off            | blink 1000/1000|
/// | delivered  | steady         | off            | off            |
/// | helpComing | off            | blink 500/500  | off            |
/// | speaking   | off            | steady         | off            |
/// | fault      | off            | off            | blink 1000/1000|
///
/// Without an amber LED, *fault* blinks red and green together at 1000/1000, which no other state does, and
/// *waiting* (an alarm stored while the centre cannot be reached) is the red flash alone.
public struct IndicatorPatterns: Hashable, Sendable {
    public var table: [IndicatorState: [LEDColor: LEDPattern]]

    public init(table: [IndicatorState: [LEDColor: LEDPattern]]) { self.table = table }

    /// The table above; `hasAmber` says whether the device has an amber LED for *fault*.
    public static func standard(hasAmber: Bool) -> IndicatorPatterns {
        let faultBlink = LEDPattern.blink(onMilliseconds: 1000, offMilliseconds: 1000)
        return IndicatorPatterns(table: [
            .idle: [.green: .dim],
            .sending: [.red: .blink(onMilliseconds: 100, offMilliseconds: 100)],
            .waiting: hasAmber
                ? [.red: .blink(onMilliseconds: 200, offMilliseconds: 1800), .amber: faultBlink]
                : [.red: .blink(onMilliseconds: 200, offMilliseconds: 1800)],
            .delivered: [.red: .steady],
            .helpComing: [.green: .blink(onMilliseconds: 500, offMilliseconds: 500)],
            .speaking: [.green: .steady],
            .fault: hasAmber ? [.amber: faultBlink] : [.red: faultBlink, .green: faultBlink],
        ])
    }

    /// What `color` does in `state`.
    public func pattern(_ color: LEDColor, in state: IndicatorState) -> LEDPattern {
        table[state]?[color] ?? .off
    }
}
