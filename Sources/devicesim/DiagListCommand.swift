import ArgumentParser
import DeviceKit

/// `devicesim diag list`: every device that could be the call button, and what stands in the way of each.
struct DiagListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the devices that could be the call button, and what stands in the way of each.",
        discussion: """
            Input devices that send keys (/dev/input/event*) and serial ports (ttyUSB, ttyACM, real ttyS), each \
            with its stable names (by-path, by-id, sos-button), identity, keys, whether systemd-logind would act \
            on one of its keys, whether you may open it, and which processes hold it open. Reads sysfs, udev's \
            database, /dev and /proc directly, so it works without udevd; it says when a part is missing and what \
            to do. Run it as the user that will run the device (the devicekit user), or as root to see every \
            process.

            \(ExitStatus.help([.software]))
            """)

    @Option(help: "The sysfs mount to read (a copy of another device's /sys, for example).")
    var sysfsRoot = HardwareRoots.system.sysfs

    @Option(help: "The directory of device nodes.")
    var devRoot = HardwareRoots.system.dev

    @Option(help: "udev's database directory.")
    var udevData = HardwareRoots.system.udevData

    @Option(help: "The process file system, to find who holds a device open.")
    var procRoot = HardwareRoots.system.proc

    @Flag(help: "Print the list as JSON instead of text.")
    var json = false

    func run() async throws {
        let roots = HardwareRoots(sysfs: sysfsRoot, dev: devRoot, udevData: udevData, proc: procRoot)
        print(try Self.output(roots: roots, json: json), terminator: "")
    }

    /// What `run` prints: the report as text, or as JSON with a final newline.
    static func output(roots: HardwareRoots, json: Bool) throws -> String {
        let report = ButtonInventory(roots: roots).scan()
        return json ? try report.json() + "\n" : report.text
    }
}
