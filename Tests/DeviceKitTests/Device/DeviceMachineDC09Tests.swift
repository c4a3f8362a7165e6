import NIOCore
import Testing

@testable import DeviceKit

/// The device reporting over SIA DC-09 (issue 15, part 1), as transcripts: the same `DeviceMachine`, with
/// DC-09 framing chosen at configuration, against `DC09Receiving` (the receiver's rules) as its peer.
@Suite struct DeviceMachineDC09Tests {
    static let wall: UInt64 = 1_795_000_000_000
    static let aesKey = try! DC09Key(bytes: Array(0x40..<0x60))

    /// A DC-09 device with an outbox in memory, and a receiver that answers its frames.
    struct Device {
        var machine: DeviceMachine
        var receiver: DC09Receiving
        var now = DeviceMachine.Instant(wall: DeviceMachineDC09Tests.wall, monotonic: .zero)
        /// The receiver's clock minus ours, in seconds.
        var receiverAhead: Int64 = 0
        var random = SplitMix64(seed: 9)
        var nextID: UInt32 = 1
        var frames: [DC09Frame] = []
        var observed: [DeviceObservation.Kind] = []
        var removed: [UInt32] = []
        var connects: [Int] = []
        var scheduled: [(timer: DeviceMachine.Timer, after: Duration)] = []
        var disconnects = 0
        var sip: [DeviceMachine.Action] = []
        var indicated: [IndicatorState] = []

        init(payload: DC09Frame.ID = .siaDCS, key: DC09Key? = nil, supervision: Duration = .seconds(60), sipVoice: SIPVoiceMachine.Configuration? = nil) {
            var configuration = DeviceMachine.Configuration(
                link: .init(hasSecondary: false, sessionStart: SessionStart(firmware: FirmwareVersion(1, 0, 0), capabilities: [.button], bootCount: 1)),
                primaryName: "arc.example:12345")
            configuration.reportOverDC09(.init(account: "1234", receiver: "7", line: "3", payload: payload, key: key), supervision: supervision)
            configuration.sipVoice = sipVoice
            machine = DeviceMachine(
                configuration: configuration, key: DeviceMachineTests.key, storedCounterLimit: nil, dc09Account: "12AB", seed: 3)
            receiver = DC09Receiving(accounts: ["12AB": .init(key: key)])
        }

        var receiverTime: DC09Timestamp { DC09Timestamp(secondsSince1970: Int64(now.wall / 1000) + receiverAhead) }

        mutating func advance(_ ms: Int64) {
            now.monotonic += .milliseconds(ms)
            now.wall += UInt64(ms)
        }

        /// Runs an event's actions as a driver would, with the outbox answering at once.
        mutating func run(_ event: (inout DeviceMachine, DeviceMachine.Instant) -> [DeviceMachine.Action]) {
            let actions = event(&machine, now)
            for action in actions {
                switch action {
                case .connect(_, let generation): connects.append(generation)
                case .disconnect: disconnects += 1
                case .transmit(let buffer, _):
                    let bytes = Array(buffer.readableBytesView)
                    frames.append(try! DC09Frame.decode(bytes) { $0.flatMap { receiver.accounts[$0]?.key } })
                case .reserveCounters: Issue.record("a DC-09 device reserved frame counters")
                case .store(let draft):
                    let message = draft.message(id: nextID)
                    nextID += 1
                    run { $0.stored(message, now: $1) }
                case .remove(let id): removed.append(id)
                case .schedule(let timer, let after): scheduled.append((timer, after))
                case .indicate(let state): indicated.append(state)
                case .observe(let kind): observed.append(kind)
                case .bindMedia, .startMedia, .stopMedia: Issue.record("a DC-09 device set up call media")
                case .placeSIPCall, .hangUpSIPCall: sip.append(action)
                }
            }
        }

        mutating func start() {
            run { $0.start(pending: [], bootCount: 1, reportsRestart: false, now: $1) }
            let generation = connects.last ?? 1
            run { $0.connected(generation: generation, now: $1) }
        }

