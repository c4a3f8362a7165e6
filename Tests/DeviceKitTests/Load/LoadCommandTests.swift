import Foundation
import Testing

@testable import DeviceKit

/// `devicesim load` as a user runs it: the built binary, its output and its exit status.
@Suite(.serialized) struct LoadCommandTests {
    static let master = String(repeating: "5a", count: 32)

    /// Issue 14, defect 1, as filed: with nothing listening, the objective was "met (measured 0.000 ms)" and
    /// the exit status 0; the failed attempts had no reason.
    @Test func aRunAgainstNothingMissesItsObjectiveAndSaysWhy() async throws {
        let port = try await freeLoopbackPorts()
        let result = try await ChildProcess.run([
            "load", "--center", "127.0.0.1:\(port)", "--master", Self.master, "--devices", "10", "--duration", "1",
            "--drain", "0", "--slo", "alarm.p99<1ms", "--quiet",
        ])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("SLO MISSED alarm.p99<1ms  (nothing measured, alarm → ack: none of the"), "\(result.output)")
        #expect(result.output.contains("sent 0, acknowledged 0"), "\(result.output)")
        #expect(result.output.range(of: #"failed     [0-9]+ × nothing listens on that port \(connection refused\)"#, options: .regularExpression) != nil, "\(result.output)")
    }
}
