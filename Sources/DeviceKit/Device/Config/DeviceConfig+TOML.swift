import Foundation
import Logging
import TOMLKit

extension DeviceConfig {
    /// Parses device.toml. Every error names the setting and says what to write instead; unknown settings
    /// are errors too, so a misspelt one is not silently ignored.
    public init(toml text: String) throws(DeviceConfigError) {
        let document: TOMLTable
        do {
            document = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw DeviceConfigError(
                nil, "not valid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw DeviceConfigError(nil, "not valid TOML")
        }
        var top = TableReader(document, path: "")

        guard let id = try top.integer("device_id", in: 0...Int(UInt32.max), example: "device_id = 1001") else {
            throw DeviceConfigError("device_id", "missing; write the device's number, e.g. device_id = 1001")
        }
        let key: KeySource?
        switch (try top.string("key"), try top.string("key_file")) {
        case (let hex?, nil): key = .bytes(try Self.decodeKey(hex, setting: "key"))
        case (nil, let path?):
            guard !path.isEmpty else { throw DeviceConfigError("key_file", "empty; write the path of a file holding the key in hex") }
            key = .file(path)
        case (.some, .some):
            throw DeviceConfigError("key", "both key and key_file are set; keep one")
        case (nil, nil):
            key = nil  // only a device reporting over DC-09 may go without (checked with [center] below)
        }
        let keyMissing = DeviceConfigError(
            "key", "missing; write key = \"<64 hex digits>\" or key_file = \"/etc/devicekit/key\" (devicesim provision writes it)")
        if key == nil, !top.has("center"), !top.has("centre") { throw keyMissing }
        let keyEpoch = try top.integer("key_epoch", in: 0...Int(UInt16.max), example: "key_epoch = 1") ?? 0
        let stateDirectory = try top.string("state_dir") ?? "/var/lib/devicekit"
        guard !stateDirectory.isEmpty else {
            throw DeviceConfigError("state_dir", "empty; write a directory for the outbox, e.g. state_dir = \"/var/lib/devicekit\"")
        }

        // [center]; [centre], the other spelling, is read too (files written before the names were one).
        if top.has("center") && top.has("centre") {
            throw DeviceConfigError("centre", "the file has both [center] and [centre], two spellings of one table: keep [center]")
        }
        let centreTable = top.has("centre") ? "centre" : "center"
        guard var centre = try top.table(centreTable) else {
            throw DeviceConfigError("center", "missing; write a [center] table with primary = \"center.example:\(CentreAddress.defaultPort)\"")
        }
        guard let primaryText = try centre.string("primary") else {
            throw DeviceConfigError("\(centreTable).primary", "missing; write host:port, e.g. primary = \"center.example:\(CentreAddress.defaultPort)\"")
        }
        let primary = try CentreAddress(parsing: primaryText, key: "\(centreTable).primary")
        let secondary = try centre.string("secondary").map { (text) throws(DeviceConfigError) in
            try CentreAddress(parsing: text, key: "\(centreTable).secondary")
        }
        let transport = try centre.choice("transport", Transport.self) ?? .tcp
        var dc09: DC09Settings?
        switch try centre.choice("protocol", ReportingProtocol.self) ?? .devicekit {
        case .dc09: dc09 = try DC09Settings.read(&centre, table: centreTable)
        case .devicekit:
            if let stray = DC09Settings.keys.first(where: centre.has) {
                throw DeviceConfigError("\(centreTable).\(stray)", "is a DC-09 setting: it needs protocol = \"dc09\" in [\(centreTable)]")
            }
        }
        try centre.finish(known: ["primary", "secondary", "transport", "protocol"] + (dc09 == nil ? [] : DC09Settings.keys))
        if key == nil, dc09 == nil { throw keyMissing }

        var alarm = AlarmSettings()
        if var table = try top.table("alarm") {
            if let v = try table.integer("hold_ms", in: 0...Int(UInt16.max), example: "hold_ms = 100") {
                alarm.holdMilliseconds = UInt16(v)
            }
            if let v = try table.integer("debounce_ms", in: 0...Int(UInt16.max), example: "debounce_ms = 30") {
                alarm.debounceMilliseconds = UInt16(v)
            }
            if let v = try table.integer("cancel_window_ms", in: 0...Int(UInt32.max), example: "cancel_window_ms = 10000") {
                alarm.cancelWindowMilliseconds = UInt32(v)
            }
            if let v = try table.integer("long_press_ms", in: 100...600_000, example: "long_press_ms = 3000") {
                alarm.longPressMilliseconds = UInt32(v)
            }
            if let v = try table.integer("stuck_after_s", in: 5...Int(UInt16.max), example: "stuck_after_s = 60") {
                alarm.stuckAfterSeconds = UInt16(v)
            }
            try table.finish(known: ["hold_ms", "debounce_ms", "cancel_window_ms", "long_press_ms", "stuck_after_s"])
        }

        var heartbeat: UInt16 = 30
        if var table = try top.table("heartbeat") {
            if let v = try table.integer("interval_s", in: 1...Int(UInt16.max), example: "interval_s = 30") {
                heartbeat = UInt16(v)
            }
            try table.finish(known: ["interval_s"])
        }

        var button = ButtonBackend.simulated(presses: [])
        if var table = try top.table("button") {
            button = try Self.button(&table)
        }

        var power = PowerBackend.none
        if var table = try top.table("power") {
            power = try Self.power(&table)
        }

        var indicators = IndicatorBackend.simulated
        if var table = try top.table("indicators") {
            indicators = try Self.indicators(&table)
            try table.finish(known: ["backend", "sysfs_root", "red", "green", "amber"])
        }

        var voice: VoiceSettings?
        if var table = try top.table("voice") {
            voice = try VoiceSettings.read(&table)
        }

        var level = Logger.Level.info
        if var table = try top.table("log") {
            level = try table.choice("level", Logger.Level.self) ?? .info
            try table.finish(known: ["level"])
        }

        try top.finish(known: [
            "device_id", "key", "key_file", "key_epoch", "state_dir", centreTable, "alarm", "heartbeat", "button", "power", "indicators",
            "voice", "log",
        ])
        self.init(
            deviceID: UInt32(id), key: key, keyEpoch: UInt16(keyEpoch), stateDirectory: stateDirectory, primaryCentre: primary,
            secondaryCentre: secondary, transport: transport, alarm: alarm, heartbeatIntervalSeconds: heartbeat,
            button: button, power: power, indicators: indicators, logLevel: level)
        self.dc09 = dc09
        self.voice = voice
    }

    /// Reads and parses the file at `path`. A relative `state_dir`, `key_file`, `dc09_key_file` or replay `file` is taken relative to the
    /// file's directory, so a configuration and its key can move together.
    public static func load(path: String) throws(DeviceConfigError) -> DeviceConfig {
        let bytes: [UInt8]?
        do { bytes = try DurableFile(path: path).read() } catch {
            throw DeviceConfigError(nil, "cannot read \(path): \(error)")
        }
        guard let bytes else {
            throw DeviceConfigError(nil, "\(path) does not exist; create it with devicesim provision")
        }
        var config: DeviceConfig
        do {
            config = try DeviceConfig(toml: String(decoding: bytes, as: UTF8.self))
        } catch {
            throw DeviceConfigError(error.key, "\(error.message) (in \(path))")
        }
        let directory = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") || directory.isEmpty ? p : directory + "/" + p
        }
        config.stateDirectory = resolve(config.stateDirectory)
        if case .file(let keyPath)? = config.key { config.key = .file(resolve(keyPath)) }
        if case .file(let keyPath)? = config.dc09?.key { config.dc09?.key = .file(resolve(keyPath)) }
        if case .replay(var replay) = config.button {
            replay.file = resolve(replay.file)
            config.button = .replay(replay)
        }
        return config
    }