        /// The receiver's answer to the latest frame: what `DC09Receiving` decides (an event: stored, then ACK).
        mutating func answerLatest() -> DC09Frame {
            let frame = frames.last!
            let bytes = try! frame.encoded(key: receiver.accounts["12AB"]?.key, random: &random)
            let answer: DC09Frame =
                switch receiver.decide(bytes, now: receiverTime) {
                case .store(let stored): receiver.acknowledgement(of: stored, now: receiverTime)
                case .answer(let answer, _): answer
                }
            deliver(answer, answering: frame)
            return answer
        }

        mutating func deliver(_ answer: DC09Frame, answering frame: DC09Frame?) {
            let bytes = try! receiver.encoded(answer, answering: frame, random: &random)
            let generation = connects.last ?? 1
            run { $0.dc09AnswerReceived(bytes, generation: generation, now: $1) }
        }

        func fire(_ matching: (DeviceMachine.Timer) -> Bool) -> DeviceMachine.Timer? {
            scheduled.last(where: { matching($0.timer) })?.timer
        }
    }

    @Test func anAlarmIsFramedWithItsCodeAndLeavesTheOutboxOnlyOnTheReceiversACK() throws {
        var device = Device()
        device.start()
        #expect(device.observed.contains(.sessionEstablished(.primary)), "no handshake: the link is up with the transport")
        #expect(device.frames.isEmpty, "nothing is sent before there is something to report")
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        let frame = try #require(device.frames.last)
        #expect(frame.id == .siaDCS && frame.account == "12AB" && frame.receiver == "7" && frame.line == "3")
        #expect(frame.data == "#12AB|Nri1/QA001")
        #expect(frame.sequence == DC09FrameSession.sequence(of: 1))
        #expect(frame.timestamp == DC09Timestamp(milliseconds: Self.wall))
        #expect(device.removed.isEmpty, "not removed before the receiver answers")
        device.advance(30)
        let ack = device.answerLatest()
        #expect(ack.id == .ack)
        #expect(device.removed == [1])
        #expect(device.observed.contains { if case .delivered(.alarm) = $0 { true } else { false } })
    }

    @Test func aNAKWithTheReceiversTimeCorrectsTheClockAndSendsTheSameSequenceAgainAtOnce() throws {
        var device = Device()
        device.receiverAhead = 300  // the device's clock is five minutes slow: outside the receiver's window
        device.start()
        device.run { $0.raiseAlarm(kind: .fall, now: $1) }
        let first = try #require(device.frames.last)
        device.advance(20)
        #expect(device.answerLatest().id == .nak)
        #expect(device.frames.count == 2, "sent again at once, not after the retransmission timeout")
        let again = try #require(device.frames.last)
        #expect(again.sequence == first.sequence, "a retransmission keeps its sequence number")
        #expect(again.data == "#12AB|Nri1/MA003")
        let stamped = try #require(again.timestamp)
        #expect(abs(stamped.secondsSince1970 - device.receiverTime.secondsSince1970) <= 1, "stamped with the receiver's time")
        #expect(device.answerLatest().id == .ack)
        #expect(device.removed == [1])
    }

    @Test func aNAKThatTeachesNothingWaitsForTheBackoffInsteadOfLooping() throws {
        var device = Device()
        device.start()
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        device.receiver.accounts = [:]  // the receiver forgot the account: NAK, with a time that is ours
        #expect(device.answerLatest().id == .nak)
        #expect(device.frames.count == 1, "a NAK that did not move the clock is not answered by resending at once")
        #expect(device.removed.isEmpty, "an alarm is never dropped on a receiver's word")
        #expect(device.observed.contains(.dc09Refused(message: 1, receiverTime: device.receiverTime)))
        let retransmit = try #require(device.fire { if case .delivery = $0 { true } else { false } })
        device.run { $0.timerFired(retransmit, now: $1) }
        #expect(device.frames.count == 2, "tried again when the backoff ends")
    }

