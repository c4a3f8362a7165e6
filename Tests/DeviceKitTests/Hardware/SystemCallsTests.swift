/// Tests of the ioctl layer against real descriptors: a pseudo-terminal, a regular file, a pipe, and libudev.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CDeviceSys
import DeviceKit
import Testing

/// A descriptor that is not an evdev device, opened for one test and closed after.
enum NotAnInputDevice: String, CaseIterable, CustomTestStringConvertible {
    case regularFile = "a regular temporary file"
    case pipeReadEnd = "the read end of a pipe"

    var testDescription: String { rawValue }

    /// Opens the descriptor, runs `body` on it, and closes everything opened.
    func withDescriptor(_ body: (CInt) throws -> Void) throws {
        switch self {
        case .regularFile:
            var template = Array("/tmp/devicekit-hw-XXXXXX".utf8CString)
            let fd = template.withUnsafeMutableBufferPointer { path in
                path.baseAddress.map { mkstemp($0) } ?? -1
            }
            try #require(fd >= 0, "mkstemp failed: \(Errno.current)")
            template.withUnsafeBufferPointer { path in _ = path.baseAddress.map { unlink($0) } }
            defer { close(fd) }
            try body(fd)
        case .pipeReadEnd:
            var ends: [CInt] = [-1, -1]
            try #require(pipe(&ends) == 0, "pipe failed: \(Errno.current)")
            defer { close(ends[0]); close(ends[1]) }
            try body(ends[0])
        }
    }
}

/// Opens a pseudo-terminal pair, runs `body` on both ends, and closes them.
func withPseudoTerminal(_ body: (_ controller: CInt, _ terminal: CInt) throws -> Void) throws {
    var controller: CInt = -1
    var terminal: CInt = -1
    try #require(openpty(&controller, &terminal, nil, nil, nil) == 0, "openpty failed: \(Errno.current)")
    defer { close(controller); close(terminal) }
    try body(controller, terminal)
}

@Suite("Hardware system calls")
struct HardwareSystemCallsTests {
    let serial = LinuxSerialLineControl()
    let input = LinuxInputDeviceControl()

    // MARK: Serial modem lines on a pseudo-terminal (Linux answers ENOTTY on both ends)

