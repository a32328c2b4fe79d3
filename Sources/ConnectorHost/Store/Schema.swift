/// The state schema, as numbered migrations applied at open (SQLite's `PRAGMA user_version`, or
/// `schema_version` in PostgreSQL's `meta`, counts them; each list is numbered on its own). Never
/// edit a shipped migration: add the next one, to each list it concerns.
enum Schema {
    static func migrations(_ dialect: SQLDialect) -> [String] { dialect == .sqlite ? sqlite : postgres }

    static let sqlite: [String] = [
        // 1: connections, schedules, scans, tasks, executions, checkpoints, events.
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE connections (
            id TEXT PRIMARY KEY,
            handler TEXT NOT NULL,
            environment TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            config_json TEXT NOT NULL,
            enabled INTEGER NOT NULL,
            state TEXT NOT NULL DEFAULT 'active',
            state_reason TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            deleted_at REAL
        );
        CREATE TABLE schedules (
            connection_id TEXT NOT NULL REFERENCES connections(id),
            task_type TEXT NOT NULL,
            root_task_id TEXT NOT NULL UNIQUE,
            spec TEXT NOT NULL,
            next_due_at REAL,
            last_due_at REAL,
            PRIMARY KEY (connection_id, task_type)
        );
        CREATE TABLE scans (
            id TEXT PRIMARY KEY,
            connection_id TEXT NOT NULL REFERENCES connections(id),
            task_type TEXT NOT NULL,
            root_task_id TEXT NOT NULL,
            trigger TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            tasks INTEGER NOT NULL DEFAULT 0,
            succeeded INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            records INTEGER NOT NULL DEFAULT 0,
            pending_checkpoint TEXT,
            checkpoint_committed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX scans_open ON scans(connection_id, task_type) WHERE status = 'running';
        CREATE INDEX scans_started ON scans(started_at);
        CREATE TABLE tasks (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            connection_id TEXT NOT NULL REFERENCES connections(id),
            task_type TEXT NOT NULL,
            scan_id TEXT NOT NULL,
            parent_task_id TEXT,
            depth INTEGER NOT NULL DEFAULT 0,
            child_key TEXT,
            metadata TEXT,
            checkpoint TEXT,
            state TEXT NOT NULL,
            trigger TEXT NOT NULL,
            attempt INTEGER NOT NULL DEFAULT 1,
            next_run_at REAL NOT NULL,
            rate_limited_seconds REAL NOT NULL DEFAULT 0,
            execution_id TEXT,
            host_pid INTEGER,
            host_start INTEGER,
            agent_pid INTEGER,
            agent_pgid INTEGER,
            agent_start INTEGER,
            started_at REAL,
            failure_reason TEXT,
            error TEXT,
            interruptions INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX tasks_ready ON tasks(state, next_run_at);
        CREATE INDEX tasks_scan ON tasks(scan_id, state);
        CREATE TABLE executions (
            id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL,
            scan_id TEXT NOT NULL,
            parent_task_id TEXT,
            connection_id TEXT NOT NULL,
            handler TEXT NOT NULL,
            task_type TEXT NOT NULL,
            trigger TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            status TEXT NOT NULL,
            failure_reason TEXT,
            exit_code INTEGER,
            signal TEXT,
            timed_out INTEGER NOT NULL,
            started_at REAL NOT NULL,
            duration_ms INTEGER NOT NULL,
            result TEXT,
            error TEXT,
            stderr_tail TEXT NOT NULL,
            records INTEGER,
            bytes INTEGER,
            schema_fingerprint TEXT
        );
        CREATE INDEX executions_started ON executions(started_at);
        CREATE INDEX executions_scan ON executions(scan_id);
        CREATE INDEX executions_task ON executions(task_id);
        CREATE TABLE checkpoints (
            connection_id TEXT NOT NULL,
            task_type TEXT NOT NULL,
            metadata TEXT NOT NULL,
            scan_id TEXT,
            updated_at REAL NOT NULL,
            PRIMARY KEY (connection_id, task_type)
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            connection_id TEXT,
            kind TEXT NOT NULL,
            detail TEXT,
            delivery TEXT,
            delivery_attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX events_delivery ON events(delivery) WHERE delivery = 'pending';
        """,
        // 2: alerts, durable metric counters, history filters.
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL,
            rule TEXT NOT NULL,
            connection_id TEXT NOT NULL,
            task_type TEXT NOT NULL,
            message TEXT NOT NULL,
            scan_id TEXT,
            opened_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            resolved_at REAL,
            notified_open INTEGER NOT NULL DEFAULT 0,
            notified_resolved INTEGER NOT NULL DEFAULT 0,
            notify_attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX alerts_open ON alerts(key) WHERE resolved_at IS NULL;
        CREATE INDEX alerts_opened ON alerts(opened_at);
        CREATE TABLE metric_counters (
            name TEXT NOT NULL,
            labels TEXT NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (name, labels)
        );
        CREATE INDEX executions_connection ON executions(connection_id, started_at);
        ALTER TABLE scans ADD COLUMN schema_fingerprint TEXT;
        """,
        // 3: runnable tasks by connection, oldest first, so picking the next few of a connection is
        // an index range read instead of sorting every runnable task (a 10,000-child fan-out).
        """
        CREATE INDEX tasks_ready_by_connection ON tasks(connection_id, next_run_at, seq) WHERE state IN ('queued', 'snoozed');
        """,
        // 4: leases and hosts. A running task names its host and how long its claim lasts; the
        // hosts table is what `status` shows.
        """
        ALTER TABLE tasks ADD COLUMN host_id TEXT;
        ALTER TABLE tasks ADD COLUMN host_machine TEXT;
        ALTER TABLE tasks ADD COLUMN lease_expires_at REAL;
        CREATE INDEX tasks_by_host ON tasks(host_id) WHERE state = 'running';
        CREATE TABLE hosts (
            id TEXT PRIMARY KEY,
            machine TEXT NOT NULL,
            pid INTEGER NOT NULL,
            command TEXT NOT NULL,
            started_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL,
            stopped_at REAL
        );
        """,
        // 5: counters keyed by labels first, without a rowid. One completion's counters (the
        // total, the histogram's buckets, the last success of its connection) then share a page
        // instead of sitting one page per counter name, twice (table and key index).
        """
        CREATE TABLE metric_counters_by_labels (
            labels TEXT NOT NULL,
            name TEXT NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (labels, name)
        ) WITHOUT ROWID;
        INSERT INTO metric_counters_by_labels (labels, name, value) SELECT labels, name, value FROM metric_counters;
        DROP TABLE metric_counters;
        ALTER TABLE metric_counters_by_labels RENAME TO metric_counters;
        """,
        // 6: a connection's successful scans, newest first, for the alert rules that compare a
        // closing scan with the ones before it. Without it each scan's close read every scan kept.
        """
        CREATE INDEX scans_successful ON scans(connection_id, task_type, ended_at) WHERE status = 'success';
        """,
        // 7: fewer index pages per task. A completion and the next claim wrote about 18 pages,
        // half of them index entries moving between states: (state, next_run_at) and
        // (scan_id, state) took a delete and an insert in another leaf at every change. Queued
        // tasks are now indexed only while queued, a scan's open tasks only while open (a claim
        // keeps the entry's key), and a scan's tasks by scan alone, which no change of state
        // touches. Executions by task (a random leaf per child) served only `prune`, which now
        // ranks executions per task itself. About 12 pages per task now.
        fewerIndexPages,
        // 8: tasks_open's condition without a three-value IN (`openTaskCondition`).
        openTasksWithoutAnInList,
    ]

    /// PostgreSQL starts at the schema SQLite reached in 4 steps, with its own types: identity
    /// columns, BIGINT and DOUBLE PRECISION, and `seq` where SQLite has its implicit rowid.
    static let postgres: [String] = [
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE connections (
            id TEXT PRIMARY KEY,
            handler TEXT NOT NULL,
            environment TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            config_json TEXT NOT NULL,
            enabled BIGINT NOT NULL,
            state TEXT NOT NULL DEFAULT 'active',
            state_reason TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            deleted_at DOUBLE PRECISION
        );
        CREATE TABLE schedules (
            connection_id TEXT NOT NULL REFERENCES connections(id),
            task_type TEXT NOT NULL,
            root_task_id TEXT NOT NULL UNIQUE,
            spec TEXT NOT NULL,
            next_due_at DOUBLE PRECISION,
            last_due_at DOUBLE PRECISION,
            PRIMARY KEY (connection_id, task_type)
        );
        CREATE TABLE scans (
            id TEXT PRIMARY KEY,
            connection_id TEXT NOT NULL REFERENCES connections(id),
            task_type TEXT NOT NULL,
            root_task_id TEXT NOT NULL,
            trigger TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            ended_at DOUBLE PRECISION,
            tasks BIGINT NOT NULL DEFAULT 0,
            succeeded BIGINT NOT NULL DEFAULT 0,
            failed BIGINT NOT NULL DEFAULT 0,
            skipped BIGINT NOT NULL DEFAULT 0,
            records BIGINT NOT NULL DEFAULT 0,
            pending_checkpoint TEXT,
            checkpoint_committed BIGINT NOT NULL DEFAULT 0,
            schema_fingerprint TEXT
        );
        -- No overlap across hosts: at most one open scan per connection and task type.
        CREATE UNIQUE INDEX scans_open ON scans(connection_id, task_type) WHERE status = 'running';
        CREATE INDEX scans_started ON scans(started_at);
        CREATE TABLE tasks (
            seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            connection_id TEXT NOT NULL REFERENCES connections(id),
            task_type TEXT NOT NULL,
            scan_id TEXT NOT NULL,
            parent_task_id TEXT,
            depth BIGINT NOT NULL DEFAULT 0,
            child_key TEXT,
            metadata TEXT,
            checkpoint TEXT,
            state TEXT NOT NULL,
            trigger TEXT NOT NULL,
            attempt BIGINT NOT NULL DEFAULT 1,
            next_run_at DOUBLE PRECISION NOT NULL,
            rate_limited_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,
            execution_id TEXT,
            host_pid BIGINT,
            host_start BIGINT,
            agent_pid BIGINT,
            agent_pgid BIGINT,
            agent_start BIGINT,
            started_at DOUBLE PRECISION,
            failure_reason TEXT,
            error TEXT,
            interruptions BIGINT NOT NULL DEFAULT 0,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            host_id TEXT,
            host_machine TEXT,
            lease_expires_at DOUBLE PRECISION
        );
        CREATE INDEX tasks_ready ON tasks(state, next_run_at);
        CREATE INDEX tasks_scan ON tasks(scan_id, state);
        CREATE INDEX tasks_ready_by_connection ON tasks(connection_id, next_run_at, seq) WHERE state IN ('queued', 'snoozed');
        CREATE INDEX tasks_running ON tasks(connection_id) WHERE state = 'running';
        CREATE INDEX tasks_leases ON tasks(lease_expires_at) WHERE state = 'running';
        CREATE INDEX tasks_by_host ON tasks(host_id) WHERE state = 'running';
        CREATE TABLE executions (
            seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
            id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL,
            scan_id TEXT NOT NULL,
            parent_task_id TEXT,
            connection_id TEXT NOT NULL,
            handler TEXT NOT NULL,
            task_type TEXT NOT NULL,
            trigger TEXT NOT NULL,
            attempt BIGINT NOT NULL,
            status TEXT NOT NULL,
            failure_reason TEXT,
            exit_code BIGINT,
            signal TEXT,
            timed_out BIGINT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            duration_ms BIGINT NOT NULL,
            result TEXT,
            error TEXT,
            stderr_tail TEXT NOT NULL,
            records BIGINT,
            bytes BIGINT,
            schema_fingerprint TEXT
        );
        CREATE INDEX executions_started ON executions(started_at);
        CREATE INDEX executions_scan ON executions(scan_id);
        CREATE INDEX executions_task ON executions(task_id);
        CREATE INDEX executions_connection ON executions(connection_id, started_at);
        CREATE TABLE checkpoints (
            connection_id TEXT NOT NULL,
            task_type TEXT NOT NULL,
            metadata TEXT NOT NULL,
            scan_id TEXT,
            updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (connection_id, task_type)
        );
        CREATE TABLE events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            connection_id TEXT,
            kind TEXT NOT NULL,
            detail TEXT,
            delivery TEXT,
            delivery_attempts BIGINT NOT NULL DEFAULT 0
        );
        CREATE INDEX events_delivery ON events(delivery) WHERE delivery = 'pending';
        CREATE TABLE alerts (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key TEXT NOT NULL,
            rule TEXT NOT NULL,
            connection_id TEXT NOT NULL,
            task_type TEXT NOT NULL,
            message TEXT NOT NULL,
            scan_id TEXT,
            opened_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            resolved_at DOUBLE PRECISION,
            notified_open BIGINT NOT NULL DEFAULT 0,
            notified_resolved BIGINT NOT NULL DEFAULT 0,
            notify_attempts BIGINT NOT NULL DEFAULT 0
        );
        CREATE UNIQUE INDEX alerts_open ON alerts(key) WHERE resolved_at IS NULL;
        CREATE INDEX alerts_opened ON alerts(opened_at);
        CREATE TABLE metric_counters (
            name TEXT NOT NULL,
            labels TEXT NOT NULL,
            value DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (name, labels)
        );
        CREATE TABLE hosts (
            id TEXT PRIMARY KEY,
            machine TEXT NOT NULL,
            pid BIGINT NOT NULL,
            command TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            heartbeat_at DOUBLE PRECISION NOT NULL,
            stopped_at DOUBLE PRECISION
        );
        """,
        // 2: as SQLite's 6, a connection's successful scans for the alert rules.
        """
        CREATE INDEX scans_successful ON scans(connection_id, task_type, ended_at) WHERE status = 'success';
        """,
        // 3: as SQLite's 7. On PostgreSQL a change of state is not a HOT update, so every
        // index of the table gets a new entry: the fewer the indexes, the fewer the writes.
        fewerIndexPages,
        // 4: as SQLite's 8, so both engines keep one condition for open tasks.
        openTasksWithoutAnInList,
        // 5: one index over running tasks, as on SQLite. A claim is not a HOT update, so each
        // index whose condition the running row meets takes a new entry: three partial indexes
        // over the same few rows (no more than the hosts' lanes) cost three. Counting a
        // connection's running tasks and finding expired leases read all of them through
        // tasks_by_host, which holds only those rows.
        """
        DROP INDEX tasks_running;
        DROP INDEX tasks_leases;
        """,
    ]

    /// SQLite's 7 and PostgreSQL's 3: the same statements on both.
    static let fewerIndexPages = """
        DROP INDEX tasks_ready;
        CREATE INDEX tasks_due ON tasks(next_run_at) WHERE state IN ('queued', 'snoozed');
        DROP INDEX tasks_scan;
        CREATE INDEX tasks_by_scan ON tasks(scan_id);
        CREATE INDEX tasks_open ON tasks(scan_id) WHERE state IN ('queued', 'running', 'snoozed');
        DROP INDEX executions_task;
        """

    /// A task still open: not terminal (`TaskState.isTerminal`), so queued, running or snoozed.
    /// Not spelled as the three-value IN it was: SQLite (3.40) evaluates a constant IN list of
    /// three or more through a temporary b-tree built at every execution, and a change of a
    /// task's state evaluates a partial index's condition for the old row and the new one, so a
    /// claim and a completion built four of them per task (a temporary pager opened and closed
    /// each time: about 6% of a one-task scan's host CPU). Two values are compared in place.
    /// A query that uses `tasks_open` must contain this exact text for SQLite to see that the
    /// index covers it; `state = 'running'` alone does not, and keeps to `tasks_by_host`.
    static let openTaskCondition = "state NOT IN ('succeeded', 'failed')"

    /// SQLite's 8 and PostgreSQL's 4.
    static let openTasksWithoutAnInList = """
        DROP INDEX tasks_open;
        CREATE INDEX tasks_open ON tasks(scan_id) WHERE \(openTaskCondition);
        """
}
