import Testing

@testable import DeviceKit

@Suite struct LoadScheduleTests {
    /// A loop that runs every millisecond but stalls for one second: alarms due during the stall are raised
    /// late, and measured from their intended instant the stall shows; measured from when they were sent, it hides.
    @Test func aStalledLoopShowsInTheCorrectedHistogram() {
        var arrivals = PoissonArrivals(rate: 200, start: .zero, seed: 7)
        var corrected = LatencyHistogram()
        var uncorrected = LatencyHistogram()
        let service = Duration.milliseconds(1)  // the centre answers 1 ms after the alarm is sent
        var now = Duration.zero
        while now < .seconds(3) {
            let stalled = now > .seconds(1) && now < .seconds(2)
            if !stalled {
                for intended in arrivals.due(at: now) {
                    #expect(intended <= now)
                    corrected.record(now + service - intended)
                    uncorrected.record(service)
                }
            }
            now += .milliseconds(1)
        }
        #expect(corrected.count == uncorrected.count)
        #expect(corrected.count > 450)  // about 600 arrivals in 3 s at 200/s
        #expect(uncorrected.max < .milliseconds(2))
        #expect(corrected.max > .milliseconds(950))
        // A third of the arrivals fell in the stall: the top tenth of them waited more than half a second.
        #expect(corrected.value(atPercentile: 90) > .milliseconds(500))
        #expect(corrected.value(atPercentile: 50) < .milliseconds(3))  // two thirds were on time
    }

    @Test func poissonArrivalsComeAtTheAskedRate() {
        var arrivals = PoissonArrivals(rate: 1000, start: .seconds(5), seed: 1)
        #expect(arrivals.due(at: .seconds(5)).isEmpty || arrivals.next > .seconds(5))
        let due = arrivals.due(at: .seconds(15))
        #expect((9_000...11_000).contains(due.count))
        #expect(due == due.sorted())
        #expect(due.allSatisfy { $0 >= .seconds(5) && $0 <= .seconds(15) })
        #expect(arrivals.next > .seconds(15))
    }

    @Test func aRateOfZeroRaisesNothing() {
        var arrivals = PoissonArrivals(rate: 0, start: .zero, seed: 1)
        #expect(arrivals.due(at: .seconds(1_000)).isEmpty)
    }

    @Test func theRampStartsDevicesAtItsRate() {
        let ramp = RampSchedule(rate: 1000, devices: 10_000)
        #expect(ramp.instant(of: 0) == .zero)
        #expect(ramp.instant(of: 500) == .milliseconds(500))
        #expect(ramp.startedBy(.zero) == 1)
        #expect(ramp.startedBy(.milliseconds(499)) == 500)
        #expect(ramp.startedBy(.seconds(100)) == 10_000)
        #expect(ramp.length == .milliseconds(9_999))
    }

    @Test func shardsSplitTheFleetWithoutGapOrOverlap() throws {
        let n = 7
        var covered: [UInt64] = []
        for i in 0..<n { covered += Array(try FleetShard(parsing: "\(i)/\(n)").ids(first: 100, fleet: 1_000)) }
        #expect(covered == Array(100..<1_100))
        #expect(FleetShard.whole.ids(first: 1, fleet: 5) == 1..<6)
    }

    @Test func badShardsAreRefusedInPlainWords() {
        for text in ["4/4", "1", "-1/3", "a/b", "0/0", "1/2/3"] {
            #expect(throws: LoadError.self) { try FleetShard(parsing: text) }
        }
    }

    @Test func processShardsCoverTheirIdsOnce() throws {
        let plan = LoadPlan(
            centre: try .init(ipAddress: "127.0.0.1", port: 1), master: try FleetMasterKey(bytes: Array(repeating: 1, count: 32)),
            firstID: 10, fleetSize: 11)
        let layout = plan.shardLayout(loops: 4)
        var ids: [UInt64] = []
        for part in layout { ids += (0..<part.count).map { part.firstID + UInt64($0) * 4 } }
        #expect(ids.sorted() == Array(10..<21))
    }

    /// One event loop for every 20,000 UDP round trips a second at the run's busiest, at most one a core;
    /// `--loops` overrides; TCP, DC-09 and calls keep one a core.
    @Test func theEventLoopsFollowTheWorkAskedOverUDP() throws {
        func plan(devices: Int, ramp: Double, heartbeat: UInt16?, alarms: Double = 0, transport: Transport = .udp) throws -> LoadPlan {
            try LoadPlan(
                centre: .init(ipAddress: "127.0.0.1", port: 1), master: FleetMasterKey(bytes: Array(repeating: 1, count: 32)),
                transport: transport, fleetSize: devices, rampRate: ramp, fleetAlarmRate: alarms, heartbeatOverride: heartbeat)
        }
        // 20,000 devices at 2 s: 10,000 round trips a second after a ramp of 5,000 a second.
        #expect(try plan(devices: 20_000, ramp: 5_000, heartbeat: 2).eventLoops(cores: 2) == 1)
        // A ramp of 35,000 sessions a second is the busiest part.
        #expect(try plan(devices: 60_000, ramp: 35_000, heartbeat: nil).eventLoops(cores: 2) == 2)
        // A million at 30 s: 33,333 heartbeats a second, two loops, and no more than the cores.
        #expect(try plan(devices: 1_000_000, ramp: 10_000, heartbeat: 30).eventLoops(cores: 2) == 2)
        #expect(try plan(devices: 1_000_000, ramp: 10_000, heartbeat: 1).eventLoops(cores: 4) == 4)
        // Without an interval given, the centre's default of 30 s: 600,000 devices is 20,000 a second.
        #expect(try plan(devices: 600_000, ramp: 1_000, heartbeat: nil).eventLoops(cores: 8) == 1)
        #expect(try plan(devices: 600_030, ramp: 1_000, heartbeat: nil).eventLoops(cores: 8) == 2)
        // Alarms count too.
        #expect(try plan(devices: 10, ramp: 10, heartbeat: 30, alarms: 25_000).eventLoops(cores: 8) == 2)
        #expect(try plan(devices: 20_000, ramp: 5_000, heartbeat: 2, transport: .tcp).eventLoops(cores: 2) == 2)
        var calling = try plan(devices: 20_000, ramp: 5_000, heartbeat: 2)
        calling.callShare = 0.5
        #expect(calling.eventLoops(cores: 2) == 2)
        var given = try plan(devices: 20_000, ramp: 5_000, heartbeat: 2)
        given.loops = 3
        #expect(given.eventLoops(cores: 2) == 3)
    }
}

@Suite struct ProcessUsageTests {
    @Test func residentMemoryAndCPUTimeAreReadFromProc() {
        let status = "Name:\tdevicesim\nVmPeak:\t  999 kB\nVmRSS:\t   2048 kB\nThreads:\t3\n"
        let stat = "4242 (device sim) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 512"
        let usage = ProcessUsage.parse(status: status, stat: stat, ticksPerSecond: 100)
        #expect(usage == ProcessUsage(residentBytes: 2048 * 1024, cpuSeconds: 3.0))
        #expect(ProcessUsage.parse(status: "VmRSS: x kB", stat: stat, ticksPerSecond: 100) == nil)
        #expect(ProcessUsage.current() != nil)
    }
}
