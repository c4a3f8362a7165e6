import NIOCore

/// Every node's event stream and console show every case (issue 18): a node whose journal other nodes share
/// (`CenterConfiguration.followsOtherNodes`) reads the case updates they write, every `followInterval`, and
/// emits them as its own events would be: the alarm (`alarm`, not late, dispatched) with the update that
/// opened its case, then each `caseUpdate`. Updates of the cases this node owns are its own, already emitted
/// (and under `--workers`, those of the centre's other workers, on the same standard output).
/// Reads run on the journal's thread between batches, at most `followLimit` updates a read, and only while
/// another node's lease is in force (a lone node reads nothing; when another appears, the follower starts
/// again just before that node's first update).
extension CenterRuntime {
    static let followInterval = TimeAmount.milliseconds(500)
    static let followLimit = 2_000

    func startFollowing() {
        guard configuration.followsOtherNodes else { return }
        let bound = NIOLoopBound(self, eventLoop: loop)
        journal.read({ try $0.lastCaseUpdateID() }) { result in
            let runtime = bound.value
            guard case .success(let last) = result else {
                return runtime.logger.warning("cannot follow the other nodes' cases: the journal could not be read")
            }
            runtime.followCursor = FollowCursor(last: last)
            runtime.followTask = runtime.loop.scheduleRepeatedTask(initialDelay: Self.followInterval, delay: Self.followInterval) { _ in
                bound.value.followOtherNodes()
            }
        }
    }

    private func followOtherNodes() {
        guard !stopped, !following, let cursor = followCursor else { return }
        // Alone (one node, or only this centre's workers): nothing to read, and the reads would cost the
        // journal's thread thousands of this node's own updates a second in a storm.
        guard otherNodesLive else {
            followPaused = true
            return
        }
        following = true
        if followPaused {
            let paused = cursor.last
            journal.read({ try $0.resumeCursor(after: paused) }) { [self] result in
                following = false
                guard case .success(let last) = result else { return }
                followPaused = false
                followCursor = FollowCursor(last: last)
            }
            return
        }
        let (after, gaps) = (cursor.last, cursor.openGaps)
        journal.read({ try $0.caseUpdates(after: after, orAmong: gaps, limit: Self.followLimit) }) { [self] result in
            following = false
            guard case .success(let updates) = result else { return }  // the journal's health says why, elsewhere
            guard var cursor = followCursor else { return }
            let fresh = cursor.read(updates.map { Int64($0.update.id) }, now: ContinuousClock.now - startedAt)
            followCursor = cursor
            for followed in updates where fresh.contains(Int64(followed.update.id)) && !configuration.isSameCentre(followed.owner) {
                if let alarm = followed.alarm { hub.emit(.alarm(device: followed.device, alarm: alarm, lateMilliseconds: 0, dispatched: true)) }
                hub.emit(.caseUpdate(caseID: followed.caseID, device: followed.device, alarmID: followed.update.alarmID, state: followed.update.state))
            }
        }
    }
}
