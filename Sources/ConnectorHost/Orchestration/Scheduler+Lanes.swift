import Foundation

/// The scheduler's side of its lanes (`Lane`): starting them, reserving each one's next task,
/// and taking in what they report.
extension Scheduler {
    /// Takes in one lane report: frees the slot, counts the task, refills.
    func handle(
        _ laneReport: Lane.Report, state: inout LoopState, registry: Registry, summary: inout PassSummary, group: inout TaskGroup<Event>
    ) async throws(StoreError) {
        switch laneReport {
        case .notClaimed(let slot, let connection, let stillQueued):
            state.release(slot, connection: connection, handler: nil)
            if stillQueued {
                // Queued again (a claim made ahead and given back, a lane that stopped) and no
                // longer among the candidates: read what is free now.
                state.candidatesStale = true
            } else {
                // Taken by another host working through the same list: the candidates in hand
                // are still worth a claim each, and the list is read again when they run out.
                // Reading all of it after every lost race was the largest statement of two
                // PostgreSQL daemons (39 reads of 180 rows each for 1,000 tasks).
                state.mayHaveMore = true
            }
        case .finished(let finished, let slot, let connection):
            state.release(slot, connection: connection, handler: nil)
            summary.record(finished)
            state.done += 1
            if finished.record.status == .failure && !finished.interrupted { state.failed += 1 }
            if finished.completion.childrenAdded > 0 || finished.transition != .succeeded { state.candidatesStale = true }
            // The lane's next reservation first: the alerts are evaluated while agents run.
            if !state.draining { try await fill(&state, registry: registry, group: &group) }
            // Deliveries are tried at each scan end too, so one that failed earlier is retried.
            if let operations, try await operations.afterTask(finished) || finished.completion.closedScan != nil {
                state.notify(operations, group: &group)
            }
            await report(&state)
        case .failedToRecord(let error, let slot, let connection):
            state.release(slot, connection: connection, handler: nil)
            logger.error("store", "could not record the claim or the end of a task of \(connection) (candidate \(slot)): \(error); a task left running is recovered at the next start")
            throw error
        }
    }

    /// Starts runnable tasks while there is room, picking fairly across connections: the one
    /// with the fewest running tasks goes first, so one large fan-out never starves the others.
    /// Then gives each lane its next task (`Lane`), so that it goes on without waiting for
    /// this loop; a lane that stops while reservations wait elsewhere takes one of them over.
    func fill(_ state: inout LoopState, registry: Registry, group: inout TaskGroup<Event>) async throws(StoreError) {
        while state.lanes.count < registry.concurrency {
            guard let job = try await nextJob(&state, registry: registry) ?? takeBackReservation(&state) else { break }
            state.laneCount += 1
            let lane = Lane(id: state.laneCount)
            state.lanes[lane.id] = lane
            executor.startLane(lane, with: job)
            group.addTask {
                let (report, last) = await lane.next()
                return .lane(report, last: last, lane: lane)
            }
            await report(&state)
        }
        // Round by round, so that the lanes' reservations stay even.
        var wanting = state.lanes.values.sorted(by: { $0.id < $1.id }).filter(\.wantsWork)
        while !wanting.isEmpty {
            for lane in wanting {
                guard let job = try await nextJob(&state, registry: registry) else { return }
                if !lane.offer(job) {
                    // The lane is stopping: its last report is on the way.
                    state.release(job.slot, connection: job.connection, handler: nil)
                    state.candidates.putBack(job.candidate)
                    return
                }
            }
            wanting = wanting.filter(\.wantsWork)
        }
    }

    /// A reserved task that has not started, taken back from its lane to start on a new one.
    func takeBackReservation(_ state: inout LoopState) -> Lane.Job? {
        for lane in state.lanes.values.sorted(by: { $0.id < $1.id }) {
            if let job = lane.revoke() { return job }
        }
        return nil
    }

    /// The next candidate within every limit, counted as started (a claim made on the lane's
    /// thread answers later; until then the slot is taken); nil when none can start.
    func nextJob(_ state: inout LoopState, registry: Registry) async throws(StoreError) -> Lane.Job? {
        while true {
            if state.candidatesStale || state.candidates.isEmpty && state.mayHaveMore {
                let perConnection = max(16, registry.concurrency * 4)
                let ready = try await store { (s) throws(StoreError) in try s.readyTasks(now: Date(), perConnection: perConnection) }
                state.takeCandidates(ready.filter { isSelected($0.connectionId, registry: registry, options: state.options) })
                if store.store.isShared { state.candidates = CandidateList(Array(state.candidates).rotatedAtRandom()) }
                state.candidatesStale = false
                state.queuedElsewhere = false
                state.mayHaveMore = ready.count >= perConnection
                if state.candidates.isEmpty { state.mayHaveMore = false }
            }
            guard let index = state.pickIndex(registry: registry) else {
                if state.queuedElsewhere {
                    state.candidatesStale = true
                    continue
                }
                return nil
            }
            let candidate = state.candidates.remove(at: index)
            if state.candidates.isEmpty && state.mayHaveMore { state.candidatesStale = true }
            state.start(candidate.id, connection: candidate.connectionId, handler: registry.connections[candidate.connectionId]?.handler)
            let claim = ClaimRequest(taskId: candidate.id, executionId: DeterministicID.random(), owner: TaskOwner.current, options: claimOptions(for: candidate, registry: registry))
            return Lane.Job(candidate: candidate, claim: claim, registry: registry)
        }
    }
}
