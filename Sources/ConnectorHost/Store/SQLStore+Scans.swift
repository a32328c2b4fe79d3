import Foundation

/// Opening scans: a trigger's, and the due ticks of schedules, a batch per transaction. One scan
/// per connection and type is open at a time; a tick that finds one still running is recorded as
/// skipped. Closing one: the completion of its last open task reads its totals and ends it.
extension SQLStore {
    public func openScan(
        connectionId: String, taskType: String, handler: String, rootTaskId: String, trigger: Trigger, dueAt: Date?, nextDue: Date?, now: Date
    ) throws(StoreError) -> ScanOpening {
        if let dueAt {
            // A tick opens the way a batch of them does.
            let tick = ScheduledTick(connectionId: connectionId, taskType: taskType, handler: handler, rootTaskId: rootTaskId, dueAt: dueAt, nextDue: nextDue)
            return try openTicks([tick], trigger: trigger, now: now)[0]
        }
        // One open scan per connection and type: a trigger and a tick racing for it are serialised
        // by this lock.
        return try transaction(locking: [Self.openScanLock(connectionId, taskType)]) { (db) throws(StoreError) -> ScanOpening in
            let running = try db.firstRow(
                "SELECT id FROM scans WHERE connection_id = ? AND task_type = ? AND status = 'running'", [.text(connectionId), .text(taskType)], { $0.text(0) })
            return try self.startScan(
                db, connectionId: connectionId, taskType: taskType, handler: handler, rootTaskId: rootTaskId, trigger: trigger, running: running, now: now)
        }
    }

    public func openScans(_ ticks: [ScheduledTick], now: Date) throws(StoreError) -> [ScanOpening] {
        try openTicks(ticks, trigger: .schedule, now: now)
    }

    /// Each statement of a batch serves a chunk of its ticks (`MultiRow`): the schedules are
    /// read (and on PostgreSQL locked) and moved on, the scans' locks taken, the running scans
    /// found and the new scans and their root tasks written up to 32 ticks at a time; only a
    /// skipped tick costs statements of its own.
    private func openTicks(_ ticks: [ScheduledTick], trigger: Trigger, now: Date) throws(StoreError) -> [ScanOpening] {
        // In key order, whatever order the caller walks the schedules in: hosts sharing a state
        // then take the rows of their batches in one order and never wait on each other in a cycle.
        let order = ticks.indices.sorted { (ticks[$0].connectionId, ticks[$0].taskType) < (ticks[$1].connectionId, ticks[$1].taskType) }
        func key(_ index: Int) -> [String] { [ticks[index].connectionId, ticks[index].taskType] }
        return try transaction { (db) throws(StoreError) -> [ScanOpening] in
            var openings = [ScanOpening](repeating: .alreadyEnqueued, count: ticks.count)
            // A tick is still pending while its schedule's next due time is the tick's: hosts
            // sharing the state all see it due, and the first to move the schedule on enqueues it.
            let scheduled = try Self.byConnectionAndType(
                db, order.map(key),
                "SELECT s.connection_id, s.task_type, s.next_due_at FROM (VALUES %@) v JOIN schedules s ON s.connection_id = v.column1 AND s.task_type = v.column2"
                    + " ORDER BY s.connection_id, s.task_type\(db.dialect.lockingSelectedRows(of: "s"))"
            ) { $0.optionalDate(2) }
            let pending = order.filter { index in
                guard case .some(.some(let stored)) = scheduled[key(index)] else { return false }
                return abs(stored.timeIntervalSince(ticks[index].dueAt)) < 0.001
            }
            try MultiRow.chunks(pending) { (chunk) throws(StoreError) in
                try db.perform(
                    """
                    UPDATE schedules SET last_due_at = CAST(v.column3 AS DOUBLE PRECISION), next_due_at = CAST(v.column4 AS DOUBLE PRECISION)
                    FROM (VALUES \(MultiRow.values("(?, ?, ?, ?)", chunk.count))) v WHERE schedules.connection_id = v.column1 AND schedules.task_type = v.column2
                    """, chunk.flatMap { [.text(ticks[$0].connectionId), .text(ticks[$0].taskType), .date(ticks[$0].dueAt), .date(ticks[$0].nextDue)] })
            }
            try db.lockForTransaction(pending.map { Self.openScanLock(ticks[$0].connectionId, ticks[$0].taskType) })
            let running = try Self.byConnectionAndType(
                db, pending.map(key),
                "SELECT s.connection_id, s.task_type, s.id FROM (VALUES %@) v JOIN scans s ON s.connection_id = v.column1 AND s.task_type = v.column2 AND s.status = 'running'"
            ) { $0.text(2) }
            var starting: [(index: Int, scanId: String)] = []
            for index in pending {
                let tick = ticks[index]
                if let open = running[key(index)] {
                    openings[index] = try startScan(
                        db, connectionId: tick.connectionId, taskType: tick.taskType, handler: tick.handler, rootTaskId: tick.rootTaskId, trigger: trigger,
                        running: open, now: now)
                } else {
                    starting.append((index, DeterministicID.random()))
                }
            }
            try MultiRow.chunks(starting) { (chunk) throws(StoreError) in
                try db.perform(
                    Self.insertScans(chunk.count),
                    chunk.flatMap { (index, scanId) in
                        Self.scanRow(scanId: scanId, connectionId: ticks[index].connectionId, taskType: ticks[index].taskType, rootTaskId: ticks[index].rootTaskId, trigger: trigger, now: now)
                    })
                try db.perform(
                    Self.queueRootTasks(chunk.count),
                    chunk.flatMap { (index, scanId) in
                        Self.rootTaskRow(rootTaskId: ticks[index].rootTaskId, connectionId: ticks[index].connectionId, taskType: ticks[index].taskType, scanId: scanId, trigger: trigger, now: now)
                    })
            }
            for (index, scanId) in starting { openings[index] = .opened(scanId: scanId) }
            if !starting.isEmpty { try db.notifyWork() }
            return openings
        }
    }

