import NIOCore
import Logging

/// Everything a device needs to run, as read from `device.toml` (written by `devicesim provision`).
///
/// ```toml
/// device_id = 1001
/// key = "000102…1f"               # or key_file = "/etc/devicekit/key" (hex, one line); optional with protocol = "dc09"
/// key_epoch = 0                      # which of the device's keys this is: 1 after the first re-provisioning
/// state_dir = "/var/lib/devicekit"
///
/// [center]                           # [centre] is read too
/// primary = "center.example:7700"
/// secondary = "backup.example:7700"  # optional
/// transport = "tcp"                  # tcp | udp
/// protocol = "devicekit"             # devicekit | dc09: report over SIA DC-09 (its settings: DC09Settings)
///
/// [alarm]
/// hold_ms = 100
/// debounce_ms = 30
/// cancel_window_ms = 10000
/// long_press_ms = 3000
/// stuck_after_s = 60                 # held this long: reported as a stuck button
///
/// [heartbeat]
/// interval_s = 30                    # until the centre sets its own
///
/// [button]
/// backend = "simulated"              # simulated | evdev | serial | replay
/// presses = ["2s", "5s hold 1500ms"] # simulated: when, and how long if not a 200 ms tap
/// device = "/dev/input/sos-button"   # evdev and serial: the device
/// key = "KEY_PROG1"                  # evdev and replay: name or number; optional if the device has one key
/// allow_pointer_device = false      # evdev and replay: true only if the call button really is a mouse,
///                                    # touchpad, touchscreen, pen tablet or joystick (never chosen by itself;
///                                    # diag selftest warns)
/// grab = true                        # evdev: EVIOCGRAB, so nothing else acts on the key
/// mode = "box"                       # serial: box (hardware/serial-box-protocol.md) | contact
/// speed = 9600                       # serial box
/// line = "cts"                       # serial contact: cts | dsr | dcd | ri
/// file = "press.evemu"               # replay: an evemu recording
///
/// [power]
/// backend = "sysfs"                  # none | sysfs
/// sysfs_root = "/sys/class/power_supply"
/// mains = "ACAD"                     # optional: else the first supply of type Mains
/// battery = "BAT0"                   # optional: else the first supply of type Battery
/// poll_ms = 5000
///
/// [indicators]
/// backend = "sysfs"                  # simulated | sysfs
/// sysfs_root = "/sys/class/leds"
/// red = "sos-red"
/// green = "sos-green"
/// amber = "sos-amber"                # optional
///
/// [voice]                            # optional: the centre's voice is SIP (VoiceSettings)
/// sip = "sip:arc@arc.example"        # call it after an alarm's ack; answer its calls back
/// sip_port = 5060                    # local; 0 = any
/// srtp = "optional"                  # optional | required | off
/// sip_user = "1001"                  # default: the device id; password in <state_dir>/sip-password (0600)
///
/// [log]
/// level = "info"                     # trace | debug | info | notice | warning | error | critical
/// ```
public struct DeviceConfig: Hashable, Sendable {
    public var deviceID: UInt32
    /// The device's root key for our protocol; `nil` only for a device that reports over DC-09 (`dc09`),
    /// whose frames are not sealed.
    public var key: KeySource?
    /// The key's epoch (protocol.md §3.2): each re-provisioning moves to the next, with a new key.
    public var keyEpoch: UInt16
    /// Holds the outbox database and the frame counter file.
    public var stateDirectory: String
    public var primaryCentre: CentreAddress
    public var secondaryCentre: CentreAddress?
    public var transport: Transport
    /// `[center] protocol = "dc09"`: report over SIA DC-09 with these settings; `nil`: our protocol.
    public var dc09: DC09Settings?
    /// `[voice] sip = …`: the device places and answers SIP calls with the centre; `nil`: our protocol's calls.
    public var voice: VoiceSettings?
    public var alarm: AlarmSettings
    /// Used until the centre's `sessionAccept` sets the interval.
    public var heartbeatIntervalSeconds: UInt16
    public var button: ButtonBackend
    public var power: PowerBackend
    public var indicators: IndicatorBackend
    public var logLevel: Logger.Level

