import Foundation

extension SQLStore {
    static let taskColumns = """
        id, connection_id, task_type, scan_id, parent_task_id, depth, metadata, checkpoint, state, trigger, attempt, next_run_at,
        rate_limited_seconds, execution_id, host_pid, host_start, agent_pid, agent_pgid, agent_start, host_id, host_machine, lease_expires_at
        """
    /// The same columns named `tasks.x`, for queries that join another table having some of the names.
    static let qualifiedTaskColumns = taskColumns.split(separator: ",").map { "tasks." + $0.trimmingCharacters(in: .whitespacesAndNewlines) }.joined(separator: ", ")

    static func task(_ r: Row) -> StoredTask {
        var owner: TaskOwner?
        if let hostPid = r.optionalInt(14) {
            var agent: SpawnedProcess?
            if let pid = r.optionalInt(16) {
                agent = SpawnedProcess(pid: Int32(pid), processGroup: Int32(r.optionalInt(17) ?? pid), startTicks: UInt64(r.optionalInt(18) ?? 0))
            }
            owner = TaskOwner(
                hostPid: Int32(hostPid), hostStartTicks: UInt64(r.optionalInt(15) ?? 0), agent: agent, hostId: r.optionalText(19), machine: r.optionalText(20),
                leaseExpiresAt: r.optionalDate(21))
        }
        return StoredTask(
            id: r.text(0), connectionId: r.text(1), taskType: r.text(2), scanId: r.text(3), parentTaskId: r.optionalText(4), depth: r.int(5),
            metadata: r.json(6), checkpoint: r.json(7), state: TaskState(rawValue: r.text(8)) ?? .queued, trigger: Trigger(rawValue: r.text(9)) ?? .schedule,
            attempt: r.int(10), nextRunAt: r.date(11), rateLimitedSeconds: r.double(12), executionId: r.optionalText(13), owner: owner)
    }

    public func readyTasks(now: Date, perConnection: Int) throws(StoreError) -> [StoredTask] {
        try locked { (db) throws(StoreError) in
            // The first few of each connection through tasks_ready_by_connection: the cost follows
            // the number of connections and `perConnection`, not the number of queued tasks.
            // PostgreSQL plans the IN form as a scan of every task; LATERAL is its spelling of
            // "the first few of each connection" that walks the same index. The due bound is a
            // row comparison, which only that index can take as its range: as a plain
            // `next_run_at <= ?`, a table without statistics yet (a new state, the first minute of
            // a host) was planned through tasks_due, all of the queue walked once per connection
            // (24 ms a read with 300 tasks queued, against 1 ms).
            if db.dialect == .postgres { return try db.rows(Self.readyOnPostgres, [.date(now), .int(perConnection)], Self.task) }
            return try db.rows(
                """
                SELECT \(Self.qualifiedTaskColumns) FROM connections c JOIN tasks ON tasks.id IN (
                    SELECT id FROM tasks WHERE connection_id = c.id AND state IN ('queued', 'snoozed') AND next_run_at <= ?
                    ORDER BY next_run_at, seq LIMIT ?
                ) ORDER BY tasks.next_run_at, tasks.seq
                """, [.date(now), .int(perConnection)], Self.task)
        }
    }

    /// `readyTasks` on PostgreSQL; the bindings are the due bound and the tasks per connection.
    static let readyOnPostgres = """
        SELECT \(qualifiedTaskColumns) FROM connections c CROSS JOIN LATERAL (
            SELECT * FROM tasks WHERE connection_id = c.id AND (connection_id, next_run_at) <= (c.id, ?) AND state IN ('queued', 'snoozed')
            ORDER BY next_run_at, seq LIMIT ?
        ) tasks ORDER BY tasks.next_run_at, tasks.seq
        """

    public func claim(taskId: String, executionId: String, owner: TaskOwner, options: ClaimOptions, now: Date) throws(StoreError) -> StoredTask? {
        if !isShared {
            // One host per SQLite state (its instance lock), so its scheduler alone keeps the
            // limits: the claim is the update and the read of `take`, with no count before them.
            return try transaction { (db) throws(StoreError) in try Self.take(db, id: taskId, executionId: executionId, owner: owner, options: options, now: now) }
        }
        if options.countsNoLimit {
            return try locked { (db) throws(StoreError) in try Self.claimUnlimited(db, taskId: taskId, executionId: executionId, owner: owner, options: options, now: now) }
        }
        var limits: [String] = []
        if options.connectionLimit != nil, let connection = options.orNextOf { limits.append("claim:connection:\(connection)") }
        if options.handlerLimit != nil, let handler = options.handler { limits.append("claim:handler:\(handler)") }
        return try transaction(locking: limits) { (db) throws(StoreError) -> StoredTask? in
            guard let id = try Self.claimable(db, taskId: taskId, options: options, now: now) else { return nil }
            return try Self.take(db, id: id, executionId: executionId, owner: owner, options: options, now: now)
        }
    }

