import Foundation
import Logging
import Synchronization
import Testing

@testable import DeviceKit

/// Collects what a monitor emits, for a test to wait on.
final class NoticeRecorder<Notice: Sendable>: Sendable {
    private let notices = Mutex<[Notice]>([])

    var all: [Notice] { notices.withLock { $0 } }

    func record(_ notice: Notice) { notices.withLock { $0.append(notice) } }

    /// Waits until `condition` holds for what was recorded, and returns it (or, after `patience`, what did
    /// arrive, for the caller's expectations to fail on).
    func wait(until condition: ([Notice]) -> Bool) async throws -> [Notice] {
        await poll { condition(all) }
        return all
    }
}

/// The hotplug poller's looks, as it reports them (`UdevMonitor.looked`): what a test waits for instead of
/// guessing how long polling takes.
final class LookCounter: Sendable {
    private let count = Mutex(0)

    var looks: Int { count.withLock { $0 } }

    func looked(_ looks: Int) { count.withLock { $0 = looks } }

    /// Makes `change`, then waits until the poller has finished `looks` looks that began after it. Counted
    /// from once the change is made: the look under way then does not count, it may have read the tree before.
    func afterLooking(_ looks: Int = 1, at change: () throws -> Void) async throws {
        try change()
        let before = self.looks
        try await eventually("\(looks) look(s) of the poller after the change") { self.looks >= before + 1 + looks }
    }
}

extension HotplugNotice {
    /// `add input event0`, for comparing what a monitor reported; a warning is `warning`.
    var summary: String {
        switch self {
        case .device(let event): "\(event.action) \(event.subsystem) \(event.sysname)"
        case .warning: "warning"
        }
    }
}

@Suite struct HotplugDiffTests {
    static func device(_ sysname: String, link: String = "", properties: [String: String] = [:]) -> PresentDevice {
        PresentDevice(subsystem: "input", sysname: sysname, devnode: "/dev/input/" + sysname, sysfsLink: link,
                      deviceNumber: DeviceNumber(major: 13, minor: 64), properties: properties)
    }

    @Test func nothingChangedGivesNoEvents() {
        let devices = [Self.device("event0"), Self.device("event3")]
        #expect(HotplugDiff.events(from: devices, to: devices) == [])
    }

    @Test func removalsComeBeforeAdditions() {
        let events = HotplugDiff.events(from: [Self.device("event0"), Self.device("event3")],
                                        to: [Self.device("event0"), Self.device("event4")])
        #expect(events.map(\.action) == [.remove, .add])
        #expect(events.map(\.sysname) == ["event3", "event4"])
        #expect(events.last?.devnode == "/dev/input/event4")
    }

    @Test func aReplugBetweenTwoLooksIsARemoveAndAnAdd() {
        let events = HotplugDiff.events(from: [Self.device("event3", link: "../input17/event3")],
                                        to: [Self.device("event3", link: "../input18/event3")])
        #expect(events.map(\.action) == [.remove, .add])
    }

    @Test func newPropertiesAreAChange() {
        let events = HotplugDiff.events(from: [Self.device("event3")], to: [Self.device("event3", properties: ["ID_PATH": "x"])])
        #expect(events == [HotplugEvent(action: .change, subsystem: "input", sysname: "event3", devnode: "/dev/input/event3",
                                        properties: ["ID_PATH": "x"])])
    }
}

@Suite(.serialized) struct UdevMonitorTests {
    static let logger = Logger(label: "test.udev")

    @Test func withoutUdevdItWarnsAndNoticesAReplugByPolling() async throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        try tree.add(FakeHardwareTree.gpioButton)
        try tree.add(FakeHardwareTree.ftdi)
        let counter = LookCounter()
        var monitor = UdevMonitor(roots: tree.roots, pollInterval: .milliseconds(20), logger: Self.logger)
        monitor.looked = { counter.looked($0) }
        let recorder = NoticeRecorder<HotplugNotice>()
        let task = Task { try await monitor.run { recorder.record($0) } }
        defer { task.cancel() }

        let warned = try await recorder.wait { !$0.isEmpty }
        guard case .warning(let text) = warned.first else {
            Issue.record("expected a warning first, got \(warned)")
            return
        }
        #expect(text.hasPrefix("udevd is not running (\(tree.base)/run/udev/control is missing; a container?): watching for devices by reading"))
        #expect(text.hasSuffix("every 20 ms instead, without udev's stable names"))

        // The warning comes once the poller has taken its first look. Unplug the button: a look later it
        // has been reported removed, and nothing else.
        try await counter.afterLooking { try tree.unplug(event: 0) }
        #expect(recorder.all.map(\.summary) == ["warning", "remove input event0"])