    public init(
        deviceID: UInt32, key: KeySource?, keyEpoch: UInt16 = 0, stateDirectory: String, primaryCentre: CentreAddress,
        secondaryCentre: CentreAddress? = nil, transport: Transport = .tcp, alarm: AlarmSettings = AlarmSettings(),
        heartbeatIntervalSeconds: UInt16 = 30, button: ButtonBackend = .simulated(presses: []),
        power: PowerBackend = .none, indicators: IndicatorBackend = .simulated, logLevel: Logger.Level = .info
    ) {
        self.deviceID = deviceID
        self.key = key
        self.keyEpoch = keyEpoch
        self.stateDirectory = stateDirectory
        self.primaryCentre = primaryCentre
        self.secondaryCentre = secondaryCentre
        self.transport = transport
        self.alarm = alarm
        self.heartbeatIntervalSeconds = heartbeatIntervalSeconds
        self.button = button
        self.power = power
        self.indicators = indicators
        self.logLevel = logLevel
    }

    /// The outbox database in the state directory.
    public var outboxPath: String { stateDirectory + "/outbox.sqlite" }
    /// The up-frame counter reservation in the state directory (protocol.md §3.3).
    public var counterPath: String { stateDirectory + "/counter" }
    /// The counter reservation of this key epoch.
    public var counterFile: CounterReservationFile { CounterReservationFile(path: counterPath, epoch: keyEpoch) }
}

/// Where the device's root key comes from. Its descriptions never show the key.
public enum KeySource: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The root key itself, 16 to 64 bytes (`key = "hex"`).
    case bytes([UInt8])
    /// A file holding the key in hex (`key_file = "/path"`), read when the device starts.
    case file(String)

    public var description: String {
        switch self {
        case .bytes(let bytes): "a \(bytes.count)-byte key in the configuration"
        case .file(let path): "the key in \(path)"
        }
    }

    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["source": description]) }
}

/// A centre's `host:port`; the host is a name, an IPv4 address, or an IPv6 address in brackets.
public struct CentreAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// The default port of a centre.
    public static let defaultPort: UInt16 = 7700

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The address to connect to, looked up in DNS if `host` is a name.
    public func resolved() throws(DeviceConfigError) -> SocketAddress {
        do { return try SocketAddress.makeAddressResolvingHost(host, port: Int(port)) } catch {
            throw DeviceConfigError("center", "cannot resolve \(self): \(Self.unknownHostWords(error)) (check the name, or DNS on this network)")
        }
    }

    /// A failed lookup in words: NIO's `UnknownHost` prints as "SocketAddressError.UnknownHost: …".
    public static func unknownHostWords(_ error: any Error) -> String {
        error is SocketAddressError.UnknownHost ? "no such host name (not in DNS or /etc/hosts)" : "\(error)"
    }

    /// Parses `host:port` or `[v6]:port`; the error says what to write instead. `key` names the setting.
    public init(parsing text: String, key: String = "center") throws(DeviceConfigError) {
        let example = "write host:port, e.g. 'center.example:\(Self.defaultPort)'"
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw DeviceConfigError(key, "'\(text)' opens '[' without closing it; write [IPv6]:port, e.g. '[2001:db8::1]:\(Self.defaultPort)'")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw DeviceConfigError(key, "'\(text)' has no port; \(example)") }
            port = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw DeviceConfigError(key, "'\(text)' has no port; \(example)")
            }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
            guard !host.contains(":") else {
                throw DeviceConfigError(key, "'\(text)' looks like an IPv6 address without brackets; write '[\(host)]:\(port)'")
            }
        }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace) else {
            throw DeviceConfigError(key, "'\(text)' has no host; \(example)")
        }
        guard let number = UInt16(port), number > 0 else {
            throw DeviceConfigError(key, "'\(port)' in '\(text)' is not a port (1 to 65535); \(example)")
        }
        self.init(host: String(host), port: number)
    }
}

/// Which protocol the device reports in: ours (protocol.md), or SIA DC-09 to an existing alarm receiving centre.
public enum ReportingProtocol: String, Hashable, Sendable, CaseIterable {
    case devicekit
    case dc09
}