    /// What a claim sets on the task's row; `claimValues` fills the placeholders.
    static let claimAssignments = """
        state = 'running', execution_id = ?, host_pid = ?, host_start = ?, agent_pid = NULL, agent_pgid = NULL, agent_start = NULL,
            host_id = ?, host_machine = ?, lease_expires_at = ?, started_at = ?, updated_at = ?
        """

    static func claimValues(executionId: String, owner: TaskOwner, options: ClaimOptions, now: Date) -> [SQLValue] {
        [
            .text(executionId), .int(Int(owner.hostPid)), .int(Int(owner.hostStartTicks)), .optional(owner.hostId), .optional(owner.machine),
            .date(now.addingTimeInterval(options.leaseSeconds)), .date(now), .date(now),
        ]
    }

    /// Marks the task running if it still waits, and returns it; nil when it no longer waits.
    /// Inside the caller's transaction.
    static func take(_ db: any SQLDatabase, id: String, executionId: String, owner: TaskOwner, options: ClaimOptions, now: Date) throws(StoreError) -> StoredTask? {
        let values = claimValues(executionId: executionId, owner: owner, options: options, now: now) + [.text(id)]
        guard db.dialect == .sqlite else {
            return try db.firstRow(
                """
                UPDATE tasks SET \(claimAssignments) WHERE id = ? AND state IN ('queued', 'snoozed')
                RETURNING \(taskColumns), \(committedCheckpoint)
                """, values, claimed)
        }
        // SQLite gathers RETURNING rows in a temporary b-tree it builds at each execution; the
        // row read back by its key costs less (PostgreSQL keeps RETURNING: one round trip).
        try db.perform("UPDATE tasks SET \(claimAssignments) WHERE id = ? AND state IN ('queued', 'snoozed')", values)
        guard db.changes == 1 else { return nil }
        return try db.firstRow("SELECT \(taskColumns), \(committedCheckpoint) FROM tasks WHERE id = ?", [.text(id)], claimed)
    }

    /// The committed checkpoint of a claimed task's connection and type, as a column of the claim's RETURNING (PostgreSQL) or read-back (SQLite).
    static let committedCheckpoint =
        "(SELECT metadata FROM checkpoints c WHERE c.connection_id = tasks.connection_id AND c.task_type = tasks.task_type)"

    /// A claimed task from `taskColumns` followed by `committedCheckpoint`.
    static func claimed(_ r: Row) -> StoredTask {
        var task = Self.task(r)
        // A root starts from the committed checkpoint; a child carries its own.
        if task.parentTaskId == nil { task.checkpoint = r.json(22) }
        return task
    }

    /// On a shared state, with no limit to count: one statement takes the row with SKIP LOCKED and
    /// returns it, or, when another host holds it, the connection's next runnable task
    /// (`orNextOf`; PostgreSQL evaluates COALESCE's second pick only when the first finds none).
    static func claimUnlimited(_ db: any SQLDatabase, taskId: String, executionId: String, owner: TaskOwner, options: ClaimOptions, now: Date) throws(StoreError) -> StoredTask? {
        let (sql, bindings) = unlimitedClaim(taskId: taskId, executionId: executionId, owner: owner, options: options, now: now)
        return try db.firstRow(sql, bindings, claimed)
    }

    static func unlimitedClaim(taskId: String, executionId: String, owner: TaskOwner, options: ClaimOptions, now: Date) -> (String, [SQLValue]) {
        var pick = "SELECT id FROM tasks WHERE id = ? AND state IN ('queued', 'snoozed') FOR UPDATE SKIP LOCKED"
        var bindings: [SQLValue] = [.text(taskId)]
        if let connection = options.orNextOf {
            pick = """
                COALESCE((\(pick)), (SELECT id FROM tasks WHERE connection_id = ? AND state IN ('queued', 'snoozed') AND next_run_at <= ?
                    ORDER BY next_run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED))
                """
            bindings += [.text(connection), .date(now)]
        }
        let sql = """
            UPDATE tasks SET \(claimAssignments)
            WHERE id = (\(pick)) AND state IN ('queued', 'snoozed')
            RETURNING \(taskColumns), \(committedCheckpoint)
            """
        return (sql, claimValues(executionId: executionId, owner: owner, options: options, now: now) + bindings)
    }