        // Plug it back as a new input device and take the serial adapter away. Two looks after, nothing
        // more than the two changes was reported: no event repeated, none half made.
        var replugged = FakeHardwareTree.gpioButton
        replugged.input = 9
        try await counter.afterLooking(2) {
            try tree.add(replugged)
            try tree.unplug(serialPort: "ttyUSB0")
        }
        let notices = recorder.all
        let events = notices.compactMap { notice -> HotplugEvent? in
            if case .device(let event) = notice { return event }
            return nil
        }
        // In one look removals come first; in two, the button came back before the adapter went.
        #expect(events.map(\.action) == [.remove, .remove, .add] || events.map(\.action) == [.remove, .add, .remove])
        #expect(events.map { "\($0.action) \($0.subsystem) \($0.sysname)" }.sorted()
            == ["add input event0", "remove input event0", "remove tty ttyUSB0"])
        let added = try #require(events.first { $0.action == .add })
        #expect(added.devnode == tree.base + "/dev/input/event0")
        #expect(added.properties["ID_PATH"] == "platform-gpio-keys")
        #expect(notices.count == 4, "no repeated events: \(notices)")

        task.cancel()
        try await task.value
    }

    /// The flaky replug of issue 13, made to happen on purpose: the poller looks every millisecond while the
    /// button is unplugged and plugged back 50 times, so looks fall in the middle of changes. Each look sees
    /// the device whole or not at all: exactly one removal and one addition per replug, each addition with
    /// its node, place and udev properties.
    @Test func aLookDuringAnUnplugOrReplugSeesTheDeviceWholeOrNotAtAll() async throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        try tree.add(FakeHardwareTree.gpioButton)
        let counter = LookCounter()
        var monitor = UdevMonitor(
            roots: tree.roots, subsystems: ["input"], pollInterval: .milliseconds(1), backend: .polling, logger: Self.logger)
        monitor.looked = { counter.looked($0) }
        let recorder = NoticeRecorder<HotplugNotice>()
        let task = Task { try await monitor.run { recorder.record($0) } }
        try await eventually("the first look") { counter.looks >= 1 }
        let replugs = 50
        for input in 1...replugs {
            try await counter.afterLooking { try tree.unplug(event: 0) }
            var replugged = FakeHardwareTree.gpioButton
            replugged.input = input
            try await counter.afterLooking { try tree.add(replugged) }
        }
        task.cancel()
        try await task.value
        let notices = recorder.all
        #expect(notices.map(\.summary) == Array(repeating: ["remove input event0", "add input event0"], count: replugs).flatMap { $0 })
        let added = notices.compactMap { notice -> HotplugEvent? in
            if case .device(let event) = notice, event.action == .add { return event }
            return nil
        }
        #expect(added.count == replugs)
        for event in added {
            #expect(event.devnode == tree.base + "/dev/input/event0")
            #expect(event.properties["ID_PATH"] == "platform-gpio-keys", "udev's properties: \(event)")
        }
    }

    @Test func pollingWatchesOnlyTheWantedSubsystems() async throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        let counter = LookCounter()
        var monitor = UdevMonitor(roots: tree.roots, subsystems: ["tty"], pollInterval: .milliseconds(20),
                                  backend: .polling, logger: Self.logger)
        monitor.looked = { counter.looked($0) }
        let recorder = NoticeRecorder<HotplugNotice>()
        let task = Task { try await monitor.run { recorder.record($0) } }
        try await eventually("the first look") { counter.looks >= 1 }
        // Two looks after both devices came, only the serial port was reported.
        try await counter.afterLooking(2) {
            try tree.add(FakeHardwareTree.gpioButton)
            try tree.add(FakeHardwareTree.ftdi)
        }
        task.cancel()
        try await task.value
        #expect(recorder.all == [.device(HotplugEvent(
            action: .add, subsystem: "tty", sysname: "ttyUSB0", devnode: tree.base + "/dev/ttyUSB0",
            properties: UdevDatabaseRecord(parsing: FakeHardwareTree.ftdi.udev ?? "").properties))])
    }

    @Test func theLibudevMonitorOpensAndIsReleasedCompletely() throws {
        let before = LibudevMonitor.open.load(ordering: .relaxed)
        let monitor = try LibudevMonitor(subsystems: ["input", "tty"])
        #expect(LibudevMonitor.open.load(ordering: .relaxed) == before + 1)
        var socket = stat()
        #expect(fstat(monitor.fd, &socket) == 0)
        #expect(socket.st_mode & S_IFMT == S_IFSOCK)
        #expect(monitor.receive() == nil, "nothing is queued")
        #expect(monitor.close(), "libudev freed the monitor and the context")
        #expect(monitor.close(), "closing twice is harmless")
        #expect(LibudevMonitor.open.load(ordering: .relaxed) == before)
        // The socket is closed: its number is free or belongs to some other file now.
        var after = stat()
        #expect(fstat(monitor.fd, &after) != 0 || after.st_ino != socket.st_ino)
    }

    @Test func theLibudevBackendWarnsWithoutUdevdAndStopsOnCancel() async throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        let before = LibudevMonitor.open.load(ordering: .relaxed)
        let monitor = UdevMonitor(roots: tree.roots, backend: .libudev, logger: Self.logger)
        let recorder = NoticeRecorder<HotplugNotice>()
        let task = Task { try await monitor.run { recorder.record($0) } }
        let notices = try await recorder.wait { !$0.isEmpty }
        #expect(notices == [.warning(
            "udevd is not running (\(tree.base)/run/udev/control is missing; a container?): the udev monitor opens but will receive nothing")])
        // Wait until the monitor is open, then cancel: run returns and the monitor is released.
        await poll { LibudevMonitor.open.load(ordering: .relaxed) != before }
        #expect(LibudevMonitor.open.load(ordering: .relaxed) == before + 1)
        task.cancel()
        try await task.value
        #expect(LibudevMonitor.open.load(ordering: .relaxed) == before)
    }

    @Test func theStreamDeliversWhatRunEmits() async throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        let monitor = UdevMonitor(roots: tree.roots, pollInterval: .milliseconds(20), logger: Self.logger)
        var iterator = monitor.notices().makeAsyncIterator()
        let first = try await iterator.next()
        guard case .warning = first else {
            Issue.record("expected the udevd warning, got \(String(describing: first))")
            return
        }
    }
}
