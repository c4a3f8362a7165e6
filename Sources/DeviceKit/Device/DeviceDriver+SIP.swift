import NIOCore

/// A driven device's SIP line to its centre (`[voice] sip`, the load tester's `--sip-call`): the phone,
/// whom it calls, and the call that is up. What to do when is `SIPVoiceMachine`'s, inside `DeviceMachine`.
struct DeviceSIPLine {
    let phone: SIPPhone
    let uri: SIPURI
    let target: SIPTarget
    /// The call that is up (placed or answered), once its handle is known.
    var call: SIPCallHandle?
    /// The machine asked to hang up before the INVITE was out: hang up as soon as it is.
    var hangUpWhenPlaced = false

    init(phone: SIPPhone, uri: SIPURI, target: SIPTarget) {
        self.phone = phone
        self.uri = uri
        self.target = target
    }
}

/// What a device's SIP line is built from, the same for the firmware and the load tool.
public struct DeviceSIPSettings: Sendable {
    /// The centre's URI and where its requests go.
    public var uri: SIPURI
    public var target: SIPTarget
    /// Our own address of record and the address peers reach us at.
    public var identity: SIPURI
    public var host: String
    /// Local SIP port (UDP and TCP); 0: any.
    public var port: Int
    public var srtp: SRTPPolicy
    public var credentials: SIPDigestCredentials?
    public var voice: SIPVoiceMachine.Configuration

    public init(
        uri: SIPURI, target: SIPTarget, identity: SIPURI, host: String, port: Int, srtp: SRTPPolicy = .optional,
        credentials: SIPDigestCredentials? = nil, voice: SIPVoiceMachine.Configuration = .init()
    ) {
        self.uri = uri
        self.target = target
        self.identity = identity
        self.host = host
        self.port = port
        self.srtp = srtp
        self.credentials = credentials
        self.voice = voice
    }
}

extension DeviceDriver {
    /// Starts the device's SIP phone on its loop and hands it to the driver: its incoming calls are screened by
    /// the machine, its events fed to it. Returns the local SIP port.
    func startSIPLine(_ settings: DeviceSIPSettings, media: MediaLink.Parameters, cname: String) async throws -> Int {
        let userAgent = SIPUserAgent.Configuration(
            identity: settings.identity, contactHost: settings.host, contactPort: settings.port, credentials: settings.credentials,
            userAgent: "devicesim-device/\(DeviceRuntimeConfiguration.firmwareVersion)", maximumCalls: 4)
        let options = SIPPhone.Options(
            srtp: settings.srtp, media: media, cname: cname,
            screen: { [self] call, from, source in sipScreen(call, from: from, source: source) })
        let phone = try await SIPPhone.start(
            SIPEndpoint.Configuration(host: settings.host, port: settings.port), userAgent: userAgent, options: options, on: eventLoop
        ) { [self] event in sipEvent(event) }
        return try await eventLoop.submit { [self] in
            guard !driver.stopped else {
                phone.stop()
                return 0
            }
            driver.sip = DeviceSIPLine(phone: phone, uri: settings.uri, target: settings.target)
            return phone.endpoint.port
        }.get()
    }

    /// Stops the SIP phone (after `stopDriver`, which hung up its call), waiting up to `grace` for the answers.
    func stopSIPLine(grace: Duration) -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        guard let line = driver.sip else { return eventLoop.makeSucceededVoidFuture() }
        driver.sip = nil
        return line.phone.stop(grace: grace)
    }

    func placeSIPCall() {
        guard let line = driver.sip else {
            return feed { $0.sipCallEnded(.notPlaced("no SIP phone: its port could not be bound"), now: $1) }
        }
        line.phone.call(to: line.uri, target: line.target).whenComplete { [self] result in
            switch result {
            case .success(let handle):
                guard !driver.stopped, driver.sip != nil else { return line.phone.hangUp(handle) }
                driver.sip?.call = handle
                if driver.sip?.hangUpWhenPlaced == true {
                    driver.sip?.hangUpWhenPlaced = false
                    line.phone.hangUp(handle)
                }
            case .failure(let error):
                guard !driver.stopped else { return }
                driver.sip?.hangUpWhenPlaced = false
                feed { $0.sipCallEnded(.notPlaced("cannot bind its media ports: \(error)"), now: $1) }
            }
        }
    }

    func hangUpSIPCall() {
        guard let line = driver.sip else { return }
        if let call = line.call {
            line.phone.hangUp(call)
        } else {
            driver.sip?.hangUpWhenPlaced = true
        }
    }

    /// An incoming call: the machine answers it (nil) or says with which status to refuse it. Only the
    /// centre's host is the centre: the address the INVITE came from, not its From header, which anyone writes.
    private func sipScreen(_ call: SIPCallHandle, from: String, source: SIPTarget?) -> Int? {
        guard !driver.stopped, let line = driver.sip else { return 603 }
        let fromCentre = source.map { $0.address.ipAddress != nil && $0.address.ipAddress == line.target.address.ipAddress } ?? false
        var refusal: Int? = 603
        feed { machine, now in
            let (code, actions) = machine.sipCallOffered(from: from, fromCentre: fromCentre, now: now)
            refusal = code
            return actions
        }
        if refusal == nil { driver.sip?.call = call }
        return refusal
    }

    private func sipEvent(_ event: SIPPhone.Event) {
        guard !driver.stopped, let line = driver.sip else { return }
        switch event {
        case .answered(let call, let setupTime):
            guard call == line.call else { return }
            feed { $0.sipCallAnswered(setupTime: setupTime, now: $1) }
        case .ended(let report):
            guard report.call == line.call else { return }  // a refused incoming call, or one hung up unplaced
            driver.sip?.call = nil
            feed { $0.sipCallEnded(report, now: $1) }
        case .mediaHeard(let call):
            guard call == line.call else { return }
            sipMediaHeard()
        case .incoming, .mediaSilent, .registered, .registrationFailed, .refused:
            break  // screened by `sipScreen`; silence ends nothing here; the device does not register
        }
    }
}

extension SIPPhone.CallReport {
    /// A call that never went out.
    static func notPlaced(_ why: String) -> SIPPhone.CallReport {
        SIPPhone.CallReport(
            call: SIPCallHandle(value: 0), direction: .outgoing, end: .failed(why), setupTime: nil, mediaDuration: nil, srtp: false,
            statistics: nil)
    }
}
