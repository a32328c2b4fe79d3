import Foundation

/// What operators read: filtered history, scan trees, baselines for alerts, retention, metrics.
extension SQLStore {
    public func executions(_ filter: ExecutionFilter) throws(StoreError) -> [TaskRecord] {
        try locked { (db) throws(StoreError) in
            var conditions: [String] = []
            var bindings: [SQLValue] = []
            if let type = filter.taskType { conditions.append("task_type = ?"); bindings.append(.text(type)) }
            if let connection = filter.connectionId { conditions.append("connection_id = ?"); bindings.append(.text(connection)) }
            if let since = filter.since { conditions.append("started_at >= ?"); bindings.append(.date(since)) }
            var records: [TaskRecord] = []
            if filter.status != .running {
                var where_ = conditions
                var values = bindings
                if let status = filter.status { where_.append("status = ?"); values.append(.text(status.rawValue)) }
                let clause = where_.isEmpty ? "" : "WHERE " + where_.joined(separator: " AND ")
                records = try db.rows(
                    "SELECT \(Self.executionColumns), records FROM executions \(clause) ORDER BY started_at DESC, \(db.dialect.insertionOrder) DESC LIMIT ?", values + [.int(filter.limit)]
                ) { r in
                    var record = Self.execution(r)
                    record.records = r.optionalInt(19)
                    return record
                }
            }
            if filter.status == nil || filter.status == .running {
                records += try Self.runningRecords(db, conditions: conditions, bindings: bindings, limit: filter.limit)
                records.sort { $0.startedAt > $1.startedAt }
            }
            return Array(records.prefix(filter.limit))
        }
    }

    /// Tasks being executed now, shaped as records with status `running`.
    static func runningRecords(_ db: any SQLDatabase, conditions: [String], bindings: [SQLValue], limit: Int) throws(StoreError) -> [TaskRecord] {
        let clause = (["state = 'running'"] + conditions.map { $0.replacingOccurrences(of: "started_at", with: "tasks.started_at") }).joined(separator: " AND ")
        let now = Date()
        return try db.rows(
            """
            SELECT id, COALESCE(execution_id, ''), scan_id, parent_task_id, connection_id,
                COALESCE((SELECT handler FROM connections WHERE connections.id = tasks.connection_id), ''), task_type, trigger, attempt,
                COALESCE(started_at, updated_at)
            FROM tasks WHERE \(clause) ORDER BY started_at DESC LIMIT ?
            """, bindings + [.int(limit)]
        ) { r in
            TaskRecord(
                taskId: r.text(0), taskExecutionId: r.text(1), scanId: r.text(2), parentTaskId: r.optionalText(3), connectionId: r.text(4), handler: r.text(5),
                type: r.text(6), trigger: Trigger(rawValue: r.text(7)) ?? .schedule, status: .running, failureReason: nil, exitCode: nil, signal: nil,
                timedOut: false, startedAt: r.date(9), durationMs: max(0, Int(now.timeIntervalSince(r.date(9)) * 1000)), attempt: r.int(8), result: nil,
                error: nil, stderrTail: "")
        }
    }

    /// How many of the scan's tasks are in each state.
    public func taskStates(scanId: String) throws(StoreError) -> [TaskState: Int] {
        try locked { (db) throws(StoreError) in
            var counts: [TaskState: Int] = [:]
            for (state, count) in try db.rows("SELECT state, COUNT(*) FROM tasks WHERE scan_id = ? GROUP BY state", [.text(scanId)], { ($0.text(0), $0.int(1)) }) {
                if let s = TaskState(rawValue: state) { counts[s] = count }
            }
            return counts
        }
    }

    public func failedTaskReasons(scanId: String) throws(StoreError) -> [FailureReason: Int] {
        try locked { (db) throws(StoreError) in try Self.failedTaskReasons(db, scanId: scanId) }
    }

