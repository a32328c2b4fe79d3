import Foundation

/// Opening the scans of due schedule ticks, at the start of a pass and at each due time of a daemon.
extension Scheduler {
    /// Opens a scan for every selected schedule that is due; a tick whose previous scan is still
    /// open is recorded as skipped. Missed ticks while the host was down make one catch-up run.
    /// Returns the next due time among the selected schedules.
    @discardableResult
    func enqueueDue(_ registry: Registry, options: PassOptions, summary: inout PassSummary) async throws(StoreError) -> Date? {
        var nextDue: Date?
        let now = Date()
        var schedules = try await store { (s) throws(StoreError) in try s.schedules() }
        let states = try await store { (s) throws(StoreError) in try s.connections(includeDeleted: false) }
        let active = Set(states.filter { $0.state == .active }.map(\.id))
        // Hosts starting together would otherwise queue up behind each other's row locks,
        // schedule after schedule; from different places they open different scans.
        if store.store.isShared { schedules = schedules.rotatedAtRandom() }
        // A state file opens many ticks per commit; a shared state one at a time, so a tick
        // another host enqueued first is noticed before the rest are raced for.
        let batchSize = store.store.isShared ? 1 : 256
        var position = 0
        while position < schedules.count {
            var ticks: [ScheduledTick] = []
            while position < schedules.count && ticks.count < batchSize {
                let schedule = schedules[position]
                position += 1
                guard let due = schedule.nextDueAt, active.contains(schedule.connectionId),
                    isSelected(schedule.connectionId, registry: registry, options: options),
                    let connection = registry.connections[schedule.connectionId],
                    let spec = connection.tasks.first(where: { $0.type == schedule.taskType })
                else { continue }
                guard due <= now else {
                    nextDue = min(nextDue ?? due, due)
                    continue
                }
                let next = spec.schedule.nextDue(previousDue: due, now: now)
                if let next { nextDue = min(nextDue ?? next, next) }
                ticks.append(
                    ScheduledTick(connectionId: schedule.connectionId, taskType: schedule.taskType, handler: connection.handler, rootTaskId: schedule.rootTaskId, dueAt: due, nextDue: next))
            }
            if ticks.isEmpty { continue }
            let batch = ticks
            let openings = try await store { (s) throws(StoreError) in try s.openScans(batch, now: now) }
            for (tick, opening) in zip(ticks, openings) {
                let name = "\(tick.connectionId)/\(tick.taskType)"
                switch opening {
                case .opened(let scanId):
                    summary.opened.append(scanId)
                    logger.info(name, "scan opened", ["scan": scanId, "due": Timestamp.iso8601(tick.dueAt)])
                case .alreadyEnqueued:
                    logger.debug(name, "tick enqueued by another host")
                    // Another host is working through the same list: re-read the rest, so the ticks it
                    // has enqueued meanwhile are seen as not due instead of raced for one by one.
                    let fresh = try await store { (s) throws(StoreError) in try s.schedules() }
                    let byKey = Dictionary(fresh.map { ([$0.connectionId, $0.taskType], $0) }, uniquingKeysWith: { first, _ in first })
                    schedules = schedules[position...].compactMap { byKey[[$0.connectionId, $0.taskType]] }
                    position = 0
                case .skipped(let open):
                    summary.skippedTicks += 1
                    logger.warning(name, "tick skipped: previous scan still running", ["scan": open])
                }
            }
        }
        return nextDue
    }
}
