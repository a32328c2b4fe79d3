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

    /// A lane stopping on a job it could not claim (taken by another host) while the scheduler
    /// had already reserved its next one: the reservation is reported too, and later offers fail.
    /// Left in the lane, it stayed counted as running and was never a candidate again (two
    /// daemons on PostgreSQL left two of 1,000 tasks queued).
    @Test func aLaneStoppingReportsTheReservationItHeld() async {
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        #expect(!lane.offer(job("c")), "one reservation at a time")
        lane.stop(with: .notClaimed(slot: "a", connection: "c", stillQueued: true))
        #expect(!lane.offer(job("d")), "a stopped lane takes no reservation")
        #expect(lane.takeReservation() == nil)
        let first = await lane.next()
        let second = await lane.next()
        #expect(slots([first, second]) == ["notClaimed a", "notClaimed b (last)"])
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

    @Test func aReservationTakenBackIsNoLongerTheLanes() {
        let lane = Lane(id: 1)
        #expect(lane.offer(job("b")))
        #expect(lane.revoke()?.slot == "b")
        #expect(lane.takeReservation() == nil)
        #expect(lane.close() == nil)
    }
}