/// How frames travel to the centre (protocol.md §2.2).
public enum Transport: String, Hashable, Sendable, CaseIterable {
    case tcp
    case udp
}

/// How the button becomes an alarm. The centre may change these later (`Settings`).
public struct AlarmSettings: Hashable, Sendable {
    /// How long a press must last to raise an alarm, so a brush against the button does not.
    public var holdMilliseconds: UInt16
    /// Contact bounce shorter than this is ignored.
    public var debounceMilliseconds: UInt16
    /// How long after raising an alarm a second press may still cancel it.
    public var cancelWindowMilliseconds: UInt32

    /// A press held this long is a long press (reported, and used to cancel on devices without a cancel key).
    public var longPressMilliseconds: UInt32
    /// Held this long, the button is reported stuck (and raises no further alarm until released).
    public var stuckAfterSeconds: UInt16

    public init(
        holdMilliseconds: UInt16 = 100, debounceMilliseconds: UInt16 = 30, cancelWindowMilliseconds: UInt32 = 10_000,
        longPressMilliseconds: UInt32 = 3_000, stuckAfterSeconds: UInt16 = 60
    ) {
        self.holdMilliseconds = holdMilliseconds
        self.debounceMilliseconds = debounceMilliseconds
        self.longPressMilliseconds = longPressMilliseconds
        self.stuckAfterSeconds = stuckAfterSeconds
        self.cancelWindowMilliseconds = cancelWindowMilliseconds
    }

    /// The press detector these settings ask for.
    public var pressDetection: PressDetector.Configuration {
        .init(
            debounce: .milliseconds(Int64(debounceMilliseconds)), hold: .milliseconds(Int64(holdMilliseconds)),
            longPress: .milliseconds(Int64(longPressMilliseconds)), stuckAfter: .seconds(Int64(stuckAfterSeconds)))
    }
}

/// One press of the simulated button: when, from the start, and for how long.
public struct SimulatedPress: Hashable, Sendable, CustomStringConvertible {
    public var at: Duration
    public var duration: Duration

    /// A tap, long enough to pass the default hold time.
    public static let tap: Duration = .milliseconds(200)

    public init(at: Duration, duration: Duration = SimulatedPress.tap) {
        self.at = at
        self.duration = duration
    }

    /// The form used in device.toml: `"2s"`, or `"5s hold 1500ms"` when it is not a tap.
    public var description: String {
        duration == Self.tap ? DurationText.render(at) : "\(DurationText.render(at)) hold \(DurationText.render(duration))"
    }
}

/// Where button presses come from.
public enum ButtonBackend: Hashable, Sendable {
    /// Presses from a script, for the simulator and the demo.
    case simulated(presses: [SimulatedPress])
    /// A key of a Linux input device, e.g. `/dev/input/sos-button` (`EvdevButtonSource`).
    case evdev(EvdevButtonSettings)
    /// A serial button box or a contact across a modem line, e.g. `/dev/ttyUSB0` (`SerialButtonSource`).
    case serial(SerialButtonSettings)
    /// An evemu recording played back in real time (`ReplayButtonSource`).
    case replay(ReplayButtonSettings)

    public var name: String {
        switch self {
        case .simulated: "simulated"
        case .evdev: "evdev"
        case .serial: "serial"
        case .replay: "replay"
        }
    }
}

/// `[button] backend = "evdev"`.
public struct EvdevButtonSettings: Hashable, Sendable {
    /// The event device, best a stable name: `/dev/input/sos-button` or `/dev/input/by-path/…-event`.
    public var device: String
    /// The key that is the call button; `nil` when the device has exactly one key.
    public var key: UInt16?
    /// Take the device for this program alone (`EVIOCGRAB`), so no desktop or console acts on the key.
    public var grab: Bool
    /// Accept a pointing device (`PointingDevice`: a touchscreen's `BTN_TOUCH`, a mouse's `BTN_LEFT`) as the
    /// call button. Off by default: such a device is refused, with or without `key`.
    public var allowPointerDevice: Bool

    public init(device: String, key: UInt16? = nil, grab: Bool = true, allowPointerDevice: Bool = false) {
        self.device = device
        self.key = key
        self.grab = grab
        self.allowPointerDevice = allowPointerDevice
    }
}