    /// The root key, read from `key_file` if that is where it is. A device reporting over DC-09 without a key
    /// of ours has a fixed one: DC-09 frames are not sealed, so it never seals or opens anything.
    public func rootKey() throws(DeviceConfigError) -> [UInt8] {
        switch key {
        case nil: return Self.unusedRootKey
        case .bytes(let bytes)?: return bytes
        case .file(let path)?:
            let bytes: [UInt8]?
            do { bytes = try DurableFile(path: path).read() } catch {
                throw DeviceConfigError("key_file", "cannot read \(path): \(error)")
            }
            guard let bytes else { throw DeviceConfigError("key_file", "\(path) does not exist") }
            return try Self.decodeKey(String(decoding: bytes, as: UTF8.self), setting: "key_file")
        }
    }

    static let unusedRootKey = [UInt8](repeating: 0, count: 32)

    /// The keys for sealing and opening this device's frames.
    public func deviceKey() throws(DeviceConfigError) -> DeviceKey {
        do { return try DeviceKey(deviceID: deviceID, rootKey: try rootKey(), epoch: keyEpoch) } catch let error as KeyError {
            throw DeviceConfigError("key", error.description)
        } catch {
            throw DeviceConfigError("key", "\(error)")
        }
    }

    // MARK: Sections

