import Foundation
import Testing

@testable import DeviceKit

@Suite struct LoadScenarioTests {
    @Test func theExamplePowerCutParses() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../examples/load/power-cut.toml")
        let scenario = try LoadScenario(toml: try String(contentsOf: url, encoding: .utf8), file: "power-cut.toml")
        #expect(scenario.name == "power cut")
        #expect(scenario.phases.map(\.name) == ["power cut", "alarm spike", "power back"])
        #expect(scenario.phases[0] == .init(name: "power cut", duration: .seconds(600), alarmRate: 5, eventRate: 1, mainsLostShare: 0.3))
        #expect(scenario.phases[1].alarmRate == 200)
        #expect(scenario.phases[2].mainsRestoredShare == 1)
        #expect(scenario.duration == .seconds(1_020))
    }

    @Test func aPlanWithAScenarioTakesItsPhases() throws {
        var plan = LoadPlan(
            centre: try .init(ipAddress: "127.0.0.1", port: 1), master: try FleetMasterKey(bytes: Array(repeating: 1, count: 32)),
            fleetSize: 100, fleetAlarmRate: 2, duration: .seconds(60))
        #expect(plan.phases.count == 1)
        #expect(plan.steadyDuration == .seconds(60))
        plan.scenario = LoadScenario(name: "x", phases: [
            .init(name: "a", duration: .seconds(10), alarmRate: 1), .init(name: "b", duration: .seconds(30), alarmRate: 5),
        ])
        #expect(plan.steadyDuration == .seconds(40))
        #expect(plan.alarmRate == 4)  // (10 × 1 + 30 × 5) / 40
    }

    @Test func badScenariosAreRefusedInPlainWords() {
        let bad = [
            "",  // no phase
            "name = 3\n[[phase]]\nduration_s = 1",
            "[[phase]]\nalarm_rate = 1",  // no duration
            "[[phase]]\nduration_s = 1\nmains_lost_share = 1.5",
            "[[phase]]\nduration_s = \"ten\"",
            "[[phase]]\nduration_s = 1\nalarm_rat = 3",  // misspelt
            "speed = 3\n[[phase]]\nduration_s = 1",
            "[[phase]\nduration_s = 1",  // not TOML
        ]
        for text in bad {
            #expect(throws: LoadError.self, "\(text)") { try LoadScenario(toml: text, file: "s.toml") }
        }
    }
}
