/// `EvdevButtonSource` over a real FIFO carrying real `input_event` bytes, with a recording double in place
/// of the evdev ioctls that checks their exact sequence.
import Foundation
import Glibc
import Synchronization
import Testing

@testable import DeviceKit

/// Scripted answers for the evdev ioctls, and the calls made, in order.
final class RecordingInputDeviceControl: InputDeviceControl, @unchecked Sendable {
    private let lock = NSLock()
    private var _calls: [String] = []
    var name = "sos-button"
    var keys: [Int] = [148]
    /// The event types EVIOCGBIT(0) reports, besides EV_REL and EV_ABS when there are axes below.
    var eventTypes: [Int] = [0, 1]
    /// The codes of event types other than EV_KEY, EV_REL and EV_ABS, by type.
    var codes: [UInt16: [Int]] = [:]
    /// EV_ABS and EV_REL codes, and input properties: a touchscreen has ABS_X, ABS_Y and INPUT_PROP_DIRECT.
    var absoluteAxes: [Int] = []
    var relativeAxes: [Int] = []
    var properties: [Int] = []
    /// Answers of successive EVIOCGKEY calls; the last one repeats.
    var keyStates: [Bool] = [false]
    var grabFails = false

    var calls: [String] { lock.withLock { _calls } }
    private func record(_ call: String) { lock.withLock { _calls.append(call) } }

    static func bits(_ codes: [Int]) -> EventCodeBits {
        var words = [UInt](repeating: 0, count: 12)
        for code in codes { words[code / UInt.bitWidth] |= 1 << UInt(code % UInt.bitWidth) }
        return EventCodeBits(words: words)
    }

    func driverVersion(_ fd: CInt) throws(DeviceControlError) -> CInt { record("EVIOCGVERSION"); return 0x10001 }
    func name(_ fd: CInt) throws(DeviceControlError) -> String { record("EVIOCGNAME"); return name }
    func physicalLocation(_ fd: CInt) throws(DeviceControlError) -> String? { record("EVIOCGPHYS"); return "gpio-keys/input0" }
    func uniqueIdentifier(_ fd: CInt) throws(DeviceControlError) -> String? { record("EVIOCGUNIQ"); return nil }
    func identity(_ fd: CInt) throws(DeviceControlError) -> InputDeviceIdentity {
        record("EVIOCGID")
        return InputDeviceIdentity(busType: 0x19, vendor: 1, product: 1, version: 0x100)
    }
    func capabilities(_ fd: CInt, eventType: UInt16) throws(DeviceControlError) -> EventCodeBits {
        record("EVIOCGBIT(\(eventType))")
        // As the kernel's evdev answers (handle_eviocgbit): a bitmap for these types only, EINVAL for the others
        // (EV_REP, EV_FF_STATUS, ...), as the VM test (tools/vm) saw.
        switch eventType {
        case 0: return Self.bits(eventTypes + (absoluteAxes.isEmpty ? [] : [3]) + (relativeAxes.isEmpty ? [] : [2]))
        case 1: return Self.bits(keys)
        case 2: return Self.bits(relativeAxes)
        case 3: return Self.bits(absoluteAxes)
        case 0x04, 0x05, 0x11, 0x12, 0x15: return Self.bits(codes[eventType] ?? [])
        default: throw .failed(call: "EVIOCGBIT(\(eventType))", errno: .invalidArgument)
        }
    }
    func properties(_ fd: CInt) throws(DeviceControlError) -> EventCodeBits { record("EVIOCGPROP"); return Self.bits(properties) }
    func keyState(_ fd: CInt) throws(DeviceControlError) -> EventCodeBits {
        record("EVIOCGKEY")
        let down = lock.withLock { keyStates.count > 1 ? keyStates.removeFirst() : keyStates[0] }
        return Self.bits(down ? keys : [])
    }
    func useMonotonicClock(_ fd: CInt) throws(DeviceControlError) { record("EVIOCSCLOCKID(CLOCK_MONOTONIC)") }
    func setGrabbed(_ grabbed: Bool, _ fd: CInt) throws(DeviceControlError) {
        record("EVIOCGRAB(\(grabbed ? 1 : 0))")
        if grabbed, grabFails { throw .grabbedElsewhere }
    }
}

/// A FIFO standing in for `/dev/input/eventN`: the source opens it for reading, the test writes records.
final class FakeEventDevice: @unchecked Sendable {
    let directory: String
    let path: String
    private(set) var writer: CInt = -1

    init() throws {
        directory = NSTemporaryDirectory() + "devicekit-evdev-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = directory + "/event0"
        try #require(mkfifo(path, 0o600) == 0, "mkfifo failed: \(Errno.current)")
    }

