#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The host's state in SQL: by default one SQLite file in WAL mode, where every commit survives a
/// crash of the host (and with `durability` `.full`, power loss; README, "Durable state and crash
/// recovery"); or a PostgreSQL database that several hosts share (README, "Running several hosts").
/// The SQL is the same for both; `SQLDialect` names where they differ.
public final class SQLStore: Store, @unchecked Sendable {
    public let appId: String
    public let location: String
    let db: any SQLDatabase
    private let lock = NSLock()
    /// Metric increments not yet written; only under `lock`.
    let counters = CounterBuffer(maximumName: SQLStore.lastSuccess)
    /// Set on PostgreSQL: what a LISTEN connection is opened with.
    let postgresURL: PostgresURL?

    /// Opens (creating if needed) the SQLite state file and brings its schema up to date.
    public convenience init(path: String, durability: Durability = .normal) throws(StoreError) {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StoreError(kind: .cannotOpen, message: "cannot create directory \(directory): \(error.localizedDescription)", path: path)
            }
        }
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA busy_timeout = 10000")
        // Switching a new file to WAL needs it alone, and SQLite does not wait for that through
        // busy_timeout: hosts opening a fresh state together retry here instead.
        let deadline = Date().addingTimeInterval(10)
        while true {
            do throws(StoreError) {
                try db.execute("PRAGMA journal_mode = WAL")
                break
            } catch where error.kind == .busy && Date() < deadline {
                usleep(20_000)
            }
        }
        let synchronous = durability == .full ? "FULL" : "NORMAL"
        try db.execute("PRAGMA synchronous = \(synchronous)")
        try db.execute("PRAGMA foreign_keys = ON")
        // Statement journals and sorts stay in memory: a metric flush of 1,000 connections'
        // counters otherwise spilled its statement journal to a file in /var/tmp, created and
        // unlinked per flush. They are small, and gone with the transaction either way.
        try db.execute("PRAGMA temp_store = MEMORY")
        db.checkpointInBackground(synchronous: synchronous)
        try self.init(db: db, postgresURL: nil)
    }

    /// Connects to the PostgreSQL database and brings its schema up to date.
    public convenience init(postgres url: PostgresURL) throws(StoreError) {
        try self.init(db: try PostgresDatabase(url: url), postgresURL: url)
    }

    public static func open(_ location: StateLocation, durability: Durability = .normal) throws(StoreError) -> SQLStore {
        switch location {
        case .file(let path): try SQLStore(path: path, durability: durability)
        case .postgres(let url): try SQLStore(postgres: url)
        }
    }

    private init(db: any SQLDatabase, postgresURL: PostgresURL?) throws(StoreError) {
        location = db.location
        self.postgresURL = postgresURL
        if db.dialect == .sqlite { try Self.migrateSQLite(db) } else { try Self.migratePostgres(db) }
        self.db = db
        // Two hosts creating the state together keep the first id.
        appId = try db.transaction { () throws(StoreError) -> String in
            try db.run("INSERT INTO meta (key, value) VALUES ('app_id', ?) ON CONFLICT (key) DO NOTHING", .text(DeterministicID.random()))
            return try db.firstRow("SELECT value FROM meta WHERE key = 'app_id'", [], { $0.text(0) }) ?? ""
        }
    }

    /// The version is read inside the write transaction: two processes opening a new state file
    /// together (a `run` and a `status`, say) must not both apply the same migration.
    static func migrateSQLite(_ db: any SQLDatabase) throws(StoreError) {
        let latest = Schema.sqlite.count
        if try db.firstRow("PRAGMA user_version", [], { $0.int(0) }) == latest { return }
        try db.transaction { () throws(StoreError) in
            let current = try db.firstRow("PRAGMA user_version", [], { $0.int(0) }) ?? 0
            if current > latest {
                throw StoreError(kind: .schema, message: "schema version \(current) is newer than this host understands (\(latest)); upgrade connector-host", path: db.location)
            }
            for migration in Schema.sqlite.dropFirst(current) { try db.execute(migration) }
            try db.execute("PRAGMA user_version = \(latest)")
        }
    }

    /// Hosts starting together migrate once: the first takes the advisory lock and migrates, the
    /// others wait for it and find the schema current. DDL is transactional on PostgreSQL.
    static func migratePostgres(_ db: any SQLDatabase) throws(StoreError) {
        let latest = Schema.postgres.count
        try db.transaction { () throws(StoreError) in
            try db.lockForTransaction("connector-host:migrate")
            var current = 0
            if try db.firstRow("SELECT to_regclass('meta') IS NOT NULL", [], { $0.bool(0) }) == true {
                current = try db.firstRow("SELECT value FROM meta WHERE key = 'schema_version'", [], { Int($0.text(0)) ?? 0 }) ?? 0
            }
            if current > latest {
                throw StoreError(kind: .schema, message: "schema version \(current) is newer than this host understands (\(latest)); upgrade connector-host", path: db.location)
            }
            guard current < latest else { return }
            for migration in Schema.postgres.dropFirst(current) { try db.execute(migration) }
            try db.run(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", .text(String(latest)))
        }
    }

    /// Other hosts may claim this state's tasks (PostgreSQL): claims are leased, and expired
    /// leases are taken back.
    public var isShared: Bool { db.dialect == .postgres }

    /// A LISTEN connection that wakes this host when any host queues work (PostgreSQL only).
    public func makeWakeups() throws(StoreError) -> StoreWakeups? {
        guard let postgresURL else { return nil }
        return try StoreWakeups(url: postgresURL)
    }

    /// Serialises use of the connection: the store is shared by the scheduler and the threads
    /// supervising agents.
    func locked<T>(_ body: (any SQLDatabase) throws(StoreError) -> T) throws(StoreError) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(db)
    }

    /// `keys`: advisory locks taken with BEGIN on a shared state (see `lockForTransaction`).
    /// Buffered metric increments that are due are written in the same transaction.
    func transaction<T>(locking keys: [String] = [], _ body: (any SQLDatabase) throws(StoreError) -> T) throws(StoreError) -> T {
        try locked { (db) throws(StoreError) -> T in
            var wrote = false
            do throws(StoreError) {
                let value = try db.transaction(locking: keys) { () throws(StoreError) -> T in
                    let value = try body(db)
                    if let counts = counters.due(now: monotonicNow()) {
                        try Self.add(db, counts)
                        wrote = true
                    }
                    return value
                }
                counters.committed(wrote: wrote, now: monotonicNow())
                return value
            } catch {
                counters.rolledBack()
                throw error
            }
        }
    }

    /// Writes every buffered metric increment now (`CounterBuffer`).
    func flushCounters() throws(StoreError) {
        try locked { (db) throws(StoreError) in
            guard let counts = counters.due(now: monotonicNow(), force: true) else { return }
            try db.transaction(locking: []) { () throws(StoreError) in try Self.add(db, counts) }
            counters.committed(wrote: true, now: monotonicNow())
        }
    }

    deinit {
        // A host that ends normally leaves no increment behind.
        try? flushCounters()
    }

    // MARK: Connections

    static let connectionColumns = "id, handler, environment, config_hash, config_json, enabled, state, state_reason, deleted_at"

    static func connection(_ r: Row) -> StoredConnection {
        StoredConnection(
            id: r.text(0), handler: r.text(1), environment: r.text(2), configHash: r.text(3), configJSON: r.text(4), enabled: r.bool(5),
            state: ConnectionState(rawValue: r.text(6)) ?? .active, stateReason: r.optionalText(7), deletedAt: r.optionalDate(8))
    }

    public func connections(includeDeleted: Bool) throws(StoreError) -> [StoredConnection] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Self.connectionColumns) FROM connections \(includeDeleted ? "" : "WHERE deleted_at IS NULL") ORDER BY id", [], Self.connection)
        }
    }

    public func activeConnectionIds() throws(StoreError) -> Set<String> {
        // Read at every sweep: ids only, not every connection's config.
        try locked { (db) throws(StoreError) in
            Set(try db.rows("SELECT id FROM connections WHERE deleted_at IS NULL AND state = ?", [.text(ConnectionState.active.rawValue)]) { $0.text(0) })
        }
    }

    public func connection(id: String) throws(StoreError) -> StoredConnection? {
        try locked { (db) throws(StoreError) in
            try db.firstRow("SELECT \(Self.connectionColumns) FROM connections WHERE id = ?", [.text(id)], Self.connection)
        }
    }

    public func saveConnection(_ c: StoredConnection, deliver: Bool, now: Date) throws(StoreError) -> LifecycleEvent? {
        try transaction(locking: ["connection:\(c.id)"]) { (db) throws(StoreError) -> LifecycleEvent? in
            let existing = try db.firstRow("SELECT \(Self.connectionColumns) FROM connections WHERE id = ?", [.text(c.id)], Self.connection)
            let state: ConnectionState = c.enabled ? .active : .disabled
            let event: LifecycleEvent
            if let existing, existing.deletedAt == nil {
                guard existing.configHash != c.configHash else { return nil }
                event = .updated
            } else {
                event = .created
            }
            if existing == nil {
                try db.run(
                    "INSERT INTO connections (id, handler, environment, config_hash, config_json, enabled, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    .text(c.id), .text(c.handler), .text(c.environment), .text(c.configHash), .text(c.configJSON), .bool(c.enabled), .text(state.rawValue),
                    .date(now), .date(now))
            } else {
                try db.run(
                    "UPDATE connections SET handler = ?, environment = ?, config_hash = ?, config_json = ?, enabled = ?, state = ?, state_reason = NULL, updated_at = ?, deleted_at = NULL WHERE id = ?",
                    .text(c.handler), .text(c.environment), .text(c.configHash), .text(c.configJSON), .bool(c.enabled), .text(state.rawValue), .date(now), .text(c.id))
            }
            try Self.insertEvent(db, connectionId: c.id, kind: event.rawValue, detail: "handler \(c.handler)", deliver: deliver, now: now)
            return event
        }
    }

    public func deleteConnection(_ id: String, deliver: Bool, now: Date) throws(StoreError) {
        try transaction(locking: ["connection:\(id)"]) { (db) throws(StoreError) in
            try db.run("UPDATE connections SET deleted_at = ?, updated_at = ? WHERE id = ?", .date(now), .date(now), .text(id))
            try db.run("DELETE FROM schedules WHERE connection_id = ?", .text(id))
            try db.run("DELETE FROM tasks WHERE connection_id = ? AND state IN ('queued', 'snoozed')", .text(id))
            try db.run("UPDATE scans SET status = 'failure', ended_at = ? WHERE connection_id = ? AND status = 'running'", .date(now), .text(id))
            try Self.insertEvent(db, connectionId: id, kind: LifecycleEvent.deleted.rawValue, detail: nil, deliver: deliver, now: now)
        }
    }

    public func setConnectionState(_ id: String, _ state: ConnectionState, reason: String?, now: Date) throws(StoreError) {
        try transaction { (db) throws(StoreError) in
            try db.run("UPDATE connections SET state = ?, state_reason = ?, updated_at = ? WHERE id = ?", .text(state.rawValue), .optional(reason), .date(now), .text(id))
            try Self.insertEvent(db, connectionId: id, kind: "STATE_\(state.rawValue.uppercased())", detail: reason, deliver: false, now: now)
        }
    }

    public func recordEvent(connectionId: String?, kind: String, detail: String?, now: Date) throws(StoreError) {
        try locked { (db) throws(StoreError) in try Self.insertEvent(db, connectionId: connectionId, kind: kind, detail: detail, deliver: false, now: now) }
    }

    static func insertEvent(_ db: any SQLDatabase, connectionId: String?, kind: String, detail: String?, deliver: Bool, now: Date) throws(StoreError) {
        try db.run(
            "INSERT INTO events (at, connection_id, kind, detail, delivery) VALUES (?, ?, ?, ?, ?)", .date(now), .optional(connectionId), .text(kind),
            .optional(detail), deliver ? .text("pending") : .null)
    }

    public func pendingDeliveries() throws(StoreError) -> [LifecycleDelivery] {
        try locked { (db) throws(StoreError) in
            try db.rows(
                "SELECT e.id, e.connection_id, e.kind, c.config_json, e.delivery_attempts FROM events e JOIN connections c ON c.id = e.connection_id WHERE e.delivery = 'pending' ORDER BY e.id", []
            ) { r in
                LifecycleDelivery(eventId: r.int(0), connectionId: r.text(1), event: LifecycleEvent(rawValue: r.text(2)) ?? .updated, configJSON: r.text(3), attempts: r.int(4))
            }
        }
    }

    /// Deliveries are tried up to five times, once per pass.
    public func finishDelivery(eventId: Int, delivered: Bool) throws(StoreError) {
        try locked { (db) throws(StoreError) in
            if delivered {
                try db.run("UPDATE events SET delivery = 'delivered', delivery_attempts = delivery_attempts + 1 WHERE id = ?", .int(eventId))
            } else {
                try db.run(
                    "UPDATE events SET delivery_attempts = delivery_attempts + 1, delivery = CASE WHEN delivery_attempts + 1 >= 5 THEN 'failed' ELSE 'pending' END WHERE id = ?",
                    .int(eventId))
            }
        }
    }

    // MARK: Schedules

    public func schedules() throws(StoreError) -> [StoredSchedule] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT connection_id, task_type, root_task_id, spec, next_due_at, last_due_at FROM schedules ORDER BY connection_id, task_type", []) { r in
                StoredSchedule(connectionId: r.text(0), taskType: r.text(1), rootTaskId: r.text(2), spec: r.text(3), nextDueAt: r.optionalDate(4), lastDueAt: r.optionalDate(5))
            }
        }
    }

    public func saveSchedules(connectionId: String, _ desired: [StoredSchedule], now: Date) throws(StoreError) {
        try transaction(locking: ["connection:\(connectionId)"]) { (db) throws(StoreError) in
            let existing = try db.rows("SELECT task_type, spec, root_task_id FROM schedules WHERE connection_id = ?", [.text(connectionId)]) { ($0.text(0), $0.text(1), $0.text(2)) }
            for schedule in desired {
                if let old = existing.first(where: { $0.0 == schedule.taskType }) {
                    if old.1 != schedule.spec {
                        try db.run(
                            "UPDATE schedules SET spec = ?, next_due_at = ? WHERE connection_id = ? AND task_type = ?", .text(schedule.spec), .date(schedule.nextDueAt),
                            .text(connectionId), .text(schedule.taskType))
                    }
                } else {
                    try db.run(
                        "INSERT INTO schedules (connection_id, task_type, root_task_id, spec, next_due_at) VALUES (?, ?, ?, ?, ?)", .text(connectionId), .text(schedule.taskType),
                        .text(schedule.rootTaskId), .text(schedule.spec), .date(schedule.nextDueAt))
                }
            }
            for old in existing where !desired.contains(where: { $0.taskType == old.0 }) {
                try db.run("DELETE FROM schedules WHERE connection_id = ? AND task_type = ?", .text(connectionId), .text(old.0))
                try db.run("DELETE FROM tasks WHERE id = ? AND state IN ('queued', 'snoozed')", .text(old.2))
            }
        }
    }

    // MARK: Checkpoints

    public func checkpoint(connectionId: String, taskType: String) throws(StoreError) -> JSONValue? {
        try locked { (db) throws(StoreError) in
            try db.firstRow("SELECT metadata FROM checkpoints WHERE connection_id = ? AND task_type = ?", [.text(connectionId), .text(taskType)]) { $0.json(0) } ?? nil
        }
    }

    public func resetCheckpoint(connectionId: String, taskType: String) throws(StoreError) -> Bool {
        try transaction { (db) throws(StoreError) -> Bool in
            try db.run("DELETE FROM checkpoints WHERE connection_id = ? AND task_type = ?", .text(connectionId), .text(taskType))
            let removed = db.changes > 0
            if removed { try Self.insertEvent(db, connectionId: connectionId, kind: "CHECKPOINT_RESET", detail: taskType, deliver: false, now: Date()) }
            return removed
        }
    }
}