    private static func decodeKey(_ text: String, setting: String) throws(DeviceConfigError) -> [UInt8] {
        do { return try KeyKind.device.parse(text) } catch { throw DeviceConfigError(setting, error.description) }
    }

    /// Each backend's settings; a setting of another backend is an error, not silently ignored.
    private static func button(_ table: inout TableReader) throws(DeviceConfigError) -> ButtonBackend {
        let backend = try table.string("backend") ?? "simulated"
        let result: ButtonBackend
        let known: [String]
        switch backend {
        case "simulated":
            var presses: [SimulatedPress] = []
            for (index, text) in (try table.strings("presses") ?? []).enumerated() {
                presses.append(try SimulatedPress(parsing: text, key: "button.presses[\(index)]"))
            }
            result = .simulated(presses: presses)
            known = ["backend", "presses"]
        case "evdev":
            let device = try devicePath(&table, example: "/dev/input/sos-button")
            result = .evdev(EvdevButtonSettings(
                device: device, key: try keyCode(&table), grab: try table.bool("grab") ?? true,
                allowPointerDevice: try table.bool("allow_pointer_device") ?? false))
            known = ["backend", "device", "key", "grab", "allow_pointer_device"]
        case "serial":
            let device = try devicePath(&table, example: "/dev/ttyUSB0")
            switch try table.string("mode") ?? "box" {
            case "box":
                let speed = try table.integer("speed", in: 1...4_000_000, example: "speed = 9600") ?? 9600
                guard SerialButtonSettings.speeds.contains(speed) else {
                    throw DeviceConfigError(
                        "button.speed", "\(speed) is not a supported speed; write one of \(SerialButtonSettings.speeds.map(String.init).joined(separator: ", "))")
                }
                result = .serial(SerialButtonSettings(device: device, mode: .box(speed: speed)))
                known = ["backend", "device", "mode", "speed"]
            case "contact":
                guard let line = try table.choice("line", ModemLine.self) else {
                    throw DeviceConfigError("button.line", "missing; write the modem line the switch closes, e.g. line = \"cts\"")
                }
                result = .serial(SerialButtonSettings(device: device, mode: .contact(line: line)))
                known = ["backend", "device", "mode", "line"]
            case let other:
                throw DeviceConfigError("button.mode", "'\(other)' is not a serial mode; write \"box\" or \"contact\"")
            }
        case "replay":
            guard let file = try table.string("file"), !file.isEmpty else {
                throw DeviceConfigError("button.file", "missing; write the evemu recording, e.g. file = \"press.evemu\"")
            }
            result = .replay(ReplayButtonSettings(
                file: file, key: try keyCode(&table), allowPointerDevice: try table.bool("allow_pointer_device") ?? false))
            known = ["backend", "file", "key", "allow_pointer_device"]
        default:
            throw DeviceConfigError(
                "button.backend", "'\(backend)' is not a button backend; write \"simulated\", \"evdev\", \"serial\" or \"replay\"")
        }
        try table.finish(known: known, backend: backend)
        return result
    }

    private static func devicePath(_ table: inout TableReader, example: String) throws(DeviceConfigError) -> String {
        guard let device = try table.string("device"), device.hasPrefix("/") else {
            throw DeviceConfigError("button.device", "missing or not an absolute path; write device = \"\(example)\"")
        }
        return device
    }

    /// `key = "KEY_PROG1"`, `key = "BTN_0"` or `key = 148`.
    private static func keyCode(_ table: inout TableReader) throws(DeviceConfigError) -> UInt16? {
        if let number = try table.integerOrNil("key") {
            guard let code = UInt16(exactly: number), Int(code) <= InputEventNames.keyMax else {
                throw DeviceConfigError("button.key", "\(number) is not a key code (0...\(InputEventNames.keyMax)); write e.g. key = \"KEY_PROG1\"")
            }
            return code
        }
        guard let name = try table.string("key") else { return nil }
        guard let code = InputEventNames.keyCode(named: name) else {
            throw DeviceConfigError(
                "button.key", "'\(name)' is not a key name; write a name from linux/input-event-codes.h such as \"KEY_PROG1\" or \"BTN_0\", or its number (`devicesim diag list` shows the device's keys)")
        }
        return code
    }

