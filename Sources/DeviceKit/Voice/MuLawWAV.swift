/// A WAV file of G.711 µ-law voice, 8 kHz mono, laid out byte for byte as sox writes one (`sox … -e u-law
/// x.wav`), so that sox, soxi and any WAV reader play what a call carried without transcoding. Pure.
///
/// ```
///  0  "RIFF"  u32 LE: 50 + n + pad           38  "fact"  u32 LE: 4
///  8  "WAVE"                                 46  u32 LE: n (samples)
/// 12  "fmt "  u32 LE: 18                     50  "data"  u32 LE: n
/// 20  u16 LE: 7 (WAVE_FORMAT_MULAW)          58  n µ-law bytes, then one 0 when n is odd
/// 22  u16 LE: 1 channel                          (RIFF chunks are word-aligned)
/// 24  u32 LE: 8000 Hz, 28  u32 LE: 8000 bytes/s
/// 32  u16 LE: 1 (block align), 34  u16 LE: 8 bits, 36  u16 LE: 0 (cbSize)
/// ```
/// A non-PCM format needs the `fact` chunk (the sample count) and the 18-byte `fmt ` with `cbSize`.
public enum MuLawWAV {
    public static let headerLength = 58
    public static let sampleRate: UInt32 = 8000
    /// The most samples a file can hold: its RIFF size must fit 32 bits.
    public static let maximumSamples = Int(UInt32.max) - 51

    /// The file holding `samples` (µ-law codes, one a sample), at most `maximumSamples` of them (the rest are
    /// left out).
    public static func file(_ samples: [UInt8]) -> [UInt8] {
        let data = samples.count > maximumSamples ? Array(samples.prefix(maximumSamples)) : samples
        var bytes = header(samples: data.count)
        bytes.reserveCapacity(headerLength + data.count + 1)
        bytes += data
        if data.count % 2 == 1 { bytes.append(0) }
        return bytes
    }

    /// The 58 bytes before `samples` µ-law codes (`samples` ≤ `maximumSamples`).
    public static func header(samples: Int) -> [UInt8] {
        let n = UInt32(clamping: min(max(samples, 0), maximumSamples))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(headerLength)
        func tag(_ text: StaticString) { text.withUTF8Buffer { bytes += $0 } }
        func u16(_ value: UInt16) { bytes += [UInt8(value & 0xFF), UInt8(value >> 8)] }
        func u32(_ value: UInt32) { for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(value >> UInt32(shift) & 0xFF)) } }
        tag("RIFF")
        u32(50 + n + n % 2)
        tag("WAVE")
        tag("fmt ")
        u32(18)
        u16(7)  // WAVE_FORMAT_MULAW
        u16(1)
        u32(sampleRate)
        u32(sampleRate)  // one byte a sample
        u16(1)
        u16(8)
        u16(0)
        tag("fact")
        u32(4)
        u32(n)
        tag("data")
        u32(n)
        return bytes
    }
}
