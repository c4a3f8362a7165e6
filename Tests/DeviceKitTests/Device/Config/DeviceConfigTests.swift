import Foundation
import NIOCore
import Testing

@testable import DeviceKit

@Suite struct DeviceConfigTests {
    static let key = Array(UInt8(0)..<32)
    static let keyHex = Hex.encode(key)

    /// A complete file with every setting, as an installer would write it by hand.
    static let full = """
        device_id = 4000000001
        key = "\(keyHex)"
        state_dir = "/var/lib/devicekit"

        [centre]
        primary = "centre.example:7700"
        secondary = "[2001:db8::1]:7701"
        transport = "udp"

        [alarm]
        hold_ms = 250
        debounce_ms = 20
        cancel_window_ms = 15000

        [heartbeat]
        interval_s = 60

        [button]
        backend = "simulated"
        presses = ["2s", "5s hold 1500ms", "750ms"]

        [indicators]
        backend = "sysfs"
        sysfs_root = "/sys/class/leds"
        red = "sos-red"
        green = "sos-green"
        amber = "sos-amber"

        [log]
        level = "debug"
        """

    /// The smallest valid file, to which each error test adds or changes one line.
    static let minimal = """
        device_id = 1001
        key = "\(keyHex)"
        [centre]
        primary = "10.0.0.1:7700"
        """

