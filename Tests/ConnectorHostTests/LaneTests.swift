import Foundation
import Testing

@testable import ConnectorHost

/// The hand-over between the scheduler and a lane's thread, without processes: every job handed
/// to a lane gets exactly one report, and the last report leaves nothing reserved behind.
@Suite struct LaneTests {
    func job(_ id: String) -> Lane.Job {
        let task = StoredTask(
            id: id, connectionId: "c", taskType: "t", scanId: "s", parentTaskId: nil, depth: 0, metadata: nil, checkpoint: nil, state: .queued,
            trigger: .schedule, attempt: 1, nextRunAt: Date(), rateLimitedSeconds: 0, executionId: nil, owner: nil)
        let registry = Registry(
            file: "plugins.json", directory: "/tmp", statePath: "/tmp/state.sqlite", concurrency: 2, shutdownGraceSeconds: 1, retry: RetryPolicy(),
            limits: FanOutLimits(), handlers: [:], connections: [:])
        return Lane.Job(candidate: task, claim: ClaimRequest(taskId: id, executionId: "e-\(id)", owner: .current, options: ClaimOptions()), registry: registry)
    }

    func slots(_ reports: [(Lane.Report, last: Bool)]) -> [String] {
        reports.map { report, last in
            let slot: String
            switch report {
            case .finished(_, let s, _): slot = "finished " + s
            case .notClaimed(let s, _, _): slot = "notClaimed " + s
            case .failedToRecord(_, let s, _): slot = "failedToRecord " + s
            }
            return slot + (last ? " (last)" : "")
        }
    }

    func finished(_ slot: String, _ transition: TaskTransition = .succeeded, childrenAdded: Int = 0) -> Lane.Report {
        let record = TaskRecord(
            taskId: slot, taskExecutionId: "e-\(slot)", scanId: "s", parentTaskId: nil, connectionId: "c", handler: "h", type: "t", trigger: .schedule,
            status: transition == .succeeded ? .success : .failure, failureReason: nil, exitCode: 0, signal: nil, timedOut: false, startedAt: Date(),
            durationMs: 1, attempt: 1, result: nil, error: nil, stderrTail: "")
        var completion = CompletionResult()
        completion.childrenAdded = childrenAdded
        return .finished(FinishedTask(record: record, transition: transition, completion: completion, interrupted: false), slot: slot, connection: "c")
    }

    /// Waits until the scheduler's side is parked in `next()` (polling: a test helper only).
    func awaited(_ lane: Lane) async -> Bool {
        for _ in 0..<400 {
            if lane.isAwaited { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// A lane stopping on a job it could not claim (taken by another host) while the scheduler
    /// had already reserved its next ones: the reservations are reported too, and later offers
    /// fail. Left in the lane, one stayed counted as running and was never a candidate again
    /// (two daemons on PostgreSQL left two of 1,000 tasks queued).
    @Test func aLaneStoppingReportsTheReservationsItHeld() async {
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        #expect(lane.offer(job("c")))
        #expect(!lane.offer(job("d")), "\(Lane.depth) reservations at most")
        lane.stop(with: .notClaimed(slot: "a", connection: "c", stillQueued: true))
        #expect(!lane.offer(job("e")), "a stopped lane takes no reservation")
        #expect(lane.takeReservation() == nil)
        var reports: [(Lane.Report, last: Bool)] = []
        repeat { reports.append(await lane.next()) } while reports.last?.last == false
        #expect(slots(reports) == ["notClaimed a", "notClaimed b", "notClaimed c (last)"])
    }

    @Test func aLaneWithoutAReservationClosesWhenItLooksForOne() async {
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        #expect(lane.takeReservation()?.slot == "b")
        #expect(lane.takeReservation() == nil)
        #expect(!lane.offer(job("c")), "the lane's thread has stopped taking work")
        #expect(lane.revoke() == nil)
        lane.stop(with: .notClaimed(slot: "b", connection: "c", stillQueued: true))
        #expect(slots([await lane.next()]) == ["notClaimed b (last)"])
    }

    /// Taken back for a new lane: the newest reservation, so the lane's next task stays its own.
    @Test func aReservationTakenBackIsNoLongerTheLanes() {
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        #expect(lane.offer(job("c")))
        #expect(lane.revoke()?.slot == "c")
        #expect(lane.takeReservation()?.slot == "b")
        #expect(lane.takeReservation() == nil)
        #expect(lane.close().isEmpty)
    }

    /// A plain success while the lane still holds a reservation does not wake the scheduler; the
    /// next report that needs it (here: the last reservation taken) brings both, in order.
    @Test func aPlainSuccessWaitsForTheNextReportThatNeedsTheScheduler() async {
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        #expect(lane.offer(job("c")))
        let waiting = Task { await lane.next() }
        #expect(await awaited(lane))
        #expect(lane.takeReservationIfReady()?.slot == "b")
        lane.post(finished("a"))
        #expect(lane.isAwaited && lane.heldReports == 1, "held: c is still reserved")
        #expect(lane.takeReservationIfReady()?.slot == "c")
        lane.post(finished("b"))
        #expect(slots([await waiting.value, await lane.next()]) == ["finished a", "finished b"])
    }

    /// What the scheduler must act on is never held: a failure (the queue changed), new
    /// children, a task not claimed, the lane's last report.
    @Test func reportsThatNeedTheSchedulerAreDeliveredAtOnce() async {
        let reports: [Lane.Report] = [
            finished("f", .failed(.retryableError, "boom")), finished("p", childrenAdded: 3), .notClaimed(slot: "n", connection: "c", stillQueued: true),
        ]
        for report in reports {
            let lane = Lane(id: 1)
            #expect(lane.offer(job("b")))
            let waiting = Task { await lane.next() }
            #expect(await awaited(lane))
            lane.post(report)
            #expect(slots([await waiting.value]) == slots([(report, false)]))
        }
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        let waiting = Task { await lane.next() }
        #expect(await awaited(lane))
        lane.post(finished("a"), last: true)
        #expect(slots([await waiting.value]) == ["finished a (last)"])
    }

    /// An agent that runs long: the lane keeps one reservation and gives the others back, and a
    /// held report goes to the scheduler then; the next agent takes the full depth again.
    @Test func aLongAgentKeepsOneReservationAndReleasesHeldReports() async {
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        #expect(lane.offer(job("c")))
        #expect(lane.offer(job("d")) == (Lane.depth > 2))
        let waiting = Task { await lane.next() }
        #expect(await awaited(lane))
        #expect(lane.takeReservationIfReady()?.slot == "b")
        lane.post(finished("a"))
        #expect(lane.heldReports == 1)
        #expect(lane.holdOneAtMost().map(\.slot) == (Lane.depth > 2 ? ["d"] : []))
        #expect(slots([await waiting.value]) == ["finished a"])
        #expect(!lane.offer(job("e")), "one reservation while the agent is long")
        lane.holdFull()
        #expect(lane.offer(job("e")))
    }
}
