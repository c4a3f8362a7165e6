/// What the inventory found: every device that could be the call button, and what stands in the way of each.
///
/// Plain values, filled in by `ButtonInventory.scan()`; the judgements (`warnings`, `isUsable`) are pure
/// functions of them, so tests build candidates by hand and check the words a technician will read.

/// Who may open a device node, and whether the user running this program can.
public struct DeviceNodeAccess: Hashable, Sendable, Codable {
    /// Whether there is a node at the path at all (a container often has `/sys` but not `/dev/input`).
    public var exists: Bool
    /// The owner's and group's names (or numbers when the system has no name for them).
    public var owner: String
    public var group: String
    /// The permission bits, octal (`0660`).
    public var mode: String
    /// `access(2)` with `R_OK` and `W_OK` for this user.
    public var readable: Bool
    public var writable: Bool
    /// Whether this process has the node's group among its groups.
    public var userInGroup: Bool

    public init(exists: Bool, owner: String = "", group: String = "", mode: String = "", readable: Bool = false,
                writable: Bool = false, userInGroup: Bool = false) {
        self.exists = exists
        self.owner = owner
        self.group = group
        self.mode = mode
        self.readable = readable
        self.writable = writable
        self.userInGroup = userInGroup
    }
}

/// A process that has the device open.
public struct DeviceHolder: Hashable, Sendable, Codable, CustomStringConvertible {
    public var pid: Int32
    /// Its `comm` (`Xorg`, `gpsd`, `ModemManager`).
    public var command: String

    public init(pid: Int32, command: String) {
        self.pid = pid
        self.command = command
    }

    public var description: String { "process \(pid) (\(command))" }

    /// Whether it is DeviceKit's own daemon (`devicesim run`), whose hold on the button is expected.
    public var isDeviceDaemon: Bool { command == "devicesim" }
}

/// Whether systemd-logind would shut down, suspend or reboot the device when one of this device's keys is
/// pressed, and how sure we are.
///
/// logind watches input devices that udev tagged `power-switch` (systemd's `70-power-switch.rules` tags every
/// device with keys) and acts on `KEY_POWER`, `KEY_POWER2`, `KEY_SLEEP`, `KEY_SUSPEND` and `KEY_RESTART`.
public struct LogindExposure: Hashable, Sendable, Codable {
    /// How we know whether logind watches the device.
    public enum Basis: String, Hashable, Sendable, Codable {
        /// udev tagged it `power-switch`: logind watches it.
        case powerSwitchTag = "power-switch tag"
        /// udev's record has no `power-switch` tag: logind ignores the device.
        case untagged = "no power-switch tag"
        /// There is no udev record, so the tag is unknown; logind is assumed to watch it, as it would after
        /// systemd's default rules.
        case assumedWithoutUdevDatabase = "assumed: no udev database"
    }

    /// The device's keys that logind acts on.
    public var keys: [UInt16]
    public var basis: Basis

    public init(keys: [UInt16], basis: Basis) {
        self.keys = keys
        self.basis = basis
    }

    /// Whether a press of one of `keys` would reach logind.
    public var acts: Bool { !keys.isEmpty && basis != .untagged }

    /// The logind keys among `keys`, and whether logind watches a device with `tags` (nil: no udev record).
    public static func assess(keys: [UInt16], tags: Set<String>?) -> LogindExposure {
        let watched = keys.filter { InputEventNames.logindKeys[$0] != nil }
        guard let tags else { return LogindExposure(keys: watched, basis: .assumedWithoutUdevDatabase) }
        return LogindExposure(keys: watched, basis: tags.contains("power-switch") ? .powerSwitchTag : .untagged)
    }
}