    /// Runs `sql`, whose `%@` stands for `(?, ?), …` (a VALUES list joined to the table: both
    /// engines then look each key up in an index), over `keys` (connection id, task type) a
    /// fixed-size chunk at a time, the last padded with its last key, so every chunk is the same
    /// prepared statement. The rows' first two columns are their key.
    static func byConnectionAndType<T>(_ db: any SQLDatabase, _ keys: [[String]], _ sql: String, _ value: (Row) -> T) throws(StoreError) -> [[String]: T] {
        let chunkSize = 32
        let statement = sql.replacingOccurrences(of: "%@", with: Array(repeating: "(?, ?)", count: chunkSize).joined(separator: ", "))
        var found: [[String]: T] = [:]
        for start in stride(from: 0, to: keys.count, by: chunkSize) {
            var chunk = Array(keys[start..<min(start + chunkSize, keys.count)])
            while chunk.count < chunkSize { chunk.append(chunk[chunk.count - 1]) }
            for (key, row) in try db.rows(statement, chunk.flatMap { [SQLValue.text($0[0]), .text($0[1])] }, { ([$0.text(0), $0.text(1)], value($0)) }) {
                found[key] = row
            }
        }
        return found
    }

    /// The advisory lock that serialises opening a scan of one connection and type (a trigger
    /// takes it with BEGIN, a tick after moving its schedule on): both must name the same key.
    private static func openScanLock(_ connectionId: String, _ taskType: String) -> String { "scan:\(connectionId)/\(taskType)" }