    /// On a shared state: the task to claim, locked for this transaction, within the limits that
    /// hold across hosts. The limit counts are serialised per connection and handler by advisory
    /// locks, so two hosts cannot both see room for one more; the row is taken with SKIP LOCKED,
    /// so a host never waits for another's claim, it moves on.
    static func claimable(_ db: any SQLDatabase, taskId: String, options: ClaimOptions, now: Date) throws(StoreError) -> String? {
        // The caller holds the claim:connection and claim:handler locks.
        if let limit = options.connectionLimit, let connection = options.orNextOf {
            let running = try db.firstRow("SELECT COUNT(*) FROM tasks WHERE connection_id = ? AND state = 'running'", [.text(connection)]) { $0.int(0) } ?? 0
            if running >= limit { return nil }
        }
        if let limit = options.handlerLimit, let handler = options.handler {
            let running = try db.firstRow(
                "SELECT COUNT(*) FROM tasks t JOIN connections c ON c.id = t.connection_id WHERE c.handler = ? AND t.state = 'running'", [.text(handler)]) { $0.int(0) } ?? 0
            if running >= limit { return nil }
        }
        if let id = try db.firstRow("SELECT id FROM tasks WHERE id = ? AND state IN ('queued', 'snoozed') FOR UPDATE SKIP LOCKED", [.text(taskId)], { $0.text(0) }) {
            return id
        }
        guard let connection = options.orNextOf else { return nil }
        return try db.firstRow(
            """
            SELECT id FROM tasks WHERE connection_id = ? AND state IN ('queued', 'snoozed') AND next_run_at <= ?
            ORDER BY next_run_at, seq LIMIT 1 FOR UPDATE SKIP LOCKED
            """, [.text(connection), .date(now)]) { $0.text(0) }
    }

    public func releaseClaim(taskId: String, executionId: String, now: Date) throws(StoreError) -> Bool {
        try transaction { (db) throws(StoreError) -> Bool in
            try db.run(
                "UPDATE tasks SET state = 'queued', updated_at = ?, \(Self.clearOwner) WHERE id = ? AND execution_id = ? AND state = 'running'",
                .date(now), .text(taskId), .text(executionId))
            guard db.changes == 1 else { return false }
            try db.notifyWork()
            return true
        }
    }

    public func recordSpawn(taskId: String, executionId: String, agent: SpawnedProcess) throws(StoreError) {
        try locked { (db) throws(StoreError) in
            try db.run(
                "UPDATE tasks SET agent_pid = ?, agent_pgid = ?, agent_start = ? WHERE id = ? AND execution_id = ?", .int(Int(agent.pid)), .int(Int(agent.processGroup)),
                .int(Int(agent.startTicks)), .text(taskId), .text(executionId))
        }
    }

    static let clearOwner =
        "execution_id = NULL, host_pid = NULL, host_start = NULL, agent_pid = NULL, agent_pgid = NULL, agent_start = NULL, host_id = NULL, host_machine = NULL, lease_expires_at = NULL"

    public func complete(_ completion: TaskCompletion, now: Date) throws(StoreError) -> CompletionResult {
        // Hosts finishing a scan's last tasks together must not each see the other's task still
        // open (and the scan never close).
        try transaction(locking: [Self.scanLock(completion.record.scanId)]) { (db) throws(StoreError) -> PendingCompletion in
            try Self.complete(db, completion, now: now, counters: counters)
        }.committed()
    }

    /// One transaction commits the outcome and claims the lane's next task. On a shared state a
    /// claim counted against limits takes advisory locks of its own, which a completion holding
    /// its scan's lock would order two ways: it runs in a transaction of its own. A claim without
    /// limits waits for no lock (SKIP LOCKED) and goes with the COMMIT, in the same round trip.
    public func complete(_ completion: TaskCompletion?, thenClaim next: ClaimRequest?, now: Date) throws(StoreError) -> (CompletionResult?, StoredTask?) {
        guard let completion, let next, !isShared || next.options.countsNoLimit else {
            let result = try completion.map { (c) throws(StoreError) in try complete(c, now: now) }
            return (result, try next.flatMap { (n) throws(StoreError) in try claim(taskId: n.taskId, executionId: n.executionId, owner: n.owner, options: n.options, now: now) })
        }
        let locks = isShared ? [Self.scanLock(completion.record.scanId)] : []
        let (pending, claimed) = try transaction(locking: locks) { (db) throws(StoreError) -> (PendingCompletion, Later<StoredTask>) in
            let pending = try Self.complete(db, completion, now: now, counters: counters)
            if db.dialect == .sqlite {
                let task = try Self.take(db, id: next.taskId, executionId: next.executionId, owner: next.owner, options: next.options, now: now)
                return (pending, Later(arrived: task.map { [$0] } ?? []))
            }
            let (sql, bindings) = Self.unlimitedClaim(taskId: next.taskId, executionId: next.executionId, owner: next.owner, options: next.options, now: now)
            return (pending, try db.later(sql, bindings, Self.claimed))
        }
        return (pending.committed(), claimed.rows.first)
    }

