import Testing

@testable import DeviceKit

/// Durations as a person types them on the command line.
@Suite struct TypedDurationTests {
    @Test(arguments: [
        ("250ms", TypedDuration.Unit.seconds, Duration.milliseconds(250)),
        ("1.5s", .milliseconds, .milliseconds(1500)),
        ("2min", .seconds, .seconds(120)),
        ("2m", .seconds, .seconds(120)),
        ("1h", .seconds, .seconds(3600)),
        ("500us", .seconds, .microseconds(500)),
        ("500µs", .seconds, .microseconds(500)),
        ("30", .seconds, .seconds(30)),
        ("100", .milliseconds, .milliseconds(100)),
        (" 7 s ", .milliseconds, .seconds(7)),
    ])
    func aNumberWithItsUnitOrAPlainNumberInTheOptionsUnit(text: String, plain: TypedDuration.Unit, expected: Duration) {
        #expect(TypedDuration.parse(text, plainUnit: plain) == expected)
    }

    @Test(arguments: ["", "s", "-5", "-5s", "5 parsecs", "1e3", "5s5", "999999999h", "nan"])
    func whatIsNoDurationIsRefused(text: String) {
        #expect(TypedDuration.parse(text, plainUnit: .seconds) == nil)
    }

    @Test(arguments: [Duration.seconds(30), .milliseconds(1500), .microseconds(250), .nanoseconds(7), .seconds(7200), .zero])
    func aRenderedDurationReadsBackTheSame(duration: Duration) {
        #expect(TypedDuration.parse(TypedDuration.render(duration), plainUnit: .milliseconds) == duration)
    }
}
