import ArgumentParser
import DeviceKit

/// `devicesim provision`: gives a new device its key and device.toml, and tells the centre about it.
struct ProvisionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Create a device's key and device.toml, and add it to the centre's registry.",
        discussion: """
            The key is 32 random bytes, or with --master derived from the fleet master key (protocol.md §3.2); \
            the master key itself is never written to the device. device.toml is written with mode 0600. \
            The key is never printed.
            """)

    @Option(help: "The device's id, 0 to 4294967295; unique in the fleet.")
    var id: UInt32

    @Option(help: "The primary centre, as host:port (an IPv6 address in brackets: [2001:db8::1]:7700).")
    var centre: String

    @Option(help: "The secondary centre, as host:port.")
    var secondary: String?

    @Option(help: "Where to write the device's configuration.")
    var out = "device.toml"

    @Option(help: "The centre's key registry, to which the device's key is appended (created if missing).")
    var registry: String?

    @Option(help: "The fleet master key, hex (64 to 128 digits): derive the device's key from it instead.")
    var master: String?

    @Option(help: "The device's state directory (outbox and frame counter), written into device.toml.")
    var stateDir = "/var/lib/devicekit"

    @Flag(help: "Replace an existing configuration file (the device gets a new key).")
    var force = false

    func validate() throws {
        if registry != nil && master != nil {
            throw ValidationError(
                "Give --registry FILE (the centre keeps each device's key) or --master HEX (the centre derives keys), not both.")
        }
        _ = try addresses()
        _ = try masterKey()
    }

    func run() throws {
        let (primary, secondary) = try addresses()
        let request = Provisioning.Request(
            deviceID: id, primaryCentre: primary, secondaryCentre: secondary, configPath: out, registryPath: registry,
            masterKey: try masterKey(), stateDirectory: stateDir, overwrite: force)
        // A ProvisioningError prints as "Error: <what to do>", without the usage text.
        let outcome = try Provisioning.provision(request)
        let origin = outcome.derived ? "derived from the fleet master key" : "32 random bytes"
        print("Device \(id): wrote \(outcome.configPath) (mode 0600, key \(origin)).")
        if let registry = outcome.registryPath {
            print("Added device \(id) to \(registry); restart or reload the centre to accept it.")
        } else if outcome.derived {
            print("A centre started with the same --master accepts it without a registry line.")
        } else {
            print("No --registry given: give the centre this device's key from \(outcome.configPath).")
        }
    }

    private func addresses() throws -> (CentreAddress, CentreAddress?) {
        do {
            let primary = try CentreAddress(parsing: centre, key: "--centre")
            let secondary = try secondary.map { (text) throws(DeviceConfigError) in
                try CentreAddress(parsing: text, key: "--secondary")
            }
            return (primary, secondary)
        } catch {
            throw ValidationError(error.description)
        }
    }

    private func masterKey() throws -> [UInt8]? {
        guard let master else { return nil }
        guard let bytes = Hex.decode(master) else { throw ValidationError("--master: \(KeyError.notHex)") }
        guard (32...64).contains(bytes.count) else { throw ValidationError("--master: \(KeyError.wrongMasterLength(bytes.count))") }
        return bytes
    }
}