    static func scanLock(_ scanId: String) -> String { "scan:\(scanId)" }

    /// A completion as its transaction leaves it: the alert facts it reads go with the COMMIT
    /// on PostgreSQL, and are there once the transaction has committed.
    struct PendingCompletion {
        var result = CompletionResult()
        var alertFacts: PendingAlertFacts?

        func committed() -> CompletionResult {
            var result = result
            result.alertFacts = alertFacts?.value
            return result
        }
    }

    /// The completion's statements, inside the caller's transaction. On PostgreSQL they take two
    /// round trips: the history, the task's move and the scan's closing read; then the scan's
    /// close, the alert facts and the COMMIT (with a claim, `complete(_:thenClaim:)`).
    static func complete(_ db: any SQLDatabase, _ completion: TaskCompletion, now: Date, counters: CounterBuffer) throws(StoreError) -> PendingCompletion {
        let record = completion.record
        var pending = PendingCompletion()
        try Self.insertExecution(db, record, stats: completion.stats, counters: counters)
        // The task moves on only while this execution holds it: where its lease ran out and
        // another host took it back, this execution's history is kept, and nothing else.
        let owned = "id = ? AND execution_id = ?"
        let id = SQLValue.text(record.taskId)
        let ownedBy: [SQLValue] = [id, .text(record.taskExecutionId)]
        var depth = 0
        if !completion.children.isEmpty {
            // The row is locked (PostgreSQL) so that it stays this execution's until the commit.
            guard let current = try db.firstRow("SELECT depth FROM tasks WHERE \(owned)\(db.dialect.lockingSelectedRows(of: "tasks"))", ownedBy, { $0.int(0) }) else {
                return pending
            }
            depth = current
        }
        // The move: what the transition sets, with the columns every move sets after it.
        let assignments: String
        let values: [SQLValue]
        switch completion.transition {
        case .succeeded:
            let isChild = record.parentTaskId != nil
            assignments = "state = 'succeeded', checkpoint = CASE WHEN ? THEN ? ELSE checkpoint END, failure_reason = NULL, error = NULL"
            values = [.bool(isChild && completion.checkpoint != nil), .json(completion.checkpoint)]
        case .failed(let reason, let message):
            assignments = "state = 'failed', failure_reason = ?, error = ?"
            values = [.text(reason.rawValue), .optional(message)]
        case .retry(let at, let attempt):
            assignments = "state = 'queued', attempt = ?, next_run_at = ?, failure_reason = ?, error = ?, trigger = 'retry'"
            values = [.int(attempt), .date(at), .optional(record.failureReason?.rawValue), .optional(record.error)]
        case .snooze(let until, let seconds):
            assignments = "state = 'snoozed', next_run_at = ?, rate_limited_seconds = rate_limited_seconds + ?, failure_reason = ?, error = ?"
            values = [.date(until), .real(seconds), .optional(record.failureReason?.rawValue), .optional(record.error)]
        case .requeue:
            assignments = "state = 'queued', next_run_at = ?, interruptions = interruptions + 1, error = ?"
            values = [.date(now), .optional(record.error)]
        }
        let moved = try db.later(
            "UPDATE tasks SET \(assignments), updated_at = ?, \(Self.clearOwner) WHERE \(owned)", values + [.date(now)] + ownedBy, { _ in })
        if case .succeeded = completion.transition {
            if record.parentTaskId == nil, let checkpoint = completion.checkpoint {
                try db.run("UPDATE scans SET pending_checkpoint = ? WHERE id = ?", .json(checkpoint), .text(record.scanId))
            }
            for child in completion.children {
                try db.run(
                    """
                    INSERT INTO tasks (id, connection_id, task_type, scan_id, parent_task_id, depth, child_key, metadata, state, trigger,
                        attempt, next_run_at, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', 'child', 1, ?, ?, ?) ON CONFLICT (id) DO NOTHING
                    """, .text(child.id), .text(record.connectionId), .text(child.taskType), .text(record.scanId), id, .int(depth + 1), .text(child.key),
                    .json(child.metadata), .date(now), .date(now), .date(now))
                if db.changes == 1 {
                    pending.result.childrenAdded += 1
                } else if try db.firstRow("SELECT state FROM tasks WHERE id = ?", [.text(child.id)], { $0.text(0) }) == TaskState.succeeded.rawValue {
                    // At-least-once: the parent ran again and asked for work already done.
                    let skipped = TaskRecord(
                        taskId: child.id, taskExecutionId: DeterministicID.random(), scanId: record.scanId, parentTaskId: record.taskId,
                        connectionId: record.connectionId, handler: record.handler, type: child.taskType, trigger: .child, status: .skipped, failureReason: nil,
                        exitCode: nil, signal: nil, timedOut: false, startedAt: now, durationMs: 0, attempt: 0, result: nil,
                        error: "already completed (duplicate delivery)", stderrTail: "")
                    try Self.insertExecution(db, skipped, stats: nil, counters: counters)
                    pending.result.duplicatesSkipped += 1
                }
            }
        }
        // The closing read brings the move's count back with it. A move that did not happen
        // leaves the task open or another host's to end (and close the scan): the read finds
        // the scan open or closed already, and nothing here is written.
        let closing = try Self.closingRead(db, scanId: record.scanId)
        guard moved.changes == 1 else { return pending }
        if let reason = completion.pauseConnection {
            try db.run(
                "UPDATE connections SET state = 'needs_reauth', state_reason = ?, updated_at = ? WHERE id = ?", .text(reason), .date(now), .text(record.connectionId))
            try Self.insertEvent(db, connectionId: record.connectionId, kind: "STATE_NEEDS_REAUTH", detail: reason, deliver: false, now: now)
        }
        if let closing {
            let scan = try Self.close(db, closing, now: now)
            pending.result.closedScan = scan
            if let history = completion.alertHistory { pending.alertFacts = try Self.alertFacts(db, for: scan, history: history) }
        }
        // New work, or room under a limit: wake idle hosts. A plain end changes nothing for
        // them, and 1,000 one-task scans would otherwise wake every host 1,000 times.
        var queuedWork = pending.result.childrenAdded > 0
        switch completion.transition {
        case .retry, .snooze, .requeue: queuedWork = true
        case .succeeded, .failed: break
        }
        if queuedWork || completion.freesLimitedRoom { try db.notifyWork() }
        return pending
    }