    @Test func aDUHKeepsTheMessageAndTriesItAgainOnlyAfterTheLongestWait() throws {
        var device = Device()
        device.receiver.takes = { _, code in code != "AT" }  // a receiver that does not take mains lost
        device.start()
        device.run { $0.mainsChanged(present: false, reportWithin: .zero, now: $1) }
        let report = try #require(device.fire { if case .events = $0 { true } else { false } })
        device.run { $0.timerFired(report, now: $1) }
        #expect(device.frames.last?.data == "#12AB|Nri1/AT000")
        #expect(device.answerLatest().id == .duh)
        #expect(device.removed.isEmpty, "kept in the outbox")
        #expect(device.observed.contains(.dc09NotUnderstood(message: 1)))
        let last = try #require(device.scheduled.last { if case .delivery = $0.timer { true } else { false } })
        #expect(last.after == DeliveryMachine.Configuration().maximumTimeout)
        // Answered "not as it is": the receiver is alive, and the link is not taken for dead while it waits.
        let unanswered = try #require(device.fire { if case .link(.unanswered) = $0 { true } else { false } })
        device.advance(10_000)
        device.run { $0.timerFired(unanswered, now: $1) }
        #expect(device.disconnects == 0 && !device.observed.contains(.sessionLost(.unanswered)))
        device.advance(20_000)
        device.run { $0.timerFired(last.timer, now: $1) }
        #expect(device.frames.count == 2 && device.frames.last?.data == "#12AB|Nri1/AT000", "tried again after the longest wait")
    }

    @Test func oneMessageIsInFlightAtATimeAndTheNextGoesOnTheACK() throws {
        var device = Device()
        device.start()
        device.run { $0.raiseAlarm(kind: .pendant, now: $1) }
        device.run { $0.tamperDetected(now: $1) }
        #expect(device.frames.count == 1, "a NAK names no sequence: only one message may be waiting for its answer")
        #expect(device.answerLatest().id == .ack)
        #expect(device.frames.count == 2)
        #expect(device.frames.last?.data == "#12AB|Nri1/TA000")
        #expect(device.answerLatest().id == .ack)
        #expect(device.removed == [1, 2])
    }

    @Test func aCancelCarriesItsAlarmsZone() throws {
        var device = Device(payload: .contactID)
        device.start()
        device.run { $0.raiseAlarm(kind: .fall, now: $1) }
        #expect(device.frames.last?.data == "#12AB|1100 01 003")
        #expect(device.answerLatest().id == .ack)
        device.run { $0.cancelRequested(now: $1) }
        #expect(device.frames.last?.data == "#12AB|1406 01 003", "the cancel of a fall alarm names the fall detector's zone")
        #expect(device.answerLatest().id == .ack)
        #expect(device.removed == [1, 2])
    }

    @Test func afterTheACKAndTheCancelWindowTheDeviceIsIdleAndANewPressIsANewAlarm() throws {
        var device = Device()
        device.start()
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        device.advance(50)
        #expect(device.answerLatest().id == .ack)
        #expect(device.machine.openAlarm?.id == 1, "open for its cancel window: the person may still withdraw it")
        let handedOver = try #require(device.scheduled.last { if case .alarm(.handedOver) = $0.timer { true } else { false } })
        #expect(handedOver.after == .milliseconds(9_950), "the rest of the 10 s cancel window")
        device.advance(9_950)
        device.run { $0.timerFired(handedOver.timer, now: $1) }
        #expect(device.machine.alarmIsIdle, "no case updates come over DC-09: the ACK ends the device's part")
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        #expect(device.frames.last?.data == "#12AB|Nri1/QA001" && device.frames.count == 2, "a second call for help is sent, not swallowed")
    }

    /// An IP social alarm: DC-09 for the alarm, SIP for the voice (issue 16, part 3). The receiver's ACK places
    /// the call; the end of the cancel window (no case closes over DC-09) does not hang it up.
    @Test func withSIPVoiceTheACKPlacesTheCallAndTheHandOverKeepsIt() throws {
        var device = Device(sipVoice: SIPVoiceMachine.Configuration())
        device.start()
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        device.advance(50)
        #expect(device.answerLatest().id == .ack)
        #expect(device.sip == [.placeSIPCall(alarmID: 1, attempt: 1)])
        device.run { $0.sipCallAnswered(setupTime: .milliseconds(30), now: $1) }
        let handedOver = try #require(device.scheduled.last { if case .alarm(.handedOver) = $0.timer { true } else { false } })
        device.advance(9_950)
        device.run { $0.timerFired(handedOver.timer, now: $1) }
        #expect(device.machine.alarmIsIdle)
        #expect(device.sip == [.placeSIPCall(alarmID: 1, attempt: 1)], "the call goes on: only a side hanging up ends it")
        #expect(device.observed.contains(.sipCallAnswered(incoming: false, setupTime: .milliseconds(30))))
        #expect(device.indicated.last == .speaking, "the call is shown while it lasts")
        let report = SIPPhone.CallReport(
            call: SIPCallHandle(value: 1), direction: .outgoing, end: .byPeer, setupTime: .milliseconds(30), mediaDuration: .seconds(10),
            srtp: false, statistics: nil)
        device.run { $0.sipCallEnded(report, now: $1) }
        #expect(device.indicated.last == .idle)
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        #expect(device.frames.count == 2, "a second press is a new alarm, not a press during the first")
    }