    private static func power(_ table: inout TableReader) throws(DeviceConfigError) -> PowerBackend {
        let backend = try table.string("backend") ?? "none"
        switch backend {
        case "none":
            try table.finish(known: ["backend"], backend: backend)
            return .none
        case "sysfs":
            var settings = PowerSupplySettings()
            if let root = try table.string("sysfs_root") { settings.root = root }
            settings.mains = try table.string("mains").flatMap { $0.isEmpty ? nil : $0 }
            settings.battery = try table.string("battery").flatMap { $0.isEmpty ? nil : $0 }
            if let ms = try table.integer("poll_ms", in: 100...3_600_000, example: "poll_ms = 5000") {
                settings.pollInterval = .milliseconds(ms)
            }
            try table.finish(known: ["backend", "sysfs_root", "mains", "battery", "poll_ms"], backend: backend)
            return .sysfs(settings)
        default:
            throw DeviceConfigError("power.backend", "'\(backend)' is not a power backend; write \"none\" or \"sysfs\"")
        }
    }

    private static func indicators(_ table: inout TableReader) throws(DeviceConfigError) -> IndicatorBackend {
        let backend = try table.string("backend") ?? "simulated"
        let root = try table.string("sysfs_root")
        let red = try table.string("red")
        let green = try table.string("green")
        let amber = try table.string("amber")
        switch backend {
        case "simulated":
            return .simulated
        case "sysfs":
            guard let red, !red.isEmpty else {
                throw DeviceConfigError("indicators.red", "missing; write the red LED's name under /sys/class/leds, e.g. red = \"sos-red\"")
            }
            guard let green, !green.isEmpty else {
                throw DeviceConfigError("indicators.green", "missing; write the green LED's name under /sys/class/leds, e.g. green = \"sos-green\"")
            }
            return .sysfs(
                root: root ?? SysfsLEDIndicators.defaultRoot,
                leds: LEDNames(red: red, green: green, amber: amber?.isEmpty == true ? nil : amber))
        default:
            throw DeviceConfigError("indicators.backend", "'\(backend)' is not an indicator backend; write \"simulated\" or \"sysfs\"")
        }
    }

    // MARK: Rendering

