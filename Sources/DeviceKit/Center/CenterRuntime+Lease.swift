import NIOCore

/// The node's case lease (CenterJournal+Lease.swift), renewed every quarter of `caseLease` on the journal's
/// writer thread. Each renewal's answer is applied on the loop: the open cases it gave the node are worked
/// here from now on (listed, the automatic operator's timers started, their undelivered updates sent when the
/// device has a session here), and an open case held here that the journal no longer says is this node's is
/// forgotten (another node took it over while this one could not renew, or the device's cancel closed it).
/// The home of a case taken over while an operator works it is called again: its call was with the node
/// that died (or with this node's previous run).
extension CenterRuntime {
    func startLeaseRenewals() {
        let every = TimeAmount(configuration.caseLease / 4)
        let bound = NIOLoopBound(self, eventLoop: loop)
        leaseTask = loop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in bound.value.renewLease() }
    }

    private func renewLease() {
        guard !stopped, !leaseRenewing else { return }
        leaseRenewing = true
        journal.renewLease(for: configuration.caseLease) { [self] result in
            leaseRenewing = false
            switch result {
            case .success(let renewal):
                leaseRenewed(renewal)
            case .failure(let error):
                if let count = leaseLog.count(now: ContinuousClock.now - startedAt) {
                    logger.warning(
                        "the node's case lease could not be renewed: once it lapses, other nodes take its open cases over",
                        metadata: ["node": "\(configuration.node)", "reason": "\(error)", "failed.renewals": "\(count)"])
                }
            }
        }
    }

    func leaseRenewed(_ renewal: CaseLeaseRenewal) {
        if renewal.nameShared {
            metrics.nodeNameShared.increment()
            if let count = nameSharedLog.count(now: ContinuousClock.now - startedAt) {
                logger.error(
                    "another centre process renews this node's lease under the same name: both would work the same cases; give each node its own --node",
                    metadata: ["node": "\(configuration.node)", "renewals.found": "\(count)"])
            }
        }
        let lost = cases.openCases.filter { !renewal.owned.contains($0.id) }
        for gone in lost { cases.forget(gone.id) }
        if !lost.isEmpty {
            logger.notice(
                "open cases left to another node (this node's lease lapsed, or the journal closed them)",
                metadata: ["node": "\(configuration.node)", "cases": "\(lost.map(\.id))"])
        }
        if !renewal.claimed.isEmpty {
            logger.notice(
                "took over the open cases of nodes whose lease lapsed",
                metadata: ["node": "\(configuration.node)", "from": "\(renewal.from.sorted())", "cases": "\(renewal.claimed.count)"])
        }
        take(renewal)
        adopt(renewal.supervised)
        otherNodesLive = renewal.liveNodes.contains { !configuration.isSameCentre($0) }
    }

    /// Works the cases `renewal` gave this node, and queues their updates the devices never acknowledged.
    func take(_ renewal: CaseLeaseRenewal) {
        for open in renewal.claimed { runCases(cases.restore(open)) }
        callAgain(renewal.claimed)
        for pending in renewal.undelivered where !dc09Devices.contains(pending.device) {
            feed(pending.device) { $0.deliver(.caseUpdate(pending.update)) }
        }
    }

    /// Calls again the homes of `taken` cases an operator works (engaged, help sent), as on engagement: the call
    /// they had went with the node that worked them.
    func callAgain(_ taken: [CasePolicy.Case]) {
        guard configuration.callOnEngage else { return }
        for open in taken where (open.state == .operatorEngaged || open.state == .helpDispatched) && !dc09Devices.contains(open.device) {
            callOnEngagement(open)
        }
    }
}
