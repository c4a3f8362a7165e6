/// Decides which changes of power, battery and button presence the centre hears about, and when.
///
/// Mains lost is reported after a random delay in `0...mainsLostMaximumDelay`, so that a town-wide power cut
/// does not make every home call the centre in the same second; if mains come back before the report, neither
/// is sent (a flicker is not news). Low battery has hysteresis (low below 20 %, OK again from 30 %), so a
/// battery near the threshold does not flood the centre. Tamper is reported at most once a minute and then kept in the status.
///
/// Pure: time and randomness come in; the owner stores the events it asks for.
public struct DeviceEventMachine: Sendable {
    public struct Configuration: Hashable, Sendable {
        public var mainsLostMaximumDelay: Duration
        public var lowBatteryBelow: UInt8
        public var batteryOKFrom: UInt8
        public init(mainsLostMaximumDelay: Duration = .seconds(120), lowBatteryBelow: UInt8 = 20, batteryOKFrom: UInt8 = 30) {
            self.mainsLostMaximumDelay = mainsLostMaximumDelay
            self.lowBatteryBelow = lowBatteryBelow
            self.batteryOKFrom = batteryOKFrom
        }
    }

    public enum Timer: Hashable, Sendable {
        case reportMainsLost(generation: Int)
    }

    public enum Action: Hashable, Sendable {
        case storeEvent(DeviceEventKind, value: UInt32)
        case scheduleTimer(Timer, after: Duration)
    }

    /// Held by reference: every device of a load run shares it (`Shared`).
    private var settings: Shared<Configuration>
    public var configuration: Configuration {
        get { settings.value }
        set { settings.value = newValue }
    }
    private var random: SplitMix64
    private var generation = 0
    /// Mains as the centre last heard it (nil before the first reading).
    private var mainsReported: Bool?
    private var mainsNow: Bool?
    private var batteryLow = false
    private var buttonPresent: Bool?
    /// When tamper was last reported; `nil` before the first.
    private var tamperReportedAt: Duration?
    public private(set) var battery: UInt8 = 255

    public init(configuration: Configuration = Configuration(), seed: UInt64) {
        self.init(settings: Shared(configuration), seed: seed)
    }

    /// A machine whose configuration is shared with others.
    public init(settings: Shared<Configuration>, seed: UInt64) {
        self.settings = settings
        self.random = SplitMix64(seed: seed)
    }

    /// The status byte of heartbeats.
    public var status: DeviceStatus {
        var s: DeviceStatus = []
        if mainsNow ?? true { s.insert(.mainsPresent) }
        if batteryLow { s.insert(.batteryLow) }
        if buttonPresent ?? true { s.insert(.buttonPresent) }
        if tamperReportedAt != nil { s.insert(.tamper) }
        return s
    }

    /// The device started: the centre hears of every restart.
    public mutating func booted(bootCount: UInt32) -> [Action] {
        [.storeEvent(.restart, value: bootCount)]
    }

    public mutating func mainsChanged(present: Bool) -> [Action] {
        guard present != mainsNow else { return [] }
        mainsNow = present
        guard let reported = mainsReported else {
            // First reading: nothing changed as far as the centre knows, unless we booted without mains.
            mainsReported = present
            return present ? [] : delayedMainsLost()
        }
        generation += 1  // a pending mains-lost report is void either way
        if present {
            guard !reported else { return [] }  // restored before the loss was reported: a flicker
            mainsReported = true
            return [.storeEvent(.mainsRestored, value: 0)]
        }
        return reported ? delayedMainsLost() : []
    }

    public mutating func batteryMeasured(percent: UInt8) -> [Action] {
        battery = min(percent, 100)
        if !batteryLow, battery < configuration.lowBatteryBelow {
            batteryLow = true
            return [.storeEvent(.lowBattery, value: UInt32(battery))]
        }
        if batteryLow, battery >= configuration.batteryOKFrom {
            batteryLow = false
            return [.storeEvent(.batteryOK, value: UInt32(battery))]
        }
        return []
    }

    public mutating func buttonPresenceChanged(present: Bool) -> [Action] {
        guard present != buttonPresent else { return [] }
        let first = buttonPresent == nil
        buttonPresent = present
        if first && present { return [] }
        return [.storeEvent(present ? .buttonRestored : .buttonMissing, value: 0)]
    }

    /// The button's enclosure was opened: each opening is reported (hardware/serial-box-protocol.md §5), but
    /// repeats within `tamperRepeatWindow` count once, so a faulty contact cannot fill the outbox. The
    /// heartbeat's tamper bit stays set until restart (there is no "tamper cleared").
    public mutating func tamperDetected(at now: Duration) -> [Action] {
        if let last = tamperReportedAt, now - last < Self.tamperRepeatWindow { return [] }
        tamperReportedAt = now
        return [.storeEvent(.tamper, value: 0)]
    }

    public static let tamperRepeatWindow: Duration = .seconds(60)

    public mutating func timerFired(_ timer: Timer) -> [Action] {
        switch timer {
        case .reportMainsLost(let g):
            guard g == generation, mainsNow == false else { return [] }
            mainsReported = false
            return [.storeEvent(.mainsLost, value: 0)]
        }
    }

    private mutating func delayedMainsLost() -> [Action] {
        generation += 1
        let delay = configuration.mainsLostMaximumDelay * random.nextUnit()
        return [.scheduleTimer(.reportMainsLost(generation: generation), after: delay)]
    }
}
