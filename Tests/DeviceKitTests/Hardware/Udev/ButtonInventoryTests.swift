import Foundation
import Testing

@testable import DeviceKit

@Suite struct ButtonInventoryTests {
    /// gpio-keys button, USB keyboard, PC speaker; FTDI adapter, a real UART and two 8250 placeholders; Xorg
    /// holding the keyboard and gpsd the adapter; udevd running.
    static func typicalTree() throws -> FakeHardwareTree {
        let tree = try FakeHardwareTree()
        try tree.startUdevd()
        try tree.add(FakeHardwareTree.gpioButton)
        try tree.add(FakeHardwareTree.pcSpeaker)
        try tree.add(FakeHardwareTree.usbKeyboard)
        try tree.add(FakeHardwareTree.ftdi)
        try tree.add(FakeHardwareTree.uart)
        try tree.add(FakeHardwareTree.placeholderWithoutDevice)
        try tree.add(FakeHardwareTree.placeholderWithoutUART)
        try tree.addProcess(1234, "Xorg", holding: ["/dev/input/event3"])
        try tree.addProcess(4321, "gpsd", holding: ["/dev/ttyUSB0", "/dev/ttyUSB0"])
        try tree.write("", "proc/sys/kernel/hostname")
        return tree
    }

    @Test func aGPIOButtonWithKeyPROG1IsOKToUse() throws {
        let tree = try Self.typicalTree()
        defer { tree.remove() }
        let report = ButtonInventory(roots: tree.roots).scan()
        let button = try #require(report.inputs.first { $0.sysname == "event0" })
        #expect(button.path == tree.base + "/dev/input/event0")
        #expect(button.stableNames == [tree.base + "/dev/input/by-path/platform-gpio-keys-event", tree.base + "/dev/sos-button"])
        #expect(button.name == "gpio_keys")
        #expect(button.physicalLocation == "gpio-keys/input0")
        #expect(button.uniqueIdentifier == nil)
        #expect(button.identity == InputDeviceIdentity(busType: 0x19, vendor: 1, product: 1, version: 0x100))
        #expect(button.deviceNumber == DeviceNumber(major: 13, minor: 64))
        #expect(button.keyNames == ["KEY_PROG1"])
        #expect(button.udev?.properties["ID_PATH"] == "platform-gpio-keys")
        #expect(button.logind == LogindExposure(keys: [], basis: .powerSwitchTag))
        #expect(!button.logind.acts)
        #expect(button.access.exists && button.access.readable && button.access.userInGroup)
        #expect(button.access.mode.hasPrefix("0"))
        #expect(button.heldBy.isEmpty)
        #expect(button.warnings == [])
        #expect(button.isUsable)
    }

