import Foundation

/// Hosts and their leases. Every `run`, `daemon` and `exec` registers itself and renews the
/// leases of the tasks it runs; on a shared (PostgreSQL) state any host takes back the tasks of a
/// host whose leases ran out.
extension SQLStore {
    public func registerHost(_ host: HostIdentity, command: String, now: Date) throws(StoreError) {
        try locked { (db) throws(StoreError) in
            try db.run(
                """
                INSERT INTO hosts (id, machine, pid, command, started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL
                """, .text(host.id), .text(host.machine), .int(Int(host.pid)), .text(command), .date(now), .date(now))
        }
    }

    public func renewLeases(hostId: String, until: Date, now: Date) throws(StoreError) {
        try transaction { (db) throws(StoreError) in
            try db.run("UPDATE hosts SET heartbeat_at = ? WHERE id = ?", .date(now), .text(hostId))
            try db.run("UPDATE tasks SET lease_expires_at = ? WHERE host_id = ? AND state = 'running'", .date(until), .text(hostId))
        }
    }

    public func hostStopped(hostId: String, now: Date) throws(StoreError) {
        try flushCounters()
        try locked { (db) throws(StoreError) in try db.run("UPDATE hosts SET stopped_at = ?, heartbeat_at = ? WHERE id = ?", .date(now), .date(now), .text(hostId)) }
    }

    public func expiredLeases(now: Date) throws(StoreError) -> [StoredTask] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Self.taskColumns) FROM tasks WHERE state = 'running' AND lease_expires_at < ? ORDER BY +seq", [.date(now)], Self.task)
        }
    }

    public func requeueExpired(taskId: String, executionId: String, note: String, now: Date) throws(StoreError) -> Bool {
        try transaction { (db) throws(StoreError) -> Bool in
            try db.run(
                """
                UPDATE tasks SET state = 'queued', next_run_at = ?, interruptions = interruptions + 1, error = ?, updated_at = ?, \(Self.clearOwner)
                WHERE id = ? AND execution_id = ? AND state = 'running' AND lease_expires_at < ?
                """, .date(now), .text(note), .date(now), .text(taskId), .text(executionId), .date(now))
            guard db.changes == 1 else { return false }
            let connection = try db.firstRow("SELECT connection_id FROM tasks WHERE id = ?", [.text(taskId)]) { $0.text(0) }
            try Self.insertEvent(db, connectionId: connection, kind: "TASK_RECOVERED", detail: "\(taskId): \(note)", deliver: false, now: now)
            try db.notifyWork()
            return true
        }
    }

    public func hosts(since: Date) throws(StoreError) -> [HostRecord] {
        try locked { (db) throws(StoreError) in
            try db.rows(
                """
                SELECT h.id, h.machine, h.pid, h.command, h.started_at, h.heartbeat_at, h.stopped_at,
                    (SELECT COUNT(*) FROM tasks t WHERE t.host_id = h.id AND t.state = 'running'),
                    (SELECT MIN(t.lease_expires_at) FROM tasks t WHERE t.host_id = h.id AND t.state = 'running')
                FROM hosts h WHERE h.heartbeat_at >= ? ORDER BY h.heartbeat_at DESC, h.id
                """, [.date(since)]
            ) { r in
                HostRecord(
                    id: r.text(0), machine: r.text(1), pid: r.int(2), command: r.text(3), startedAt: r.date(4), heartbeatAt: r.date(5), stoppedAt: r.optionalDate(6),
                    runningTasks: r.int(7), leaseExpiresAt: r.optionalDate(8))
            }
        }
    }
}
