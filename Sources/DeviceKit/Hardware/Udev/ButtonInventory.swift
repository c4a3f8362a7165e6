#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Finds the devices that could be the call button, without libudev, by reading what libudev itself reads.
///
/// - Input devices: `<sysfs>/class/input/event*/` with `device/name`, `device/phys`, `device/uniq`,
///   `device/id/{bustype,vendor,product,version}`, `device/capabilities/{ev,key,abs,rel}`, `device/properties`
///   and `dev`; only devices that send keys are candidates.
/// - Serial ports: `<sysfs>/class/tty/ttyUSB*`, `ttyACM*`, `ttyAMA*` (a Raspberry Pi's UARTs) and `ttyS*`; a
///   `ttyS*` only with a real device behind it (a `device` link, and a `type` other than 0, the kernel's
///   `PORT_UNKNOWN` of the 8250 placeholders).
/// - udev's view: `<udevData>/c<major>:<minor>` (properties, links, tags), and whether udevd runs at all.
/// - The node in `<dev>`: owner, group, mode, and `access(2)` for this user.
/// - `<proc>/<pid>/fd/*`: who holds the node open. Processes of other users are skipped silently (only root
///   sees their descriptors); `ButtonInventoryReport.processesNotInspected` counts them.
///
/// Reading never throws: what cannot be read becomes a notice in the report, in plain words.
public struct ButtonInventory: Sendable {
    public var roots: HardwareRoots

    public init(roots: HardwareRoots = .system) {
        self.roots = roots
    }

    /// Everything a technician needs to choose a button: `devicesim diag list` prints it.
    public func scan() -> ButtonInventoryReport {
        let udevRunning = roots.udevIsRunning
        let databasePresent = KernelFile.status(roots.udevData).map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
        var notices: [InventoryNotice] = []
        if !udevRunning { notices.append(.udevNotRunning) }
        let inputClass = roots.sysfs + "/class/input"
        if !KernelFile.exists(inputClass) { notices.append(.noInputClass(inputClass)) }
        if !KernelFile.exists(roots.dev + "/input") { notices.append(.noDevInput(roots.dev + "/input")) }

        var inputs: [InputButtonCandidate] = []
        for sysname in KernelFile.list(inputClass) where sysname.hasPrefix("event") {
            switch inputCandidate(sysname) {
            case .candidate(let candidate): inputs.append(candidate)
            case .skipped(let notice): notices.append(notice)
            case .noKeys: continue
            }
        }
        var ports = serialPorts()

        let holders = ProcessTable(root: roots.proc).holders(of: Set(inputs.map(\.path) + ports.map(\.path)), devRoot: roots.dev)
        for index in inputs.indices { inputs[index].heldBy = holders.byPath[inputs[index].path] ?? [] }
        for index in ports.indices { ports[index].heldBy = holders.byPath[ports[index].path] ?? [] }

        return ButtonInventoryReport(
            inputs: inputs, serialPorts: ports, udevRunning: udevRunning, udevDatabasePresent: databasePresent,
            notices: notices, processesNotInspected: holders.notInspected)
    }

    /// The input and serial devices now present, cheaply (no permissions, no process scan): what the hotplug
    /// poller compares from one look to the next. A device unplugged while this looks is left out, never
    /// half read (`presentDevice`).
    public func presentDevices() -> [PresentDevice] {
        var devices: [PresentDevice] = []
        let inputClass = roots.sysfs + "/class/input"
        for sysname in KernelFile.list(inputClass) where sysname.hasPrefix("event") {
            if let device = presentDevice(subsystem: "input", classDirectory: inputClass, sysname: sysname) { devices.append(device) }
        }
        for sysname in serialPortNames() {
            if let device = presentDevice(subsystem: "tty", classDirectory: roots.sysfs + "/class/tty", sysname: sysname) {
                devices.append(device)
            }
        }
        return devices
    }

    // MARK: Input devices

    private enum InputScan {
        case candidate(InputButtonCandidate)
        /// sysfs holds something we cannot read.
        case skipped(InventoryNotice)
        /// An event device without keys (a mouse wheel, an accelerometer, the PC speaker).
        case noKeys
    }