    /// device.toml for this configuration, in the layout `init(toml:)` reads. It holds the key: store it 0600.
    public func render() -> String {
        var lines = [
            "# DeviceKit device configuration. It holds the device's key: keep it private (mode 0600).",
            "device_id = \(deviceID)",
        ]
        switch key {
        case .bytes(let bytes)?: lines.append("key = \(TOMLText.quote(Hex.encode(bytes)))")
        case .file(let path)?: lines.append("key_file = \(TOMLText.quote(path))")
        case nil: break  // a DC-09 device without a key of ours
        }
        if keyEpoch > 0 { lines.append("key_epoch = \(keyEpoch)") }
        lines.append("state_dir = \(TOMLText.quote(stateDirectory))")
        lines += ["", "[center]", "primary = \(TOMLText.quote(primaryCentre.description))"]
        if let secondaryCentre { lines.append("secondary = \(TOMLText.quote(secondaryCentre.description))") }
        lines.append("transport = \(TOMLText.quote(transport.rawValue))")
        if let dc09 { lines += dc09.rendered }
        lines += [
            "", "[alarm]",
            "hold_ms = \(alarm.holdMilliseconds)",
            "debounce_ms = \(alarm.debounceMilliseconds)",
            "cancel_window_ms = \(alarm.cancelWindowMilliseconds)",
            "long_press_ms = \(alarm.longPressMilliseconds)",
            "stuck_after_s = \(alarm.stuckAfterSeconds)",
            "", "[heartbeat]",
            "interval_s = \(heartbeatIntervalSeconds)  # until the centre sets its own",
            "", "[button]",
            "backend = \(TOMLText.quote(button.name))",
        ]
        switch button {
        case .simulated(let presses):
            lines.append("presses = [\(presses.map { TOMLText.quote($0.description) }.joined(separator: ", "))]")
        case .evdev(let evdev):
            lines.append("device = \(TOMLText.quote(evdev.device))")
            if let key = evdev.key { lines.append("key = \(TOMLText.quote(InputEventNames.code(type: InputEventNames.evKey, code: key)))") }
            lines.append("grab = \(evdev.grab)")
            if evdev.allowPointerDevice { lines.append("allow_pointer_device = true") }
        case .serial(let serial):
            lines.append("device = \(TOMLText.quote(serial.device))")
            switch serial.mode {
            case .box(let speed): lines += ["mode = \"box\"", "speed = \(speed)"]
            case .contact(let line): lines += ["mode = \"contact\"", "line = \(TOMLText.quote(line.rawValue))"]
            }
        case .replay(let replay):
            lines.append("file = \(TOMLText.quote(replay.file))")
            if let key = replay.key { lines.append("key = \(TOMLText.quote(InputEventNames.code(type: InputEventNames.evKey, code: key)))") }
            if replay.allowPointerDevice { lines.append("allow_pointer_device = true") }
        }
        if case .sysfs(let power) = power {
            lines += ["", "[power]", "backend = \"sysfs\"", "sysfs_root = \(TOMLText.quote(power.root))"]
            if let mains = power.mains { lines.append("mains = \(TOMLText.quote(mains))") }
            if let battery = power.battery { lines.append("battery = \(TOMLText.quote(battery))") }
            lines.append("poll_ms = \(power.pollInterval.milliseconds)")
        }
        lines += ["", "[indicators]"]
        switch indicators {
        case .simulated:
            lines.append("backend = \"simulated\"")
        case let .sysfs(root, leds):
            lines += [
                "backend = \"sysfs\"",
                "sysfs_root = \(TOMLText.quote(root))",
                "red = \(TOMLText.quote(leds.red))",
                "green = \(TOMLText.quote(leds.green))",
            ]
            if let amber = leds.amber { lines.append("amber = \(TOMLText.quote(amber))") }
        }
        if let voice { lines += voice.rendered }
        lines += ["", "[log]", "level = \(TOMLText.quote(logLevel.rawValue))", ""]
        return lines.joined(separator: "\n")
    }

    // MARK: Demo

    /// The fleet master key of demo devices: the public one of protocol.md §7.11, so never a secret.
    public static let demoMasterKey: [UInt8] = Array(0x40...0x5f)

    /// A configuration for the demo: a device on loopback whose key derives from `demoMasterKey`, so a
    /// demo centre started with that master key knows every demo device.
    public static func demo(deviceID: UInt32, port: UInt16, stateDirectory: String? = nil) -> DeviceConfig {
        let key: [UInt8]
        do {
            key = try Provisioning.derivedRootKey(deviceID: deviceID, master: demoMasterKey)
        } catch {
            fatalError("the demo master key is 32 bytes, a valid length: \(error)")
        }
        return DeviceConfig(
            deviceID: deviceID, key: .bytes(key),
            stateDirectory: stateDirectory ?? NSTemporaryDirectory() + "devicekit-demo-\(deviceID)",
            primaryCentre: CentreAddress(host: "127.0.0.1", port: port),
            heartbeatIntervalSeconds: 10,
            button: .simulated(presses: [SimulatedPress(at: .seconds(2))]))
    }
}

extension SimulatedPress {
    /// Parses `"2s"`, `"1500ms"` or `"5s hold 1500ms"`; `key` names the setting in errors.
    public init(parsing text: String, key: String) throws(DeviceConfigError) {
        let words = text.split(whereSeparator: \.isWhitespace)
        let example = "write when from the start, e.g. \"2s\", and optionally how long, e.g. \"5s hold 1500ms\""
        switch words.count {
        case 1:
            guard let at = DurationText.parse(words[0]) else {
                throw DeviceConfigError(key, "'\(text)' is not a time (ms, s or min); \(example)")
            }
            self.init(at: at)
        case 3 where words[1] == "hold":
            guard let at = DurationText.parse(words[0]) else {
                throw DeviceConfigError(key, "'\(words[0])' in '\(text)' is not a time (ms, s or min); \(example)")
            }
            guard let duration = DurationText.parse(words[2]), duration > .zero else {
                throw DeviceConfigError(key, "'\(words[2])' in '\(text)' is not a hold time above zero; \(example)")
            }
            self.init(at: at, duration: duration)
        default:
            throw DeviceConfigError(key, "'\(text)' is not a press; \(example)")
        }
    }
}