    @Test func aKeyboardWithKeyPowerIsFlaggedAndItsHolderNamed() throws {
        let tree = try Self.typicalTree()
        defer { tree.remove() }
        let report = ButtonInventory(roots: tree.roots).scan()
        let keyboard = try #require(report.inputs.first { $0.sysname == "event3" })
        #expect(keyboard.keys.count == 163)
        #expect(keyboard.keys.first == 1 && keyboard.keys.last == 240)
        #expect(keyboard.isKeyboard)
        #expect(keyboard.identity?.busName == "usb")
        #expect(keyboard.logind == LogindExposure(keys: [116, 142], basis: .powerSwitchTag))
        #expect(keyboard.heldBy == [DeviceHolder(pid: 1234, command: "Xorg")])
        #expect(keyboard.warnings == [
            "systemd-logind treats KEY_POWER on this device as the power key: pressing it would shut the device down "
                + "— use a different key or the udev rule in hardware/udev that removes the power-switch tag",
            "systemd-logind treats KEY_SLEEP on this device as the sleep key: pressing it would suspend the device "
                + "— use a different key or the udev rule in hardware/udev that removes the power-switch tag",
            "held by process 1234 (Xorg): it may grab the device or act on its keys too",
        ])
    }

    @Test func devicesWithoutKeysAreNotCandidates() throws {
        let tree = try Self.typicalTree()
        defer { tree.remove() }
        let report = ButtonInventory(roots: tree.roots).scan()
        #expect(report.inputs.map(\.sysname) == ["event0", "event3"])
        #expect(report.notices == [])
    }

    @Test func serialPortsAreUSBAdaptersAndRealUARTsButNotPlaceholders() throws {
        let tree = try Self.typicalTree()
        defer { tree.remove() }
        let report = ButtonInventory(roots: tree.roots).scan()
        #expect(report.serialPorts.map(\.sysname) == ["ttyS0", "ttyUSB0"])
        let ftdi = try #require(report.serialPorts.last)
        #expect(ftdi.path == tree.base + "/dev/ttyUSB0")
        #expect(ftdi.serial == "FTDI_FT232R_USB_UART_A50285BI")
        #expect(ftdi.vendorID == "0403" && ftdi.modelID == "6001")
        #expect(ftdi.idPath == "pci-0000:00:14.0-usb-0:3:1.0")
        #expect(ftdi.driver == "ftdi_sio")
        #expect(ftdi.stableNames.first == tree.base + "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0")
        #expect(ftdi.heldBy == [DeviceHolder(pid: 4321, command: "gpsd")], "two descriptors, one holder")
        #expect(ftdi.warnings.count == 1)
        #expect(ftdi.warnings.first?.hasPrefix("held by process 4321 (gpsd): two programs reading one port") == true)
        let uart = try #require(report.serialPorts.first)
        #expect(uart.driver == "port" && uart.isUsable && uart.stableNames.isEmpty)
    }

    @Test func withoutUdevTheLogindRiskIsAssumedAndTheReportSaysWhy() throws {
        let tree = try Self.typicalTree()
        defer { tree.remove() }
        try tree.delete("run/udev")
        let report = ButtonInventory(roots: tree.roots).scan()
        #expect(!report.udevRunning && !report.udevDatabasePresent)
        #expect(report.notices == [.udevNotRunning])
        let keyboard = try #require(report.inputs.first { $0.sysname == "event3" })
        #expect(keyboard.udev == nil && keyboard.stableNames.isEmpty)
        #expect(keyboard.logind == LogindExposure(keys: [116, 142], basis: .assumedWithoutUdevDatabase))
        #expect(keyboard.logind.acts)
        #expect(keyboard.isKeyboard, "the letter keys say so without udev")
        #expect(keyboard.warnings.first?.contains("(assumed: without udev's database the power-switch tag cannot be checked)") == true)
        #expect(report.text.contains(
            "Note: udevd is not running (a container?): stable names like /dev/input/by-path are missing; use the eventN path"))
        #expect(report.text.contains("  stable names: none (udevd is not running: use the path above)"))
    }

    @Test func anUntaggedDeviceWithKeyPowerIsNotALogindRisk() throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        var keyboard = FakeHardwareTree.usbKeyboard
        keyboard.udev = keyboard.udev?.replacingOccurrences(of: "Q:power-switch\n", with: "")
        try tree.add(keyboard)
        let report = ButtonInventory(roots: tree.roots).scan()
        let candidate = try #require(report.inputs.first)
        #expect(candidate.udev?.tags == ["seat"], "Q: lines win over G: lines")
        #expect(candidate.logind == LogindExposure(keys: [116, 142], basis: .untagged))
        #expect(!candidate.logind.acts)
        #expect(report.text.contains("KEY_POWER, KEY_SLEEP: udev has not tagged it power-switch, so systemd-logind ignores it"))
    }

    @Test func anEmptyContainerSaysWhyThereIsNothing() throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        try tree.delete("sys/class/input")
        try tree.delete("dev/input")
        let report = ButtonInventory(roots: tree.roots).scan()
        #expect(report.isEmpty)
        #expect(report.notices == [
            .udevNotRunning, .noInputClass(tree.base + "/sys/class/input"), .noDevInput(tree.base + "/dev/input"),
        ])
        let text = report.text
        #expect(text.hasPrefix("Input devices with keys: none\n\nSerial ports: none\n\nNote: udevd is not running"))
        #expect(text.contains("Note: \(tree.base)/sys/class/input is missing: this system has no input subsystem"))
        #expect(text.contains("Note: No candidate call button:"))
    }

    @Test func aNodeMissingFromDevIsReported() throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        var button = FakeHardwareTree.gpioButton
        button.node = false
        try tree.add(button)
        let candidate = try #require(ButtonInventory(roots: tree.roots).scan().inputs.first)
        #expect(!candidate.access.exists)
        #expect(candidate.warnings == [
            "there is no device node at \(tree.base)/dev/input/event0 (a container without the device passed in?): "
                + "run on the device itself or pass the device into the container",
        ])
    }

    @Test func garbledCapabilitiesSkipTheDeviceWithANotice() throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        var button = FakeHardwareTree.gpioButton
        button.key = "zz 0 0"
        try tree.add(button)
        try tree.add(FakeHardwareTree.usbKeyboard)
        let report = ButtonInventory(roots: tree.roots).scan()
        #expect(report.inputs.map(\.sysname) == ["event3"])
        let notice = try #require(report.notices.first { if case .unreadable = $0 { true } else { false } })
        #expect(notice.description.hasPrefix("event0 skipped: its capabilities in"))
        #expect(notice.description.contains("are garbled: 'zz' is not a "))
    }

    @Test func aHolderIsFoundUnderTheTreesOwnDevPathToo() throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        try tree.add(FakeHardwareTree.gpioButton)
        try tree.addProcess(77, "devicesim", holding: [tree.base + "/dev/input/event0"])
        try tree.addProcess(78, "cat", holding: ["/dev/input/event00"])
        let report = ButtonInventory(roots: tree.roots).scan()
        let candidate = try #require(report.inputs.first)
        #expect(candidate.heldBy == [DeviceHolder(pid: 77, command: "devicesim")])
        #expect(candidate.isUsable, "the device daemon holding the button is expected")
        #expect(report.text.contains("  in use by the device daemon: process 77 (devicesim)\n  node: "))
    }

    @Test func aProcessWhoseDescriptorsCannotBeReadIsCountedNotFatal() throws {
        let tree = try Self.typicalTree()
        defer { tree.remove() }
        // A file where the fd directory should be: opendir fails as it does with EACCES for another user's process.
        try tree.write("", "proc/555/fd")
        try tree.write("sshd\n", "proc/555/comm")
        let report = ButtonInventory(roots: tree.roots).scan()
        #expect(report.processesNotInspected == 1)
        #expect(report.inputs.first { $0.sysname == "event3" }?.heldBy == [DeviceHolder(pid: 1234, command: "Xorg")])
        #expect(report.text.contains("Note: 1 process of another user was not checked for holding a device open: run as root (sudo) to see them all\n"))
    }

    // MARK: Pure judgements

    static func candidate(access: DeviceNodeAccess) -> InputButtonCandidate {
        InputButtonCandidate(sysname: "event0", path: "/dev/input/event0", name: "gpio_keys", keys: [148], access: access)
    }

    @Test func aUserOutsideGroupInputIsToldHowToJoinIt() {
        let candidate = Self.candidate(access: DeviceNodeAccess(
            exists: true, owner: "root", group: "input", mode: "0660", readable: false, writable: false, userInGroup: false))
        #expect(candidate.warnings == [
            "you cannot open it: add the user to group input (sudo usermod -aG input $USER, then log in again) or run "
                + "as the devicekit user",
        ])
    }

    @Test func aNodeOfTheWrongGroupPointsToTheUdevRule() {
        let candidate = Self.candidate(access: DeviceNodeAccess(
            exists: true, owner: "root", group: "root", mode: "0600", readable: false, writable: false, userInGroup: false))
        #expect(candidate.warnings == [
            "you cannot open it: its group is root, not input — install the udev rule in hardware/udev (it gives the "
                + "node group input), or run as root",
        ])
    }

    @Test func aSerialPortMustAlsoBeWritable() {
        let port = SerialPortCandidate(
            sysname: "ttyUSB0", path: "/dev/ttyUSB0",
            access: DeviceNodeAccess(exists: true, owner: "root", group: "dialout", mode: "0640", readable: true,
                                     writable: false, userInGroup: true))
        #expect(port.warnings == [
            "you cannot open it although you are in group dialout: its mode is 0640; install the udev rule in "
                + "hardware/udev (mode 0660)",
        ])
    }

    @Test func theLogindRiskIsOnlyForTheKeysLogindWatches() {
        #expect(LogindExposure.assess(keys: [148, 0x198], tags: ["power-switch"]) == LogindExposure(keys: [0x198], basis: .powerSwitchTag))
        #expect(LogindExposure.assess(keys: [148], tags: nil) == LogindExposure(keys: [], basis: .assumedWithoutUdevDatabase))
        #expect(!LogindExposure.assess(keys: [148], tags: nil).acts)
        #expect(LogindExposure.assess(keys: [205], tags: nil).acts)
    }

    /// A touchscreen has one key, BTN_TOUCH, like a call button: sysfs's `capabilities/abs` and `properties`
    /// show what it is, and `diag list` says it is not one.
    @Test func aTouchscreenWithOneKeyIsNotOKToUse() throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        try tree.add(FakeHardwareTree.InputDevice(
            event: 5, input: 5, parent: "pci0000:00/usb1/1-1/1-1:1.0", name: "eGalax Touchscreen", phys: "usb-0000:00:14.0-1/input0",
            id: ("0003", "0eef", "0001", "0100"), ev: "b", key: "400 0 0 0 0 0", abs: "3", properties: "2"))
        let report = ButtonInventory(roots: tree.roots).scan()
        let touch = try #require(report.inputs.first { $0.sysname == "event5" })
        #expect(touch.keyNames == ["BTN_TOUCH"])
        #expect(touch.pointing?.description == "a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y, BTN_TOUCH)")
        #expect(!touch.isUsable)
        #expect(touch.warnings.first?.hasPrefix("it is a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y, BTN_TOUCH), not a button") == true)
    }
}
