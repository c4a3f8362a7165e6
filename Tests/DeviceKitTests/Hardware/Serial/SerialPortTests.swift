#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DeviceKit
import Testing

/// Opening serial ports: raw settings read back from a real pseudo-terminal, and a plain-words error for
/// every way opening can fail.
@Suite struct SerialPortTests {
    @Test func aPseudoTerminalOpensRawAt9600EightNOneWithoutFlowControl() throws {
        let pty = try PseudoTerminal()
        defer { withExtendedLifetime(pty) {} }
        let port = try SerialPort.open(pty.path)
        defer { port.close() }
        #expect(port.settings == SerialPortSettings(speed: 9600))
        #expect(port.settings.description == "9600 8N1, no flow control")
        #expect(port.isPseudoTerminal)

        var options = termios()
        try #require(tcgetattr(port.descriptor, &options) == 0)
        #expect(options.c_lflag & tcflag_t(ICANON | ECHO | ISIG) == 0, "line editing and echo are off")
        #expect(options.c_iflag & tcflag_t(ICRNL | IXON) == 0, "no CR translation, no XON/XOFF")
        #expect(options.c_cflag & tcflag_t(CLOCAL | CREAD) == tcflag_t(CLOCAL | CREAD))
        withUnsafeBytes(of: options.c_cc) { cc in
            #expect(cc[Int(VMIN)] == 1 && cc[Int(VTIME)] == 0, "with O_NONBLOCK: EAGAIN when empty, 0 only on hang-up")
        }
        let flags = fcntl(port.descriptor, F_GETFL)
        #expect(flags & O_NONBLOCK != 0)
        #expect(fcntl(port.descriptor, F_GETFD) & FD_CLOEXEC != 0)
    }

    @Test(arguments: [1200, 19200, 115200])
    func theSpeedIsSetAndReadBack(speed: Int) throws {
        let pty = try PseudoTerminal()
        defer { withExtendedLifetime(pty) {} }
        let port = try SerialPort.open(pty.path, speed: speed)
        #expect(port.settings.speed == speed)
    }

    @Test func bytesWrittenByTheBoxAreReadUnchanged() throws {
        let pty = try PseudoTerminal()
        defer { withExtendedLifetime(pty) {} }
        let port = try SerialPort.open(pty.path)
        #expect(try port.read() == [])
        try pty.send([0x50, 0x0D, 0x0A, 0x00, 0xFF, 0x03])
        var received: [UInt8] = []
        while received.count < 6, try port.waitReadable(timeout: .seconds(5)) {
            received += try port.read()
        }
        #expect(received == [0x50, 0x0D, 0x0A, 0x00, 0xFF, 0x03])
    }

    @Test func bytesBufferedBeforeOpeningAreDiscarded() throws {
        let pty = try PseudoTerminal()
        defer { withExtendedLifetime(pty) {} }
        try pty.send("P\n")
        // The pty moves the bytes to the terminal side in the background: wait until they are there, held
        // by the test's own descriptor of that side until the port opens.
        try #require(try DeviceFile.waitReadable(pty.terminal, timeoutMilliseconds: 5000))
        var waiting: CInt = 0
        try #require(ioctl(pty.terminal, UInt(FIONREAD), &waiting) == 0)
        try #require(waiting == 2)
        let port = try SerialPort.open(pty.path)
        #expect(try port.read() == [])
        try pty.send("R\n")
        #expect(try port.waitReadable(timeout: .seconds(5)))
        #expect(try port.read() == Array("R\n".utf8))
    }

    @Test func aHangUpIsReportedAsGone() throws {
        let pty = try PseudoTerminal()
        defer { withExtendedLifetime(pty) {} }
        let port = try SerialPort.open(pty.path)
        pty.hangUp()
        #expect(try port.waitReadable(timeout: .seconds(5)))
        let error = #expect(throws: SerialPortError.self) { try port.read() }
        #expect(error?.kind == .gone)
        #expect(error?.isTransient == true)
        #expect(error?.description.hasPrefix("\(pty.path) is gone (") == true)
        #expect(error?.description.hasSuffix("): the adapter was unplugged or its driver let go of it") == true)
    }

    @Test func raisingDTRAndRTSOnAPseudoTerminalSaysItHasNoModemLines() throws {
        let pty = try PseudoTerminal()
        defer { withExtendedLifetime(pty) {} }
        let port = try SerialPort.open(pty.path)
        #expect(throws: DeviceControlError.noModemLines(call: "TIOCMBIS", errno: .inappropriateIOCTLForDevice)) {
            try LinuxSerialLineControl().assertModemLines(port.descriptor, [.dtr, .rts])
        }
    }

    @Test func aMissingPortSaysWhereToLook() {
        let error = #expect(throws: SerialPortError.self) { try SerialPort.open("/dev/ttyUSB-does-not-exist") }
        #expect(error?.kind == .notFound)
        #expect(error?.isTransient == true)
        #expect(error?.description == "/dev/ttyUSB-does-not-exist does not exist: is the serial adapter plugged in and is the name right? (ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/ lists the ports)")
    }

    @Test func aFileThatIsNoTerminalIsRefused() {
        let error = #expect(throws: SerialPortError.self) { try SerialPort.open("/dev/null") }
        #expect(error?.kind == .notATerminal)
        #expect(error?.isTransient == false)
        #expect(error?.description == "/dev/null is not a serial port (tcgetattr: Inappropriate ioctl for device): name a tty such as /dev/ttyUSB0")
    }

    @Test func anUnsupportedSpeedListsTheGoodOnes() {
        let error = #expect(throws: SerialPortError.self) { try SerialPort.open("/dev/null", speed: 9601) }
        #expect(error?.kind == .unsupportedSpeed)
        #expect(error?.description == "9601 baud is not a speed a serial port can be set to: use one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600")
    }

    @Test func errnoValuesMapToKindsInPlainWords() {
        func error(_ code: CInt) -> SerialPortError {
            SerialPortError(path: "/dev/ttyUSB0", call: "open", errno: Errno(rawValue: code))
        }
        #expect(error(EACCES).kind == .permissionDenied)
        #expect(error(EPERM).kind == .permissionDenied)
        #expect(error(EACCES).description == "no permission to open /dev/ttyUSB0: add the user to group dialout (sudo usermod -aG dialout USER, then log in again)")
        #expect(error(EBUSY).kind == .busy)
        #expect(error(EBUSY).isTransient)
        #expect(error(EBUSY).description == "/dev/ttyUSB0 is busy: another program holds it (ModemManager, a terminal program or another devicesim); stop that program")
        #expect(error(ENODEV).kind == .gone)
        #expect(error(EIO).description == "/dev/ttyUSB0 is gone (Input/output error): the adapter was unplugged or its driver let go of it")
        #expect(error(EISDIR).kind == .notATerminal)
        #expect(error(EMFILE).kind == .failed)
        #expect(error(EMFILE).isTransient == false)
        #expect(error(EMFILE).description == "open on /dev/ttyUSB0 failed: Too many open files")
    }

    @Test func settingsDescribeThemselvesAsTechniciansWriteThem() {
        #expect(SerialPortSettings(speed: 19200, dataBits: 7, parity: .even, stopBits: 2, hardwareFlowControl: true).description
                    == "19200 7E2, RTS/CTS flow control")
        #expect(SerialPortSettings(speed: nil, parity: .odd, softwareFlowControl: true).description
                    == "unknown speed 8O1, XON/XOFF flow control")
    }
}