    @Test func whatDC09DoesNotCarryLeavesTheOutboxUnsentAndDoesNotHoldWhatFollows() throws {
        var device = Device()
        device.start()
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        #expect(device.answerLatest().id == .ack)
        device.run { $0.raiseAlarm(kind: .button, now: $1) }  // a press while the alarm is open
        #expect(device.observed.contains { if case .notReported(.event(let e)) = $0 { e.kind == .pressDuringAlarm } else { false } })
        #expect(device.removed == [1, 2], "removed unsent")
        #expect(device.frames.count == 1)
        device.run { $0.tamperDetected(now: $1) }
        #expect(device.frames.last?.data == "#12AB|Nri1/TA000", "the next message goes")
    }

    @Test func encryptedFramesWithEachKeySizeAreReadByTheReceiverAndItsEncryptedACKByTheDevice() throws {
        for size in [16, 24, 32] {
            var device = Device(key: try DC09Key(bytes: Array(repeating: UInt8(size), count: size)))
            device.start()
            device.run { $0.raiseAlarm(kind: .inactivity, now: $1) }
            let frame = try #require(device.frames.last)
            #expect(frame.encrypted && frame.data == "#12AB|Nri1/MA004")
            #expect(device.answerLatest().id == .ack)
            #expect(device.removed == [1], "the encrypted ACK (AES-\(size * 8)) was read")
        }
    }

    @Test func nullSupervisionKeepsTheLinkAndItsSilenceEndsIt() throws {
        var device = Device(supervision: .seconds(60))
        device.start()
        let heartbeat = try #require(device.fire { if case .link(.heartbeat) = $0 { true } else { false } })
        #expect(device.scheduled.contains { if case .link(.heartbeat) = $0.timer { $0.after == .seconds(60) } else { false } })
        device.advance(60_000)
        device.run { $0.timerFired(heartbeat, now: $1) }
        let null = try #require(device.frames.last)
        #expect(null.id == .null && null.sequence == "0000" && null.account == "12AB")
        device.advance(40)
        #expect(device.answerLatest().id == .ack)
        #expect(device.observed.contains(.heartbeatRoundTrip(.milliseconds(40))))
        // Then the receiver goes silent: 2.5 intervals after the last answer the link is probed (a NULL a
        // second), and after five unanswered probes it is down.
        let dead = try #require(device.fire { if case .link(.deadLink) = $0 { true } else { false } })
        device.advance(150_000)
        let sentBefore = device.frames.count
        device.run { $0.timerFired(dead, now: $1) }
        for _ in 0..<5 {
            #expect(device.disconnects == 0)
            device.advance(1_000)
            device.run { $0.timerFired(dead, now: $1) }
        }
        #expect(device.frames.count == sentBefore + 5 && device.frames.suffix(5).allSatisfy { $0.id == .null }, "five NULL probes")
        #expect(device.observed.contains(.sessionLost(.silent)))
        #expect(device.disconnects == 1)
    }

    @Test func anAnswerThatIsNotDC09IsObservedAndChangesNothing() throws {
        var device = Device()
        device.start()
        device.run { $0.raiseAlarm(kind: .button, now: $1) }
        let generation = device.connects.last ?? 1
        device.run { $0.dc09AnswerReceived(Array("\nnot a frame\r".utf8), generation: generation, now: $1) }
        #expect(device.observed.contains { if case .dc09Unreadable = $0 { true } else { false } })
        #expect(device.removed.isEmpty)
        #expect(device.answerLatest().id == .ack)
        #expect(device.removed == [1])
    }
}
