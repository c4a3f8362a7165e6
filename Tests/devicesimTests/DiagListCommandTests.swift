import DeviceKit
import Foundation
import Testing

@testable import devicesim

@Suite struct DiagListCommandTests {
    /// A tree with one gpio-keys button and nothing else: no udevd, no processes.
    static func tree() throws -> String {
        let base = NSTemporaryDirectory() + "devicesim-diag-\(UUID().uuidString)"
        let files: [String: String] = [
            "sys/devices/platform/gpio-keys/input/input0/name": "gpio_keys\n",
            "sys/devices/platform/gpio-keys/input/input0/capabilities/ev": "3\n",
            "sys/devices/platform/gpio-keys/input/input0/capabilities/key": "100000 0 0\n",
            "sys/devices/platform/gpio-keys/input/input0/event0/dev": "13:64\n",
            "dev/input/event0": "",
        ]
        for (path, text) in files {
            let full = base + "/" + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: false, encoding: .utf8)
        }
        try FileManager.default.createSymbolicLink(
            atPath: base + "/sys/devices/platform/gpio-keys/input/input0/event0/device", withDestinationPath: "../../input0")
        try FileManager.default.createDirectory(atPath: base + "/sys/class/input", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(
            atPath: base + "/sys/class/input/event0",
            withDestinationPath: "../../devices/platform/gpio-keys/input/input0/event0")
        return base
    }

    static func roots(_ base: String) -> HardwareRoots {
        HardwareRoots(sysfs: base + "/sys", dev: base + "/dev", udevData: base + "/run/udev/data", proc: base + "/proc")
    }

    @Test func theJSONOutputIsOneObjectWithTheButtonAndTheReasons() throws {
        let base = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let output = try DiagListCommand.output(roots: Self.roots(base), json: true)
        #expect(output.hasSuffix("}\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
        #expect(object["udevRunning"] as? Bool == false)
        #expect(object["udevDatabase"] as? Bool == false)
        #expect((object["notes"] as? [String])?.first?.hasPrefix("udevd is not running (a container?)") == true)
        let inputs = try #require(object["inputs"] as? [[String: Any]])
        #expect(inputs.count == 1)
        #expect(inputs.first?["path"] as? String == base + "/dev/input/event0")
        #expect(inputs.first?["keys"] as? [String] == ["KEY_PROG1"])
        #expect((inputs.first?["logind"] as? [String: Any])?["basis"] as? String == "assumed: no udev database")
        #expect(inputs.first?["usable"] as? Bool == true)
        #expect((object["serialPorts"] as? [Any])?.isEmpty == true)
    }

    @Test func theTextOutputSaysTheButtonIsOK() throws {
        let base = try Self.tree()
        defer { try? FileManager.default.removeItem(atPath: base) }
        let output = try DiagListCommand.output(roots: Self.roots(base), json: false)
        #expect(output.hasPrefix("Input devices with keys: 1\n\n\(base)/dev/input/event0\n"))
        #expect(output.contains("\n  keys: KEY_PROG1\n"))
        #expect(output.contains("\n  OK to use as the call button.\n"))
    }

    @Test func theOptionsDefaultToTheRealPaths() throws {
        let command = try DiagListCommand.parse([])
        #expect(command.sysfsRoot == "/sys" && command.devRoot == "/dev")
        #expect(command.udevData == "/run/udev/data" && command.procRoot == "/proc")
        #expect(!command.json)
        #expect(try DiagListCommand.parse(["--json", "--sysfs-root", "/tmp/sys"]).sysfsRoot == "/tmp/sys")
    }
}
