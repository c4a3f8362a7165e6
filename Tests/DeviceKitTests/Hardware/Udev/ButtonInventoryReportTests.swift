import Foundation
import Testing

@testable import DeviceKit

@Suite struct ButtonInventoryReportTests {
    @Test func theTextHasOneBlockPerCandidateInPlainWords() throws {
        let tree = try ButtonInventoryTests.typicalTree()
        defer { tree.remove() }
        let report = ButtonInventory(roots: tree.roots).scan()
        let text = report.text.replacingOccurrences(of: tree.base, with: "")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // The node line depends on who runs the test; everything else is fixed.
        let stable = lines.filter { !$0.hasPrefix("  node: ") }
        #expect(stable == [
            "Input devices with keys: 2",
            "",
            "/dev/input/event0",
            "  stable names: /dev/input/by-path/platform-gpio-keys-event, /dev/sos-button",
            "  name: \"gpio_keys\", bus host, vendor 0001, product 0001",
            "  location: gpio-keys/input0",
            "  keys: KEY_PROG1",
            "  OK to use as the call button.",
            "",
            "/dev/input/event3",
            "  stable names: /dev/input/by-id/usb-Logitech_USB_Keyboard-event-kbd, /dev/input/by-path/pci-0000:00:14.0-usb-0:2:1.0-event-kbd",
            "  name: \"Logitech USB Keyboard\", bus usb, vendor 046d, product c31c",
            "  location: usb-0000:00:14.0-2/input0",
            "  keys: 163 keys (a keyboard)",
            "  WARNING: systemd-logind treats KEY_POWER on this device as the power key: pressing it would shut the device down — use a different key or the udev rule in hardware/udev that removes the power-switch tag",
            "  WARNING: systemd-logind treats KEY_SLEEP on this device as the sleep key: pressing it would suspend the device — use a different key or the udev rule in hardware/udev that removes the power-switch tag",
            "  WARNING: held by process 1234 (Xorg): it may grab the device or act on its keys too",
            "",
            "Serial ports: 2",
            "",
            "/dev/ttyS0",
            "  stable names: none (no /dev/serial/by-id link: check the udev rules in hardware/udev)",
            "  driver port",
            "  OK to use for a serial button box or a contact switch.",
            "",
            "/dev/ttyUSB0",
            "  stable names: /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0, /dev/serial/by-path/pci-0000:00:14.0-usb-0:3:1.0-port0",
            "  adapter FTDI_FT232R_USB_UART_A50285BI, vendor 0403, product 6001, driver ftdi_sio",
            "  WARNING: held by process 4321 (gpsd): two programs reading one port each get half the bytes; stop the other one (ModemManager probes new ports: see hardware/udev)",
            "",
        ])
        #expect(lines.filter { $0.hasPrefix("  node: owner ") }.count == 4)
    }

    @Test func theJSONHasAStableShape() throws {
        let tree = try ButtonInventoryTests.typicalTree()
        defer { tree.remove() }
        let json = try ButtonInventory(roots: tree.roots).scan().json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["udevRunning", "udevDatabase", "notes", "inputs", "serialPorts"])
        #expect(object["udevRunning"] as? Bool == true)
        #expect((object["notes"] as? [String]) == [])

        let inputs = try #require(object["inputs"] as? [[String: Any]])
        #expect(inputs.count == 2)
        let button = inputs[0]
        #expect(Set(button.keys) == [
            "path", "sysname", "stableNames", "name", "phys", "bus", "vendor", "product", "version", "keys", "keyboard",
            "logind", "access", "heldBy", "usable", "warnings", "udevProperties",
        ], "uniq is left out when the device has none")
        #expect(button["path"] as? String == tree.base + "/dev/input/event0")
        #expect(button["keys"] as? [String] == ["KEY_PROG1"])
        #expect(button["bus"] as? String == "host")
        #expect(button["version"] as? String == "0100")
        #expect(button["usable"] as? Bool == true)
        let logind = try #require(button["logind"] as? [String: Any])
        #expect(logind["acts"] as? Bool == false && logind["basis"] as? String == "power-switch tag")
        let access = try #require(button["access"] as? [String: Any])
        #expect(Set(access.keys) == ["exists", "owner", "group", "mode", "readable", "writable", "userInGroup"])

        let keyboard = inputs[1]
        #expect((keyboard["keys"] as? [String])?.count == 163)
        #expect(keyboard["keyboard"] as? Bool == true)
        #expect((keyboard["logind"] as? [String: Any])?["keys"] as? [String] == ["KEY_POWER", "KEY_SLEEP"])
        let holders = try #require(keyboard["heldBy"] as? [[String: Any]])
        #expect(holders.count == 1 && holders[0]["pid"] as? Int == 1234 && holders[0]["command"] as? String == "Xorg")
        #expect((keyboard["warnings"] as? [String])?.count == 3)

        let ports = try #require(object["serialPorts"] as? [[String: Any]])
        #expect(ports.map { $0["sysname"] as? String } == ["ttyS0", "ttyUSB0"])
        #expect(ports[1]["serial"] as? String == "FTDI_FT232R_USB_UART_A50285BI")
        #expect(ports[1]["idPath"] as? String == "pci-0000:00:14.0-usb-0:3:1.0")
        #expect(ports[1]["usable"] as? Bool == false)
    }

    @Test func theJSONOfAnEmptySystemCarriesTheReasons() throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        try tree.delete("dev/input")
        let json = try ButtonInventory(roots: tree.roots).scan().json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let notes = try #require(object["notes"] as? [String])
        #expect(notes.count == 3)
        #expect(notes.first == "udevd is not running (a container?): stable names like /dev/input/by-path are missing; use the eventN path")
        #expect(notes.last?.hasPrefix("No candidate call button") == true)
        #expect((object["inputs"] as? [Any])?.isEmpty == true)
    }

    @Test func aDeviceWithManyKeysThatIsNotAKeyboardShowsTheFirstFew() {
        let candidate = InputButtonCandidate(
            sysname: "event5", path: "/dev/input/event5", name: "Consumer Control", keys: Array(113...125),
            udev: UdevDatabaseRecord(properties: ["ID_INPUT_KEY": "1"], tags: []),
            access: DeviceNodeAccess(exists: true, owner: "root", group: "input", mode: "0660", readable: true, writable: true, userInGroup: true))
        let report = ButtonInventoryReport(inputs: [candidate], serialPorts: [], udevRunning: true, udevDatabasePresent: true)
        #expect(report.text.contains("  keys: 13 keys (KEY_MUTE, KEY_VOLUMEDOWN, KEY_VOLUMEUP, KEY_POWER, ...)\n"))
        #expect(report.text.contains("  KEY_POWER: udev has not tagged it power-switch, so systemd-logind ignores it\n"))
        #expect(report.text.contains("  OK to use as the call button.\n"))
    }

    @Test func processesWeMayNotInspectAreCounted() {
        let report = ButtonInventoryReport(
            inputs: [], serialPorts: [], udevRunning: true, udevDatabasePresent: true, processesNotInspected: 12)
        #expect(report.systemNotes.first
            == "12 processes of other users were not checked for holding a device open: run as root (sudo) to see them all")
    }
}
