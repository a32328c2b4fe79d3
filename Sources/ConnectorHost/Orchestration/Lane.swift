import Foundation
import Synchronization

/// One supervisor thread running tasks back to back, and the scheduler's handle on it.
///
/// The scheduler picks a lane's next task while its current one runs (a reservation). Once the
/// agent is spawned, the lane's thread commits the previous agent's outcome and claims the
/// reservation in one transaction, so when the agent ends the claimed task starts at once and
/// the commit overlaps an agent instead of standing between two (`TaskExecutor.runLane`). The
/// scheduler hears of each task's end afterwards, off the lane's path. A lane whose reservation
/// is missing when its agent ends stops; the scheduler can take a reservation back (`revoke`)
/// while it waits.
final class Lane: Sendable {
    /// A task handed to the lane: the candidate the scheduler picked (its slot) and the claim.
    struct Job: Sendable {
        var candidate: StoredTask
        var claim: ClaimRequest
        var registry: Registry
        var slot: String { candidate.id }
        var connection: String { candidate.connectionId }
    }

    /// What became of one job. Every job handed to the lane gets exactly one report; `last` marks
    /// the lane's final one.
    enum Report: Sendable {
        case finished(FinishedTask, slot: String, connection: String)
        /// The task was not run: taken by another host or no longer runnable (`stillQueued`
        /// false), or given back or never claimed (the host is stopping, a claim ahead was
        /// released): queued again and no longer among the scheduler's candidates.
        case notClaimed(slot: String, connection: String, stillQueued: Bool)
        case failedToRecord(StoreError, slot: String, connection: String)
    }

    private struct State {
        var reservation: Job?
        /// The lane's thread has stopped taking work: offers fail from then on.
        var closed = false
        var reports: [(Report, last: Bool)] = []
        var waiter: CheckedContinuation<(Report, last: Bool), Never>?
    }

    let id: Int
    private let state = Mutex(State())
    /// Readable once the scheduler cancels the lane (the grace period ran out): stops the agent.
    let cancellation = CancellationPipe()

    init(id: Int) { self.id = id }

    // MARK: The scheduler's side

    /// Reserves `job` as the lane's next task. False when the lane already has one or is closing.
    func offer(_ job: Job) -> Bool {
        state.withLock { s in
            guard !s.closed, s.reservation == nil else { return false }
            s.reservation = job
            return true
        }
    }

    var hasReservation: Bool { state.withLock { $0.reservation != nil } }

    /// Takes the reservation back, unless the lane's thread has already taken it.
    func revoke() -> Job? {
        state.withLock { s in
            defer { s.reservation = nil }
            return s.reservation
        }
    }

    /// No more work for this lane (the host is draining); returns the reservation it held.
    func close() -> Job? {
        state.withLock { s in
            s.closed = true
            defer { s.reservation = nil }
            return s.reservation
        }
    }

    /// The lane's next report. Cancelling the waiting task stops the lane's agent (SIGTERM,
    /// grace, SIGKILL) and its reservation goes unclaimed; the reports still come, ending with
    /// the interrupted task's, so the wait is for them, not a return without one.
    func next() async -> (Report, last: Bool) {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<(Report, last: Bool), Never>) in
                let ready: (Report, last: Bool)? = state.withLock { s in
                    if !s.reports.isEmpty { return s.reports.removeFirst() }
                    s.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            cancellation.fire()
        }
    }

    // MARK: The lane thread's side

    /// The reserved job, if any; without one the lane closes (later offers fail), atomically, so
    /// a reservation is never left in a lane that has stopped.
    func takeReservation() -> Job? {
        state.withLock { s in
            guard let job = s.reservation, !s.closed else {
                s.closed = true
                return nil
            }
            s.reservation = nil
            return job
        }
    }

    /// The reserved job if there is one now, for a claim made while an agent runs; unlike
    /// `takeReservation`, finding none leaves the lane open.
    func takeReservationIfReady() -> Job? {
        state.withLock { s in
            guard !s.closed else { return nil }
            defer { s.reservation = nil }
            return s.reservation
        }
    }

    /// The scheduler has closed the lane (the host is draining): a task claimed ahead must not start.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Ends the lane with `report` (a job it could not run): closes it and reports the
    /// reservation it still held, if any, as unclaimed, so that no task handed to it is left
    /// counted as running by the scheduler.
    func stop(with report: Report) {
        let leftover = state.withLock { s in
            s.closed = true
            defer { s.reservation = nil }
            return s.reservation
        }
        post(report, last: leftover == nil)
        if let leftover { post(.notClaimed(slot: leftover.slot, connection: leftover.connection, stillQueued: true), last: true) }
    }

    func post(_ report: Report, last: Bool = false) {
        let waiter = state.withLock { s in
            guard let waiter = s.waiter else {
                s.reports.append((report, last))
                return nil as CheckedContinuation<(Report, last: Bool), Never>?
            }
            s.waiter = nil
            return waiter
        }
        waiter?.resume(returning: (report, last))
    }
}
