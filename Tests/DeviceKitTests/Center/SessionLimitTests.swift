import Testing

@testable import DeviceKit

/// The centre's session limit, sized to its memory and shared among its workers.
@Suite struct SessionLimitTests {
    static let gib: UInt64 = 1 << 30

    @Test func halfTheMemoryAt16KiBASessionIsTheLimit() {
        // 24 GiB: 12 GiB at 16 KiB = 786,432 sessions; 1 GiB (a small board): 32,768.
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 24 * Self.gib, cgroupLimit: nil, workers: 1) == 786_432)
        #expect(CenterConfiguration.sessionLimit(physicalMemory: Self.gib, cgroupLimit: nil, workers: 1) == 32_768)
    }

    @Test func aLowerCgroupLimitGovernsAndWorkersShareTheTotal() {
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 24 * Self.gib, cgroupLimit: 2 * Self.gib, workers: 1) == 65_536)
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 24 * Self.gib, cgroupLimit: 2 * Self.gib, workers: 4) == 16_384)
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 2 * Self.gib, cgroupLimit: 24 * Self.gib, workers: 1) == 65_536)
    }

    @Test func neverBelowAThousandAProcess() {
        #expect(CenterConfiguration.sessionLimit(physicalMemory: 1 << 20, cgroupLimit: nil, workers: 64) == 1_000)
    }
}
