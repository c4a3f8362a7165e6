import DequeModule
import NIOCore

/// The operators' SIP phones of a centre (`devicesim center --operator sip:desk1@HOST`, protocol.md §8).
public struct OperatorPhones: Sendable {
    /// The pool, in order of preference; each resolved to where its INVITEs go.
    public var phones: [(uri: SIPURI, target: SIPTarget)]
    /// Where the centre's SIP user agent listens (UDP and TCP on one port).
    public var endpoint: SIPEndpoint.Configuration
    /// Our From, Contact user and registered address of record.
    public var identity: SIPURI
    /// Register `identity` here and send every call through it (a PBX or a proxy such as Kamailio).
    public var registrar: (uri: SIPURI, target: SIPTarget)?
    public var credentials: SIPDigestCredentials?
    public var srtp: SRTPPolicy
    /// A phone that rings this long unanswered is cancelled, and the next one called.
    public var ringTimeout: Duration
    /// When every phone refused or did not answer, the case waits this long before the pool is tried again.
    public var retryAfter: Duration

    public init(
        phones: [(uri: SIPURI, target: SIPTarget)], endpoint: SIPEndpoint.Configuration, identity: SIPURI,
        registrar: (uri: SIPURI, target: SIPTarget)? = nil, credentials: SIPDigestCredentials? = nil, srtp: SRTPPolicy = .optional,
        ringTimeout: Duration = .seconds(30), retryAfter: Duration = .seconds(10)
    ) {
        self.phones = phones
        self.endpoint = endpoint
        self.identity = identity
        self.registrar = registrar
        self.credentials = credentials
        self.srtp = srtp
        self.ringTimeout = ringTimeout
        self.retryAfter = retryAfter
    }
}

/// Where a bridged call stands, for the event stream and the console.
public enum OperatorCallStage: Hashable, Sendable {
    /// An operator phone rings for the case of `device`.
    case ringing
    /// The operator picked up (`setupMilliseconds` after the INVITE); the home is being called.
    case answered(setupMilliseconds: Double)
    /// Both legs are up: the operator and the person at home hear each other.
    case bridged
    /// The phone refused or did not answer: the next one is tried.
    case notAnswered(String)
    /// No phone of the pool took the call: the case waits, and the pool is tried again.
    case waiting(String)
    /// The operator's leg ended, with its media numbers.
    case ended(String, MediaStatistics?)
}

/// Bridges an operator's SIP phone and the home (protocol.md §8): when an operator engages a case, the
/// centre calls a free phone of the pool; once it is answered, it calls the home over our protocol, and
/// relays the voice both ways, packet by packet, without transcoding (both legs are PCMU). A hang-up on
/// either side ends the other; the case stays open. A busy phone, one that does not answer within the ring
/// timeout, or a failed call moves on to the next free phone; when none took it, the case waits visibly
/// (`OperatorCallStage.waiting`) and the pool is tried again after `retryAfter`, or as soon as a phone is free.
///
/// Bound to the runtime's loop, as the runtime is.
final class OperatorBridge {
    private struct Leg {
        var caseID: Int64
        var device: UInt32
        var alarmID: UInt32
        var phone: Int?
        var call: SIPCallHandle?
        var tried: Set<Int> = []
        var answered = false
        var homeCallID: UInt32?
        var bridged = false
        /// What of the phone leg's media numbers the metrics hold already.
        var counted = MediaCounted()
        /// Ended because the phone's media went silent.
        var silent = false
    }

    private unowned let runtime: CenterRuntime
    private let phones: OperatorPhones
    private(set) var phone: SIPPhone?
    private var legs: [UInt32: Leg] = [:]
    private var deviceOfCall: [SIPCallHandle: UInt32] = [:]
    private var busyPhones: [Int: UInt32] = [:]
    private var waiting = Deque<UInt32>()
    private var nextPhone = 0
    private var retryScheduled = false

    init(runtime: CenterRuntime, phones: OperatorPhones) {
        self.runtime = runtime
        self.phones = phones
    }

    func attach(_ phone: SIPPhone) {
        self.phone = phone
        if phones.registrar != nil { phone.endpoint.register() }
    }

    /// Bridged calls now (both legs up).
    var bridgedCount: Int { legs.values.count { $0.bridged } }