/// An input device (`/dev/input/eventN`) that sends keys: a candidate call button.
public struct InputButtonCandidate: Hashable, Sendable {
    /// `event3`.
    public var sysname: String
    /// The node, under the inventory's `/dev` root (`/dev/input/event3`).
    public var path: String
    /// udev's links to it, as full paths (`/dev/input/by-path/...`, `/dev/input/by-id/...`, `/dev/sos-button`).
    public var stableNames: [String]
    /// The driver's name for it (`gpio_keys`, `Logitech USB Keyboard`).
    public var name: String
    public var physicalLocation: String?
    public var uniqueIdentifier: String?
    /// Bus, vendor, product and version from `device/id`; `nil` when sysfs has no `id` directory.
    public var identity: InputDeviceIdentity?
    public var deviceNumber: DeviceNumber?
    /// Every key code it can send, ascending.
    public var keys: [UInt16]
    /// Whether it is a mouse, touchpad, touchscreen, pen tablet or joystick (`capabilities/abs`, `rel`,
    /// `properties`), which is never the call button unless the configuration says so.
    public var pointing: PointingDevice?
    /// udev's record, or `nil` when udev's database has none.
    public var udev: UdevDatabaseRecord?
    public var logind: LogindExposure
    public var access: DeviceNodeAccess
    public var heldBy: [DeviceHolder]

    public init(
        sysname: String, path: String, stableNames: [String] = [], name: String, physicalLocation: String? = nil,
        uniqueIdentifier: String? = nil, identity: InputDeviceIdentity? = nil, deviceNumber: DeviceNumber? = nil,
        keys: [UInt16], pointing: PointingDevice? = nil, udev: UdevDatabaseRecord? = nil, logind: LogindExposure? = nil,
        access: DeviceNodeAccess, heldBy: [DeviceHolder] = []
    ) {
        self.sysname = sysname
        self.path = path
        self.stableNames = stableNames
        self.name = name
        self.physicalLocation = physicalLocation
        self.uniqueIdentifier = uniqueIdentifier
        self.identity = identity
        self.deviceNumber = deviceNumber
        self.keys = keys
        self.pointing = pointing
        self.udev = udev
        self.logind = logind ?? .assess(keys: keys, tags: udev?.tags)
        self.access = access
        self.heldBy = heldBy
    }

    /// Whether it is a keyboard: udev says so, or (without udev) it has the letter keys.
    public var isKeyboard: Bool {
        if let udev { return udev.properties["ID_INPUT_KEYBOARD"] == "1" }
        return [16, 30, 44].allSatisfy(keys.contains)  // KEY_Q, KEY_A, KEY_Z
    }

    /// The key names, as the kernel spells them.
    public var keyNames: [String] { keys.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) } }

    /// What stands between this device and its use as the call button, one sentence each; empty when none.
    public var warnings: [String] {
        var warnings: [String] = []
        if let pointing {
            warnings.append(
                "it is \(pointing), not a button: every touch or click would raise an alarm; it is never taken as the "
                    + "call button by itself (only with button.allow_pointer_device = true)")
        }
        for key in logind.keys where logind.acts {
            let name = InputEventNames.code(type: InputEventNames.evKey, code: key)
            let effect = LogindKeyEffect(code: key)
            let certainty = logind.basis == .assumedWithoutUdevDatabase
                ? " (assumed: without udev's database the power-switch tag cannot be checked)" : ""
            warnings.append(
                "systemd-logind treats \(name) on this device as the \(effect.role): pressing it would \(effect.consequence)"
                    + "\(certainty) — use a different key or the udev rule in hardware/udev that removes the power-switch tag")
        }
        warnings += nodeWarnings(path: path, access: access, group: "input", needsWrite: false)
        let others = heldBy.filter { !$0.isDeviceDaemon }
        if !others.isEmpty {
            warnings.append(
                "held by \(others.map(\.description).joined(separator: ", ")): it may grab the device or act on its keys too")
        }
        return warnings
    }

    /// Whether nothing stands in the way.
    public var isUsable: Bool { warnings.isEmpty }
}