    /// Opens the scan and queues its root task, or, with a scan of the connection and type still
    /// `running`, records the tick as skipped; inside the caller's transaction, which holds the
    /// scan's lock.
    private func startScan(
        _ db: any SQLDatabase, connectionId: String, taskType: String, handler: String, rootTaskId: String, trigger: Trigger, running: String?, now: Date
    ) throws(StoreError) -> ScanOpening {
        if let open = running {
            let record = TaskRecord(
                taskId: rootTaskId, taskExecutionId: DeterministicID.random(), scanId: open, parentTaskId: nil, connectionId: connectionId, handler: handler,
                type: taskType, trigger: trigger, status: .skipped, failureReason: nil, exitCode: nil, signal: nil, timedOut: false, startedAt: now,
                durationMs: 0, attempt: 0, result: nil, error: "previous scan still running (scan \(open))", stderrTail: "")
            try Self.insertExecution(db, record, stats: nil, counters: counters)
            return .skipped(openScanId: open)
        }
        let scanId = DeterministicID.random()
        try db.perform(
            Self.insertScans(1), Self.scanRow(scanId: scanId, connectionId: connectionId, taskType: taskType, rootTaskId: rootTaskId, trigger: trigger, now: now))
        try db.perform(
            Self.queueRootTasks(1),
            Self.rootTaskRow(rootTaskId: rootTaskId, connectionId: connectionId, taskType: taskType, scanId: scanId, trigger: trigger, now: now))
        try db.notifyWork()
        return .opened(scanId: scanId)
    }

    /// `count` new running scans; each row's values are `scanRow`'s.
    static func insertScans(_ count: Int) -> String {
        "INSERT INTO scans (id, connection_id, task_type, root_task_id, trigger, status, started_at) VALUES \(MultiRow.values("(?, ?, ?, ?, ?, 'running', ?)", count))"
    }

    static func scanRow(scanId: String, connectionId: String, taskType: String, rootTaskId: String, trigger: Trigger, now: Date) -> [SQLValue] {
        [.text(scanId), .text(connectionId), .text(taskType), .text(rootTaskId), .text(trigger.rawValue), .date(now)]
    }

    /// `count` root tasks queued for their new scans: a root task is one row per schedule, kept
    /// from scan to scan, so a later scan queues it again from scratch. Each row's values are
    /// `rootTaskRow`'s.
    static func queueRootTasks(_ count: Int) -> String {
        """
        INSERT INTO tasks (id, connection_id, task_type, scan_id, state, trigger, attempt, next_run_at, created_at, updated_at)
        VALUES \(MultiRow.values("(?, ?, ?, ?, 'queued', ?, 1, ?, ?, ?)", count))
        ON CONFLICT(id) DO UPDATE SET scan_id = excluded.scan_id, state = 'queued', trigger = excluded.trigger, attempt = 1,
            next_run_at = excluded.next_run_at, rate_limited_seconds = 0, execution_id = NULL, host_pid = NULL, host_start = NULL,
            agent_pid = NULL, agent_pgid = NULL, agent_start = NULL, host_id = NULL, host_machine = NULL, lease_expires_at = NULL, started_at = NULL, failure_reason = NULL, error = NULL,
            interruptions = 0, updated_at = excluded.updated_at
        """
    }

    static func rootTaskRow(rootTaskId: String, connectionId: String, taskType: String, scanId: String, trigger: Trigger, now: Date) -> [SQLValue] {
        [.text(rootTaskId), .text(connectionId), .text(taskType), .text(scanId), .text(trigger.rawValue), .date(now), .date(now), .date(now)]
    }

    /// A scan whose tasks have all ended, with its totals, as the closing read finds it.
    struct ClosingScan {
        var scan: ScanSummary
        var tasks, succeeded, failed, skipped, records: Int
        var pendingCheckpoint: String?
        var schemas: String?
    }