    // MARK: From the runtime

    /// An operator engaged `engaged` (or asked to call its home again): call a phone, then the home. Returns
    /// the home call's id when an operator is on the line already and the home is called at once.
    @discardableResult
    func connect(_ engaged: CasePolicy.Case) -> UInt32? {
        let device = engaged.device
        if let leg = legs[device] {
            // The operator is on the line and the home call dropped: call the home again.
            guard leg.answered, !leg.bridged else { return nil }
            legs[device]?.homeCallID = runtime.offerCall(device: device, alarmID: engaged.alarmID)
            return legs[device]?.homeCallID
        }
        legs[device] = Leg(caseID: engaged.id, device: device, alarmID: engaged.alarmID)
        dial(device)
        return nil
    }

    /// Ends the operator's leg for `device` (ringing: CANCEL; answered: BYE); false without one.
    func hangUp(device: UInt32) -> Bool {
        guard let leg = legs[device] else { return false }
        if let call = leg.call { phone?.hangUp(call) } else { drop(device) }
        return true
    }

    /// Whether the home call `callID` of `device` is a bridge's leg (its media relays instead of talking).
    func relays(device: UInt32, callID: UInt32) -> Bool { legs[device]?.homeCallID == callID }

    /// The home answered: join its media to the operator's.
    func homeStarted(device: UInt32, callID: UInt32, link: MediaLink) {
        guard let leg = legs[device], leg.homeCallID == callID, let call = leg.call, let operatorLink = phone?.link(call) else { return }
        link.onAudio = { [weak operatorLink] packet in operatorLink?.relay(packet.payload) }
        operatorLink.onAudio = { [weak link] packet in link?.relay(packet.payload) }
        legs[device]?.bridged = true
        runtime.metrics.operatorCallsBridged.set(Int64(bridgedCount))
        emit(device, .bridged)
    }

    /// The home call `callID` ended (the person, the device, the case closed): the operator's leg ends too.
    func homeEnded(device: UInt32, callID: UInt32) {
        guard let leg = legs[device], leg.homeCallID == callID else { return }
        legs[device]?.homeCallID = nil
        legs[device]?.bridged = false
        runtime.metrics.operatorCallsBridged.set(Int64(bridgedCount))
        if let call = leg.call { phone?.hangUp(call) } else { drop(device) }
    }

    /// A case closed: its operator call ends, whether it was still being set up or bridged.
    func caseClosed(caseID: Int64) {
        guard let leg = legs.values.first(where: { $0.caseID == caseID }) else { return }
        let device = leg.device
        if let call = leg.call { phone?.hangUp(call) } else { drop(device) }
    }

    /// Adds what the phone legs received, lost and refused since the last time to the centre's media counters
    /// (each second, with the home legs').
    func countMediaProgress() {
        guard let phone else { return }
        for (device, leg) in legs {
            guard let call = leg.call, let statistics = phone.statistics(call) else { continue }
            var counted = leg.counted
            runtime.metrics.countMedia(statistics, counted: &counted)
            legs[device]?.counted = counted
        }
    }

    func stop() {
        phone?.stop()
        phone = nil
        legs.removeAll()
    }

    // MARK: The operator's leg