/// A serial port (`/dev/ttyUSB0`, `/dev/ttyACM0`, a real `/dev/ttyS0`): a candidate for a button box or a
/// switch across its modem lines.
public struct SerialPortCandidate: Hashable, Sendable {
    /// `ttyUSB0`.
    public var sysname: String
    public var path: String
    /// udev's links (`/dev/serial/by-id/...`, `/dev/serial/by-path/...`).
    public var stableNames: [String]
    /// The kernel driver (`ftdi_sio`, `cdc_acm`, `serial8250`, `port`).
    public var driver: String?
    public var deviceNumber: DeviceNumber?
    public var udev: UdevDatabaseRecord?
    public var access: DeviceNodeAccess
    public var heldBy: [DeviceHolder]

    public init(
        sysname: String, path: String, stableNames: [String] = [], driver: String? = nil,
        deviceNumber: DeviceNumber? = nil, udev: UdevDatabaseRecord? = nil, access: DeviceNodeAccess,
        heldBy: [DeviceHolder] = []
    ) {
        self.sysname = sysname
        self.path = path
        self.stableNames = stableNames
        self.driver = driver
        self.deviceNumber = deviceNumber
        self.udev = udev
        self.access = access
        self.heldBy = heldBy
    }

    /// udev's `ID_SERIAL` (`FTDI_FT232R_USB_UART_A50285BI`): maker, model and serial number of a USB adapter.
    public var serial: String? { udev?.properties["ID_SERIAL"] }
    public var vendorID: String? { udev?.properties["ID_VENDOR_ID"] }
    public var modelID: String? { udev?.properties["ID_MODEL_ID"] }
    public var idPath: String? { udev?.properties["ID_PATH"] }

    public var warnings: [String] {
        var warnings = nodeWarnings(path: path, access: access, group: "dialout", needsWrite: true)
        let others = heldBy.filter { !$0.isDeviceDaemon }
        if !others.isEmpty {
            warnings.append(
                "held by \(others.map(\.description).joined(separator: ", ")): two programs reading one port each get "
                    + "half the bytes; stop the other one (ModemManager probes new ports: see hardware/udev)")
        }
        return warnings
    }

    public var isUsable: Bool { warnings.isEmpty }
}

/// Why a node cannot be used, for input devices (group `input`) and serial ports (group `dialout`).
private func nodeWarnings(path: String, access: DeviceNodeAccess, group: String, needsWrite: Bool) -> [String] {
    guard access.exists else {
        return ["there is no device node at \(path) (a container without the device passed in?): "
            + "run on the device itself or pass the device into the container"]
    }
    guard !access.readable || (needsWrite && !access.writable) else { return [] }
    if access.group != group {
        return ["you cannot open it: its group is \(access.group), not \(group) — install the udev rule in "
            + "hardware/udev (it gives the node group \(group)), or run as root"]
    }
    if access.userInGroup {
        return ["you cannot open it although you are in group \(group): its mode is \(access.mode); "
            + "install the udev rule in hardware/udev (mode 0660)"]
    }
    return ["you cannot open it: add the user to group \(group) (sudo usermod -aG \(group) $USER, then log in "
        + "again) or run as the devicekit user"]
}

/// What logind does on each key it watches, in a technician's words.
struct LogindKeyEffect {
    var role: String
    var consequence: String

    init(code: UInt16) {
        let effect: (String, String) =
            switch code {
            case 116, 356: ("power key", "shut the device down")
            case 142: ("sleep key", "suspend the device")
            case 205: ("suspend key", "hibernate the device")
            case 0x198: ("restart key", "reboot the device")
            default: ("a system key", "act on the whole device")
            }
        role = effect.0
        consequence = effect.1
    }
}

extension InputDeviceIdentity {
    /// The bus as `linux/input.h` names it (`usb`, `host` for gpio-keys), or its number in hex.
    public var busName: String {
        let names: [UInt16: String] = [
            0x01: "pci", 0x03: "usb", 0x05: "bluetooth", 0x06: "virtual", 0x10: "isa", 0x11: "i8042",
            0x13: "rs232", 0x18: "i2c", 0x19: "host", 0x1C: "spi",
        ]
        return names[busType] ?? "0x" + String(busType, radix: 16)
    }
}
