import Foundation

#if canImport(Glibc)
import Glibc
#endif

@testable import DeviceKit

/// A temporary `/sys`, `/dev`, `/run/udev` and `/proc`, laid out as the kernel and udevd lay them out
/// (class entries are links into `/sys/devices`, `device` links to the parent), with real-looking contents.
///
/// Every change is atomic for a reader such as the hotplug poller, which may look at any moment: a file or
/// link is made beside the tree and moved into place with `rename(2)`, a device appears when its class link
/// does (everything behind it already there) and goes when that link is removed.
struct FakeHardwareTree {
    let base: String
    var roots: HardwareRoots {
        HardwareRoots(sysfs: base + "/sys", dev: base + "/dev", udevData: base + "/run/udev/data", proc: base + "/proc")
    }
    /// Where new files and links are made before they are moved into place (outside every root).
    private var staging: String { base + "/staging" }

    init() throws {
        base = NSTemporaryDirectory() + "devicekit-hw-\(UUID().uuidString)"
        for directory in ["sys/class/input", "sys/class/tty", "sys/devices", "dev/input", "run/udev/data", "proc", "staging"] {
            try FileManager.default.createDirectory(atPath: "\(base)/\(directory)", withIntermediateDirectories: true)
        }
    }

    func remove() { try? FileManager.default.removeItem(atPath: base) }

    // MARK: Files

    /// Writes `text` to `path` (relative to the tree) in one step: a reader sees the old file or the new one.
    func write(_ text: String, _ path: String) throws {
        try place(path) { try text.write(toFile: $0, atomically: false, encoding: .utf8) }
    }

    /// Makes or replaces the link `path` in one step.
    func link(_ path: String, to target: String) throws {
        try place(path) { try FileManager.default.createSymbolicLink(atPath: $0, withDestinationPath: target) }
    }

    func delete(_ path: String) throws { try FileManager.default.removeItem(atPath: base + "/" + path) }

    /// Makes an entry with `make` in the staging directory, then renames it to `path`.
    private func place(_ path: String, _ make: (String) throws -> Void) throws {
        let full = base + "/" + path
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let staged = staging + "/" + UUID().uuidString
        try make(staged)
        guard rename(staged, full) == 0 else { throw Errno.current }
    }

    /// udevd's control socket (a plain file is enough for the check).
    func startUdevd() throws { try write("", "run/udev/control") }

    // MARK: Devices

    struct InputDevice {
        var event: Int
        var input: Int
        /// Where the input device sits under /sys/devices.
        var parent: String
        var name: String
        var phys: String
        var uniq = ""
        /// bustype, vendor, product, version as sysfs prints them (`%04x`).
        var id: (String, String, String, String)
        var ev: String
        var key: String
        var udev: String?
        var node = true
        /// `capabilities/abs` and `properties`, as sysfs prints them, when the device has them.
        var abs: String?
        var properties: String?
    }

    /// `/sys/class/input/eventN` → `/sys/devices/<parent>/input/inputM/eventN`, its node and its udev record.
    func add(_ device: InputDevice) throws {
        let inputDirectory = "sys/devices/\(device.parent)/input/input\(device.input)"
        let eventDirectory = "\(inputDirectory)/event\(device.event)"
        try write(device.name + "\n", inputDirectory + "/name")
        try write(device.phys + "\n", inputDirectory + "/phys")
        try write(device.uniq + "\n", inputDirectory + "/uniq")
        try write(device.id.0 + "\n", inputDirectory + "/id/bustype")
        try write(device.id.1 + "\n", inputDirectory + "/id/vendor")
        try write(device.id.2 + "\n", inputDirectory + "/id/product")
        try write(device.id.3 + "\n", inputDirectory + "/id/version")
        try write(device.ev + "\n", inputDirectory + "/capabilities/ev")
        try write(device.key + "\n", inputDirectory + "/capabilities/key")
        if let abs = device.abs { try write(abs + "\n", inputDirectory + "/capabilities/abs") }
        if let properties = device.properties { try write(properties + "\n", inputDirectory + "/properties") }
        let minor = 64 + device.event
        try write("13:\(minor)\n", eventDirectory + "/dev")
        try write("MAJOR=13\nMINOR=\(minor)\nDEVNAME=input/event\(device.event)\n", eventDirectory + "/uevent")
        try link(eventDirectory + "/device", to: "../../input\(device.input)")
        if device.node { try write("", "dev/input/event\(device.event)") }
        if let udev = device.udev { try write(udev, "run/udev/data/c13:\(minor)") }
        // The class link last, so a poller never sees the device half made.
        try link("sys/class/input/event\(device.event)", to: "../../" + eventDirectory.dropFirst("sys/".count))
    }

    /// Takes event N away, as the kernel does on unplug, in one step: its class link goes. Its node and udev
    /// record stay (udevd takes a moment to remove them on a real device, and a replug writes them again),
    /// so a look that began before the unplug still reads the device whole.
    func unplug(event: Int) throws {
        try delete("sys/class/input/event\(event)")
    }

    /// Takes serial port `name` away in one step, as `unplug(event:)` does an input device.
    func unplug(serialPort name: String) throws {
        try delete("sys/class/tty/\(name)")
    }

    struct SerialPort {
        var name: String
        var major: Int
        var minor: Int
        /// The port's device under /sys/devices, or `nil` for a placeholder without one.
        var device: String?
        var driver: String?
        /// The `type` attribute (the 8250 driver's port type; 0 means no UART).
        var type: String?
        var udev: String?
    }

