/// Where the call button's raw level comes from: one protocol, several backends.
///
/// - `EvdevButtonSource`: a key of a Linux input device (`/dev/input/event*`): a USB HID button box, or a
///   GPIO button through the gpio-keys driver.
/// - `SerialButtonSource`: a serial port: a button box speaking the byte protocol in
///   `hardware/serial-box-protocol.md`, or a switch wired across a modem-control line (contact mode).
/// - `ScriptedButtonSource`: presses from a script (the demo) or Poisson arrivals (load).
/// - `ReplayButtonSource`: an evemu recording played back in real time.
///
/// A source reports only levels and presence. Debounce, hold time, long press, stuck button and chatter are
/// the pure `PressDetector`'s job, fed by `DeviceRuntime.buttonEdge(down:at:)` with the edge's own timestamp,
/// so every backend gets the same treatment and the same configuration, and a verdict never depends on how
/// late an event or a timer is delivered.
///
/// A source that loses its device (unplugged: `ENODEV`; a serial adapter pulled out: `EIO`) reports
/// `.missing` once, keeps trying to reopen it, and reports `.present` when it is back. It throws only for
/// what retrying cannot fix (a configuration that names the wrong kind of device, a key the device does not
/// have); the error says what to change.
public protocol ButtonSource: Sendable {
    /// What the source reads, for logs and `diag`: e.g. `evdev /dev/input/event3 "SOS button" KEY_PROG1`.
    var description: String { get }

    /// Runs until the task is cancelled, calling `emit` for every event in order.
    func run(_ emit: @escaping @Sendable (ButtonEvent) -> Void) async throws
}

/// What a `ButtonSource` reports.
public enum ButtonEvent: Hashable, Sendable {
    /// The button's level changed (after the source's own decoding, before any debounce), at `at` on
    /// `CLOCK_MONOTONIC` (`Duration.monotonicNow`): the kernel's timestamp of an evdev event. `nil`: the
    /// moment the event is taken in, for sources that have no better time.
    case level(down: Bool, at: Duration? = nil)
    /// A verdict of a `PressDetector` that the source ran itself in its own time (the replay backend judges
    /// a recording in the recording's time), with its instants on `CLOCK_MONOTONIC`. Never `.wakeUp`.
    case judged(PressDetector.Action)
    /// The device is open and readable; `initiallyDown` when the button was already held at that moment
    /// (a key held across a restart or a resynchronisation).
    case present(initiallyDown: Bool)
    /// The device is gone or cannot be read; `reason` says why in plain words.
    case missing(reason: String)
    /// The button's enclosure reports that it was opened (a serial box's `T` line).
    case tamper
}

/// The error a source throws when retrying cannot help.
public struct ButtonSourceError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
