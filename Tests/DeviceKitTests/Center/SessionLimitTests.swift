import Testing

@testable import DeviceKit

/// The centre's session limit, sized to its memory and shared among its workers.
@Suite struct SessionLimitTests {
    static let gib: UInt64 = 1 << 30

    @Test func halfTheMemoryAt4KiBASessionIsTheLimit() {
        // 24 GiB: 12 GiB at 4 KiB = 3,145,728 sessions; 1 GiB (a small board): 131,072.
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 24 * Self.gib, cgroupLimit: nil, workers: 1) == 3_145_728)
        #expect(CenterConfiguration.sessionLimit(physicalMemory: Self.gib, cgroupLimit: nil, workers: 1) == 131_072)
    }

    @Test func aLowerCgroupLimitGovernsAndWorkersShareTheTotal() {
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 24 * Self.gib, cgroupLimit: 2 * Self.gib, workers: 1) == 262_144)
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 24 * Self.gib, cgroupLimit: 2 * Self.gib, workers: 4) == 65_536)
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 2 * Self.gib, cgroupLimit: 24 * Self.gib, workers: 1) == 262_144)
    }

    @Test func neverBelowAThousandAProcess() {
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 1 << 20, cgroupLimit: nil, workers: 64) == 1_000)
    }
}
