import Foundation

/// One pass over the schedules, opening the scans of due ticks a batch at a time. The loop runs
/// a batch, then whatever else is ready (lanes reporting, signals), then the next: agents start
/// after the first batch instead of after all of them, and the rest are opened while they run.
struct DueSweep: Sendable {
    var schedules: [StoredSchedule]
    var position = 0
    let active: Set<String>
    /// When the sweep began: what is due is judged as of then.
    let now: Date
    /// The earliest next due time among the selected schedules seen so far.
    var nextDue: Date?

    var isDone: Bool { position >= schedules.count }
}

/// Opening the scans of due schedule ticks, at the start of a pass and at each due time of a daemon.
extension Scheduler {
    /// Ticks opened per transaction. Each batch's rows are locked until it commits, so a host
    /// sharing the state and racing for the same ticks waits at most one batch, then finds them
    /// enqueued and re-reads the rest.
    static let dueBatchSize = 256

    /// Reads the schedules to walk. Missed ticks while the host was down make one catch-up run.
    func beginSweep() async throws(StoreError) -> DueSweep {
        var schedules = try await store { (s) throws(StoreError) in try s.schedules() }
        let active = try await store { (s) throws(StoreError) in try s.activeConnectionIds() }
        // Hosts starting together would otherwise queue up behind each other's row locks,
        // schedule after schedule; from different places they open different scans.
        if store.store.isShared { schedules = schedules.rotatedAtRandom() }
        return DueSweep(schedules: schedules, active: active, now: Date())
    }

    /// Opens the next batch of due ticks of the selected schedules; a tick whose previous scan is
    /// still open is recorded as skipped. Returns whether a scan was opened.
    @discardableResult
    func openNextBatch(_ sweep: inout DueSweep, registry: Registry, options: PassOptions, summary: inout PassSummary) async throws(StoreError) -> Bool {
        let now = sweep.now
        var ticks: [ScheduledTick] = []
        while !sweep.isDone && ticks.count < Self.dueBatchSize {
            let schedule = sweep.schedules[sweep.position]
            sweep.position += 1
            guard let due = schedule.nextDueAt, sweep.active.contains(schedule.connectionId),
                isSelected(schedule.connectionId, registry: registry, options: options),
                let connection = registry.connections[schedule.connectionId],
                let spec = connection.tasks.first(where: { $0.type == schedule.taskType })
            else { continue }
            guard due <= now else {
                sweep.nextDue = min(sweep.nextDue ?? due, due)
                continue
            }
            let next = spec.schedule.nextDue(previousDue: due, now: now)
            if let next { sweep.nextDue = min(sweep.nextDue ?? next, next) }
            ticks.append(
                ScheduledTick(connectionId: schedule.connectionId, taskType: schedule.taskType, handler: connection.handler, rootTaskId: schedule.rootTaskId, dueAt: due, nextDue: next))
        }
        if ticks.isEmpty { return false }
        let batch = ticks
        // Due times are judged as of the sweep's start; a scan starts when its batch opens it.
        let openings = try await store { (s) throws(StoreError) in try s.openScans(batch, now: Date()) }
        var opened = false
        var enqueuedElsewhere = false
        for (tick, opening) in zip(ticks, openings) {
            let name = "\(tick.connectionId)/\(tick.taskType)"
            switch opening {
            case .opened(let scanId):
                opened = true
                summary.opened.append(scanId)
                logger.info(name, "scan opened", ["scan": scanId, "due": Timestamp.iso8601(tick.dueAt)])
            case .alreadyEnqueued:
                logger.debug(name, "tick enqueued by another host")
                enqueuedElsewhere = true
            case .skipped(let open):
                summary.skippedTicks += 1
                logger.warning(name, "tick skipped: previous scan still running", ["scan": open])
            }
        }
        if enqueuedElsewhere && !sweep.isDone {
            // Another host is working through the same list: re-read the rest, so the ticks it
            // has enqueued meanwhile are seen as not due instead of raced for batch by batch.
            let fresh = try await store { (s) throws(StoreError) in try s.schedules() }
            let byKey = Dictionary(fresh.map { ([$0.connectionId, $0.taskType], $0) }, uniquingKeysWith: { first, _ in first })
            sweep.schedules = sweep.schedules[sweep.position...].compactMap { byKey[[$0.connectionId, $0.taskType]] }
            sweep.position = 0
        }
        return opened
    }

    /// Starts a sweep and opens its first batch; with one under way, asks for another after it
    /// (a timer, a reload or a trigger meanwhile may have made more ticks due).
    func startSweep(
        _ state: inout LoopState, registry: Registry, options: PassOptions, summary: inout PassSummary, group: inout TaskGroup<Event>
    ) async throws(StoreError) {
        if state.sweep != nil {
            state.sweepAgain = true
            return
        }
        state.sweep = try await beginSweep()
        try await continueSweep(&state, registry: registry, options: options, summary: &summary, group: &group)
    }

    /// Opens the sweep's next batch, then lets the loop take its other events before the one
    /// after. A host that is stopping opens no more: those ticks stay due for its next start.
    func continueSweep(
        _ state: inout LoopState, registry: Registry, options: PassOptions, summary: inout PassSummary, group: inout TaskGroup<Event>
    ) async throws(StoreError) {
        guard var sweep = state.sweep else { return }
        if state.draining {
            state.sweep = nil
            return
        }
        if try await openNextBatch(&sweep, registry: registry, options: options, summary: &summary) {
            // New work, read when the candidates in hand run out (as after another host's NOTIFY).
            state.mayHaveMore = true
            state.queuedElsewhere = true
        }
        guard sweep.isDone else {
            state.sweep = sweep
            group.addTask { .sweepContinues }
            return
        }
        state.sweep = nil
        state.nextScheduleDue = sweep.nextDue
        if state.sweepAgain {
            state.sweepAgain = false
            try await startSweep(&state, registry: registry, options: options, summary: &summary, group: &group)
        }
    }
}