/// `[button] backend = "serial"`.
public struct SerialButtonSettings: Hashable, Sendable {
    public enum Mode: Hashable, Sendable {
        /// A button box speaking hardware/serial-box-protocol.md at `speed` baud, 8N1.
        case box(speed: Int)
        /// A switch wired from DTR/RTS (asserted by the device) to `line`; closed = pressed.
        case contact(line: ModemLine)
    }

    /// The port: `/dev/ttyUSB0`, `/dev/ttyACM0`, `/dev/ttyS0`, or a stable name like `/dev/sos-serial`.
    public var device: String
    public var mode: Mode

    public init(device: String, mode: Mode = .box(speed: 9600)) {
        self.device = device
        self.mode = mode
    }

    /// The speeds a box may use (termios supports these everywhere).
    public static let speeds = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
}

/// An input modem-control line that a contact can be wired to.
public enum ModemLine: String, Hashable, Sendable, CaseIterable {
    case cts, dsr, dcd, ri

    public var lines: ModemLines {
        switch self {
        case .cts: .cts
        case .dsr: .dsr
        case .dcd: .dcd
        case .ri: .ri
        }
    }
}

/// `[button] backend = "replay"`.
public struct ReplayButtonSettings: Hashable, Sendable {
    /// An evemu recording (`devicesim diag record` or `evemu-record` writes one).
    public var file: String
    /// The key that is the call button; `nil` when the recording's device has exactly one key.
    public var key: UInt16?
    /// As `EvdevButtonSettings.allowPointerDevice`, for the recorded device.
    public var allowPointerDevice: Bool

    public init(file: String, key: UInt16? = nil, allowPointerDevice: Bool = false) {
        self.file = file
        self.key = key
        self.allowPointerDevice = allowPointerDevice
    }
}

/// Where mains and battery readings come from.
public enum PowerBackend: Hashable, Sendable {
    /// No power sensing: mains is taken as present, the battery as unknown.
    case none
    /// The Linux power_supply class (`PowerSupplyMonitor`).
    case sysfs(PowerSupplySettings)
}

/// `[power] backend = "sysfs"`.
public struct PowerSupplySettings: Hashable, Sendable {
    /// Normally `/sys/class/power_supply`; a temporary tree in tests.
    public var root: String
    /// The mains supply's directory name; `nil` picks the first of type `Mains`.
    public var mains: String?
    /// The battery's directory name; `nil` picks the first of type `Battery`.
    public var battery: String?
    public var pollInterval: Duration

    public init(root: String = "/sys/class/power_supply", mains: String? = nil, battery: String? = nil,
                pollInterval: Duration = .seconds(5)) {
        self.root = root
        self.mains = mains
        self.battery = battery
        self.pollInterval = pollInterval
    }
}

/// Where indicator states are shown.
public enum IndicatorBackend: Hashable, Sendable {
    /// Recorded and logged only (`RecordingIndicators`).
    case simulated
    /// LEDs of the Linux LED class (`SysfsLEDIndicators`).
    case sysfs(root: String, leds: LEDNames)
}

/// A setting in device.toml is missing or wrong: which one, and what to write instead. Never contains a key.
public struct DeviceConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The setting, dotted as in the file (`centre.primary`), or `nil` for the file as a whole.
    public var key: String?
    public var message: String

    public init(_ key: String?, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String { key.map { "\($0): \(message)" } ?? message }
}

/// Durations as written in device.toml: a whole number followed by `ms`, `s` or `min`.
enum DurationText {
    static func parse(_ text: some StringProtocol) -> Duration? {
        let units: [(suffix: String, milliseconds: Int64)] = [("ms", 1), ("min", 60_000), ("s", 1_000)]
        for unit in units where text.hasSuffix(unit.suffix) {
            guard let value = Int64(text.dropLast(unit.suffix.count)), value >= 0,
                value <= Int64.max / 60_000
            else { return nil }
            return .milliseconds(value * unit.milliseconds)
        }
        return nil
    }

    static func render(_ duration: Duration) -> String {
        let milliseconds = duration.milliseconds
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
