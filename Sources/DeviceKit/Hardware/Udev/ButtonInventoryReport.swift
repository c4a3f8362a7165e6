import Foundation

/// The result of `ButtonInventory.scan()`: every candidate call button and serial port, and why there may be
/// none. `text` is what `devicesim diag list` prints for a technician; `json()` is its `--json`.
public struct ButtonInventoryReport: Hashable, Sendable {
    public var inputs: [InputButtonCandidate]
    public var serialPorts: [SerialPortCandidate]
    /// Whether udevd runs (its control socket exists).
    public var udevRunning: Bool
    /// Whether udev's database directory exists.
    public var udevDatabasePresent: Bool
    /// What about the system as a whole explains a short or empty list.
    public var notices: [InventoryNotice]
    /// Processes whose open files we may not look at: a holder among them would not be listed.
    public var processesNotInspected: Int

    public init(
        inputs: [InputButtonCandidate], serialPorts: [SerialPortCandidate], udevRunning: Bool,
        udevDatabasePresent: Bool, notices: [InventoryNotice] = [], processesNotInspected: Int = 0
    ) {
        self.inputs = inputs
        self.serialPorts = serialPorts
        self.udevRunning = udevRunning
        self.udevDatabasePresent = udevDatabasePresent
        self.notices = notices
        self.processesNotInspected = processesNotInspected
    }

    /// Whether there is nothing at all to choose from.
    public var isEmpty: Bool { inputs.isEmpty && serialPorts.isEmpty }

    /// Everything worth saying about the system as a whole, including why the list is empty.
    public var systemNotes: [String] {
        var notes = notices.map(\.description)
        if processesNotInspected > 0 {
            let who = processesNotInspected == 1
                ? "1 process of another user was" : "\(processesNotInspected) processes of other users were"
            notes.append("\(who) not checked for holding a device open: run as root (sudo) to see them all")
        }
        if isEmpty {
            notes.append(
                "No candidate call button: no input device that sends keys and no serial port (ttyUSB, ttyACM, ttyAMA, ttyS) "
                    + "was found. Plug the button in (a USB button box, or a GPIO button with the gpio-keys overlay "
                    + "from hardware/ and a reboot), then run `devicesim diag list` again.")
        }
        return notes
    }

    // MARK: Text

    /// The report for a technician: one block per candidate, then what to do.
    public var text: String {
        var lines: [String] = []
        lines.append("Input devices with keys: \(inputs.isEmpty ? "none" : "\(inputs.count)")")
        for input in inputs {
            lines.append("")
            lines += block(input)
        }
        lines.append("")
        lines.append("Serial ports: \(serialPorts.isEmpty ? "none" : "\(serialPorts.count)")")
        for port in serialPorts {
            lines.append("")
            lines += block(port)
        }
        let notes = systemNotes
        if !notes.isEmpty {
            lines.append("")
            lines += notes.map { "Note: " + $0 }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func block(_ input: InputButtonCandidate) -> [String] {
        var lines = [input.path]
        lines.append("  stable names: " + stableNamesText(input.stableNames, udevHint: "/dev/input/by-path"))
        var identity = "  name: \"\(input.name)\""
        if let id = input.identity {
            identity += ", bus \(id.busName), vendor \(Self.hex4(id.vendor)), product \(Self.hex4(id.product))"
        }
        lines.append(identity)
        if let phys = input.physicalLocation { lines.append("  location: \(phys)") }
        lines.append("  keys: " + keysText(input))
        if input.logind.basis == .untagged && !input.logind.keys.isEmpty {
            let names = input.logind.keys.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) }
            lines.append("  \(names.joined(separator: ", ")): udev has not tagged it power-switch, so systemd-logind ignores it")
        }
        lines += daemonLines(input.heldBy)
        lines += verdictLines(input.warnings, ok: "OK to use as the call button.", access: input.access)
        return lines
    }

    private func block(_ port: SerialPortCandidate) -> [String] {
        var lines = [port.path]
        lines.append("  stable names: " + stableNamesText(port.stableNames, udevHint: "/dev/serial/by-id"))
        var identity: [String] = []
        if let serial = port.serial { identity.append("adapter \(serial)") }
        if let vendor = port.vendorID, let model = port.modelID { identity.append("vendor \(vendor), product \(model)") }
        if let driver = port.driver { identity.append("driver \(driver)") }
        if !identity.isEmpty { lines.append("  " + identity.joined(separator: ", ")) }
        lines += daemonLines(port.heldBy)
        lines += verdictLines(port.warnings, ok: "OK to use for a serial button box or a contact switch.", access: port.access)
        return lines
    }

    private func daemonLines(_ holders: [DeviceHolder]) -> [String] {
        holders.filter(\.isDeviceDaemon).map { "  in use by the device daemon: \($0)" }
    }

