import Crypto

/// One device's entry in the centre's session table: its machine, and what the runtime keeps beside it, so that
/// a heartbeat steps the machine and records where it came from in one lookup, and answers in one more.
///
/// Before, the reply paths and the down keys were tables of their own (`DeviceTable`s beside the sessions'):
/// a heartbeat looked its device up seven times (now four, with the machine's facts and supervision), each
/// lookup a miss in the caches at scale (they were 5.7 % of the centre's time a frame, docs/benchmarks.md).
/// Both belong to the session: the path is where its frames come from, the down key is derived from its
/// anchor, and neither is of use without the session's key.
struct SessionEntry {
    var machine: CenterSession
    /// Where the latest authentic frame of the device's session came from: answers go there.
    var path: ReplyPath?
    /// The down key of the session under `anchor` at the key `epoch`, derived once a session. Keyed by epoch
    /// too: a re-provisioned device starts its new key's anchors again from 0.
    private var downKey: (anchor: UInt64, epoch: UInt16, key: SymmetricKey)?

    init(machine: CenterSession) { self.machine = machine }

    /// The key to seal a down frame of the session under `anchor` with, derived at most once a session.
    mutating func downKey(anchor: UInt64) -> SymmetricKey {
        let key = machine.key
        if let cached = downKey, cached.anchor == anchor, cached.epoch == key.epoch { return cached.key }
        let derived = key.downKey(anchor: anchor)
        downKey = (anchor, key.epoch, derived)
        return derived
    }
}
