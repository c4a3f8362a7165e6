import Testing

@testable import DeviceKit

/// Matching (RFC 3261 §17.1.3, §17.2.3), CANCEL, stray 2xx, ACKs of 2xx, the bound on server transactions and
/// the removal of ended ones.
@Suite struct SIPTransactionLayerTests {
    typealias F = SIPTransactionFixtures
    static let invite = F.invite
    static let inviteKey = SIPTransactionKey(branch: F.inviteBranch, method: .invite, sentBy: "pc33.atlanta.com", side: .server)

    @Test func aNewInviteMakesAServerTransactionAndACopyAfter180GetsThe180() {
        var layer = SIPTransactionLayer()
        let actions = layer.receive(.request(Self.invite), reliable: false)
        #expect(actions.count == 2)
        #expect(actions.last == .request(Self.inviteKey, Self.invite))
        #expect(layer.respond(to: Self.inviteKey, F.response(180)) == [.server(Self.inviteKey, .send(.response(F.response(180))))])
        #expect(layer.receive(.request(Self.invite), reliable: false) == [.server(Self.inviteKey, .send(.response(F.response(180))))])
        #expect(layer.count == 1)
    }

    @Test func theSameBranchFromAnotherSentByIsAnotherTransaction() {
        var layer = SIPTransactionLayer()
        _ = layer.receive(.request(Self.invite), reliable: false)
        let other = F.request(.invite, sentBy: "10.0.0.9:5070")
        let otherKey = SIPTransactionKey(branch: F.inviteBranch, method: .invite, sentBy: "10.0.0.9:5070", side: .server)
        #expect(layer.receive(.request(other), reliable: false).last == .request(otherKey, other))
        #expect(layer.count == 2)
    }