    @Test("Reading the modem lines of a pseudo-terminal says it has no modem lines")
    func modemLinesOnPseudoTerminal() throws {
        try withPseudoTerminal { controller, terminal in
            for fd in [controller, terminal] {
                let error = #expect(throws: DeviceControlError.noModemLines(call: "TIOCMGET", errno: .inappropriateIOCTLForDevice)) {
                    try serial.modemLines(fd)
                }
                #expect(error?.description == "TIOCMGET: this port has no modem lines (it is a pseudo-terminal or the driver lacks TIOCMGET) [Inappropriate ioctl for device]")
            }
        }
    }

    @Test("Reading the interrupt counters of a pseudo-terminal says it has no modem lines")
    func interruptCountersOnPseudoTerminal() throws {
        try withPseudoTerminal { controller, terminal in
            for fd in [controller, terminal] {
                #expect(throws: DeviceControlError.noModemLines(call: "TIOCGICOUNT", errno: .inappropriateIOCTLForDevice)) {
                    try serial.interruptCounters(fd)
                }
            }
        }
    }

    @Test("Waiting for a modem line change on a pseudo-terminal fails at once instead of blocking")
    func waitOnPseudoTerminal() throws {
        try withPseudoTerminal { controller, terminal in
            for fd in [controller, terminal] {
                #expect(throws: DeviceControlError.noModemLines(call: "TIOCMIWAIT", errno: .inappropriateIOCTLForDevice)) {
                    try serial.waitForModemLineChange(fd, mask: [.cts, .dcd])
                }
            }
        }
    }

    @Test("Waiting only on output lines is refused before the kernel is asked")
    func waitOnOutputLinesOnly() {
        let refusal = DeviceControlError.invalidRequest(
            call: "TIOCMIWAIT",
            reason: "the mask names no input line (.cts, .dsr, .dcd or .ri), so the wait could never end"
        )
        // fd -1 would fail with EBADF if the kernel were asked.
        #expect(throws: refusal) { try serial.waitForModemLineChange(-1, mask: [.rts, .dtr]) }
        #expect(throws: refusal) { try serial.waitForModemLineChange(-1, mask: []) }
    }

    @Test("Modem line options carry the kernel's TIOCM bits")
    func modemLineBits() {
        #expect(ModemLines.cts.rawValue == 0x020)
        #expect(ModemLines.dsr.rawValue == 0x100)
        #expect(ModemLines.dcd.rawValue == 0x040)
        #expect(ModemLines.ri.rawValue == 0x080)
        #expect(ModemLines.rts.rawValue == 0x004)
        #expect(ModemLines.dtr.rawValue == 0x002)
        #expect(ModemLines.inputs == [.cts, .dsr, .dcd, .ri])
    }

    // MARK: evdev on descriptors that are not input devices

    @Test("Every evdev call on a descriptor that is not an input device says so", arguments: NotAnInputDevice.allCases)
    func evdevOnNonInputDevice(kind: NotAnInputDevice) throws {
        try kind.withDescriptor { fd in
            func expectNotInput(_ call: String, _ body: () throws -> Void) {
                #expect(throws: DeviceControlError.notAnInputDevice(call: call, errno: .inappropriateIOCTLForDevice)) {
                    try body()
                }
            }
            expectNotInput("EVIOCGVERSION") { _ = try input.driverVersion(fd) }
            expectNotInput("EVIOCGNAME") { _ = try input.name(fd) }
            expectNotInput("EVIOCGPHYS") { _ = try input.physicalLocation(fd) }
            expectNotInput("EVIOCGUNIQ") { _ = try input.uniqueIdentifier(fd) }
            expectNotInput("EVIOCGID") { _ = try input.identity(fd) }
            expectNotInput("EVIOCGBIT(0)") { _ = try input.capabilities(fd, eventType: 0) }
            expectNotInput("EVIOCGBIT(1)") { _ = try input.capabilities(fd, eventType: UInt16(EV_KEY)) }
            expectNotInput("EVIOCGKEY") { _ = try input.keyState(fd) }
            expectNotInput("EVIOCGPROP") { _ = try input.properties(fd) }
            expectNotInput("EVIOCGRAB") { try input.setGrabbed(true, fd) }
            expectNotInput("EVIOCGRAB") { try input.setGrabbed(false, fd) }
            expectNotInput("EVIOCSCLOCKID") { try input.useMonotonicClock(fd) }
        }
    }

    @Test("The not-an-input-device error names the call and the cause")
    func notAnInputDeviceDescription() throws {
        try NotAnInputDevice.pipeReadEnd.withDescriptor { fd in
            let error = #expect(throws: DeviceControlError.self) { try input.name(fd) }
            #expect(error?.description == "EVIOCGNAME: this file is not an evdev input device (/dev/input/event*) [Inappropriate ioctl for device]")
        }
    }

    @Test("A closed descriptor is reported as a plain failure with the system's message")
    func badDescriptor() {
        let error = #expect(throws: DeviceControlError.failed(call: "EVIOCGID", errno: .badFileDescriptor)) {
            try input.identity(-1)
        }
        #expect(error?.description == "EVIOCGID failed: Bad file descriptor")
    }

    @Test("Asking for an event type above EV_MAX is refused before the kernel is asked")
    func eventTypeAboveMaximum() {
        #expect(throws: DeviceControlError.invalidRequest(call: "EVIOCGBIT(32)", reason: "event type 32 is above EV_MAX (31)")) {
            try input.capabilities(-1, eventType: 32)
        }
    }

    @Test("An event code bitmap answers membership by kernel bit order")
    func eventCodeBits() {
        let bits = EventCodeBits(words: [0b1010_0001, 1 << 3])
        #expect(bits.contains(0))
        #expect(!bits.contains(1))
        #expect(bits.contains(5) && bits.contains(7))
        #expect(bits.contains(UInt.bitWidth + 3))
        #expect(!bits.contains(-1))
        #expect(!bits.contains(2 * UInt.bitWidth))
        #expect(bits.codes == [0, 5, 7, UInt.bitWidth + 3])
    }

    // MARK: Errno and EINTR

    @Test("Retrying on EINTR calls again until a different answer comes")
    func retryingInterruptedCalls() throws {
        var calls = 0
        let result = try retryingEINTR { () -> CInt in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(result == 7)
        #expect(calls == 3)

        #expect(throws: Errno.ioError) {
            try retryingEINTR { () -> CInt in
                errno = EIO
                return -1
            }
        }
    }

    @Test("An errno describes itself with the system's message")
    func errnoDescription() {
        #expect(Errno.inappropriateIOCTLForDevice.description == "Inappropriate ioctl for device")
        #expect(Errno(rawValue: ENOENT) == .noSuchFileOrDirectory)
    }

    // MARK: libudev and input_event

    @Test("libudev gives a context that can be released")
    func udevContext() throws {
        let udev = try #require(udev_new())
        #expect(udev_unref(udev) == nil)
    }

    @Test("An input event is 24 bytes on this 64-bit build")
    func inputEventSize() {
        #expect(cdevicesys_input_event_size() == 24)
        #expect(MemoryLayout<input_event>.size == 24)
        #expect(MemoryLayout<input_event>.offset(of: \input_event.type) == 16)
    }
}
