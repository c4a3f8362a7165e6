import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// `devicesim demo`: a reference centre and a few simulated homes on loopback, one press of a red button,
/// and the story as an operator and the person at home would tell it. No configuration, under 20 seconds.
///
/// Everything is real except the button: TCP on 127.0.0.1, the sealed protocol, the SQLite outbox and
/// journal (in a temporary folder), the state machines the firmware runs.
public struct DemoStory: Sendable {
    public var homes: Int
    public var pressedHome: Int
    public var engageAfter: Duration
    public var closeAfter: Duration
    /// Parts served beside the centre: `devicesim demo` attaches the operators' web console.
    public var attachments: [any CenterAttachment] = []
    /// Run on the demo's journal before the centre opens it (the console's demo account).
    public var prepareJournal: (@Sendable (CenterJournal) throws -> Void)?
    /// Said after the console's address (how to log in).
    public var consoleNote: String?
    /// Awaited after the story, before the centre and the homes stop (`devicesim demo --stay`).
    public var afterStory: (@Sendable (Summary) async -> Void)?

    /// The people at home in the demo's registry of residents, one per home (the console shows them).
    static let residents = [
        ("Wang Fang", "12 Yuyuan Road, Shanghai", "daughter Wang Li 138-0000-0001", "lives alone; key safe by the door, code with the daughter"),
        ("Margaret Hill", "4 Church Lane, York", "son David 07700 900123", "hard of hearing: speak slowly"),
        ("Zhang Wei", "88 Renmin Street, Hangzhou", "neighbour Mrs Chen, flat 3B", "diabetic; insulin in the fridge"),
        ("Arthur Brown", "27 Mill Road, Leeds", "GP surgery 0113 496 0000", "uses a walking frame"),
        ("Li Na", "5 Hubin Road, Suzhou", "son Li Qiang 139-0000-0002", ""),
    ]

    public init(homes: Int = 3, pressedHome: Int = 2, engageAfter: Duration = .milliseconds(1500), closeAfter: Duration = .seconds(3)) {
        self.homes = homes
        self.pressedHome = min(max(1, pressedHome), homes)
        self.engageAfter = engageAfter
        self.closeAfter = closeAfter
    }

    public struct Summary: Sendable {
        public var pressToStored: Duration?
        public var pressToDelivered: Duration?
        public var pressToEngaged: Duration?
        public var pressToClosed: Duration?
        public var alarmsRecorded: Int
        public var refusedFrames: Int
        /// From the operator's engagement to media flowing both ways.
        public var engagedToCallStarted: Duration?
        /// The media numbers of the call, as the centre and the home measured them.
        public var centreMedia: MediaStatistics?
        public var homeMedia: MediaStatistics?
        public var succeeded: Bool { pressToClosed != nil && alarmsRecorded == 1 && (homeMedia?.audio.received ?? 0) > 0 }
    }