    @Test func aCancelIsItsOwnTransactionAndNamesTheInviteItCancels() throws {
        var layer = SIPTransactionLayer()
        _ = layer.receive(.request(Self.invite), reliable: false)
        let cancel = F.request(.cancel)
        let cancelKey = try SIPTransactionKey.server(for: cancel)
        #expect(cancelKey != Self.inviteKey)
        #expect(layer.receive(.request(cancel), reliable: false) == [.cancel(cancelKey, inviteKey: Self.inviteKey, cancel)])
        #expect(layer.respond(to: cancelKey, F.response(200, to: cancel)) == [
            .server(cancelKey, .send(.response(F.response(200, to: cancel)))), .server(cancelKey, .schedule(.j, after: .seconds(32))),
        ])
        #expect(layer.respond(to: Self.inviteKey, F.response(487)).first == .server(Self.inviteKey, .send(.response(F.response(487)))))
        #expect(layer.receive(.request(cancel), reliable: false) == [.server(cancelKey, .send(.response(F.response(200, to: cancel))))],
                "a copy of the CANCEL gets its 200 again")

        let unknown = F.request(.cancel, branch: "z9hG4bKnothing")
        let unknownKey = try SIPTransactionKey.server(for: unknown)
        #expect(layer.receive(.request(unknown), reliable: false) == [.cancel(unknownKey, inviteKey: nil, unknown)], "the UA answers 481")
    }

    @Test func theAckOfANon2xxGoesToItsTransactionAndTheAckOfA2xxToTheCore() {
        var layer = SIPTransactionLayer()
        _ = layer.receive(.request(Self.invite), reliable: false)
        _ = layer.respond(to: Self.inviteKey, F.response(486))
        let ack = F.request(.ack)
        #expect(layer.receive(.request(ack), reliable: false) == [
            .server(Self.inviteKey, .cancel(.g)), .server(Self.inviteKey, .cancel(.h)), .server(Self.inviteKey, .ackReceived),
            .server(Self.inviteKey, .schedule(.i, after: .seconds(5))),
        ])
        let ackOf2xx = F.request(.ack, branch: "z9hG4bKnewbranch")
        #expect(layer.receive(.request(ackOf2xx), reliable: false) == [.ackForSuccess(ackOf2xx)])
        #expect(layer.count == 1, "an ACK makes no transaction")

        var accepted = SIPTransactionLayer()
        _ = accepted.receive(.request(Self.invite), reliable: false)
        _ = accepted.respond(to: Self.inviteKey, F.response(200))
        #expect(accepted.receive(.request(ack), reliable: false) == [.ackForSuccess(ack)], "an ACK of a 2xx that reused the branch")
    }

    @Test func responsesGoToTheirClientTransactionAndA2xxAfterItEndedIsStray() throws {
        var layer = SIPTransactionLayer()
        let key = SIPTransactionKey(branch: F.inviteBranch, method: .invite, side: .client)
        #expect(try layer.sendRequest(Self.invite, reliable: false) == [
            .client(key, .send(.request(Self.invite))), .client(key, .schedule(.a, after: .milliseconds(500))),
            .client(key, .schedule(.b, after: .seconds(32))),
        ])
        #expect(layer.receive(.response(F.response(200)), reliable: false) == [
            .client(key, .cancel(.a)), .client(key, .cancel(.b)), .client(key, .deliver(F.response(200))),
            .client(key, .schedule(.m, after: .seconds(32))),
        ])
        #expect(layer.receive(.response(F.response(200)), reliable: false) == [.client(key, .deliver(F.response(200)))])
        #expect(layer.timerFired(key: key, timer: .m) == [.client(key, .terminated)])
        #expect(layer.count == 0)
        #expect(layer.receive(.response(F.response(200)), reliable: false) == [.strayResponse(F.response(200))],
                "the core ACKs it again")
        let cancelResponse = F.response(200, to: F.request(.cancel))
        #expect(layer.receive(.response(cancelResponse), reliable: false) == [.strayResponse(cancelResponse)],
                "the CSeq method is part of the key")
    }

    @Test func messagesThatCannotBeMatchedAreReportedInvalid() {
        var layer = SIPTransactionLayer()
        var noVia = Self.invite
        noVia.headers.remove("Via")
        let rfc2543 = F.request(.invite, branch: "776asdhds")
        let noBranch: SIPRequest = {
            var request = Self.invite
            request.headers.set("Via", "SIP/2.0/UDP pc33.atlanta.com;received=1.2.3.4")
            return request
        }()
        let wrongCSeq = F.request(.invite, cseqMethod: .bye)
        let badCSeq: SIPRequest = {
            var request = Self.invite
            request.headers.set("CSeq", "99999999999 INVITE")
            return request
        }()
        for request in [noVia, rfc2543, noBranch, wrongCSeq, badCSeq] {
            let actions = layer.receive(.request(request), reliable: false)
            guard case .invalid(.request(request), let error)? = actions.first, actions.count == 1 else {
                Issue.record("accepted: \(actions)")
                continue
            }
            #expect(!error.message.isEmpty)
        }
        var response = F.response(200)
        response.headers.remove("CSeq")
        #expect(layer.receive(.response(response), reliable: false).count == 1)
        #expect(layer.count == 0)
        #expect(throws: SIPTransactionError.self) { try layer.sendRequest(F.request(.ack), reliable: false) }
        #expect(throws: SIPTransactionError.self) { try layer.sendRequest(rfc2543, reliable: false) }
        _ = try? layer.sendRequest(Self.invite, reliable: false)
        #expect(throws: SIPTransactionError.self, "a live branch") { try layer.sendRequest(Self.invite, reliable: false) }
    }

    @Test func tenThousandCompletedTransactionsLeaveNothingBehindAfterTheirTimers() throws {
        var layer = SIPTransactionLayer()
        for n in 0..<10_000 {
            let bye = F.request(.bye, branch: "z9hG4bKs\(n)")
            _ = layer.receive(.request(bye), reliable: false)
            _ = layer.respond(to: try SIPTransactionKey.server(for: bye), F.response(200, to: bye))
            let options = F.request(.options, branch: "z9hG4bKc\(n)")
            _ = try layer.sendRequest(options, reliable: false)
            _ = layer.receive(.response(F.response(200, to: options)), reliable: false)
        }
        #expect(layer.count == 20_000, "both kinds wait in Completed for copies")
        for n in 0..<10_000 {
            let bye = F.request(.bye, branch: "z9hG4bKs\(n)")
            #expect(layer.timerFired(key: try SIPTransactionKey.server(for: bye), timer: .j) == [
                .server(try SIPTransactionKey.server(for: bye), .terminated)
            ])
            _ = layer.timerFired(key: try SIPTransactionKey.client(for: F.request(.options, branch: "z9hG4bKc\(n)")), timer: .k)
        }
        #expect(layer.count == 0)
        #expect(layer.timerFired(key: Self.inviteKey, timer: .j) == [], "a timer of a forgotten transaction")
    }

    @Test func beyondTheBoundANewRequestIsOverloadedWithoutState() throws {
        var layer = SIPTransactionLayer(maximumServerTransactions: 2)
        let first = F.request(.bye, branch: "z9hG4bK1")
        _ = layer.receive(.request(first), reliable: true)
        _ = layer.receive(.request(F.request(.bye, branch: "z9hG4bK2")), reliable: true)
        let third = F.request(.bye, branch: "z9hG4bK3")
        #expect(layer.receive(.request(third), reliable: true) == [.overloaded(third)])
        #expect(layer.count == 2)
        #expect(layer.receive(.request(first), reliable: true) == [], "copies still reach their transaction")
        _ = try layer.sendRequest(F.request(.options, branch: "z9hG4bKout"), reliable: true)
        #expect(layer.count == 3, "client transactions do not count against the bound")
        let firstKey = try SIPTransactionKey.server(for: first)
        #expect(layer.respond(to: firstKey, F.response(200, to: first)).last == .server(firstKey, .terminated))
        #expect(layer.receive(.request(third), reliable: true).last == .request(try SIPTransactionKey.server(for: third), third),
                "room again once one ended")
    }

    @Test func aTransportFailureEndsAndForgetsTheTransaction() throws {
        var layer = SIPTransactionLayer()
        _ = layer.receive(.request(Self.invite), reliable: true)
        #expect(layer.transportFailed(key: Self.inviteKey) == [.server(Self.inviteKey, .transportError), .server(Self.inviteKey, .terminated)])
        #expect(layer.count == 0)
        #expect(layer.respond(to: Self.inviteKey, F.response(486)) == [], "nothing left to send with")
        #expect(layer.transportFailed(key: Self.inviteKey) == [])
    }
}