    static func failedTaskReasons(_ db: any SQLDatabase, scanId: String) throws(StoreError) -> [FailureReason: Int] {
        var counts: [FailureReason: Int] = [:]
        let rows = try db.rows(
            "SELECT failure_reason, COUNT(*) FROM tasks WHERE scan_id = ? AND state = 'failed' GROUP BY failure_reason", [.text(scanId)]) { ($0.optionalText(0), $0.int(1)) }
        for (reason, count) in rows { counts[reason.flatMap(FailureReason.init(rawValue:)) ?? .nonRetryableError, default: 0] += count }
        return counts
    }

    /// Successful scans of a connection and type that ended before `before`, newest first: the
    /// baseline the duration and record alerts compare against.
    static func successfulScans(_ db: any SQLDatabase, connectionId: String, taskType: String, before: Date, limit: Int) throws(StoreError) -> Later<ScanSummary> {
        try db.later(
            """
            SELECT \(Self.scanColumns) FROM scans WHERE connection_id = ? AND task_type = ? AND status = 'success' AND ended_at < ?
            ORDER BY ended_at DESC LIMIT ?
            """, [.text(connectionId), .text(taskType), .date(before), .int(limit)], Self.scan)
    }

    /// `AlertFacts` for a closed scan, read apart from its completion: for a completion that
    /// did not ask for them (`TaskCompletion.alertHistory`).
    public func alertFacts(for scan: ScanSummary, history: Int) throws(StoreError) -> AlertFacts {
        try locked { (db) throws(StoreError) in try Self.alertFacts(db, for: scan, history: history).value }
    }

    /// The statements behind `AlertFacts`, whose results arrive later (`Later`): in the closing
    /// commit on PostgreSQL, they cost it no round trip.
    struct PendingAlertFacts {
        typealias Facts = (state: String?, reason: String?, tally: ExecutionTally, rules: String?)
        let scan: ScanSummary
        let facts: Later<Facts>
        let failedTasks: [FailureReason: Int]
        let previousSuccesses: Later<ScanSummary>

        var value: AlertFacts {
            let row = facts.rows.first
            let input = AlertRules.Input(
                scan: scan, executions: row?.tally ?? ExecutionTally(), failedTasks: failedTasks, previousSuccesses: previousSuccesses.rows,
                connectionNeedsReauth: row?.state == ConnectionState.needsReauth.rawValue, reauthReason: row?.reason)
            let rules = (row?.rules ?? "").split(separator: "\u{1F}").compactMap { AlertRule(rawValue: String($0)) }
            return AlertFacts(input: input, openRules: Set(rules))
        }
    }

    static func alertFacts(_ db: any SQLDatabase, for scan: ScanSummary, history: Int) throws(StoreError) -> PendingAlertFacts {
        // The connection's state, the executions' tally and the open rules in one statement, then
        // the history. On SQLite the last failure's error is sorted for only when there is one:
        // it opens a temporary sorter for the ORDER BY each time otherwise.
        let id = SQLValue.text(scan.id)
        let connection = SQLValue.text(scan.connectionId)
        let facts = try db.later(
            """
            SELECT (SELECT state FROM connections WHERE id = ?), (SELECT state_reason FROM connections WHERE id = ?),
                (SELECT COUNT(*) FROM executions WHERE scan_id = ? AND status = 'success'),
                (SELECT COUNT(*) FROM executions WHERE scan_id = ? AND status = 'failure'),
                \(db.dialect.onlyWhenAny(
                    "SELECT 1 FROM executions WHERE scan_id = ? AND status = 'failure'",
                    "SELECT error FROM executions WHERE scan_id = ? AND status = 'failure' ORDER BY started_at DESC, \(db.dialect.insertionOrder) DESC LIMIT 1")),
                (SELECT \(db.dialect.joinedWithUnitSeparator("rule")) FROM alerts WHERE connection_id = ? AND resolved_at IS NULL)
            """, [connection, connection, id, id] + db.dialect.onlyWhenAny([id], [id]) + [connection]
        ) { r -> PendingAlertFacts.Facts in
            (state: r.optionalText(0), reason: r.optionalText(1), tally: ExecutionTally(succeeded: r.int(2), failed: r.int(3), lastFailureError: r.optionalText(4)),
                rules: r.optionalText(5))
        }
        return PendingAlertFacts(
            // A scan without failed tasks (most) needs no count of them by reason.
            scan: scan, facts: facts, failedTasks: scan.failed == 0 ? [:] : try failedTaskReasons(db, scanId: scan.id),
            previousSuccesses: try successfulScans(db, connectionId: scan.connectionId, taskType: scan.taskType, before: scan.endedAt ?? Date(), limit: history))
    }