    /// Runs the story, printing each line through `print`; returns what was measured.
    public func run(print say: @escaping @Sendable (String) -> Void) async throws -> Summary {
        let directory = NSTemporaryDirectory() + "devicesim-demo-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "demo")
        logger.logLevel = .critical

        let master = try FleetMasterKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })
        let journalPath = directory + "/centre.sqlite"
        do {
            let journal = try CenterJournal(path: journalPath)
            defer { try? journal.close() }
            try journal.importResidents(
                (1...homes).map { home in
                    let (name, address, contacts, notes) = Self.residents[(home - 1) % Self.residents.count]
                    return Resident(device: UInt32(1000 + home), name: name, address: address, contacts: contacts, notes: notes)
                }, at: UInt64(Date().timeIntervalSince1970 * 1000))
            try prepareJournal?(journal)
        }
        let centre = CenterServer(
            configuration: CenterConfiguration(
                host: "127.0.0.1", tcpPort: 0, udpPort: 0, journalPath: journalPath,
                session: .init(heartbeatIntervalSeconds: 5),
                cases: .init(autoEngageAfter: engageAfter, autoCloseAfter: closeAfter)),
            registry: DeviceRegistry(master: master), logger: logger, attachments: attachments)
        let centreEvents = centre.events()
        let centreTask = Task { try await centre.run() }
        defer { centreTask.cancel() }
        let ports = try await centre.listening()
        say("Dispatch centre listening on 127.0.0.1:\(ports.tcp) (TCP), journal in SQLite.")
        if let web = ports.web {
            say("Operators' web console: http://127.0.0.1:\(web)/" + (consoleNote.map { " — \($0)" } ?? ""))
        }

        var devices: [DeviceRuntime] = []
        for home in 1...homes {
            let id = UInt32(1000 + home)
            let configuration = DeviceRuntimeConfiguration(
                key: DeviceKey(deviceID: id, master: master), primary: try SocketAddress(ipAddress: "127.0.0.1", port: ports.tcp),
                capabilities: [.button, .mainsSensing, .battery, .indicators, .cancelInput, .voice, .video],
                model: "demo home \(home)")
            let counter = CounterReservationFile(path: directory + "/home\(home).counter")
            try counter.provision()  // a new key, just provisioned
            devices.append(
                try DeviceRuntime(
                    configuration: configuration, outbox: try SQLiteOutbox(path: directory + "/home\(home).sqlite"),
                    counterStore: counter,
                    indicators: RecordingIndicators(), eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger))
        }
        let device = devices[pressedHome - 1]
        let deviceID = device.configuration.key.deviceID
        let observations = device.observations
        for d in devices { d.start() }
        for d in devices where d !== device {
            Task { for await _ in d.observations {} }  // drain
        }

        let clock = ContinuousClock()
        let timeline = Timeline()
        // The centre's side of the story.
        let centreWatcher = Task {
            for await event in centreEvents {
                switch event {
                case .alarm(let d, let alarm, _, _) where d == deviceID:
                    timeline.say("centre", "alarm \(alarm.id) from home \(d) recorded: \(alarm.kind) alarm, battery \(alarm.battery == 255 ? "unknown" : "\(alarm.battery) %")", say)
                    timeline.countAlarm()
                case .caseUpdate(let caseID, let d, _, let state) where d == deviceID:
                    let words: String
                    switch state {
                    case .received: words = "case \(caseID) opened, waiting for an operator"
                    case .operatorEngaged: words = "an operator takes case \(caseID) and calls the home"
                    case .helpDispatched: words = "help dispatched for case \(caseID)"
                    case .closed: words = "case \(caseID) closed by the operator"
                    default: words = "case \(caseID): \(state)"
                    }
                    timeline.say("centre", words, say)
                case .callOffered(let d, _, _) where d == deviceID:
                    timeline.say("centre", "calls the home: SRTP (AES-CM, HMAC-SHA1) keys in the sealed callOffer", say)
                case .callStarted(let d, _) where d == deviceID:
                    timeline.say("centre", "the home answered: G.711 voice both ways, 20 ms RTP packets, and the video stub", say)
                case .callEnded(let d, _, let reason, let by, let statistics) where d == deviceID:
                    timeline.say("centre", "call ended by the \(by.words) (\(reason)); what the centre received:", say)
                    if let statistics { timeline.say("", "  " + statistics.summary, say) }
                    timeline.centreMedia(statistics)
                case .refused:
                    timeline.countRefused()
                default: break
                }
            }
        }
        defer { centreWatcher.cancel() }

        // Wait for every home to be online.
        let online = Task { () -> Bool in
            for await o in observations { if case .sessionEstablished = o.kind { return true } }
            return false
        }
        guard await online.value else { throw DemoError("home \(deviceID) could not reach the centre") }
        try await Task.sleep(for: .milliseconds(300))
        say("\(homes) homes online, each with its own key derived from the fleet master key; heartbeats every 5 s.")
        say("Every frame is sealed with ChaCha20-Poly1305; an alarm is 43 bytes on the wire, a heartbeat 32.\n")

        say("Home \(deviceID): the person presses the red button and holds it for a moment.")
        timeline.start(at: clock.now)
        device.buttonEdge(down: true)
        Task {
            try await Task.sleep(for: .milliseconds(300))
            device.buttonEdge(down: false)
        }
        var summary = Summary(alarmsRecorded: 0, refusedFrames: 0)
        let deadline = clock.now + .seconds(15)
        var idleAfterClose = false
        for await o in observations {
            switch o.kind {
            case .story(.stored(let id)):
                summary.pressToStored = timeline.elapsed()
                timeline.say("home", "alarm \(id) stored on the device's flash before anything is shown", say)
            case .indicator(let state):
                timeline.say("home", "indicator: \(Self.words(for: state))", say)
            case .story(.delivered):
                summary.pressToDelivered = timeline.elapsed()
                timeline.say("home", "delivered: the centre acknowledged the alarm after storing it", say)
            case .story(.closed):
                summary.pressToClosed = timeline.elapsed()
                timeline.say("home", "the case is closed; the device is ready again", say)
            case .story(.caseUpdated(_, .operatorEngaged)):
                summary.pressToEngaged = timeline.elapsed()
            case .callStarted:
                if let engaged = summary.pressToEngaged, let now = timeline.elapsed() { summary.engagedToCallStarted = now - engaged }
                timeline.say("home", "the centre calls: answered automatically, no pick-up needed", say)
            case .callEnded(_, let reason, _, let statistics):
                summary.homeMedia = statistics
                timeline.say("home", "call ended (\(reason)); what the home received:", say)
                if let statistics { timeline.say("", "  " + statistics.summary, say) }
            default: break
            }
            if case .indicator(.idle) = o.kind, summary.pressToClosed != nil { idleAfterClose = true }
            // Done when the case is closed, the device is idle, and the call (if one started) has ended.
            if idleAfterClose, summary.homeMedia != nil || summary.engagedToCallStarted == nil { break }
            if clock.now > deadline { break }
        }
        try await Task.sleep(for: .milliseconds(200))
        summary.alarmsRecorded = timeline.alarms
        summary.centreMedia = timeline.centreStatistics
        summary.refusedFrames = timeline.refused
        await afterStory?(summary)
        for d in devices { await d.stop() }
        return summary
    }

    static func words(for state: IndicatorState) -> String {
        switch state {
        case .idle: "idle"
        case .sending: "red blinking: alarm registered, calling the centre"
        case .waiting: "red flashing, amber blinking: alarm stored, waiting for the centre"
        case .delivered: "red steady: the centre has the alarm"
        case .helpComing: "green blinking: an operator is on it, help is coming"
        case .speaking: "green steady: speaking with the operator"
        case .fault: "amber: fault"
        }
    }
}

/// Prints lines with the time since the press.
private final class Timeline: Sendable {
    private let state = Mutex<(start: ContinuousClock.Instant?, alarms: Int, refused: Int, media: MediaStatistics?)>((nil, 0, 0, nil))

    func start(at instant: ContinuousClock.Instant) { state.withLock { $0.start = instant } }
    func elapsed() -> Duration? { state.withLock { $0.start.map { ContinuousClock.now - $0 } } }
    func countAlarm() { state.withLock { $0.alarms += 1 } }
    func countRefused() { state.withLock { $0.refused += 1 } }
    var alarms: Int { state.withLock { $0.alarms } }
    var refused: Int { state.withLock { $0.refused } }
    func centreMedia(_ statistics: MediaStatistics?) { state.withLock { $0.media = statistics } }
    var centreStatistics: MediaStatistics? { state.withLock { $0.media } }

    func say(_ who: String, _ text: String, _ print: (String) -> Void) {
        let t = elapsed().map { String(format: "%+7.1f ms", Double($0.nanoseconds) / 1e6) } ?? "        "
        print("  \(t)  \(who.padding(toLength: 6, withPad: " ", startingAt: 0)) \(text)")
    }
}

public struct DemoError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
