import Foundation
import Synchronization

/// One supervisor thread running tasks back to back, and the scheduler's handle on it.
///
/// The scheduler picks a lane's next tasks while its current one runs (reservations, up to
/// `depth`). Once the agent is spawned, the lane's thread commits the previous agent's outcome
/// and claims the first reservation in one transaction, so when the agent ends the claimed task
/// starts at once and the commit overlaps an agent instead of standing between two
/// (`TaskExecutor.runLane`). The scheduler hears of each task's end afterwards, off the lane's
/// path, and of a plain success only with the next report it must act on (`post`). A lane
/// whose reservations are gone when its agent ends stops; the scheduler can take one back
/// (`revoke`) while it waits.
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
        var reservations: [Job] = []
        /// How many reservations the lane takes now: `Lane.depth`, or one while its agent is a
        /// long one (`holdOneAtMost`).
        var capacity = Lane.depth
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

    /// Reserves `job` as one of the lane's next tasks. False when the lane has no room or is closing.
    func offer(_ job: Job) -> Bool {
        state.withLock { s in
            guard !s.closed, s.reservations.count < s.capacity else { return false }
            s.reservations.append(job)
            return true
        }
    }

    /// Reservations a lane holds while its agents are short: two, so that a report of a plain
    /// success need not wake the scheduler at once (`post`).
    static let depth = 2

    /// The lane has room for another reservation.
    var wantsWork: Bool { state.withLock { !$0.closed && $0.reservations.count < $0.capacity } }

    /// Takes the newest reservation back, unless the lane's thread has already taken them all.
    func revoke() -> Job? {
        state.withLock { s in s.reservations.popLast() }
    }

    /// No more work for this lane (the host is draining); returns the reservations it held.
    func close() -> [Job] {
        state.withLock { s in
            s.closed = true
            defer { s.reservations = [] }
            return s.reservations
        }
    }

    /// The lane's next report. Cancelling the waiting task stops the lane's agent (SIGTERM,
    /// grace, SIGKILL) and its reservations go unclaimed; the reports still come, ending with
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

    /// The first reserved job, if any; without one the lane closes (later offers fail), atomically, so
    /// a reservation is never left in a lane that has stopped.
    func takeReservation() -> Job? {
        state.withLock { s in
            guard !s.reservations.isEmpty, !s.closed else {
                s.closed = true
                return nil
            }
            return s.reservations.removeFirst()
        }
    }

    /// The reserved job if there is one now, for a claim made while an agent runs; unlike
    /// `takeReservation`, finding none leaves the lane open.
    func takeReservationIfReady() -> Job? {
        state.withLock { s in
            guard !s.closed, !s.reservations.isEmpty else { return nil }
            return s.reservations.removeFirst()
        }
    }

    /// The lane's agent has run long enough to be a long one: it keeps one reservation, not
    /// `depth`, and returns the others (newest first) so that they do not wait behind it. Reports
    /// held back (`post`) go to the scheduler now.
    func holdOneAtMost() -> [Job] {
        let returned = state.withLock { s in
            s.capacity = 1
            guard s.reservations.count > 1 else { return [Job]() }
            defer { s.reservations.removeLast(s.reservations.count - 1) }
            return Array(s.reservations.dropFirst().reversed())
        }
        deliverFirstReport()
        return returned
    }

    /// A new agent has started: short until it proves otherwise.
    func holdFull() {
        state.withLock { $0.capacity = Lane.depth }
    }

    /// The scheduler has closed the lane (the host is draining): a task claimed ahead must not start.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Ends the lane with `report` (a job it could not run): closes it and reports the
    /// reservations it still held, if any, as unclaimed, so that no task handed to it is left
    /// counted as running by the scheduler.
    func stop(with report: Report) {
        let leftovers = state.withLock { s in
            s.closed = true
            defer { s.reservations = [] }
            return s.reservations
        }
        post(report, last: leftovers.isEmpty)
        for (index, leftover) in leftovers.enumerated() {
            post(.notClaimed(slot: leftover.slot, connection: leftover.connection, stillQueued: true), last: index == leftovers.count - 1)
        }
    }

    func post(_ report: Report, last: Bool = false) {
        deliverFirstReport { s in
            s.reports.append((report, last))
            return Self.needsScheduler(report, last: last, s)
        }
    }

    /// Hands the oldest report to a waiting scheduler, after `update` (which says whether the
    /// scheduler is needed now), all under the lock.
    private func deliverFirstReport(after update: (inout State) -> Bool = { _ in true }) {
        let delivery: (CheckedContinuation<(Report, last: Bool), Never>, (Report, last: Bool))? = state.withLock { s in
            guard update(&s), let waiter = s.waiter, !s.reports.isEmpty else { return nil }
            s.waiter = nil
            return (waiter, s.reports.removeFirst())
        }
        if let delivery { delivery.0.resume(returning: delivery.1) }
    }

    /// A plain success while the lane still holds a reservation is held back until a report
    /// that needs the scheduler (the lane's last reservation taken, a failure, new children,
    /// the lane's end) or until the lane's agent turns out long (`holdOneAtMost`): the
    /// scheduler then takes both in one wake. Waking it for every task was a tenth of the
    /// host's CPU for one-task scans.
    private static func needsScheduler(_ report: Report, last: Bool, _ s: State) -> Bool {
        guard !last, !s.closed, !s.reservations.isEmpty, case .finished(let finished, _, _) = report else { return true }
        return finished.transition != .succeeded || finished.completion.childrenAdded > 0
    }

    // MARK: For tests

    /// Whether `next()` waits, and how many reports are held back.
    var isAwaited: Bool { state.withLock { $0.waiter != nil } }
    var heldReports: Int { state.withLock { $0.reports.count } }
}
