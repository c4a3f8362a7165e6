import Foundation
import Synchronization
import Testing

@testable import DeviceKit

@Suite struct PointingDeviceTests {
    func device(keys: [UInt16], absolute: [UInt16] = [], relative: [UInt16] = [], properties: [UInt16] = []) -> EvdevDeviceInfo {
        EvdevDeviceInfo(
            path: "/dev/input/event7", name: "dev", identity: InputDeviceIdentity(busType: 3, vendor: 1, product: 2, version: 3),
            eventTypes: [0, 1], keys: keys, absoluteAxes: absolute, relativeAxes: relative, properties: properties)
    }

    @Test func eachKindOfPointingDeviceIsNamedWithItsEvidence() {
        #expect(device(keys: [0x14a], absolute: [0, 1], properties: [1]).pointing?.description
            == "a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y, BTN_TOUCH)")
        #expect(device(keys: [0x110, 0x111], relative: [0, 1, 8]).pointing?.description == "a mouse or trackball (REL_X, REL_Y)")
        #expect(device(keys: [0x14a, 0x145], absolute: [0, 1, 0x35, 0x36], properties: [0]).pointing?.kind == "a touchpad")
        #expect(device(keys: [0x140, 0x14a], absolute: [0, 1]).pointing?.kind == "a pen tablet")
        #expect(device(keys: [0x130, 0x131], absolute: [0, 1]).pointing?.kind == "a joystick or gamepad")
        // Keys with a wheel or a volume knob (a keypad's consumer-control interface) point at nothing.
        #expect(device(keys: [148], absolute: [0x20], relative: [8]).pointing == nil)
        #expect(device(keys: [148]).pointing == nil)
    }

    /// The audit's touchscreen: BTN_TOUCH its only key was taken as the call button and its taps raised alarms.
    @Test func aTouchscreenWithOneKeyIsNeverChosenByItselfAndNeedsTheSettingWhenChosen() throws {
        let touchscreen = device(keys: [0x14a], absolute: [0, 1], properties: [1])
        let automatic = #expect(throws: ButtonSourceError.self) { try touchscreen.callButtonKey(configured: nil) }
        #expect(automatic?.description.contains("is a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y, BTN_TOUCH), not a button") == true)
        #expect(automatic?.description.hasSuffix("set button.key = \"BTN_TOUCH\" and button.allow_pointer_device = true") == true)
        let explicit = #expect(throws: ButtonSourceError.self) { try touchscreen.callButtonKey(configured: 0x14a) }
        #expect(explicit?.description.hasSuffix("only if this device really is the call button, set button.allow_pointer_device = true") == true)
        #expect(try touchscreen.callButtonKey(configured: 0x14a, allowPointerDevice: true) == 0x14a)
        #expect(try touchscreen.callButtonKey(configured: nil, allowPointerDevice: true) == 0x14a)
        #expect(try device(keys: [148]).callButtonKey(configured: nil) == 148)
    }

    /// The live path: the identity read through the ioctls (EVIOCGBIT(EV_ABS), EVIOCGPROP) carries the axes
    /// and properties, and the evdev source refuses the device instead of raising alarms from its taps.
    @Test func theEvdevSourceRefusesATouchscreenReadThroughTheIoctls() async throws {
        let fake = try FakeEventDevice()
        let control = RecordingInputDeviceControl()
        control.keys = [0x14a]
        control.absoluteAxes = [0, 1]
        control.properties = [1]
        let source = EvdevButtonSource(settings: .init(device: fake.path, grab: false), control: control)
        let refused = ButtonEventLog()
        let ended = Mutex<(any Error)?>(nil)
        let task = Task {
            do { try await source.run { refused.append($0) } } catch { ended.withLock { $0 = error } }
        }
        // Refused as soon as the identity is read: no event is needed (nor a writer on the FIFO).
        try await eventually("the source stops with an error") { ended.withLock { $0 != nil } || !refused.all.isEmpty }
        task.cancel()
        #expect(refused.all.isEmpty, "the touchscreen was taken as the call button")
        let error = ended.withLock { $0 } as? ButtonSourceError
        #expect(error?.description.contains("is a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y, BTN_TOUCH)") == true)
        #expect(control.calls.prefix(8) == [
            "EVIOCGNAME", "EVIOCGID", "EVIOCGPHYS", "EVIOCGUNIQ", "EVIOCGBIT(0)", "EVIOCGBIT(1)", "EVIOCGBIT(3)", "EVIOCGPROP",
        ])
        let second = try FakeEventDevice()
        let allowed = EvdevButtonSource(settings: .init(device: second.path, grab: false, allowPointerDevice: true), control: control)
        let log = ButtonEventLog()
        let running = Task { try await allowed.run { log.append($0) } }
        try await second.connect()
        #expect(try await log.wait(count: 1) == [.present(initiallyDown: false)])
        running.cancel()
        _ = try? await running.value
    }

    @Test func theSettingIsReadForEvdevAndReplayAndNamedAmongTheKnownOnes() throws {
        let base = "device_id = 1\nkey = \"\(String(repeating: "ab", count: 32))\"\n[centre]\nprimary = \"127.0.0.1:7700\"\n"
        let evdev = try DeviceConfig(toml: base + "[button]\nbackend = \"evdev\"\ndevice = \"/dev/input/event3\"\nallow_pointer_device = true\n")
        #expect(evdev.button == .evdev(.init(device: "/dev/input/event3", allowPointerDevice: true)))
        let replay = try DeviceConfig(toml: base + "[button]\nbackend = \"replay\"\nfile = \"t.evemu\"\nkey = \"BTN_TOUCH\"\nallow_pointer_device = true\n")
        #expect(replay.button == .replay(.init(file: "t.evemu", key: 0x14a, allowPointerDevice: true)))
        #expect(try DeviceConfig(toml: replay.render()).button == replay.button)
        let misspelt = #expect(throws: DeviceConfigError.self) {
            try DeviceConfig(toml: base + "[button]\nbackend = \"evdev\"\ndevice = \"/dev/input/event3\"\nallow_pointer = true\n")
        }
        #expect(misspelt?.description == "button.allow_pointer: unknown setting; the settings of backend \"evdev\" are backend, device, key, grab, allow_pointer_device")
    }
}