    // MARK: Alerts

    /// Opens the alert, or refreshes the message of the open one with the same key. Returns
    /// whether it is new.
    public func raiseAlert(rule: AlertRule, connectionId: String, taskType: String, message: String, scanId: String?, now: Date) throws(StoreError) -> Bool {
        let key = Alert.key(rule: rule, connectionId: connectionId, taskType: taskType)
        return try transaction(locking: ["alert:\(key)"]) { (db) throws(StoreError) -> Bool in
            try db.run("UPDATE alerts SET message = ?, scan_id = ?, updated_at = ? WHERE key = ? AND resolved_at IS NULL", .text(message), .optional(scanId), .date(now), .text(key))
            if db.changes > 0 { return false }
            try db.run(
                "INSERT INTO alerts (key, rule, connection_id, task_type, message, scan_id, opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", .text(key),
                .text(rule.rawValue), .text(connectionId), .text(taskType), .text(message), .optional(scanId), .date(now), .date(now))
            try Self.insertEvent(db, connectionId: connectionId, kind: "ALERT_OPENED", detail: "\(rule.rawValue): \(message)", deliver: false, now: now)
            return true
        }
    }

    /// Resolves the open alert with this key, if any. Returns whether there was one.
    public func resolveAlert(rule: AlertRule, connectionId: String, taskType: String, now: Date) throws(StoreError) -> Bool {
        let key = Alert.key(rule: rule, connectionId: connectionId, taskType: taskType)
        return try transaction { (db) throws(StoreError) -> Bool in
            try db.run("UPDATE alerts SET resolved_at = ?, updated_at = ? WHERE key = ? AND resolved_at IS NULL", .date(now), .date(now), .text(key))
            guard db.changes > 0 else { return false }
            try Self.insertEvent(db, connectionId: connectionId, kind: "ALERT_RESOLVED", detail: rule.rawValue, deliver: false, now: now)
            return true
        }
    }

    static let alertColumns = "id, key, rule, connection_id, task_type, message, scan_id, opened_at, updated_at, resolved_at"

    static func alert(_ r: Row) -> Alert {
        Alert(
            id: r.int(0), key: r.text(1), rule: AlertRule(rawValue: r.text(2)) ?? .scanFailed, connectionId: r.text(3), taskType: r.text(4), message: r.text(5),
            scanId: r.optionalText(6), openedAt: r.date(7), updatedAt: r.date(8), resolvedAt: r.optionalDate(9))
    }

    public func alerts(includeResolved: Bool, limit: Int = 1000) throws(StoreError) -> [Alert] {
        try locked { (db) throws(StoreError) in
            try db.rows(
                "SELECT \(Self.alertColumns) FROM alerts \(includeResolved ? "" : "WHERE resolved_at IS NULL") ORDER BY opened_at DESC, id DESC LIMIT ?", [.int(limit)],
                Self.alert)
        }
    }

    public func openAlertCount() throws(StoreError) -> Int {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT COUNT(*) FROM alerts WHERE resolved_at IS NULL", []) { $0.int(0) } ?? 0 }
    }

