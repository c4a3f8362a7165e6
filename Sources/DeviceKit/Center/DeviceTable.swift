/// Values kept per device, keyed by device id, in 256 dictionaries chosen by the id's low byte.
///
/// A Swift dictionary grows by rehashing all of itself into storage twice the size: a million sessions'
/// table moved its hundreds of megabytes in one insert, on the event loop, while datagrams queued behind it
/// until the socket overflowed (the kernel dropped 114,000–135,000 at the 393,000th and 786,000th session of
/// a million-device ramp, docs/benchmarks.md). Split 256 ways, one insert moves at most a 256th.
struct DeviceTable<Value> {
    private var shards: [[UInt32: Value]] = Array(repeating: [:], count: 256)

    init() {}

    init(_ values: [UInt32: Value]) {
        for (device, value) in values { self[device] = value }
    }

    subscript(device: UInt32) -> Value? {
        get { shards[Int(device & 0xFF)][device] }
        set { shards[Int(device & 0xFF)][device] = newValue }
        _modify { yield &shards[Int(device & 0xFF)][device] }
    }

    /// The devices with a value (counts 256 dictionaries: not for every frame).
    var count: Int { shards.reduce(0) { $0 + $1.count } }

    /// Every device and its value, in no order.
    var entries: FlattenSequence<[[UInt32: Value]]> { shards.joined() }
}

extension DeviceTable: Sendable where Value: Sendable {}
