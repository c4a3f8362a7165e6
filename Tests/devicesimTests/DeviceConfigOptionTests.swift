import ArgumentParser
import Testing

@testable import devicesim

/// `--config` of `run`, `diag link` and `diag selftest`: one default for the three, said when taken.
@Suite struct DeviceConfigOptionTests {
    /// `run` read ./device.toml and `diag link`/`selftest` /etc/devicekit/device.toml when none was given.
    @Test func runAndTheDiagnosticsReadTheSameFileByDefault() throws {
        for command in [RunCommand.self, DiagLinkCommand.self, DiagSelftestCommand.self] as [any ParsableCommand.Type] {
            let help = DeviceSim.helpMessage(for: command, columns: 1000)
            #expect(help.contains("--config <config>") && help.contains("(default: /etc/devicekit/device.toml when it exists, else ./device.toml)"), "\(command)")
        }
        let run = try RunCommand.parse([]).config
        let link = try DiagLinkCommand.parse([]).config
        for installed in [true, false] {
            #expect(run.path { _ in installed } == link.path { _ in installed })
        }
    }

    @Test func theInstalledFileIsReadWhenItExistsElseTheLocalOneAndItIsSaidWhich() throws {
        let option = try DeviceConfigOption.parse([])
        let installed = option.path { $0 == "/etc/devicekit/device.toml" }
        #expect(installed.path == "/etc/devicekit/device.toml")
        #expect(installed.note == "reading /etc/devicekit/device.toml (no --config given)")
        let local = option.path { _ in false }
        #expect(local.path == "device.toml")
        #expect(local.note == "reading ./device.toml (no --config given, and /etc/devicekit/device.toml does not exist)")
        let given = try DeviceConfigOption.parse(["--config", "/tmp/d.toml"]).path { _ in true }
        #expect(given.path == "/tmp/d.toml" && given.note == nil)
    }
}
