import ArgumentParser

/// Port numbers given on the command line, checked before anything binds: NIO would take 70000 as 4464
/// (modulo 65536), and 65537 as 1, a privileged port.
enum PortOption {
    /// Throws a usage error naming `option` and the range unless `value` is a port: 1 to 65535, or 0 too
    /// when `zeroPicksFree` (the system picks a free port).
    static func check(_ value: Int?, option: String, zeroPicksFree: Bool) throws {
        guard let value else { return }
        let lowest = zeroPicksFree ? 0 : 1
        guard (lowest...65535).contains(value) else {
            let range = zeroPicksFree ? "0 to 65535 (0: the system picks a free port)" : "1 to 65535"
            throw ValidationError("\(option) \(value) is not a port: give \(range).")
        }
    }
}