    private func inputCandidate(_ sysname: String) -> InputScan {
        let directory = "\(roots.sysfs)/class/input/\(sysname)"
        let device = directory + "/device"
        let keys: [UInt16]
        let pointing: PointingDevice?
        do {
            guard let evText = try KernelFile.read(device + "/capabilities/ev") else { return .noKeys }
            let types = try SysfsBitmap.codes(evText)
            guard types.contains(Int(InputEventNames.evKey)),
                let keyText = try KernelFile.read(device + "/capabilities/key")
            else { return .noKeys }
            keys = try SysfsBitmap.codes(keyText).compactMap { $0 <= InputEventNames.keyMax ? UInt16($0) : nil }
            /// A bitmap the kernel may leave out (`properties` before 2.6.38; `abs`, `rel` of a device without).
            func optional(_ file: String, type: UInt16? = nil) throws -> [UInt16] {
                if let type, !types.contains(Int(type)) { return [] }
                guard let text = try KernelFile.read("\(device)/\(file)") else { return [] }
                return try SysfsBitmap.codes(text).compactMap { UInt16(exactly: $0) }
            }
            pointing = PointingDevice.judge(
                keys: keys, absoluteAxes: try optional("capabilities/abs", type: InputEventNames.evAbs),
                relativeAxes: try optional("capabilities/rel", type: InputEventNames.evRel), properties: try optional("properties"))
        } catch let error as SysfsBitmap.ParseError {
            return .skipped(.unreadable(sysname, "its capabilities in \(device)/capabilities are garbled: \(error)"))
        } catch {
            return .skipped(.unreadable(sysname, "cannot read \(device)/capabilities: \(error)"))
        }
        guard !keys.isEmpty else { return .noKeys }

        let number = KernelFile.attribute(directory + "/dev").flatMap(DeviceNumber.init(parsing:))
        let udev = number.flatMap { UdevDatabaseRecord.read(root: roots.udevData, major: $0.major, minor: $0.minor) }
        let path = roots.devPath(devName(directory) ?? "input/\(sysname)")
        return .candidate(InputButtonCandidate(
            sysname: sysname, path: path, stableNames: (udev?.symlinks ?? []).map(roots.devPath),
            name: KernelFile.attribute(device + "/name") ?? "",
            physicalLocation: KernelFile.attribute(device + "/phys").flatMap { $0.isEmpty ? nil : $0 },
            uniqueIdentifier: KernelFile.attribute(device + "/uniq").flatMap { $0.isEmpty ? nil : $0 },
            identity: identity(device + "/id"), deviceNumber: number, keys: keys, pointing: pointing, udev: udev,
            access: NodeInspection.access(path), heldBy: []))
    }

    /// `device/id/*`: four hexadecimal numbers, as `%04x`.
    private func identity(_ directory: String) -> InputDeviceIdentity? {
        func field(_ name: String) -> UInt16? { KernelFile.attribute("\(directory)/\(name)").flatMap { UInt16($0, radix: 16) } }
        guard let bus = field("bustype"), let vendor = field("vendor"), let product = field("product") else { return nil }
        return InputDeviceIdentity(busType: bus, vendor: vendor, product: product, version: field("version") ?? 0)
    }

    /// `DEVNAME=input/event3` from the `uevent` file: the node's name relative to `/dev`.
    private func devName(_ directory: String) -> String? {
        guard let uevent = KernelFile.attribute(directory + "/uevent") else { return nil }
        for line in uevent.split(separator: "\n") where line.hasPrefix("DEVNAME=") {
            let name = line.dropFirst("DEVNAME=".count)
            guard !name.isEmpty, !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else { return nil }
            return String(name)
        }
        return nil
    }

    // MARK: Serial ports

    private func serialPortNames() -> [String] {
        let ttyClass = roots.sysfs + "/class/tty"
        return KernelFile.list(ttyClass).filter { name in
            // ttyAMA: the PL011 UARTs of a Raspberry Pi, where a contact switch is most often wired.
            if name.hasPrefix("ttyUSB") || name.hasPrefix("ttyACM") || name.hasPrefix("ttyAMA") { return true }
            guard name.hasPrefix("ttyS") else { return false }
            // The 8250 driver registers placeholder ttyS ports that have no UART behind them.
            guard KernelFile.exists("\(ttyClass)/\(name)/device") else { return false }
            return KernelFile.attribute("\(ttyClass)/\(name)/type") != "0"
        }
    }

    private func serialPorts() -> [SerialPortCandidate] {
        serialPortNames().map { sysname in
            let directory = "\(roots.sysfs)/class/tty/\(sysname)"
            let number = KernelFile.attribute(directory + "/dev").flatMap(DeviceNumber.init(parsing:))
            let udev = number.flatMap { UdevDatabaseRecord.read(root: roots.udevData, major: $0.major, minor: $0.minor) }
            let driver = KernelFile.readLink(directory + "/device/driver").flatMap { $0.split(separator: "/").last.map(String.init) }
            let path = roots.devPath(devName(directory) ?? sysname)
            return SerialPortCandidate(
                sysname: sysname, path: path, stableNames: (udev?.symlinks ?? []).map(roots.devPath), driver: driver,
                deviceNumber: number, udev: udev, access: NodeInspection.access(path))
        }
    }

