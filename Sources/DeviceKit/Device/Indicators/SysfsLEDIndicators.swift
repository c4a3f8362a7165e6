#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// The sysfs names of the device's LEDs (the `label`s of the device-tree overlay), as in device.toml.
public struct LEDNames: Hashable, Sendable {
    public var red: String
    public var green: String
    /// `nil` on boards without an amber LED; *fault* then blinks red and green.
    public var amber: String?

    public init(red: String, green: String, amber: String? = nil) {
        self.red = red
        self.green = green
        self.amber = amber
    }

    public subscript(color: LEDColor) -> String? {
        switch color {
        case .red: red
        case .green: green
        case .amber: amber
        }
    }
}

/// Shows indicator states on LEDs of the Linux LED class, through `/sys/class/leds/<name>/`.
///
/// Steady is `trigger` = `none` then `brightness` = its value; off is `trigger` = `none`, `brightness` = 0.
/// Blinking is left to the kernel's timer trigger so it goes on while the process is busy: `brightness` =
/// max (the timer blinks at the brightness it finds), `trigger` = `timer`, then `delay_on` and `delay_off`,
/// in that order because the kernel creates the delay files only once the timer trigger is set.
public final class SysfsLEDIndicators: IndicatorOutput {
    /// The LED class directory of a real system.
    public static let defaultRoot = "/sys/class/leds"

    public let root: String
    public let names: LEDNames
    public let patterns: IndicatorPatterns
    private let leds: [LED]
    /// One state at a time: two interleaved `show`s would leave a mix of both.
    private let writing = Mutex(())

    private struct LED: Sendable {
        var color: LEDColor
        var name: String
        var directory: String
        var maximumBrightness: Int
    }

    /// Finds the LEDs under `root` and checks they can be driven; shows nothing yet.
    ///
    /// - Parameter patterns: the state table; by default `IndicatorPatterns.standard`, with or without amber.
    public init(
        names: LEDNames, root: String = SysfsLEDIndicators.defaultRoot, patterns: IndicatorPatterns? = nil
    ) throws(IndicatorError) {
        self.root = root
        self.names = names
        self.patterns = patterns ?? .standard(hasAmber: names.amber != nil)
        var leds: [LED] = []
        for color in LEDColor.allCases {
            guard let name = names[color] else { continue }
            leds.append(try Self.probe(color: color, name: name, root: root))
        }
        self.leds = leds
    }

    public func show(_ state: IndicatorState) throws(IndicatorError) {
        // LEDs that go off first, so two states never show at once.
        let ordered = leds.filter { patterns.pattern($0.color, in: state) == .off }
            + leds.filter { patterns.pattern($0.color, in: state) != .off }
        try writing.withLock { _ throws(IndicatorError) in
            for led in ordered {
                try apply(patterns.pattern(led.color, in: state), to: led)
            }
        }
    }

    private func apply(_ pattern: LEDPattern, to led: LED) throws(IndicatorError) {
        switch pattern {
        case .off:
            try write("none", "trigger", led)
            try write("0", "brightness", led)
        case .steady:
            try write("none", "trigger", led)
            try write("\(led.maximumBrightness)", "brightness", led)
        case .dim:
            try write("none", "trigger", led)
            try write("\(max(1, led.maximumBrightness / 8))", "brightness", led)
        case let .blink(on, off):
            try write("\(led.maximumBrightness)", "brightness", led)
            try write("timer", "trigger", led)
            try write("\(on)", "delay_on", led)
            try write("\(off)", "delay_off", led)
        }
    }

    private func write(_ value: String, _ attribute: String, _ led: LED) throws(IndicatorError) {
        let path = "\(led.directory)/\(attribute)"
        do {
            try Self.writeAttribute(path, value)
        } catch {
            if attribute == "trigger" && value == "timer" && error == .invalidArgument {
                throw IndicatorError(
                    "LED '\(led.name)': the kernel refused the 'timer' trigger (\(error)): "
                        + "build it with CONFIG_LEDS_TRIGGER_TIMER or load the ledtrig-timer module")
            }
            throw IndicatorError("LED '\(led.name)': writing '\(value)' to \(path) failed: \(error)")
        }
    }

    // MARK: System calls

    private static func probe(color: LEDColor, name: String, root: String) throws(IndicatorError) -> LED {
        let directory = "\(root)/\(name)"
        let notFound = IndicatorError(
            "LED '\(name)' (\(color.rawValue)) not found under \(root): "
                + "check the device-tree overlay or the name in device.toml")
        guard !name.isEmpty, !name.contains("/") else { throw notFound }
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { throw notFound }

        let text: String
        do {
            text = try readAttribute("\(directory)/max_brightness")
        } catch {
            throw IndicatorError(
                "LED '\(name)': cannot read \(directory)/max_brightness (\(error)): is it a Linux LED class device?")
        }
        guard let maximum = Int(text.trimmingWhitespace), maximum > 0 else {
            throw IndicatorError(
                "LED '\(name)': \(directory)/max_brightness holds '\(text.trimmingWhitespace)', not a positive number")
        }
        for attribute in ["trigger", "brightness"] {
            let path = "\(directory)/\(attribute)"
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw IndicatorError(
                    "LED '\(name)': cannot open \(path) for writing (\(Errno.current)): give the user running "
                        + "devicesim write access (a udev rule for the LED class), or run it as root")
            }
            close(fd)
        }
        return LED(color: color, name: name, directory: directory, maximumBrightness: maximum)
    }

    private static func readAttribute(_ path: String) throws(Errno) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Errno.current }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = try retryingEINTR { buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
        return String(decoding: buffer[..<n], as: UTF8.self)
    }

    /// One `write` of the whole value, as sysfs expects (it takes each write as a complete value).
    private static func writeAttribute(_ path: String, _ value: String) throws(Errno) {
        let fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw Errno.current }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = try retryingEINTR { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
        guard n == bytes.count else { throw Errno.ioError }
    }
}

extension String {
    fileprivate var trimmingWhitespace: Substring {
        let start = firstIndex { !$0.isWhitespace } ?? endIndex
        let end = lastIndex { !$0.isWhitespace }.map { index(after: $0) } ?? start
        return self[start..<end]
    }
}