/// Reads one TOML table, checking each value's type and remembering which keys were read.
struct TableReader {
    let table: TOMLTable
    let path: String
    private var seen: Set<String> = []

    init(_ table: TOMLTable, path: String) {
        self.table = table
        self.path = path
    }

    /// The value's TOML type with its article: "an integer", "a string".
    private static func kind(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .int: "an integer"
        case .array: "an array"
        case .bool: "a boolean"
        default: "a \(value.type)"
        }
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Whether the table has `key` (without reading it).
    func has(_ key: String) -> Bool { table[key] != nil }

    private mutating func value(_ key: String) -> TOMLValueConvertible? {
        seen.insert(key)
        return table[key]
    }

    mutating func string(_ key: String) throws(DeviceConfigError) -> String? {
        guard let value = value(key) else { return nil }
        guard let string = value.string else {
            throw DeviceConfigError(name(key), "is \(Self.kind(value)), not text; put the value in double quotes")
        }
        return string
    }

    mutating func strings(_ key: String) throws(DeviceConfigError) -> [String]? {
        guard let value = value(key) else { return nil }
        guard let array = value.array else {
            throw DeviceConfigError(name(key), "is \(Self.kind(value)), not a list; write e.g. \(key) = [\"2s\", \"5s hold 1500ms\"]")
        }
        var strings: [String] = []
        for (index, element) in array.enumerated() {
            guard let string = element.string else {
                throw DeviceConfigError("\(name(key))[\(index)]", "is \(Self.kind(element)), not text; put it in double quotes")
            }
            strings.append(string)
        }
        return strings
    }

    mutating func integer(_ key: String, in range: ClosedRange<Int>, example: String) throws(DeviceConfigError) -> Int? {
        guard let value = value(key) else { return nil }
        guard let integer = value.int else {
            throw DeviceConfigError(name(key), "is \(Self.kind(value)), not a whole number; write e.g. \(example)")
        }
        guard range.contains(integer) else {
            throw DeviceConfigError(name(key), "\(integer) is outside \(range.lowerBound)...\(range.upperBound); write e.g. \(example)")
        }
        return integer
    }

    mutating func bool(_ key: String) throws(DeviceConfigError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard let bool = value.bool else {
            throw DeviceConfigError(name(key), "is \(Self.kind(value)), not true or false; write e.g. \(key) = true")
        }
        return bool
    }

    /// The value if it is an integer; `nil` if absent or of another type (read it again as that type).
    mutating func integerOrNil(_ key: String) throws(DeviceConfigError) -> Int? {
        value(key)?.int
    }

    mutating func choice<Choice: RawRepresentable & CaseIterable>(
        _ key: String, _ type: Choice.Type
    ) throws(DeviceConfigError) -> Choice? where Choice.RawValue == String {
        guard let text = try string(key) else { return nil }
        guard let choice = Choice(rawValue: text) else {
            let choices = Choice.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw DeviceConfigError(name(key), "'\(text)' is not one of \(choices)")
        }
        return choice
    }

    mutating func table(_ key: String) throws(DeviceConfigError) -> TableReader? {
        guard let value = value(key) else { return nil }
        guard let table = value.table else {
            throw DeviceConfigError(name(key), "is \(Self.kind(value)), not a table; write it as a [\(name(key))] section")
        }
        return TableReader(table, path: name(key))
    }

    /// Refuses keys that were not read: a misspelt setting must not be silently ignored.
    /// With `backend`, the message says which settings that backend takes.
    func finish(known: [String], backend: String? = nil) throws(DeviceConfigError) {
        for key in table.keys.sorted() where !seen.contains(key) {
            let place = backend.map { "of backend \"\($0)\"" } ?? (path.isEmpty ? "at the top level" : "in [\(path)]")
            throw DeviceConfigError(
                name(key), "unknown setting; the settings \(place) are \(known.joined(separator: ", "))")
        }
    }
}

/// TOML text values.
enum TOMLText {
    /// `text` as a TOML basic string, with quotes, backslashes and control characters escaped.
    static func quote(_ text: String) -> String { QuotedText.quoted(text) }
}