    /// One device of a look, or `nil` when it went away while we looked.
    ///
    /// Its class entry is a link into `/sys/devices`, read once: the attributes are read where it pointed, so
    /// a device unplugged (the link gone) or replugged (the link moved) in the middle of a look is either
    /// seen whole or not at all, never as a device without its number or properties that the next look
    /// would report as changed. A device whose number cannot be read is gone too: every input event device
    /// and serial port has one.
    private func presentDevice(subsystem: String, classDirectory: String, sysname: String) -> PresentDevice? {
        // The link names the device's place in sysfs, which for input devices includes the kernel's inputN
        // counter: a button unplugged and plugged back between two looks still counts as a change.
        guard let link = KernelFile.readLink("\(classDirectory)/\(sysname)") else { return nil }
        let directory = link.hasPrefix("/") ? link : "\(classDirectory)/\(link)"
        guard let number = KernelFile.attribute(directory + "/dev").flatMap(DeviceNumber.init(parsing:)) else { return nil }
        let udev = UdevDatabaseRecord.read(root: roots.udevData, major: number.major, minor: number.minor)
        let defaultName = subsystem == "input" ? "input/\(sysname)" : sysname
        return PresentDevice(
            subsystem: subsystem, sysname: sysname, devnode: roots.devPath(devName(directory) ?? defaultName),
            sysfsLink: link, deviceNumber: number, properties: udev?.properties ?? [:])
    }
}

/// An input or serial device present at one look: what the hotplug poller compares.
public struct PresentDevice: Hashable, Sendable {
    /// `input` or `tty`, as udev names the subsystem.
    public var subsystem: String
    public var sysname: String
    public var devnode: String
    /// Where sysfs's class link points (`../../devices/.../input/input17/event3`).
    public var sysfsLink: String
    public var deviceNumber: DeviceNumber?
    /// udev's properties when its database has the device.
    public var properties: [String: String]

    public init(subsystem: String, sysname: String, devnode: String, sysfsLink: String = "",
                deviceNumber: DeviceNumber? = nil, properties: [String: String] = [:]) {
        self.subsystem = subsystem
        self.sysname = sysname
        self.devnode = devnode
        self.sysfsLink = sysfsLink
        self.deviceNumber = deviceNumber
        self.properties = properties
    }
}

// MARK: - Nodes and processes

/// Owner, group, mode and access of a device node, for the user running this program.
enum NodeInspection {
    static func access(_ path: String) -> DeviceNodeAccess {
        guard let info = KernelFile.status(path) else { return DeviceNodeAccess(exists: false) }
        return DeviceNodeAccess(
            exists: true, owner: userName(info.st_uid), group: groupName(info.st_gid),
            mode: "0" + String(info.st_mode & 0o7777, radix: 8),
            readable: Glibc.access(path, R_OK) == 0, writable: Glibc.access(path, W_OK) == 0,
            userInGroup: currentGroups().contains(info.st_gid))
    }

    static func currentGroups() -> Set<gid_t> {
        let count = getgroups(0, nil)
        var groups = [gid_t](repeating: 0, count: Int(max(count, 0)))
        let filled = count > 0 ? getgroups(count, &groups) : 0
        return Set(groups.prefix(Int(max(filled, 0)))).union([getegid(), getgid()])
    }

    static func groupName(_ gid: gid_t) -> String {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.gr_name
        else { return "\(gid)" }
        return String(cString: name)
    }

    static func userName(_ uid: uid_t) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name
        else { return "\(uid)" }
        return String(cString: name)
    }
}

/// Which processes have which device nodes open, from `/proc/<pid>/fd/*`.
struct ProcessTable {
    var root: String

    struct Holders {
        var byPath: [String: [DeviceHolder]] = [:]
        /// Processes whose descriptors we may not read (other users', unless we are root).
        var notInspected = 0
    }

    /// The holders of each of `paths`. A descriptor's link shows the path as the kernel sees it (`/dev/...`),
    /// so a path under a test's `/dev` root matches its `/dev/` form too.
    func holders(of paths: Set<String>, devRoot: String) -> Holders {
        var wanted: [String: String] = [:]
        for path in paths {
            wanted[path] = path
            if path.hasPrefix(devRoot + "/") { wanted["/dev" + String(path.dropFirst(devRoot.count))] = path }
        }
        var holders = Holders()
        guard !wanted.isEmpty else { return holders }
        for entry in KernelFile.list(root) {
            guard let pid = Int32(entry) else { continue }
            let fdDirectory = "\(root)/\(entry)/fd"
            guard let stream = opendir(fdDirectory) else {
                if KernelFile.exists(fdDirectory) { holders.notInspected += 1 }
                continue
            }
            closedir(stream)
            var seen: Set<String> = []
            for fd in KernelFile.list(fdDirectory) {
                guard let target = KernelFile.readLink("\(fdDirectory)/\(fd)"), let path = wanted[target],
                    seen.insert(path).inserted
                else { continue }
                let command = KernelFile.attribute("\(root)/\(entry)/comm") ?? "?"
                holders.byPath[path, default: []].append(DeviceHolder(pid: pid, command: command))
            }
        }
        for path in holders.byPath.keys { holders.byPath[path]?.sort { $0.pid < $1.pid } }
        return holders
    }
}