    /// `+seq`: ordered after the (few) running tasks are found by their partial index; ordering by
    /// `seq` itself would have SQLite walk the whole table in `seq` order to skip a sort.
    public func runningTasks() throws(StoreError) -> [StoredTask] {
        try locked { (db) throws(StoreError) in try db.rows("SELECT \(Self.taskColumns) FROM tasks WHERE state = 'running' ORDER BY +seq", [], Self.task) }
    }

    public func requeueInterrupted(taskId: String, note: String, now: Date) throws(StoreError) {
        try transaction { (db) throws(StoreError) in
            try db.run(
                "UPDATE tasks SET state = 'queued', next_run_at = ?, interruptions = interruptions + 1, error = ?, updated_at = ?, \(Self.clearOwner) WHERE id = ? AND state = 'running'",
                .date(now), .text(note), .date(now), .text(taskId))
            let connection = try db.firstRow("SELECT connection_id FROM tasks WHERE id = ?", [.text(taskId)]) { $0.text(0) }
            try Self.insertEvent(db, connectionId: connection, kind: "TASK_RECOVERED", detail: "\(taskId): \(note)", deliver: false, now: now)
            try db.notifyWork()
        }
    }

    public func task(id: String) throws(StoreError) -> StoredTask? {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT \(Self.taskColumns) FROM tasks WHERE id = ?", [.text(id)], Self.task) }
    }

    public func taskCount(scanId: String) throws(StoreError) -> Int {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT COUNT(*) FROM tasks WHERE scan_id = ?", [.text(scanId)]) { $0.int(0) } ?? 0 }
    }

    public func nextTaskTime(after date: Date) throws(StoreError) -> Date? {
        try locked { (db) throws(StoreError) in
            try db.firstRow(
                "SELECT MIN(next_run_at) FROM tasks WHERE state IN ('queued', 'snoozed') AND next_run_at > ?", [.date(date)]) { $0.optionalDate(0) } ?? nil
        }
    }

    public func queueDepth() throws(StoreError) -> Int {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT COUNT(*) FROM tasks WHERE state IN ('queued', 'snoozed')", []) { $0.int(0) } ?? 0 }
    }
}