    deinit {
        if writer >= 0 { close(writer) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Opens the writing end once the source has opened the reading end (ENXIO until then).
    func connect(timeout: Duration = patience) async throws {
        let opened = await poll(within: timeout) {
            writer = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
            return writer >= 0
        }
        if !opened { Issue.record("the source never opened \(path)") }
    }

    /// Bytes written and not yet read by the source.
    var unread: Int {
        var count: CInt = 0
        return ioctl(writer, UInt(FIONREAD), &count) == 0 ? Int(count) : -1
    }

    /// The device goes away: the reader sees end of file.
    func unplug() {
        close(writer)
        writer = -1
    }

    func send(_ events: [InputEvent], layout: InputEventLayout = .native) throws {
        try DeviceFile.write(writer, events.flatMap(layout.encode))
    }

    /// One HID report of `code` with `value`, stamped `milliseconds` after 1 s.
    static func key(_ value: Int32, code: UInt16 = 148, milliseconds: Int64 = 0) -> [InputEvent] {
        let (s, us) = (1 + milliseconds / 1000, milliseconds % 1000 * 1000)
        return [
            InputEvent(seconds: s, microseconds: us, type: InputEventNames.evMsc, code: 4, value: 0x90001),
            InputEvent(seconds: s, microseconds: us, type: InputEventNames.evKey, code: code, value: value),
            InputEvent(seconds: s, microseconds: us, type: InputEventNames.evSyn, code: InputEventNames.synReport, value: 0),
        ]
    }
}

/// Collects what a source emits, for waiting on.
final class ButtonEventLog: Sendable {
    private let events = Mutex<[ButtonEvent]>([])
    var all: [ButtonEvent] { events.withLock { $0 } }
    func append(_ event: ButtonEvent) { events.withLock { $0.append(event) } }

    func wait(count: Int, timeout: Duration = patience) async throws -> [ButtonEvent] {
        await poll(within: timeout) { all.count >= count }
        let seen = all
        try #require(seen.count >= count, "expected \(count) events, got \(seen)")
        return seen
    }
}

@Suite struct EvdevButtonSourceTests {
    func start(_ source: EvdevButtonSource, log: ButtonEventLog) -> Task<Void, Error> {
        Task { try await source.run { log.append($0) } }
    }

    @Test func pressesFlowAfterTheIdentityGrabAndKeyStateAreRead() async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        let log = ButtonEventLog()
        let task = start(EvdevButtonSource(settings: .init(device: device.path, key: 148, grab: true), control: control), log: log)
        try await device.connect()
        #expect(try await log.wait(count: 1) == [.present(initiallyDown: false)])
        try device.send(FakeEventDevice.key(1) + FakeEventDevice.key(2, milliseconds: 250) + FakeEventDevice.key(0, milliseconds: 400))
        // Another key of the same device is not the call button.
        try device.send(FakeEventDevice.key(1, code: 30, milliseconds: 500))
        try device.send(FakeEventDevice.key(1, milliseconds: 600))
        let events = try await log.wait(count: 4)
        // Each level carries the kernel's timestamp of its report, not the time it was read.
        #expect(events == [
            .present(initiallyDown: false), .level(down: true, at: .seconds(1)),
            .level(down: false, at: .milliseconds(1400)), .level(down: true, at: .milliseconds(1600)),
        ])
        task.cancel()
        _ = await task.result
        #expect(control.calls == [
            "EVIOCGNAME", "EVIOCGID", "EVIOCGPHYS", "EVIOCGUNIQ", "EVIOCGBIT(0)", "EVIOCGBIT(1)", "EVIOCGPROP",
            "EVIOCSCLOCKID(CLOCK_MONOTONIC)",
            "EVIOCGRAB(1)",
            "EVIOCGKEY", "EVIOCGRAB(0)",
        ])
    }

    @Test func recordsSplitAcrossWritesAreReassembled() async throws {
        let device = try FakeEventDevice()
        let log = ButtonEventLog()
        let task = start(EvdevButtonSource(settings: .init(device: device.path, grab: false), control: RecordingInputDeviceControl()), log: log)
        try await device.connect()
        _ = try await log.wait(count: 1)
        let bytes = FakeEventDevice.key(1).flatMap(InputEventLayout.native.encode)
        try DeviceFile.write(device.writer, Array(bytes.prefix(13)))
        try await eventually("the source to read the first 13 bytes on their own") { device.unread == 0 }
        try DeviceFile.write(device.writer, Array(bytes.dropFirst(13)))
        #expect(try await log.wait(count: 2).last == .level(down: true, at: .seconds(1)))
        task.cancel()
        _ = await task.result
    }

    @Test func aKeyHeldAtStartIsReportedAsPresentAndDown() async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        control.keyStates = [true]
        let log = ButtonEventLog()
        let task = start(EvdevButtonSource(settings: .init(device: device.path, grab: false), control: control), log: log)
        try await device.connect()
        try device.send(FakeEventDevice.key(0))
        #expect(try await log.wait(count: 2) == [.present(initiallyDown: true), .level(down: false, at: .seconds(1))])
        task.cancel()
        _ = await task.result
    }

    @Test func aDroppedBufferIsResynchronisedWithTheKeyState() async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        control.keyStates = [false, true]  // at open: up; after the drop: down
        let log = ButtonEventLog()
        let task = start(EvdevButtonSource(settings: .init(device: device.path, grab: false), control: control), log: log)
        try await device.connect()
        _ = try await log.wait(count: 1)
        try device.send([
            InputEvent(type: InputEventNames.evSyn, code: InputEventNames.synDropped, value: 0),
            InputEvent(type: InputEventNames.evKey, code: 148, value: 0),
            InputEvent(type: InputEventNames.evSyn, code: InputEventNames.synReport, value: 0),
        ])
        // Stamped with the report that ends the drop: the lost edge happened before it.
        #expect(try await log.wait(count: 2) == [.present(initiallyDown: false), .level(down: true, at: .zero)])
        task.cancel()
        _ = await task.result
        #expect(control.calls.filter { $0 == "EVIOCGKEY" }.count == 2)
    }

    @Test func anUnpluggedButtonIsMissingAndComesBack() async throws {
        let device = try FakeEventDevice()
        let log = ButtonEventLog()
        let source = EvdevButtonSource(
            settings: .init(device: device.path, grab: false), control: RecordingInputDeviceControl(),
            reopenInterval: .milliseconds(20))
        let task = start(source, log: log)
        try await device.connect()
        try device.send(FakeEventDevice.key(1))
        _ = try await log.wait(count: 2)
        device.unplug()
        let gone = try await log.wait(count: 3)
        guard case .missing(let reason) = gone[2] else {
            Issue.record("expected missing, got \(gone[2])")
            return
        }
        #expect(reason.contains("unplugged"))
        try await device.connect()
        #expect(try await log.wait(count: 4)[3] == .present(initiallyDown: false))
        task.cancel()
        _ = await task.result
    }

    @Test func aMissingDeviceSaysItIsUnpluggedOrItsDriverIsNotLoaded() async throws {
        let log = ButtonEventLog()
        let source = EvdevButtonSource(
            settings: .init(device: "/nonexistent/event9"), control: RecordingInputDeviceControl(), reopenInterval: .milliseconds(5))
        let task = start(source, log: log)
        let first = try await log.wait(count: 1)
        #expect(first == [.missing(reason: "/nonexistent/event9 does not exist: the button is unplugged or its driver is not loaded")])
        task.cancel()
        _ = await task.result
    }

    /// Each attempt asks the control double for the grab again, so the test counts the retries it waits for.
    @Test func aDeviceThatStaysUnusableIsReportedOnceWhileItIsRetried() async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        control.grabFails = true
        let log = ButtonEventLog()
        let source = EvdevButtonSource(settings: .init(device: device.path, grab: true), control: control, reopenInterval: .milliseconds(5))
        let task = start(source, log: log)
        try await eventually("five attempts") { control.calls.count { $0 == "EVIOCGRAB(1)" } >= 5 }
        #expect(log.all.count == 1, "reported once: \(log.all)")
        task.cancel()
        _ = await task.result
    }

    @Test func aGrabHeldElsewhereSaysWhatToDo() async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        control.grabFails = true
        let log = ButtonEventLog()
        let task = start(EvdevButtonSource(settings: .init(device: device.path, grab: true), control: control, reopenInterval: .seconds(60)), log: log)
        let events = try await log.wait(count: 1)
        guard case .missing(let reason) = events[0] else {
            Issue.record("expected missing, got \(events)")
            return
        }
        #expect(reason.contains("another program has grabbed"))
        #expect(reason.contains("button.grab = false"))
        task.cancel()
        _ = await task.result
    }

    @Test(arguments: [
        (148 as UInt16?, [30, 31], "cannot send KEY_PROG1; it sends KEY_A, KEY_S: set button.key to one of them"),
        (nil, [30, 31], "has 2 keys (KEY_A, KEY_S): set button.key to the call button's key"),
        (nil, [], "has no keys at all: it is not a button"),
    ])
    func aDeviceWithoutTheKeyIsAConfigurationError(key: UInt16?, keys: [Int], message: String) async throws {
        let device = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        control.keys = keys
        let source = EvdevButtonSource(settings: .init(device: device.path, key: key, grab: false), control: control)
        let task = Task { try await source.run { _ in } }
        let error = await #expect(throws: ButtonSourceError.self) { try await task.value }
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }
}
