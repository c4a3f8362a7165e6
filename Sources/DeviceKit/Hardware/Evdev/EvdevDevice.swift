import Glibc

/// What an open `/dev/input/event*` device says about itself (`EVIOCGNAME`, `EVIOCGID`, `EVIOCGPHYS`,
/// `EVIOCGUNIQ`, `EVIOCGBIT`, `EVIOCGPROP`), and the choice of the key that is the call button.
public struct EvdevDeviceInfo: Hashable, Sendable {
    public var path: String
    public var name: String
    public var identity: InputDeviceIdentity
    public var physicalLocation: String?
    public var uniqueIdentifier: String?
    /// The event types it can send (`EV_KEY`, `EV_MSC`, ...).
    public var eventTypes: [UInt16]
    /// The key and button codes it can send.
    public var keys: [UInt16]
    /// Its absolute axes (`EV_ABS`: `ABS_X`, `ABS_MT_POSITION_X`, `ABS_VOLUME`, ...).
    public var absoluteAxes: [UInt16]
    /// Its relative axes (`EV_REL`: `REL_X`, `REL_WHEEL`, ...).
    public var relativeAxes: [UInt16]
    /// Its input properties (`INPUT_PROP_POINTER`, `INPUT_PROP_DIRECT`, ...).
    public var properties: [UInt16]

    public init(
        path: String, name: String, identity: InputDeviceIdentity, physicalLocation: String? = nil,
        uniqueIdentifier: String? = nil, eventTypes: [UInt16], keys: [UInt16], absoluteAxes: [UInt16] = [],
        relativeAxes: [UInt16] = [], properties: [UInt16] = []
    ) {
        self.path = path
        self.name = name
        self.identity = identity
        self.physicalLocation = physicalLocation
        self.uniqueIdentifier = uniqueIdentifier
        self.eventTypes = eventTypes
        self.keys = keys
        self.absoluteAxes = absoluteAxes
        self.relativeAxes = relativeAxes
        self.properties = properties
    }

    /// Reads the identity through `control`, in this order: name, id, phys, uniq, event types, then the codes
    /// of `EV_KEY`, `EV_ABS` and `EV_REL` (those it has), then the input properties.
    public static func read(path: String, fd: CInt, control: some InputDeviceControl) throws(DeviceControlError) -> EvdevDeviceInfo {
        let name = try control.name(fd)
        let identity = try control.identity(fd)
        let phys = try control.physicalLocation(fd)
        let uniq = try control.uniqueIdentifier(fd)
        let types = try control.capabilities(fd, eventType: 0).codes.map { UInt16($0) }
        func codes(_ type: UInt16) throws(DeviceControlError) -> [UInt16] {
            types.contains(type) ? try control.capabilities(fd, eventType: type).codes.map { UInt16($0) } : []
        }
        let keys = try codes(InputEventNames.evKey)
        let absolute = try codes(InputEventNames.evAbs)
        let relative = try codes(InputEventNames.evRel)
        let properties = try control.properties(fd).codes.map { UInt16($0) }
        return EvdevDeviceInfo(
            path: path, name: name, identity: identity, physicalLocation: phys, uniqueIdentifier: uniq,
            eventTypes: types, keys: keys, absoluteAxes: absolute, relativeAxes: relative, properties: properties)
    }

    /// Whether it is a mouse, touchpad, touchscreen, pen tablet or joystick rather than a button, and why.
    public var pointing: PointingDevice? {
        PointingDevice.judge(keys: keys, absoluteAxes: absoluteAxes, relativeAxes: relativeAxes, properties: properties)
    }

    /// The configured key, or the device's only key; otherwise an error that lists the choices. A pointing
    /// device (`pointing`) is refused, chosen or not, unless `allowPointerDevice`
    /// (`button.allow_pointer_device = true`).
    public func callButtonKey(configured: UInt16?, allowPointerDevice: Bool = false) throws(ButtonSourceError) -> UInt16 {
        let key = try chooseKey(configured: configured)
        if let pointing, !allowPointerDevice {
            throw ButtonSourceError(pointing.refusal(path: path, name: name, key: key, configured: configured != nil))
        }
        return key
    }

    /// The configured key if the device has it, or its only key; pointing or not.
    func chooseKey(configured: UInt16?) throws(ButtonSourceError) -> UInt16 {
        let names = keys.prefix(12).map { InputEventNames.code(type: InputEventNames.evKey, code: $0) }.joined(separator: ", ")
            + (keys.count > 12 ? ", … (\(keys.count) keys)" : "")
        if let configured {
            guard keys.contains(configured) else {
                let wanted = InputEventNames.code(type: InputEventNames.evKey, code: configured)
                throw ButtonSourceError(
                    keys.isEmpty
                        ? "\(path) (\"\(name)\") has no keys at all: it is not a button; pick another device (devicesim diag list)"
                        : "\(path) (\"\(name)\") cannot send \(wanted); it sends \(names): set button.key to one of them")
            }
            return configured
        }
        switch keys.count {
        case 1: return keys[0]
        case 0:
            throw ButtonSourceError("\(path) (\"\(name)\") has no keys at all: it is not a button; pick another device (devicesim diag list)")
        default:
            throw ButtonSourceError("\(path) (\"\(name)\") has \(keys.count) keys (\(names)): set button.key to the call button's key")
        }
    }

    /// `usb 046d:c52b`, as a technician reads it off `lsusb`.
    public var busDescription: String {
        let bus: String
        switch identity.busType {
        case 0x03: bus = "usb"
        case 0x05: bus = "bluetooth"
        case 0x11: bus = "i8042"
        case 0x19: bus = "host (gpio-keys, platform)"
        case 0x06: bus = "virtual"
        default: bus = "bus 0x" + String(identity.busType, radix: 16)
        }
        func hex(_ v: UInt16) -> String { String(repeating: "0", count: 4 - String(v, radix: 16).count) + String(v, radix: 16) }
        return "\(bus) \(hex(identity.vendor)):\(hex(identity.product))"
    }
}
