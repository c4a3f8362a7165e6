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

    /// Waits until `condition` holds for what was recorded (at most 10 s, so a broken monitor fails the test
    /// instead of hanging it).
    func wait(until condition: ([Notice]) -> Bool) async throws -> [Notice] {
        for _ in 0..<1000 {
            let now = all
            if condition(now) { return now }
            try await Task.sleep(for: .milliseconds(10))
        }
        return all
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
        let monitor = UdevMonitor(roots: tree.roots, pollInterval: .milliseconds(20), logger: Self.logger)
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

        // The warning comes once the poller has taken its first look: unplug the button and plug it back as
        // a new input device, and take the serial adapter away (its class link first, as the kernel does).
        try tree.unplug(event: 0)
        _ = try await recorder.wait { $0.count >= 2 }
        var replugged = FakeHardwareTree.gpioButton
        replugged.input = 9
        try tree.add(replugged)
        try tree.delete("sys/class/tty/ttyUSB0")
        try tree.delete("dev/ttyUSB0")
        let notices = try await recorder.wait { $0.count >= 4 }
        let events = notices.compactMap { notice -> HotplugEvent? in
            if case .device(let event) = notice { return event }
            return nil
        }
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

    @Test func pollingWatchesOnlyTheWantedSubsystems() async throws {
        let tree = try FakeHardwareTree()
        defer { tree.remove() }
        let monitor = UdevMonitor(roots: tree.roots, subsystems: ["tty"], pollInterval: .milliseconds(20),
                                  backend: .polling, logger: Self.logger)
        let recorder = NoticeRecorder<HotplugNotice>()
        let task = Task { try await monitor.run { recorder.record($0) } }
        try await Task.sleep(for: .milliseconds(100))
        try tree.add(FakeHardwareTree.gpioButton)
        try tree.add(FakeHardwareTree.ftdi)
        let notices = try await recorder.wait { !$0.isEmpty }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        try await task.value
        #expect(notices.count == 1)
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
        for _ in 0..<500 where LibudevMonitor.open.load(ordering: .relaxed) == before {
            try await Task.sleep(for: .milliseconds(10))
        }
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
