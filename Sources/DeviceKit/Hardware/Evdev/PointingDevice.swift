/// Why an input device is something a person points, touches or steers with (a mouse, touchpad,
/// touchscreen, pen tablet, joystick) rather than a button: its position axes and input properties.
///
/// A touchscreen whose only key is `BTN_TOUCH` has exactly one key, like a call button; every tap would
/// raise an alarm. Such a device is never taken as the call button automatically, and choosing it needs
/// `button.allow_pointer_device = true` (selftest then warns). Pure: judged from the capabilities alone,
/// read live (`EVIOCGBIT(EV_ABS)`, `EVIOCGBIT(EV_REL)`, `EVIOCGPROP`), from sysfs, or from an evemu
/// recording's `B:` and `P:` lines.
public struct PointingDevice: Hashable, Sendable, CustomStringConvertible {
    /// `a touchscreen`, `a joystick or gamepad`, ...
    public var kind: String
    /// What gave it away, as the kernel names it: `INPUT_PROP_DIRECT`, `ABS_X`, `REL_Y`, `BTN_TOUCH`.
    public var evidence: [String]

    public init(kind: String, evidence: [String]) {
        self.kind = kind
        self.evidence = evidence
    }

    /// `a touchscreen (INPUT_PROP_DIRECT, ABS_X, ABS_Y)`.
    public var description: String { "\(kind) (\(evidence.joined(separator: ", ")))" }

    // linux/input-event-codes.h
    static let relX: UInt16 = 0x00, relY: UInt16 = 0x01
    static let absX: UInt16 = 0x00, absY: UInt16 = 0x01
    static let absMTPositionX: UInt16 = 0x35, absMTPositionY: UInt16 = 0x36
    static let propPointer: UInt16 = 0x00, propDirect: UInt16 = 0x01
    static let btnMouse: ClosedRange<UInt16> = 0x110...0x117
    static let btnJoystick: ClosedRange<UInt16> = 0x120...0x13e  // BTN_JOYSTICK ... BTN_THUMBR (gamepads)
    static let btnToolPen: UInt16 = 0x140, btnToolFinger: UInt16 = 0x145, btnTouch: UInt16 = 0x14a

    /// The pointing traits of a device with these capabilities, or `nil` for a device that only has keys
    /// (and perhaps a wheel, a volume knob, switches or LEDs, which no one points with).
    public static func judge(
        keys: [UInt16], absoluteAxes: [UInt16], relativeAxes: [UInt16], properties: [UInt16]
    ) -> PointingDevice? {
        var evidence: [String] = []
        if properties.contains(propPointer) { evidence.append("INPUT_PROP_POINTER") }
        if properties.contains(propDirect) { evidence.append("INPUT_PROP_DIRECT") }
        let position = absoluteAxes.filter { [absX, absY, absMTPositionX, absMTPositionY].contains($0) }
        evidence += position.map(absoluteAxisName)
        let motion = relativeAxes.filter { $0 == relX || $0 == relY }
        evidence += motion.map { $0 == relX ? "REL_X" : "REL_Y" }
        guard !evidence.isEmpty else { return nil }
        let kind: String
        if keys.contains(btnToolPen) {
            kind = "a pen tablet"
        } else if properties.contains(propDirect) || (keys.contains(btnTouch) && !position.isEmpty && !properties.contains(propPointer)) {
            kind = "a touchscreen"
        } else if keys.contains(where: btnJoystick.contains) {
            kind = "a joystick or gamepad"
        } else if properties.contains(propPointer) || keys.contains(btnToolFinger) {
            kind = "a touchpad"
        } else if !motion.isEmpty {
            kind = "a mouse or trackball"
        } else {
            kind = "a pointing device"
        }
        let telling = keys.filter { $0 == btnTouch || $0 == btnToolPen || $0 == btnToolFinger }
        return PointingDevice(kind: kind, evidence: evidence + telling.map { InputEventNames.code(type: InputEventNames.evKey, code: $0) })
    }

    static func absoluteAxisName(_ code: UInt16) -> String {
        switch code {
        case absX: "ABS_X"
        case absY: "ABS_Y"
        case absMTPositionX: "ABS_MT_POSITION_X"
        case absMTPositionY: "ABS_MT_POSITION_Y"
        default: "ABS_0x\(String(code, radix: 16))"
        }
    }

    /// Why the device is refused as the call button, and what to do: pick a real button, or, if it really
    /// is the button, say so explicitly.
    func refusal(path: String, name: String, key: UInt16, configured: Bool) -> String {
        let keyName = InputEventNames.code(type: InputEventNames.evKey, code: key)
        let how = configured
            ? "set button.allow_pointer_device = true"
            : "set button.key = \"\(keyName)\" and button.allow_pointer_device = true"
        return "\(path) (\"\(name)\") is \(self), not a button: its \(keyName) would raise an alarm at every touch or click, "
            + "so it is never taken as the call button by itself. Pick the real button (devicesim diag list); only if this "
            + "device really is the call button, \(how)"
    }
}