    func add(_ port: SerialPort) throws {
        let classDirectory: String
        if let device = port.device {
            classDirectory = "sys/devices/\(device)/tty/\(port.name)"
            try write("", classDirectory + "/close_delay")
            try link(classDirectory + "/device", to: "../..")
            if let driver = port.driver {
                try link("sys/devices/\(device)/driver", to: "../../../../bus/drivers/\(driver)")
            }
        } else {
            classDirectory = "sys/devices/virtual/tty/\(port.name)"
        }
        try write("\(port.major):\(port.minor)\n", classDirectory + "/dev")
        try write("MAJOR=\(port.major)\nMINOR=\(port.minor)\nDEVNAME=\(port.name)\n", classDirectory + "/uevent")
        if let type = port.type { try write(type + "\n", classDirectory + "/type") }
        try write("", "dev/\(port.name)")
        if let udev = port.udev { try write(udev, "run/udev/data/c\(port.major):\(port.minor)") }
        try link("sys/class/tty/\(port.name)", to: "../../" + classDirectory.dropFirst("sys/".count))
    }

    /// `/proc/<pid>` with its `comm` and descriptors linking to `targets`.
    func addProcess(_ pid: Int, _ command: String, holding targets: [String]) throws {
        try write(command + "\n", "proc/\(pid)/comm")
        try FileManager.default.createDirectory(atPath: "\(base)/proc/\(pid)/fd", withIntermediateDirectories: true)
        for (fd, target) in (["/dev/null", "socket:[4711]"] + targets).enumerated() {
            try link("proc/\(pid)/fd/\(fd)", to: target)
        }
    }

    // MARK: Real-looking devices

    /// A GPIO button through gpio-keys with KEY_PROG1, named `sos-button` by the udev rule in hardware/udev.
    static let gpioButton = InputDevice(
        event: 0, input: 0, parent: "platform/gpio-keys", name: "gpio_keys", phys: "gpio-keys/input0",
        id: ("0019", "0001", "0001", "0100"), ev: "3", key: "100000 0 0",
        udev: """
            S:input/by-path/platform-gpio-keys-event
            S:sos-button
            L:0
            E:ID_INPUT=1
            E:ID_INPUT_KEY=1
            E:ID_PATH=platform-gpio-keys
            E:ID_PATH_TAG=platform-gpio-keys
            E:LIBINPUT_DEVICE_GROUP=19/1/1:gpio-keys
            I:4123456
            G:power-switch
            Q:power-switch
            V:1

            """)

    /// A USB keyboard: 163 keys, among them KEY_POWER and KEY_SLEEP, tagged power-switch.
    static let usbKeyboard = InputDevice(
        event: 3, input: 3, parent: "pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/0003:046D:C31C.0001",
        name: "Logitech USB Keyboard", phys: "usb-0000:00:14.0-2/input0", id: ("0003", "046d", "c31c", "0110"),
        ev: "120013", key: "1000000000007 ff9f207ac14057ff febeffdfffefffff fffffffffffffffe",
        udev: """
            S:input/by-id/usb-Logitech_USB_Keyboard-event-kbd
            S:input/by-path/pci-0000:00:14.0-usb-0:2:1.0-event-kbd
            L:0
            E:ID_INPUT=1
            E:ID_INPUT_KEY=1
            E:ID_INPUT_KEYBOARD=1
            E:ID_BUS=usb
            E:ID_VENDOR_ID=046d
            E:ID_MODEL_ID=c31c
            E:ID_SERIAL=Logitech_USB_Keyboard
            E:ID_PATH=pci-0000:00:14.0-usb-0:2:1.0
            E:XKBLAYOUT=us
            G:seat
            G:power-switch
            Q:seat
            Q:power-switch
            V:1

            """)

    /// The PC speaker: an input device without keys, never a candidate.
    static let pcSpeaker = InputDevice(
        event: 1, input: 1, parent: "platform/pcspkr", name: "PC Speaker", phys: "isa0061/input0",
        id: ("0010", "001f", "0001", "0100"), ev: "40001", key: "0",
        udev: "E:ID_INPUT=1\nE:ID_PATH=platform-pcspkr\nV:1\n")

    /// An FTDI USB serial adapter.
    static let ftdi = SerialPort(
        name: "ttyUSB0", major: 188, minor: 0, device: "pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/ttyUSB0",
        driver: "ftdi_sio", type: nil,
        udev: """
            S:serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0
            S:serial/by-path/pci-0000:00:14.0-usb-0:3:1.0-port0
            L:0
            E:ID_BUS=usb
            E:ID_VENDOR=FTDI
            E:ID_VENDOR_ID=0403
            E:ID_MODEL=FT232R_USB_UART
            E:ID_MODEL_ID=6001
            E:ID_SERIAL=FTDI_FT232R_USB_UART_A50285BI
            E:ID_SERIAL_SHORT=A50285BI
            E:ID_PATH=pci-0000:00:14.0-usb-0:3:1.0
            E:ID_USB_DRIVER=ftdi_sio
            G:systemd
            Q:systemd
            V:1

            """)

    /// A real 16550A UART (type 4) on the serial-base bus, as kernel 6.x shows it.
    static let uart = SerialPort(
        name: "ttyS0", major: 4, minor: 64, device: "pnp0/00:00/00:00:0/00:00:0.0", driver: "port", type: "4",
        udev: "G:systemd\nQ:systemd\nV:1\n")
    /// An 8250 placeholder without a device link (kernel 6.x).
    static let placeholderWithoutDevice = SerialPort(name: "ttyS1", major: 4, minor: 65, device: nil, type: "0")
    /// An 8250 placeholder of an older kernel: a device (serial8250), but no UART (type 0).
    static let placeholderWithoutUART = SerialPort(
        name: "ttyS2", major: 4, minor: 66, device: "platform/serial8250", driver: "serial8250", type: "0")
}