    @Test func aFullFileIsReadIntoEverySetting() throws {
        let config = try DeviceConfig(toml: Self.full)
        #expect(config.deviceID == 4_000_000_001)
        #expect(config.key == .bytes(Self.key))
        #expect(config.stateDirectory == "/var/lib/devicekit")
        #expect(config.outboxPath == "/var/lib/devicekit/outbox.sqlite")
        #expect(config.primaryCentre == CentreAddress(host: "centre.example", port: 7700))
        #expect(config.secondaryCentre == CentreAddress(host: "2001:db8::1", port: 7701))
        #expect(config.transport == .udp)
        #expect(config.alarm == AlarmSettings(holdMilliseconds: 250, debounceMilliseconds: 20, cancelWindowMilliseconds: 15_000))
        #expect(config.heartbeatIntervalSeconds == 60)
        #expect(
            config.button
                == .simulated(presses: [
                    SimulatedPress(at: .seconds(2)), SimulatedPress(at: .seconds(5), duration: .milliseconds(1500)),
                    SimulatedPress(at: .milliseconds(750)),
                ]))
        #expect(
            config.indicators
                == .sysfs(root: "/sys/class/leds", leds: LEDNames(red: "sos-red", green: "sos-green", amber: "sos-amber")))
        #expect(config.logLevel == .debug)
    }

    @Test(arguments: [
        ("backend = \"evdev\"\ndevice = \"/dev/input/sos-button\"\nkey = \"KEY_PROG1\"\ngrab = false",
         ButtonBackend.evdev(EvdevButtonSettings(device: "/dev/input/sos-button", key: 148, grab: false))),
        ("backend = \"evdev\"\ndevice = \"/dev/input/event3\"\nkey = 256",
         .evdev(EvdevButtonSettings(device: "/dev/input/event3", key: 256, grab: true))),
        ("backend = \"evdev\"\ndevice = \"/dev/input/event3\"",
         .evdev(EvdevButtonSettings(device: "/dev/input/event3", key: nil, grab: true))),
        ("backend = \"serial\"\ndevice = \"/dev/ttyUSB0\"",
         .serial(SerialButtonSettings(device: "/dev/ttyUSB0", mode: .box(speed: 9600)))),
        ("backend = \"serial\"\ndevice = \"/dev/ttyACM0\"\nmode = \"box\"\nspeed = 115200",
         .serial(SerialButtonSettings(device: "/dev/ttyACM0", mode: .box(speed: 115_200)))),
        ("backend = \"serial\"\ndevice = \"/dev/ttyS0\"\nmode = \"contact\"\nline = \"dcd\"",
         .serial(SerialButtonSettings(device: "/dev/ttyS0", mode: .contact(line: .dcd)))),
        ("backend = \"replay\"\nfile = \"press.evemu\"\nkey = \"btn_0\"",
         .replay(ReplayButtonSettings(file: "press.evemu", key: 256))),
    ])
    func eachButtonBackendReadsItsSettingsAndRendersBack(table: String, expected: ButtonBackend) throws {
        let config = try DeviceConfig(toml: Self.minimal + "\n[button]\n" + table)
        #expect(config.button == expected)
        #expect(try DeviceConfig(toml: config.render()) == config)
    }

    @Test func powerSensingFromSysfsReadsItsSettingsAndRendersBack() throws {
        let config = try DeviceConfig(
            toml: Self.minimal + "\n[power]\nbackend = \"sysfs\"\nsysfs_root = \"/tmp/ps\"\nmains = \"ACAD\"\npoll_ms = 1000")
        #expect(config.power == .sysfs(PowerSupplySettings(root: "/tmp/ps", mains: "ACAD", battery: nil, pollInterval: .seconds(1))))
        #expect(try DeviceConfig(toml: config.render()) == config)
        #expect(try DeviceConfig(toml: Self.minimal).power == PowerBackend.none)
    }

    @Test func missingSectionsTakeTheirDefaults() throws {
        let config = try DeviceConfig(toml: Self.minimal)
        #expect(config.alarm == AlarmSettings(holdMilliseconds: 100, debounceMilliseconds: 30, cancelWindowMilliseconds: 10_000))
        #expect(config.heartbeatIntervalSeconds == 30)
        #expect(config.transport == .tcp)
        #expect(config.secondaryCentre == nil)
        #expect(config.button == .simulated(presses: []))
        #expect(config.indicators == .simulated)
        #expect(config.logLevel == .info)
        #expect(config.stateDirectory == "/var/lib/devicekit")
    }

    @Test(arguments: [full, minimal, minimal.replacingOccurrences(of: "key = \"\(keyHex)\"", with: "key_file = \"/etc/devicekit/key\"")])
    func aFileSurvivesRenderingAndParsingAgain(text: String) throws {
        let config = try DeviceConfig(toml: text)
        let rendered = config.render()
        #expect(try DeviceConfig(toml: rendered) == config)
        #expect(try DeviceConfig(toml: rendered).render() == rendered)
    }

    @Test func renderingEscapesTextThatWouldBreakTheFile() throws {
        var config = try DeviceConfig(toml: Self.minimal)
        config.stateDirectory = "/tmp/odd \"dir\"\\with\ttabs"
        config.indicators = .sysfs(root: "/sys/class/leds", leds: LEDNames(red: "a\"b", green: "ä"))
        #expect(try DeviceConfig(toml: config.render()) == config)
    }

    @Test func theDemoConfigurationRendersAndParses() throws {
        let demo = DeviceConfig.demo(deviceID: 1001, port: 17_700, stateDirectory: "/tmp/demo")
        #expect(demo.primaryCentre.description == "127.0.0.1:17700")
        #expect(try DeviceConfig(toml: demo.render()) == demo)
        // Its key is the one a centre derives from the demo master key.
        let master = try FleetMasterKey(bytes: DeviceConfig.demoMasterKey)
        #expect(try sealedAlarm(try demo.deviceKey()) == sealedAlarm(DeviceKey(deviceID: 1001, master: master)))
    }

    @Test func descriptionsNeverShowTheKey() throws {
        let config = try DeviceConfig(toml: Self.full)
        var dumped = ""
        dump(config, to: &dumped)
        for text in [String(describing: config), String(reflecting: config), dumped] {
            #expect(!text.contains(Self.keyHex))
            #expect(!text.contains("0, 1, 2, 3"))
        }
    }

    @Test func aKeyFileIsReadRelativeToTheConfiguration() throws {
        let directory = try makeTemporaryDirectory("config")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "\(Self.keyHex)\n".write(toFile: directory + "/device.key", atomically: true, encoding: .utf8)
        let text = Self.minimal.replacingOccurrences(of: "key = \"\(Self.keyHex)\"", with: "key_file = \"device.key\"\nstate_dir = \"state\"")
        try text.write(toFile: directory + "/device.toml", atomically: true, encoding: .utf8)
        let config = try DeviceConfig.load(path: directory + "/device.toml")
        #expect(config.key == .file(directory + "/device.key"))
        #expect(config.stateDirectory == directory + "/state")
        #expect(try config.rootKey() == Self.key)
    }

    @Test func aMissingFileSaysHowToCreateIt() throws {
        let error = #expect(throws: DeviceConfigError.self) { try DeviceConfig.load(path: "/nonexistent/device.toml") }
        #expect(error?.description == "/nonexistent/device.toml does not exist; create it with devicesim provision")
    }

    /// One wrong line in, one message out: the setting's name and what to write instead.
    @Test(arguments: [
        ("primary = \"10.0.0.1:7700\"", "primary = \"1.2.3.4\"",
         "centre.primary: '1.2.3.4' has no port; write host:port, e.g. 'center.example:7700'"),
        ("primary = \"10.0.0.1:7700\"", "primary = \"centre:99999\"",
         "centre.primary: '99999' in 'centre:99999' is not a port (1 to 65535); write host:port, e.g. 'center.example:7700'"),
        ("primary = \"10.0.0.1:7700\"", "primary = \"2001:db8::1:7700\"",
         "centre.primary: '2001:db8::1:7700' looks like an IPv6 address without brackets; write '[2001:db8::1]:7700'"),
        ("primary = \"10.0.0.1:7700\"", "primary = \":7700\"",
         "centre.primary: ':7700' has no host; write host:port, e.g. 'center.example:7700'"),
        ("primary = \"10.0.0.1:7700\"", "primary = 7700",
         "centre.primary: is an integer, not text; put the value in double quotes"),
        ("primary = \"10.0.0.1:7700\"", "primary = \"10.0.0.1:7700\"\nsecondary = \"backup\"",
         "centre.secondary: 'backup' has no port; write host:port, e.g. 'center.example:7700'"),
        ("primary = \"10.0.0.1:7700\"", "primary = \"10.0.0.1:7700\"\ntransport = \"sctp\"",
         "centre.transport: 'sctp' is not one of \"tcp\", \"udp\""),
        ("primary = \"10.0.0.1:7700\"", "primery = \"10.0.0.1:7700\"",
         "centre.primary: missing; write host:port, e.g. primary = \"center.example:7700\""),
        ("device_id = 1001", "device_id = -1",
         "device_id: -1 is outside 0...4294967295; write e.g. device_id = 1001"),
        ("device_id = 1001", "device_id = \"1001\"",
         "device_id: is a string, not a whole number; write e.g. device_id = 1001"),
        ("device_id = 1001", "",
         "device_id: missing; write the device's number, e.g. device_id = 1001"),
        ("key = \"\(keyHex)\"", "key = \"xyz\"",
         "key: the key is not hex: character 1 is not a hex digit: use only 0-9 and a-f (spaces and colons are ignored)"),
        ("key = \"\(keyHex)\"", "key = \"\(keyHex.dropLast())\"",
         "key: the key is not hex: odd number of hex digits (63): every byte is two digits, so one is missing or one too many"),
        ("[centre]", "[centre]\nprimary = \"a:1\"\n[center]",
         "centre: the file has both [center] and [centre], two spellings of one table: keep [center]"),
        ("key = \"\(keyHex)\"", "key = \"0011\"",
         "key: a device key must be 16 to 64 bytes (32 to 128 hex digits), got 2 bytes"),
        ("key = \"\(keyHex)\"", "key = \"\(keyHex)\"\nkey_file = \"/k\"",
         "key: both key and key_file are set; keep one"),
        ("key = \"\(keyHex)\"", "",
         "key: missing; write key = \"<64 hex digits>\" or key_file = \"/etc/devicekit/key\" (devicesim provision writes it)"),
        ("device_id = 1001", "device_id = 1001\nstate_directory = \"/x\"",
         "state_directory: unknown setting; the settings at the top level are device_id, key, key_file, key_epoch, state_dir, centre, alarm, heartbeat, button, power, indicators, voice, log"),
        ("[centre]", "[alarm]\nhold_msec = 100\n[centre]",
         "alarm.hold_msec: unknown setting; the settings in [alarm] are hold_ms, debounce_ms, cancel_window_ms, long_press_ms, stuck_after_s"),
        ("[centre]", "[alarm]\nhold_ms = 1.5\n[centre]",
         "alarm.hold_ms: is a floating-point number, not a whole number; write e.g. hold_ms = 100"),
        ("[centre]", "[alarm]\nhold_ms = 70000\n[centre]",
         "alarm.hold_ms: 70000 is outside 0...65535; write e.g. hold_ms = 100"),
        ("[centre]", "[heartbeat]\ninterval_s = 0\n[centre]",
         "heartbeat.interval_s: 0 is outside 1...65535; write e.g. interval_s = 30"),
        ("[centre]", "[button]\nbackend = \"evdev\"\n[centre]",
         "button.device: missing or not an absolute path; write device = \"/dev/input/sos-button\""),
        ("[centre]", "[button]\nbackend = \"evdev\"\ndevice = \"/dev/input/event0\"\nkey = \"KEY_NOPE\"\n[centre]",
         "button.key: 'KEY_NOPE' is not a key name; write a name from linux/input-event-codes.h such as \"KEY_PROG1\" or \"BTN_0\", or its number (`devicesim diag list` shows the device's keys)"),
        ("[centre]", "[button]\nbackend = \"evdev\"\ndevice = \"/dev/input/event0\"\nkey = 70000\n[centre]",
         "button.key: 70000 is not a key code (0...767); write e.g. key = \"KEY_PROG1\""),
        ("[centre]", "[button]\nbackend = \"evdev\"\ndevice = \"/dev/input/event0\"\ngrab = \"yes\"\n[centre]",
         "button.grab: is a string, not true or false; write e.g. grab = true"),
        ("[centre]", "[button]\nbackend = \"evdev\"\ndevice = \"/dev/input/event0\"\nspeed = 9600\n[centre]",
         "button.speed: unknown setting; the settings of backend \"evdev\" are backend, device, key, grab, allow_pointer_device"),
        ("[centre]", "[button]\nbackend = \"serial\"\ndevice = \"/dev/ttyUSB0\"\nspeed = 9601\n[centre]",
         "button.speed: 9601 is not a supported speed; write one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200"),
        ("[centre]", "[button]\nbackend = \"serial\"\ndevice = \"/dev/ttyUSB0\"\nmode = \"contact\"\n[centre]",
         "button.line: missing; write the modem line the switch closes, e.g. line = \"cts\""),
        ("[centre]", "[button]\nbackend = \"serial\"\ndevice = \"/dev/ttyUSB0\"\nmode = \"contact\"\nline = \"rts\"\n[centre]",
         "button.line: 'rts' is not one of \"cts\", \"dsr\", \"dcd\", \"ri\""),
        ("[centre]", "[button]\nbackend = \"serial\"\ndevice = \"/dev/ttyUSB0\"\nmode = \"modem\"\n[centre]",
         "button.mode: 'modem' is not a serial mode; write \"box\" or \"contact\""),
        ("[centre]", "[button]\nbackend = \"replay\"\n[centre]",
         "button.file: missing; write the evemu recording, e.g. file = \"press.evemu\""),
        ("[centre]", "[button]\nbackend = \"gpio\"\n[centre]",
         "button.backend: 'gpio' is not a button backend; write \"simulated\", \"evdev\", \"serial\" or \"replay\""),
        ("[centre]", "[power]\nbackend = \"acpi\"\n[centre]",
         "power.backend: 'acpi' is not a power backend; write \"none\" or \"sysfs\""),
        ("[centre]", "[power]\nbackend = \"sysfs\"\npoll_ms = 10\n[centre]",
         "power.poll_ms: 10 is outside 100...3600000; write e.g. poll_ms = 5000"),
        ("[centre]", "[button]\npresses = [\"2x\"]\n[centre]",
         "button.presses[0]: '2x' is not a time (ms, s or min); write when from the start, e.g. \"2s\", and optionally how long, e.g. \"5s hold 1500ms\""),
        ("[centre]", "[button]\npresses = [\"1s\", \"5s+hold 1500ms\"]\n[centre]",
         "button.presses[1]: '5s+hold 1500ms' is not a press; write when from the start, e.g. \"2s\", and optionally how long, e.g. \"5s hold 1500ms\""),
        ("[centre]", "[button]\npresses = [2000]\n[centre]",
         "button.presses[0]: is an integer, not text; put it in double quotes"),
        ("[centre]", "[indicators]\nbackend = \"sysfs\"\ngreen = \"g\"\n[centre]",
         "indicators.red: missing; write the red LED's name under /sys/class/leds, e.g. red = \"sos-red\""),
        ("[centre]", "[indicators]\nbackend = \"gpio\"\n[centre]",
         "indicators.backend: 'gpio' is not an indicator backend; write \"simulated\" or \"sysfs\""),
        ("[centre]", "[log]\nlevel = \"verbose\"\n[centre]",
         "log.level: 'verbose' is not one of \"trace\", \"debug\", \"info\", \"notice\", \"warning\", \"error\", \"critical\""),
        ("[centre]", "centre = 5\n[x]",
         "centre: is an integer, not a table; write it as a [centre] section"),
        ("[centre]", "[centre",
         "not valid TOML at line 3, column 8: Error while parsing table header: expected ']', saw '\\n'"),
    ])
    func eachMistakeIsNamedWithWhatToWriteInstead(replacing: String, with: String, message: String) throws {
        let text = Self.minimal.replacingOccurrences(of: replacing, with: with)
        let error = #expect(throws: DeviceConfigError.self) { try DeviceConfig(toml: text) }
        #expect(error?.description == message)
        #expect(error?.description.contains(Self.keyHex) == false)
    }

    /// The table is `[center]`, as every name of the centre a user types; `[centre]`, the other spelling of
    /// files written before, is read the same, and devicesim writes `[center]`.
    @Test func theCentreTableIsReadUnderEitherSpellingAndWrittenAsCenter() throws {
        let spelledCentre = try DeviceConfig(toml: Self.full)
        let spelledCenter = try DeviceConfig(toml: Self.full.replacingOccurrences(of: "[centre]", with: "[center]"))
        #expect(spelledCenter.primaryCentre == spelledCentre.primaryCentre)
        #expect(spelledCenter.secondaryCentre == spelledCentre.secondaryCentre && spelledCenter.transport == .udp)
        #expect(spelledCentre.render().contains("\n[center]\nprimary = \"centre.example:7700\""))
        #expect(!spelledCentre.render().contains("[centre]"))
    }

    @Test func aKeyFileThatIsNotHexIsReportedWithoutItsContent() throws {
        let directory = try makeTemporaryDirectory("config")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "secret-looking-garbage\n".write(toFile: directory + "/key", atomically: true, encoding: .utf8)
        var config = try DeviceConfig(toml: Self.minimal)
        config.key = .file(directory + "/key")
        let error = #expect(throws: DeviceConfigError.self) { try config.rootKey() }
        #expect(error?.description == "key_file: the key is not hex: character 1 is not a hex digit: use only 0-9 and a-f (spaces and colons are ignored)")
    }
}

/// An alarm sealed with `key`, to compare two keys by what they produce.
func sealedAlarm(_ key: DeviceKey) throws -> [UInt8] {
    let alarm = Message.alarm(Alarm(id: 7, kind: .button, triggeredAt: 1_795_000_000_000, battery: 80, flags: []))
    var wire = ByteBuffer()
    try SealedFrame.seal(alarm, direction: .up, deviceID: key.deviceID, counter: 65_537, key: key.upKey, into: &wire)
    return Array(wire.readableBytesView)
}

/// The example configurations shipped in hardware/examples are what technicians copy: each must parse.
@Suite struct ShippedExampleConfigTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("hardware/examples").path

    static let files = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".toml") }.sorted()

    @Test func thereAreExamplesForEachButtonKind() {
        #expect(Self.files == ["device-rpi-gpio.toml", "device-serial-box.toml", "device-serial-contact.toml", "device-usb-hid.toml"])
    }

    @Test(arguments: files)
    func eachExampleParses(file: String) throws {
        let text = try String(contentsOfFile: Self.directory + "/" + file, encoding: .utf8)
        let config = try DeviceConfig(toml: text)
        #expect(config.button.name != "simulated")
        #expect(try DeviceConfig(toml: config.render()) == config)
    }
}
