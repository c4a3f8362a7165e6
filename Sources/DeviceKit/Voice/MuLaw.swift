/// G.711 µ-law (PCMU, RTP payload type 0): 14-bit linear samples to 8-bit codes and back.
///
/// The encoder is the classic segment search: add the bias 0x84 (132) to the magnitude clipped at 32635,
/// find the segment (exponent) from the highest set bit among bits 7…14, keep the four bits below it as
/// the mantissa, and invert all bits (so that silence, 0, is 0xFF). Pure.
public enum MuLaw {
    static let bias = 0x84
    static let clip = 32635

    public static func encode(_ sample: Int16) -> UInt8 {
        var magnitude = Int(sample)
        let sign: Int = magnitude < 0 ? 0x80 : 0
        if magnitude < 0 { magnitude = -magnitude }
        magnitude = min(magnitude, clip) + bias
        var exponent = 7
        var mask = 0x4000
        while exponent > 0, magnitude & mask == 0 {
            exponent -= 1
            mask >>= 1
        }
        let mantissa = (magnitude >> (exponent + 3)) & 0x0F
        return ~UInt8(sign | exponent << 4 | mantissa)
    }

    public static func decode(_ code: UInt8) -> Int16 {
        let u = ~code
        let exponent = Int(u >> 4 & 0x07)
        let mantissa = Int(u & 0x0F)
        let magnitude = ((mantissa << 3) + bias) << exponent - bias
        return Int16(u & 0x80 != 0 ? -magnitude : magnitude)
    }
}

/// The sound the stub sends: a test tone, or a pattern with the rhythm of speech (voiced syllables of a
/// 140 Hz voice with two formants, about four a second, and pauses between phrases), so that a listener
/// of a decoded capture hears something speech-like and a VAD would see talkspurts. Pure: sample `n` is a
/// function of `n` only.
public enum SyntheticSignal: Hashable, Sendable {
    case tone(hertz: Double)
    case speechLike

    public static let sampleRate = 8000.0

    public func sample(_ n: UInt64) -> Int16 {
        let t = Double(n) / Self.sampleRate
        switch self {
        case .tone(let hertz):
            return Int16(8000 * sin(2 * .pi * hertz * t))
        case .speechLike:
            // Phrases of 2.4 s: 1.8 s of syllables, 0.6 s of pause.
            let phrase = t.truncatingRemainder(dividingBy: 2.4)
            guard phrase < 1.8 else { return 0 }
            // Syllables at 4 Hz, each a raised-cosine envelope.
            let envelope = 0.5 - 0.5 * cos(2 * .pi * 4 * phrase)
            let f0 = 140 * (1 + 0.08 * sin(2 * .pi * 0.7 * t))  // a little intonation
            var voiced = 0.0
            for (harmonic, weight) in [(1.0, 1.0), (4.0, 0.6), (9.0, 0.35), (17.0, 0.15)] {
                voiced += weight * sin(2 * .pi * f0 * harmonic * t)
            }
            return Int16(clamping: Int(6000 * envelope * voiced / 2.1))
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