    /// Openings and resolutions the notifier has not delivered yet, oldest first, giving up on
    /// each after `maxAttempts`.
    public func pendingNotifications(maxAttempts: Int) throws(StoreError) -> [PendingNotification] {
        try locked { (db) throws(StoreError) in
            try db.rows(
                """
                SELECT \(Self.alertColumns), notified_open, notify_attempts FROM alerts
                WHERE notify_attempts < ? AND (notified_open = 0 OR (resolved_at IS NOT NULL AND notified_resolved = 0))
                ORDER BY updated_at, id
                """, [.int(maxAttempts)]
            ) { r in
                PendingNotification(alert: Self.alert(r), event: r.bool(10) ? .resolved : .opened, attempts: r.int(11))
            }
        }
    }

    /// Records a delivery attempt. A delivered event resets the attempt count for the next one.
    public func recordNotification(alertId: Int, event: PendingNotification.Event, delivered: Bool) throws(StoreError) {
        try locked { (db) throws(StoreError) in
            if delivered {
                let column = event == .opened ? "notified_open" : "notified_resolved"
                try db.run("UPDATE alerts SET \(column) = 1, notify_attempts = 0 WHERE id = ?", .int(alertId))
            } else {
                try db.run("UPDATE alerts SET notify_attempts = notify_attempts + 1 WHERE id = ?", .int(alertId))
            }
        }
    }

    // MARK: Retention

    /// Deletes history older than `before`. Kept whatever their age: each task's last execution,
    /// open alerts, checkpoints, scans still running and the tasks of any scan kept.
    public func prune(before: Date) throws(StoreError) -> PruneResult {
        try transaction { (db) throws(StoreError) -> PruneResult in
            var result = PruneResult()
            let cutoff = SQLValue.date(before)
            let order = db.dialect.insertionOrder
            // Child tasks of old, closed scans go with their scan; root tasks are per schedule and stay.
            try db.run(
                """
                DELETE FROM tasks WHERE parent_task_id IS NOT NULL AND state IN ('succeeded', 'failed')
                    AND scan_id IN (SELECT id FROM scans WHERE status <> 'running' AND ended_at < ?)
                """, cutoff)
            result.tasks = db.changes
            // The newest execution of each task still kept stays, however old: ranked here in one
            // pass, because no index by task is kept (it cost every execution a random page).
            try db.run(
                """
                DELETE FROM executions WHERE started_at < ?
                    AND \(order) NOT IN (
                        SELECT kept FROM (
                            SELECT e.\(order) AS kept, ROW_NUMBER() OVER (PARTITION BY e.task_id ORDER BY e.started_at DESC, e.\(order) DESC) AS n
                            FROM executions e WHERE e.task_id IN (SELECT id FROM tasks)) ranked
                        WHERE n = 1)
                """, cutoff)
            result.executions = db.changes
            try db.run(
                "DELETE FROM scans WHERE status <> 'running' AND ended_at < ? AND id NOT IN (SELECT scan_id FROM executions) AND id NOT IN (SELECT scan_id FROM tasks)",
                cutoff)
            result.scans = db.changes
            try db.run("DELETE FROM alerts WHERE resolved_at IS NOT NULL AND resolved_at < ?", cutoff)
            result.alerts = db.changes
            try db.run("DELETE FROM events WHERE at < ? AND (delivery IS NULL OR delivery <> 'pending')", cutoff)
            result.events = db.changes
            try db.run("DELETE FROM hosts WHERE heartbeat_at < ? AND id NOT IN (SELECT host_id FROM tasks WHERE state = 'running' AND host_id IS NOT NULL)", cutoff)
            return result
        }
    }

    // MARK: Metrics

    public func metricSamples() throws(StoreError) -> [MetricSample] {
        try flushCounters()
        return try locked { (db) throws(StoreError) in
            try db.rows("SELECT name, labels, value FROM metric_counters ORDER BY name, labels", []) { MetricSample(name: $0.text(0), labels: $0.text(1), value: $0.double(2)) }
        }
    }

    public func runningCount() throws(StoreError) -> Int {
        try locked { (db) throws(StoreError) in try db.firstRow("SELECT COUNT(*) FROM tasks WHERE state = 'running'", []) { $0.int(0) } ?? 0 }
    }
}