    private func dial(_ device: UInt32) {
        guard let phone, var leg = legs[device] else { return }
        guard runtime.cases.isOpen(leg.caseID) else { return drop(device) }
        let count = phones.phones.count
        let free = (0 ..< count).map { (nextPhone + $0) % count }.filter { busyPhones[$0] == nil && !leg.tried.contains($0) }
        guard let chosen = free.first else {
            let everyPhoneTried = (0 ..< count).allSatisfy { leg.tried.contains($0) }
            emit(device, .waiting(everyPhoneTried ? "no operator phone took the call" : "every operator phone is busy"))
            if !waiting.contains(device) { waiting.append(device) }
            scheduleRetry()
            return
        }
        nextPhone = (chosen + 1) % count
        leg.phone = chosen
        leg.tried.insert(chosen)
        legs[device] = leg
        busyPhones[chosen] = device
        let target = phones.registrar?.target ?? phones.phones[chosen].target
        emit(device, .ringing)
        runtime.metrics.operatorCallsPlaced.increment()
        phone.call(to: phones.phones[chosen].uri, target: target).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let call):
                guard legs[device]?.phone == chosen else { return phone.hangUp(call) }
                legs[device]?.call = call
                deviceOfCall[call] = device
                runtime.timers.schedule(in: phones.ringTimeout) { [weak self] in
                    guard let self, let leg = self.legs[device], leg.call == call, !leg.answered else { return }
                    self.phone?.hangUp(call)  // CANCEL; its end moves on to the next phone
                }
            case .failure(let error):
                busyPhones[chosen] = nil
                emit(device, .notAnswered("no media ports: \(error)"))
                dial(device)
            }
        }
    }

    private func scheduleRetry() {
        guard !retryScheduled else { return }
        retryScheduled = true
        runtime.timers.schedule(in: phones.retryAfter) { [weak self] in
            guard let self else { return }
            self.retryScheduled = false
            for device in self.waiting { self.legs[device]?.tried = [] }
            self.serveWaiting()
        }
    }

    private func serveWaiting() {
        let queued = Array(waiting)
        waiting.removeAll()
        for device in queued where legs[device] != nil && legs[device]?.call == nil { dial(device) }
    }

    /// The SIP phone's events, on the loop.
    func phoneEvent(_ event: SIPPhone.Event) {
        switch event {
        case .answered(let call, let setup):
            guard let device = deviceOfCall[call], let leg = legs[device] else { return }
            legs[device]?.answered = true
            emit(device, .answered(setupMilliseconds: Double(setup.components.attoseconds) / 1e15 + Double(setup.components.seconds) * 1000))
            runtime.metrics.operatorCallsAnswered.increment()
            legs[device]?.homeCallID = runtime.offerCall(device: device, alarmID: leg.alarmID)
            if legs[device]?.homeCallID == nil { phone?.hangUp(call) }
        case .ended(let report):
            guard let device = deviceOfCall.removeValue(forKey: report.call), let leg = legs[device] else { return }
            // Told with the phone it was on, before the leg lets go of it.
            let why = leg.silent ? "no voice from the operator's phone" : Self.words(report.end)
            let stage: OperatorCallStage = leg.answered ? .ended(why, report.statistics) : .notAnswered(why)
            emit(device, stage)
            if let statistics = report.statistics {
                var counted = leg.counted
                runtime.metrics.countMedia(statistics, counted: &counted)
            }
            if let index = leg.phone, busyPhones[index] == device { busyPhones[index] = nil }
            legs[device]?.call = nil
            legs[device]?.phone = nil
            if leg.answered {
                if leg.homeCallID != nil { runtime.endCall(device: device) }
                drop(device)
            } else {
                runtime.metrics.operatorCallsNotAnswered.increment()
                dial(device)
            }
            serveWaiting()
        case .registrationFailed(let why):
            runtime.logger.warning("operator phones: registration failed", metadata: ["reason": "\(why)"])
        case .refused(let why):
            runtime.logger.debug("SIP refused", metadata: ["reason": "\(why)"])
        case .incoming(let call, _):
            phone?.endpoint.reject(call, statusCode: 603)  // the centre calls operators; it takes no calls here
        case .mediaSilent(let call):
            // The phone sends nothing (unplugged, its network gone): end its leg, and so the home's; the case
            // stays open and the console says why.
            guard let device = deviceOfCall[call] else { return }
            legs[device]?.silent = true
            phone?.hangUp(call)
        case .registered, .mediaHeard:
            break
        }
    }

    private func drop(_ device: UInt32) {
        legs[device] = nil
        waiting.removeAll { $0 == device }
    }

    private func emit(_ device: UInt32, _ stage: OperatorCallStage) {
        let phone = legs[device]?.phone.map { phones.phones[$0].uri.description } ?? ""
        runtime.hub.emit(.operatorCall(device: device, phone: phone, stage: stage))
    }

    static func words(_ end: SIPUserAgent.CallEnd) -> String {
        switch end {
        case .hungUp: "hung up by the centre"
        case .byPeer: "hung up by the operator"
        case .cancelledByCaller: "cancelled"
        case .refused(let code, let reason): "\(code) \(reason)"
        case .timedOut: "no answer"
        case .noAcknowledgement: "no ACK"
        case .failed(let why): why
        }
    }
}
