#if canImport(Glibc)
import Glibc
#endif

/// What the simulated devices hear in their answered calls, for `--record-calls DIR`: the µ-law payloads of
/// the authentic voice packets each device receives, in arrival order, written when the call ends as
/// `DIR/device-<id>-call-<callID>.wav` (`MuLawWAV`, what sox reads). So a check can compare what a home heard
/// with what the far end played.
///
/// A call keeps at most `maximumSamples` (ten minutes; later voice is left out) in memory until it ends;
/// the file is written then, durably, on the shard's loop (a test facility: a few calls, not a fleet's).
/// One per shard, touched on its loop only.
final class CallRecorder {
    /// Ten minutes of 8 kHz voice, 4.8 MB.
    static let maximumSamples = 10 * 60 * 8000

    let directory: String
    private var calls: [UInt64: [UInt8]] = [:]
    /// Files written, and the ones that could not be (with why).
    private(set) var written: [String] = []
    private(set) var failures: [String] = []

    init(directory: String) { self.directory = directory }

    /// Makes `directory` (and its parents) and checks that a file can be written in it, or says why not.
    static func prepare(directory: String) throws(LoadError) {
        do { try StateDirectory.create(directory) } catch { throw LoadError("--record-calls: \(error)") }
        let probe = DurableFile(path: directory + "/.devicesim-record-\(UInt64.random(in: .min ... .max))")
        do { try probe.write([]) } catch {
            throw LoadError("--record-calls: cannot write in \(directory): \(error); give a directory you may write to")
        }
        unlink(probe.path)
    }

    static func fileName(device: UInt32, call: UInt32) -> String { "device-\(device)-call-\(call).wav" }

    private static func key(_ device: UInt32, _ call: UInt32) -> UInt64 { UInt64(device) << 32 | UInt64(call) }

    /// A call was answered: from now on its received voice is kept.
    func begin(device: UInt32, call: UInt32) {
        calls[Self.key(device, call)] = []
    }

    /// One authentic voice packet's payload of a call being recorded, as it arrived.
    func append(_ payload: [UInt8], device: UInt32, call: UInt32) {
        let key = Self.key(device, call)
        guard let kept = calls[key]?.count, kept < Self.maximumSamples else { return }
        calls[key]?.append(contentsOf: payload.prefix(Self.maximumSamples - kept))
    }

    /// The call ended: writes its file (nothing for a call not being recorded).
    func finish(device: UInt32, call: UInt32) {
        guard let samples = calls.removeValue(forKey: Self.key(device, call)) else { return }
        let path = directory + "/" + Self.fileName(device: device, call: call)
        do {
            // Whole or not at all (a temporary file renamed): a reader never sees half a recording.
            try DurableFile(path: path).write(MuLawWAV.file(samples))
            written.append(path)
        } catch {
            failures.append("\(path): \(error)")
        }
    }

    /// The run ends: writes the calls still going.
    func finishAll() {
        for key in calls.keys.sorted() { finish(device: UInt32(key >> 32), call: UInt32(truncatingIfNeeded: key)) }
    }
}
