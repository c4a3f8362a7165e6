import Foundation
import Testing

@testable import DeviceKit

/// A temporary directory laid out like `/sys/class/leds`, with the attribute files the kernel provides.
struct FakeLEDClass {
    let root: String

    init(leds: [String: Int]) throws {
        root = NSTemporaryDirectory() + "devicekit-leds-\(UUID().uuidString)"
        for (name, maximum) in leds {
            let directory = root + "/" + name
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try write("\(maximum)\n", name, "max_brightness")
            try write("0\n", name, "brightness")
            try write("[none] timer heartbeat\n", name, "trigger")
            try write("500\n", name, "delay_on")
            try write("500\n", name, "delay_off")
        }
    }

    func write(_ text: String, _ led: String, _ attribute: String) throws {
        try text.write(toFile: "\(root)/\(led)/\(attribute)", atomically: false, encoding: .utf8)
    }

    func read(_ led: String, _ attribute: String) throws -> String {
        try String(contentsOfFile: "\(root)/\(led)/\(attribute)", encoding: .utf8)
    }

    /// trigger, brightness, and the delays when the trigger is the timer.
    func state(_ led: String) throws -> String {
        let trigger = try read(led, "trigger")
        var state = "\(trigger) \(try read(led, "brightness"))"
        if trigger == "timer" { state += " \(try read(led, "delay_on"))/\(try read(led, "delay_off"))" }
        return state
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct SysfsLEDIndicatorsTests {
    static let names = LEDNames(red: "sos-red", green: "sos-green", amber: "sos-amber")

    @Test(arguments: [
        (IndicatorState.idle, ["none 0", "none 31", "none 0"]),
        (.sending, ["timer 255 100/100", "none 0", "none 0"]),
        (.delivered, ["none 255", "none 0", "none 0"]),
        (.helpComing, ["none 0", "timer 255 500/500", "none 0"]),
        (.speaking, ["none 0", "none 255", "none 0"]),
        (.fault, ["none 0", "none 0", "timer 1 1000/1000"]),
    ])
    func eachStateWritesItsPatternToTheLEDFiles(state: IndicatorState, expected: [String]) throws {
        let sysfs = try FakeLEDClass(leds: ["sos-red": 255, "sos-green": 255, "sos-amber": 1])
        defer { sysfs.remove() }
        let leds = try SysfsLEDIndicators(names: Self.names, root: sysfs.root)
        // From a different state, so every file that matters is written.
        try leds.show(state == .fault ? .sending : .fault)
        try leds.show(state)
        #expect(try [sysfs.state("sos-red"), sysfs.state("sos-green"), sysfs.state("sos-amber")] == expected)
    }

    @Test func withoutAnAmberLEDFaultBlinksRedAndGreen() throws {
        let sysfs = try FakeLEDClass(leds: ["red": 1, "green": 1])
        defer { sysfs.remove() }
        let leds = try SysfsLEDIndicators(names: LEDNames(red: "red", green: "green"), root: sysfs.root)
        try leds.show(.fault)
        #expect(try sysfs.state("red") == "timer 1 1000/1000")
        #expect(try sysfs.state("green") == "timer 1 1000/1000")
        try leds.show(.idle)
        #expect(try sysfs.state("red") == "none 0")
        #expect(try sysfs.state("green") == "none 1", "dim is full brightness on an on/off LED")
    }

    @Test func aMissingLEDIsReportedWithWhereToLook() throws {
        let sysfs = try FakeLEDClass(leds: ["sos-red": 255])
        defer { sysfs.remove() }
        let error = #expect(throws: IndicatorError.self) {
            try SysfsLEDIndicators(names: LEDNames(red: "sos-red", green: "sos-green"), root: sysfs.root)
        }
        #expect(
            error?.description
                == "LED 'sos-green' (green) not found under \(sysfs.root): check the device-tree overlay or the name in device.toml")
    }

    @Test func aDirectoryThatIsNotAnLEDIsReported() throws {
        let sysfs = try FakeLEDClass(leds: ["sos-red": 255, "sos-green": 255])
        defer { sysfs.remove() }
        try FileManager.default.removeItem(atPath: sysfs.root + "/sos-green/max_brightness")
        let error = #expect(throws: IndicatorError.self) {
            try SysfsLEDIndicators(names: LEDNames(red: "sos-red", green: "sos-green"), root: sysfs.root)
        }
        #expect(error?.description.contains("cannot read \(sysfs.root)/sos-green/max_brightness") == true)
        #expect(error?.description.contains("LED class device") == true)
    }

    @Test func anLEDWhoseBrightnessCannotBeWrittenIsReported() throws {
        let sysfs = try FakeLEDClass(leds: ["sos-red": 255, "sos-green": 255])
        defer { sysfs.remove() }
        // A directory in place of the file: not writable even by root, who ignores file modes.
        try FileManager.default.removeItem(atPath: sysfs.root + "/sos-red/brightness")
        try FileManager.default.createDirectory(atPath: sysfs.root + "/sos-red/brightness", withIntermediateDirectories: false)
        let error = #expect(throws: IndicatorError.self) {
            try SysfsLEDIndicators(names: LEDNames(red: "sos-red", green: "sos-green"), root: sysfs.root)
        }
        #expect(error?.description.hasPrefix("LED 'sos-red': cannot open \(sysfs.root)/sos-red/brightness for writing") == true)
    }

    @Test func anLEDThatDisappearsAfterStartIsReportedWhenShown() throws {
        let sysfs = try FakeLEDClass(leds: ["sos-red": 255, "sos-green": 255])
        defer { sysfs.remove() }
        let leds = try SysfsLEDIndicators(names: LEDNames(red: "sos-red", green: "sos-green"), root: sysfs.root)
        try FileManager.default.removeItem(atPath: sysfs.root + "/sos-red")
        let error = #expect(throws: IndicatorError.self) { try leds.show(.sending) }
        #expect(error?.description.hasPrefix("LED 'sos-red': writing") == true)
    }

    @Test func aNameWithASlashIsNotLookedUpOutsideTheRoot() throws {
        let sysfs = try FakeLEDClass(leds: ["sos-red": 255, "sos-green": 255])
        defer { sysfs.remove() }
        #expect(throws: IndicatorError.self) {
            try SysfsLEDIndicators(names: LEDNames(red: "../\(URL(fileURLWithPath: sysfs.root).lastPathComponent)/sos-red", green: "sos-green"), root: sysfs.root)
        }
    }
}

@Suite struct RecordingIndicatorsTests {
    @Test func itRecordsEveryStateInOrder() throws {
        let indicators = RecordingIndicators()
        #expect(indicators.current == nil)
        for state in [IndicatorState.sending, .delivered, .helpComing, .idle] { try indicators.show(state) }
        #expect(indicators.states == [.sending, .delivered, .helpComing, .idle])
        #expect(indicators.current == .idle)
    }

    @Test func anInjectedFailureIsThrownAndNotRecorded() throws {
        let indicators = RecordingIndicators()
        indicators.fail(with: IndicatorError("LED gone"))
        #expect(throws: IndicatorError("LED gone")) { try indicators.show(.fault) }
        indicators.fail(with: nil)
        try indicators.show(.idle)
        #expect(indicators.states == [.idle])
    }

    @Test func concurrentShowsAreAllRecorded() async throws {
        let indicators = RecordingIndicators()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<250 { try indicators.show(.sending) } }
            }
            try await group.waitForAll()
        }
        #expect(indicators.states.count == 2_000)
    }
}
