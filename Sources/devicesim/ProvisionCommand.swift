import ArgumentParser
import DeviceKit

/// `devicesim provision`: gives a new device its key and device.toml, and tells the centre about it.
struct ProvisionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "provision",
        abstract: "Create a device's key and device.toml, and add it to the centre's registry.",
        discussion: """
            The key is 32 random bytes, or with a master key (--master-file) derived from the fleet master key (protocol.md §3.2); \
            the master key itself is never written to the device. device.toml is written with mode 0600. \
            The key is never printed. The key's counter reservation is written into --state-dir with it \
            (--no-state on a provisioning workstation; then run `devicesim provision --init-state --config \
            device.toml` on the device once its key is installed). Re-provisioning a device (--force over its \
            device.toml, or --epoch) moves it to the next key epoch, with a new key: the recovery for a lost \
            state directory. The centre accepts the new epoch and retires the old one.

            \(ExitStatus.help(
                [.noInput, .cannotCreate, .noPermission, .configuration],
                [.noInput: "the master key file or --config's device.toml is missing",
                 .cannotCreate: "device.toml, the state or the registry cannot be written (the file exists without --force, a directory is missing, the registry already has the id)",
                 .configuration: "the master key, --config's device.toml or the registry is invalid"]))
            """)

    @Option(parsing: .unconditional, help: "The device's id, 0 to 4294967295; unique in the fleet.")
    var id: UInt32?

    @Option(help: "The primary centre, as host:port (an IPv6 address in brackets: [2001:db8::1]:7700).")
    var center: String?

    /// `--centre`, the other spelling, accepted.
    @Option(name: .customLong("centre"), help: .hidden)
    var centreAlias: String?

    @Option(help: "The centre's SIP address for voice (sip:arc@HOST[:PORT][;transport=tcp]): writes [voice], so the device calls it once an alarm is acknowledged and answers its calls back; the SIP password goes in <state-dir>/sip-password (mode 0600).")
    var sip: String?

    @Option(help: "The secondary centre, as host:port.")
    var secondary: String?

    @Option(help: "Where to write the device's configuration.")
    var out = "device.toml"

    @Option(help: "The centre's key registry, to which the device's key is appended (created if missing).")
    var registry: String?

    /// The fleet master key, to derive the device's key from instead of drawing a random one.
    @OptionGroup var masterKey: MasterKeyOptions

    @Option(help: "The device's state directory (outbox and frame counter), written into device.toml.")
    var stateDir = "/var/lib/devicekit"

    @Flag(help: "Replace an existing configuration file (the device gets a new key of the next epoch).")
    var force = false

    @Option(parsing: .unconditional, help: "The key epoch (0 to 65535). Default: one more than that of the device.toml replaced with --force, else 0.")
    var epoch: UInt16?

    @Flag(help: "Do not write the counter reservation into --state-dir (provisioning on a workstation, not the device).")
    var noState = false

    @Flag(help: "On the device: write the counter reservation of the key in --config's device.toml (a key just installed, never used).")
    var initState = false

    @Option(help: "device.toml, with --init-state.")
    var config: String?

    /// `--center` or its other spelling.
    private var primary: String? { center ?? centreAlias }

    func validate() throws {
        if center != nil && centreAlias != nil { throw ValidationError("--centre is another spelling of --center: give it once.") }
        if initState {
            guard config != nil else { throw ValidationError("--init-state needs --config device.toml.") }
            // A master key in the environment (or systemd credentials) is no mistake of this command line.
            guard id == nil, primary == nil, masterKey.masterFile == nil, masterKey.master == nil, registry == nil else {
                throw ValidationError("--init-state takes only --config: it writes the state of a device.toml that exists.")
            }
            return
        }
        guard id != nil, primary != nil else { throw ValidationError("Give --id N and --center host:port (or --init-state --config FILE on the device).") }
        if registry != nil && masterKey.isGiven() {
            throw ValidationError(
                "Give --registry FILE (the centre keeps each device's key) or a master key (--master-file FILE: the centre derives keys), not both.")
        }
        _ = try addresses()
    }

    func run() throws {
        if initState, let config {
            let device = try loadDeviceConfig(config)
            try Provisioning.initialiseState(device)
            print("Device \(device.deviceID): wrote the counter reservation of key epoch \(device.keyEpoch) to \(device.counterPath).")
            return
        }
        let (primary, secondary) = try addresses()
        let id = id ?? 0
        let request = Provisioning.Request(
            deviceID: id, primaryCentre: primary, secondaryCentre: secondary, configPath: out, registryPath: registry,
            masterKey: try masterKey.bytes(), stateDirectory: stateDir, overwrite: force, keyEpoch: epoch, writeState: !noState,
            voice: try voice())
        // A ProvisioningError prints as "Error: <what to do>", without the usage text.
        let outcome = try Provisioning.provision(request)
        let origin = outcome.derived ? "derived from the fleet master key" : "32 random bytes"
        print("Device \(id): wrote \(outcome.configPath) (mode 0600, key epoch \(outcome.config.keyEpoch), key \(origin)).")
        if let counter = outcome.counterPath { print("Wrote the key's counter reservation to \(counter).") }
        if let registry = outcome.registryPath {
            print("Added device \(id) to \(registry); restart or reload the centre to accept it.")
        } else if outcome.derived {
            print("A centre started with the same fleet master key accepts it without a registry line.")
        } else {
            print("No --registry given: give the centre this device's key from \(outcome.configPath).")
        }
    }

    private func voice() throws -> VoiceSettings? {
        do { return try sip.map { (text) throws(DeviceConfigError) in VoiceSettings(sip: try VoiceSettings.centre(text, key: "--sip")) } } catch {
            throw ValidationError(error.description)
        }
    }

    private func addresses() throws -> (CentreAddress, CentreAddress?) {
        do {
            let primary = try CentreAddress(parsing: self.primary ?? "", key: center != nil ? "--center" : "--centre")
            let secondary = try secondary.map { (text) throws(DeviceConfigError) in
                try CentreAddress(parsing: text, key: "--secondary")
            }
            return (primary, secondary)
        } catch {
            throw ValidationError(error.description)
        }
    }
}
