#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One device's entry in udev's database (`/run/udev/data/c13:67`), as udevd writes it and libudev reads it.
///
/// ```
/// S:input/by-path/platform-gpio-keys-event     a symlink, relative to /dev
/// L:0                                           the links' priority
/// E:ID_INPUT_KEY=1                              a property
/// G:power-switch                                a tag (every tag the device ever had)
/// Q:power-switch                                a current tag (systemd 247 and later)
/// I:10038064809                                 when udevd first saw it, µs
/// V:1                                           the database version
/// ```
/// Other lines (`W:`, `I:`, `V:`, ones a newer udevd may add) are skipped, so a record never fails to parse.
public struct UdevDatabaseRecord: Hashable, Sendable, Codable {
    /// The `E:` properties (`ID_INPUT_KEY`, `ID_PATH`, `ID_SERIAL`, ...).
    public var properties: [String: String]
    /// The `S:` links, relative to `/dev` (`input/by-id/usb-...-event-kbd`, `sos-button`).
    public var symlinks: [String]
    /// The tags in force: the `Q:` lines, or the `G:` lines from a udevd older than systemd 247 that wrote none.
    /// `G:` keeps tags a later rule removed, so `Q:` is the truer answer when there is one.
    public var tags: Set<String>

    public init(properties: [String: String] = [:], symlinks: [String] = [], tags: Set<String> = []) {
        self.properties = properties
        self.symlinks = symlinks
        self.tags = tags
    }

    public init(parsing text: String) {
        var properties: [String: String] = [:]
        var symlinks: [String] = []
        var everTagged: Set<String> = []
        var currentTags: Set<String>?
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            guard line.count >= 2, line[line.index(after: line.startIndex)] == ":" else { continue }
            let value = String(line.dropFirst(2))
            switch line.first {
            case "E":
                guard let equals = value.firstIndex(of: "="), equals != value.startIndex else { continue }
                properties[String(value[..<equals])] = String(value[value.index(after: equals)...])
            case "S":
                if !value.isEmpty { symlinks.append(value) }
            case "G":
                if !value.isEmpty { everTagged.insert(value) }
            case "Q":
                if !value.isEmpty { currentTags = (currentTags ?? []).union([value]) }
            default:
                continue
            }
        }
        self.init(properties: properties, symlinks: symlinks, tags: currentTags ?? everTagged)
    }

    /// The record of the character device `major:minor` under `root`, or `nil` when there is none.
    static func read(root: String, major: UInt32, minor: UInt32) -> UdevDatabaseRecord? {
        guard let text = try? KernelFile.read("\(root)/c\(major):\(minor)") else { return nil }
        return UdevDatabaseRecord(parsing: text)
    }
}

/// A device number as sysfs prints it in `dev` (`13:67`).
public struct DeviceNumber: Hashable, Sendable, Codable, CustomStringConvertible {
    public var major: UInt32
    public var minor: UInt32

    public init(major: UInt32, minor: UInt32) {
        self.major = major
        self.minor = minor
    }

    /// `13:67`; `nil` for anything else.
    public init?(parsing text: String) {
        let parts = text.trimmed.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let major = UInt32(parts[0]), let minor = UInt32(parts[1]) else { return nil }
        self.init(major: major, minor: minor)
    }

    public var description: String { "\(major):\(minor)" }
}

/// The kernel's bitmaps in sysfs (`capabilities/key`, `capabilities/ev`): hexadecimal words of the kernel's
/// `unsigned long`, most significant first, separated by spaces, leading zero words left out:
/// `100000 0 0` is bit 20 of the third word, i.e. code 2 × 64 + 20 = 148 (`KEY_PROG1`) on a 64-bit kernel.
public enum SysfsBitmap {
    /// Why a bitmap could not be read.
    public struct ParseError: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// More words than any event type needs (`KEY_CNT` is 768 bits: 24 words of 32 bits).
    static let maximumWords = 32

    /// The codes that are set, ascending.
    ///
    /// - Parameter bitsPerWord: the kernel's `BITS_PER_LONG`. Not the program's: a 32-bit userland on a
    ///   64-bit kernel (Raspberry Pi OS armhf on an arm64 kernel) still reads 64-bit words here.
    public static func codes(_ text: String, bitsPerWord: Int = kernelBitsPerWord) throws(ParseError) -> [Int] {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        guard !words.isEmpty else { throw ParseError(description: "the bitmap is empty") }
        guard words.count <= maximumWords else {
            throw ParseError(description: "the bitmap has \(words.count) words, more than any kernel prints")
        }
        guard bitsPerWord == 32 || bitsPerWord == 64 else {
            throw ParseError(description: "a kernel word has 32 or 64 bits, not \(bitsPerWord)")
        }
        var codes: [Int] = []
        for (index, word) in words.reversed().enumerated() {
            guard word.count <= bitsPerWord / 4, let value = UInt64(word, radix: 16) else {
                throw ParseError(description: "'\(word.prefix(32))' is not a \(bitsPerWord)-bit hexadecimal word")
            }
            for bit in 0..<bitsPerWord where value & (1 << UInt64(bit)) != 0 {
                codes.append(index * bitsPerWord + bit)
            }
        }
        return codes
    }

    /// The running kernel's word size, from `uname -m`: 64 for `x86_64`, `aarch64`, `riscv64`, `ppc64le`,
    /// `s390x`, `mips64`, ...; otherwise this program's own.
    public static let kernelBitsPerWord: Int = {
        var names = utsname()
        guard uname(&names) == 0 else { return UInt.bitWidth }
        let machine = withUnsafeBytes(of: names.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return machine.contains("64") || machine == "s390x" ? 64 : UInt.bitWidth
    }()
}
