import Foundation

extension SQLiteStore {
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

    static func insertExecution(_ db: SQLiteDatabase, _ record: TaskRecord, stats: AgentReport.Stats?) throws(StoreError) {
        try db.run(
            """
            INSERT INTO executions (id, task_id, scan_id, parent_task_id, connection_id, handler, task_type, trigger, status, failure_reason, exit_code,
                signal, timed_out, started_at, duration_ms, attempt, result, error, stderr_tail, records, bytes, schema_fingerprint)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, .text(record.taskExecutionId), .text(record.taskId), .text(record.scanId), .optional(record.parentTaskId), .text(record.connectionId),
            .text(record.handler), .text(record.type), .text(record.trigger.rawValue), .text(record.status.rawValue), .optional(record.failureReason?.rawValue),
            .optional(record.exitCode), .optional(record.signal), .bool(record.timedOut), .date(record.startedAt), .int(record.durationMs), .int(record.attempt),
            .json(record.result), .optional(record.error), .text(record.stderrTail), .optional(stats?.records), .optional(stats?.bytes), .optional(stats?.schema))
    }

    static let scanColumns = "id, connection_id, task_type, root_task_id, trigger, status, started_at, ended_at, tasks, succeeded, failed, skipped, records, checkpoint_committed"

    static func scan(_ r: Row) -> ScanSummary {
        ScanSummary(
            id: r.text(0), connectionId: r.text(1), taskType: r.text(2), rootTaskId: r.text(3), trigger: Trigger(rawValue: r.text(4)) ?? .schedule,
            status: ScanSummary.Status(rawValue: r.text(5)) ?? .running, startedAt: r.date(6), endedAt: r.optionalDate(7), tasks: r.int(8), succeeded: r.int(9),
            failed: r.int(10), skipped: r.int(11), records: r.int(12), checkpointCommitted: r.bool(13))
    }

    public func recordExecution(_ record: TaskRecord) throws(StoreError) {
        try locked { (db) throws(StoreError) in try Self.insertExecution(db, record, stats: nil) }
    }

    public func execution(id: String) throws(StoreError) -> TaskRecord? {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT \(Self.executionColumns) FROM executions WHERE id = ?", [.text(id)], Self.execution) }
    }

    public func executions(scanId: String) throws(StoreError) -> [TaskRecord] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Self.executionColumns) FROM executions WHERE scan_id = ? ORDER BY started_at, rowid", [.text(scanId)], Self.execution)
        }
    }

    public func recentExecutions(limit: Int) throws(StoreError) -> [TaskRecord] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Self.executionColumns) FROM executions ORDER BY started_at DESC, rowid DESC LIMIT ?", [.int(limit)], Self.execution)
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
