import Foundation

extension SQLStore {
    static let executionColumns = """
        id, task_id, scan_id, parent_task_id, connection_id, handler, task_type, trigger, status, failure_reason, exit_code, signal, timed_out,
        started_at, duration_ms, attempt, result, error, stderr_tail
        """

    static func execution(_ r: Row) -> TaskRecord {
        TaskRecord(
            taskId: r.text(1), taskExecutionId: r.text(0), scanId: r.text(2), parentTaskId: r.optionalText(3), connectionId: r.text(4), handler: r.text(5),
            type: r.text(6), trigger: Trigger(rawValue: r.text(7)) ?? .schedule, status: TaskRecord.Status(rawValue: r.text(8)) ?? .failure,
            failureReason: r.optionalText(9).flatMap(FailureReason.init(rawValue:)), exitCode: r.optionalInt(10), signal: r.optionalText(11),
            timedOut: r.bool(12), startedAt: r.date(13), durationMs: r.int(14), attempt: r.int(15), result: r.json(16), error: r.optionalText(17),
            stderrTail: r.text(18))
    }

    /// Records an execution; its metric increments go to `counters` (written with a later commit).
    static func insertExecution(_ db: any SQLDatabase, _ record: TaskRecord, stats: AgentReport.Stats?, counters: CounterBuffer) throws(StoreError) {
        try db.run(
            """
            INSERT INTO executions (id, task_id, scan_id, parent_task_id, connection_id, handler, task_type, trigger, status, failure_reason, exit_code,
                signal, timed_out, started_at, duration_ms, attempt, result, error, stderr_tail, records, bytes, schema_fingerprint)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, .text(record.taskExecutionId), .text(record.taskId), .text(record.scanId), .optional(record.parentTaskId), .text(record.connectionId),
            .text(record.handler), .text(record.type), .text(record.trigger.rawValue), .text(record.status.rawValue), .optional(record.failureReason?.rawValue),
            .optional(record.exitCode), .optional(record.signal), .bool(record.timedOut), .date(record.startedAt), .int(record.durationMs), .int(record.attempt),
            .json(record.result), .optional(record.error), .text(record.stderrTail), .optional(stats?.records), .optional(stats?.bytes), .optional(stats?.schema))
        counters.stage(countsOf(record, records: stats?.records))
    }

    /// Counters live in the store, not in memory: each `run` is a new process, and a counter must
    /// not restart at zero every pass or shrink when history is pruned. (They reach it through
    /// `CounterBuffer`, about a second late.)
    static func countsOf(_ record: TaskRecord, records: Int?) -> [CounterBuffer.Count] {
        // Spelled as `MetricLabels.format` spells them (keys sorted), without its dictionary and
        // sort: this runs for every task.
        let connection = MetricLabels.escape(record.connectionId)
        let type = MetricLabels.escape(record.type)
        let series = "connection=\"\(connection)\",type=\"\(type)\""
        let outcome = "connection=\"\(connection)\",reason=\"\(record.failureReason?.rawValue ?? "")\",status=\"\(record.status.rawValue)\",type=\"\(type)\""
        var counts: [CounterBuffer.Count] = [("connector_host_task_executions_total", outcome, 1)]
        if record.status != .skipped {
            let seconds = Double(record.durationMs) / 1000
            // One row for the bucket the duration falls in, not one per bucket it is under:
            // the textfile adds them up (`MetricsTextfile.histogram`). A no-op task wrote 11.
            if let bound = MetricsTextfile.durationBuckets.first(where: { seconds <= $0 }) {
                counts.append((MetricsTextfile.durationInBucket, series + ",le=\"\(MetricLabels.number(bound))\"", 1))
            }
            counts.append(("connector_host_task_duration_seconds_sum", series, seconds))
            counts.append(("connector_host_task_duration_seconds_count", series, 1))
            if let records { counts.append(("connector_host_records_total", series, Double(records))) }
        }
        if record.status == .success {
            // A gauge, not a count: `add` keeps the larger value for this name.
            counts.append((lastSuccess, series, record.startedAt.timeIntervalSince1970 + Double(record.durationMs) / 1000))
        }
        return counts
    }

    static let lastSuccess = "connector_host_last_success_timestamp_seconds"

    /// Adds to many counters in few statements (on PostgreSQL each is a round trip), 200 rows at
    /// a time to stay far under both engines' limits on bound values. The last-success gauge
    /// keeps the larger value.
    static func add(_ db: any SQLDatabase, _ counts: [CounterBuffer.Count]) throws(StoreError) {
        for start in stride(from: 0, to: counts.count, by: 200) {
            let chunk = counts[start..<min(start + 200, counts.count)]
            let rows = Array(repeating: "(?, ?, ?)", count: chunk.count).joined(separator: ", ")
            try db.perform(
                """
                INSERT INTO metric_counters (name, labels, value) VALUES \(rows) ON CONFLICT(name, labels) DO UPDATE SET value = CASE
                    WHEN metric_counters.name = '\(lastSuccess)' THEN \(db.dialect.greatest("metric_counters.value", "excluded.value"))
                    ELSE metric_counters.value + excluded.value END
                """,
                chunk.flatMap { [SQLValue.text($0.name), .text($0.labels), .real($0.amount)] })
        }
    }

    static let scanColumns =
        "id, connection_id, task_type, root_task_id, trigger, status, started_at, ended_at, tasks, succeeded, failed, skipped, records, checkpoint_committed, schema_fingerprint"

    static func scan(_ r: Row) -> ScanSummary {
        ScanSummary(
            id: r.text(0), connectionId: r.text(1), taskType: r.text(2), rootTaskId: r.text(3), trigger: Trigger(rawValue: r.text(4)) ?? .schedule,
            status: ScanSummary.Status(rawValue: r.text(5)) ?? .running, startedAt: r.date(6), endedAt: r.optionalDate(7), tasks: r.int(8), succeeded: r.int(9),
            failed: r.int(10), skipped: r.int(11), records: r.int(12), checkpointCommitted: r.bool(13), schemaFingerprint: r.optionalText(14))
    }

    public func recordExecution(_ record: TaskRecord) throws(StoreError) {
        try transaction { (db) throws(StoreError) in try Self.insertExecution(db, record, stats: nil, counters: counters) }
    }

    public func execution(id: String) throws(StoreError) -> TaskRecord? {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT \(Self.executionColumns) FROM executions WHERE id = ?", [.text(id)], Self.execution) }
    }

    public func executions(scanId: String) throws(StoreError) -> [TaskRecord] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Self.executionColumns) FROM executions WHERE scan_id = ? ORDER BY started_at, \(db.dialect.insertionOrder)", [.text(scanId)], Self.execution)
        }
    }

    public func recentExecutions(limit: Int) throws(StoreError) -> [TaskRecord] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Self.executionColumns) FROM executions ORDER BY started_at DESC, \(db.dialect.insertionOrder) DESC LIMIT ?", [.int(limit)], Self.execution)
        }
    }

    public func scan(id: String) throws(StoreError) -> ScanSummary? {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT \(Self.scanColumns) FROM scans WHERE id = ?", [.text(id)], Self.scan) }
    }

    public func scans(connectionId: String?, limit: Int) throws(StoreError) -> [ScanSummary] {
        try locked { (db) throws(StoreError) in
            if let connectionId {
                return try db.rows("SELECT \(Self.scanColumns) FROM scans WHERE connection_id = ? ORDER BY started_at DESC LIMIT ?", [.text(connectionId), .int(limit)], Self.scan)
            }
            return try db.rows("SELECT \(Self.scanColumns) FROM scans ORDER BY started_at DESC LIMIT ?", [.int(limit)], Self.scan)
        }
    }
}
