import Glibc

/// What an open `/dev/input/event*` device says about itself (`EVIOCGNAME`, `EVIOCGID`, `EVIOCGPHYS`,
/// `EVIOCGUNIQ`, `EVIOCGBIT`), and the choice of the key that is the call button.
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

    /// Reads the identity through `control`, in this order: name, id, phys, uniq, event types, keys.
    public static func read(path: String, fd: CInt, control: some InputDeviceControl) throws(DeviceControlError) -> EvdevDeviceInfo {
        let name = try control.name(fd)
        let identity = try control.identity(fd)
        let phys = try control.physicalLocation(fd)
        let uniq = try control.uniqueIdentifier(fd)
        let types = try control.capabilities(fd, eventType: 0).codes.map { UInt16($0) }
        let keys = types.contains(InputEventNames.evKey)
            ? try control.capabilities(fd, eventType: InputEventNames.evKey).codes.map { UInt16($0) } : []
        return EvdevDeviceInfo(
            path: path, name: name, identity: identity, physicalLocation: phys, uniqueIdentifier: uniq,
            eventTypes: types, keys: keys)
    }

    /// The configured key, or the device's only key; otherwise an error that lists the choices.
    public func callButtonKey(configured: UInt16?) throws(ButtonSourceError) -> UInt16 {
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