    /// The scan and its totals in one statement (one round trip on PostgreSQL, not six), when
    /// every task in it is terminal. While a task is open, NOT EXISTS stops at one index probe
    /// and no total is counted: a 10,000-child scan asks this after every child. On SQLite the
    /// distinct schema fingerprints are collected only when there is one: the DISTINCT's
    /// temporary b-tree was most of the closing read for a one-task scan whose agent reports none.
    static func closingRead(_ db: any SQLDatabase, scanId: String) throws(StoreError) -> ClosingScan? {
        try db.firstRow(
            """
            SELECT \(scanColumns),
                (SELECT COUNT(*) FROM tasks WHERE scan_id = scans.id),
                (SELECT COUNT(*) FROM tasks WHERE scan_id = scans.id AND state = 'succeeded'),
                (SELECT COUNT(*) FROM tasks WHERE scan_id = scans.id AND state = 'failed'),
                (SELECT COUNT(*) FROM executions WHERE scan_id = scans.id AND status = 'skipped' AND task_id <> scans.root_task_id),
                (SELECT COALESCE(SUM(records), 0) FROM executions WHERE scan_id = scans.id AND status = 'success'),
                pending_checkpoint,
                \(db.dialect.onlyWhenAny(
                    "SELECT 1 FROM executions WHERE scan_id = scans.id AND schema_fingerprint IS NOT NULL",
                    "SELECT \(db.dialect.joinedWithUnitSeparator("f")) FROM (SELECT DISTINCT schema_fingerprint AS f FROM executions WHERE scan_id = scans.id AND schema_fingerprint IS NOT NULL) fingerprints"))
            FROM scans WHERE id = ? AND status = 'running'
                AND NOT EXISTS (SELECT 1 FROM tasks WHERE scan_id = scans.id AND \(Schema.openTaskCondition))
            """, [.text(scanId)]
        ) { r in
            ClosingScan(
                scan: Self.scan(r), tasks: r.int(15), succeeded: r.int(16), failed: r.int(17), skipped: r.int(18), records: r.int(19),
                pendingCheckpoint: r.optionalText(20), schemas: r.optionalText(21))
        }
    }

    /// Ends the scan the closing read found done. Its root checkpoint commits only when every
    /// task succeeded, so a failed scan is covered again by the next one.
    static func close(_ db: any SQLDatabase, _ closing: ClosingScan, now: Date) throws(StoreError) -> ScanSummary {
        var scan = closing.scan
        let success = closing.failed == 0 && closing.tasks > 0
        var committed = false
        if success, let pending = closing.pendingCheckpoint {
            try db.run(
                """
                INSERT INTO checkpoints (connection_id, task_type, metadata, scan_id, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(connection_id, task_type) DO UPDATE SET metadata = excluded.metadata, scan_id = excluded.scan_id, updated_at = excluded.updated_at
                """, .text(scan.connectionId), .text(scan.taskType), .text(pending), .text(scan.id), .date(now))
            // An audit trail of commits: an operator (and the reliability suite) can count them per scan.
            try insertEvent(db, connectionId: scan.connectionId, kind: "CHECKPOINT_COMMITTED", detail: "\(scan.taskType) scan \(scan.id)", deliver: false, now: now)
            committed = true
        }
        // Sorted here: neither engine promises an order for the joined list.
        let schemas = (closing.schemas ?? "").split(separator: "\u{1F}").map(String.init).sorted()
        scan.status = success ? .success : .failure
        scan.endedAt = now
        scan.tasks = closing.tasks
        scan.succeeded = closing.succeeded
        scan.failed = closing.failed
        scan.skipped = closing.skipped
        scan.records = closing.records
        scan.checkpointCommitted = committed
        scan.schemaFingerprint = schemas.isEmpty ? nil : schemas.joined(separator: ",")
        try db.run(
            "UPDATE scans SET status = ?, ended_at = ?, tasks = ?, succeeded = ?, failed = ?, skipped = ?, records = ?, checkpoint_committed = ?, schema_fingerprint = ? WHERE id = ?",
            .text(scan.status.rawValue), .date(now), .int(scan.tasks), .int(scan.succeeded), .int(scan.failed), .int(scan.skipped), .int(scan.records), .bool(committed),
            .optional(scan.schemaFingerprint), .text(scan.id))
        return scan
    }
}