    private func verdictLines(_ warnings: [String], ok: String, access: DeviceNodeAccess) -> [String] {
        var lines: [String] = []
        if access.exists { lines.append("  node: owner \(access.owner), group \(access.group), mode \(access.mode)") }
        lines += warnings.isEmpty ? ["  " + ok] : warnings.map { "  WARNING: " + $0 }
        return lines
    }

    private func stableNamesText(_ names: [String], udevHint: String) -> String {
        if !names.isEmpty { return names.joined(separator: ", ") }
        if !udevRunning { return "none (udevd is not running: use the path above)" }
        return "none (no \(udevHint) link: check the udev rules in hardware/udev)"
    }

    private func keysText(_ input: InputButtonCandidate) -> String {
        let names = input.keyNames
        if names.count <= 8 { return names.joined(separator: ", ") }
        return "\(names.count) keys" + (input.isKeyboard ? " (a keyboard)" : " (\(names.prefix(4).joined(separator: ", ")), ...)")
    }

    static func hex4(_ value: UInt16) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    // MARK: JSON

    /// The report as JSON, keys sorted, for scripts and the fleet tools (the shape is `ButtonInventoryJSON`).
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(ButtonInventoryJSON(self)), as: UTF8.self)
    }
}

/// Something about the system as a whole that explains a short or empty list, with what to do.
public enum InventoryNotice: Hashable, Sendable, CustomStringConvertible {
    /// udevd's control socket is missing.
    case udevNotRunning
    /// `/sys/class/input` is missing: no input subsystem.
    case noInputClass(String)
    /// `/dev/input` is missing: no input nodes.
    case noDevInput(String)
    /// A device whose sysfs entries could not be read.
    case unreadable(String, String)

    public var description: String {
        switch self {
        case .udevNotRunning:
            return "udevd is not running (a container?): stable names like /dev/input/by-path are missing; use the eventN path"
        case .noInputClass(let path):
            return "\(path) is missing: this system has no input subsystem (a container, or a kernel without evdev); "
                + "run on the device itself"
        case .noDevInput(let path):
            return "\(path) is missing: there are no input device nodes here (a container without the devices "
                + "passed in?); run on the device itself or pass /dev/input into the container"
        case let .unreadable(sysname, reason):
            return "\(sysname) skipped: \(reason)"
        }
    }
}

/// The JSON shape of `diag list --json`.
struct ButtonInventoryJSON: Encodable {
    struct Input: Encodable {
        var path: String
        var sysname: String
        var stableNames: [String]
        var name: String
        var phys: String?
        var uniq: String?
        var bus: String?
        var vendor: String?
        var product: String?
        var version: String?
        var keys: [String]
        var keyboard: Bool
        var logind: Logind
        var access: DeviceNodeAccess
        var heldBy: [DeviceHolder]
        var usable: Bool
        var warnings: [String]
        var udevProperties: [String: String]?
    }

    struct Logind: Encodable {
        var keys: [String]
        var basis: String
        var acts: Bool
    }

    struct Serial: Encodable {
        var path: String
        var sysname: String
        var stableNames: [String]
        var driver: String?
        var serial: String?
        var vendor: String?
        var product: String?
        var idPath: String?
        var access: DeviceNodeAccess
        var heldBy: [DeviceHolder]
        var usable: Bool
        var warnings: [String]
    }

    var udevRunning: Bool
    var udevDatabase: Bool
    var notes: [String]
    var inputs: [Input]
    var serialPorts: [Serial]

    init(_ report: ButtonInventoryReport) {
        udevRunning = report.udevRunning
        udevDatabase = report.udevDatabasePresent
        notes = report.systemNotes
        inputs = report.inputs.map { input in
            Input(
                path: input.path, sysname: input.sysname, stableNames: input.stableNames, name: input.name,
                phys: input.physicalLocation, uniq: input.uniqueIdentifier, bus: input.identity?.busName,
                vendor: input.identity.map { ButtonInventoryReport.hex4($0.vendor) },
                product: input.identity.map { ButtonInventoryReport.hex4($0.product) },
                version: input.identity.map { ButtonInventoryReport.hex4($0.version) }, keys: input.keyNames,
                keyboard: input.isKeyboard,
                logind: Logind(
                    keys: input.logind.keys.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) },
                    basis: input.logind.basis.rawValue, acts: input.logind.acts),
                access: input.access, heldBy: input.heldBy, usable: input.isUsable, warnings: input.warnings,
                udevProperties: input.udev?.properties)
        }
        serialPorts = report.serialPorts.map { port in
            Serial(
                path: port.path, sysname: port.sysname, stableNames: port.stableNames, driver: port.driver,
                serial: port.serial, vendor: port.vendorID, product: port.modelID, idPath: port.idPath,
                access: port.access, heldBy: port.heldBy, usable: port.isUsable, warnings: port.warnings)
        }
    }
}
