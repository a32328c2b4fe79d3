import Foundation

/// Where a task is in its life. `queued` and `snoozed` are runnable once `nextRunAt` passes.
public enum TaskState: String, Sendable, CaseIterable {
    case queued, running, succeeded, failed, snoozed
    public var isTerminal: Bool { self == .succeeded || self == .failed }
}

public enum ConnectionState: String, Sendable {
    case active
    case disabled
    /// An auth failure stopped its schedules until its config changes or `resume`.
    case needsReauth = "needs_reauth"
}

public enum LifecycleEvent: String, Sendable {
    case created = "CREATED"
    case updated = "UPDATED"
    case deleted = "DELETED"
}

/// The host process that owns a running task, and the agent it spawned for it.
public struct TaskOwner: Sendable, Equatable {
    public var hostPid: Int32
    public var hostStartTicks: UInt64
    public var agent: SpawnedProcess?
    /// Which host holds the claim (`HostIdentity.id`) and on which machine; nil in states from
    /// before leases.
    public var hostId: String?
    public var machine: String?
    /// Until when the claim holds without a heartbeat (PostgreSQL takes it back after).
    public var leaseExpiresAt: Date?

    public init(hostPid: Int32, hostStartTicks: UInt64, agent: SpawnedProcess? = nil, hostId: String? = nil, machine: String? = nil, leaseExpiresAt: Date? = nil) {
        self.hostPid = hostPid
        self.hostStartTicks = hostStartTicks
        self.agent = agent
        self.hostId = hostId
        self.machine = machine
        self.leaseExpiresAt = leaseExpiresAt
    }

    /// This process; read from /proc once, since it is asked for at every claim.
    public static var current: TaskOwner { ownSelf }
    private static let ownSelf: TaskOwner = {
        let host = HostIdentity.current
        return TaskOwner(hostPid: host.pid, hostStartTicks: host.startTicks, hostId: host.id, machine: host.machine)
    }()
}

/// This process as a host sharing the state: the id its claims and heartbeats carry.
public struct HostIdentity: Sendable, Equatable {
    /// `<machine>/<pid>/<start ticks>`: unique per process, even after pid reuse.
    public var id: String
    /// The hostname and the kernel's boot id: pids only mean something on the same machine
    /// and boot, so a host only kills agents of claims made there.
    public var machine: String
    public var pid: Int32
    public var startTicks: UInt64

    public static let current: HostIdentity = {
        let pid = getpid()
        let ticks = ProcFS.stat(pid)?.startTicks ?? 0
        var name = [CChar](repeating: 0, count: 256)
        let hostname = gethostname(&name, name.count) == 0 ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "localhost"
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?.prefix(8) ?? ""
        let machine = boot.isEmpty ? hostname : "\(hostname)#\(boot)"
        return HostIdentity(id: "\(machine)/\(pid)/\(ticks)", machine: machine, pid: pid, startTicks: ticks)
    }()
}

/// What a claim must respect besides the task being runnable.
/// One claim to make: `Store.claim`'s arguments as a value.
public struct ClaimRequest: Sendable {
    public var taskId: String
    public var executionId: String
    public var owner: TaskOwner
    public var options: ClaimOptions

    public init(taskId: String, executionId: String, owner: TaskOwner, options: ClaimOptions) {
        self.taskId = taskId
        self.executionId = executionId
        self.owner = owner
        self.options = options
    }
}

public struct ClaimOptions: Sendable, Equatable {
    /// How long the claim holds without a heartbeat.
    public var leaseSeconds: Double = 30
    /// Limits across every host sharing the state (PostgreSQL; one host enforces its own).
    public var connectionLimit: Int?
    public var handler: String?
    public var handlerLimit: Int?
    /// When another host holds the task, take this connection's next runnable task instead.
    public var orNextOf: String?

    /// No limit to count, so a claim takes no lock but its task's row.
    var countsNoLimit: Bool { connectionLimit == nil && handlerLimit == nil }

    public init(leaseSeconds: Double = 30, connectionLimit: Int? = nil, handler: String? = nil, handlerLimit: Int? = nil, orNextOf: String? = nil) {
        self.leaseSeconds = leaseSeconds
        self.connectionLimit = connectionLimit
        self.handler = handler
        self.handlerLimit = handlerLimit
        self.orNextOf = orNextOf
    }
}

/// A host seen in the state: a `run`, `daemon` or `exec` process, and the claims it holds.
public struct HostRecord: Sendable, Equatable {
    public var id: String
    public var machine: String
    public var pid: Int
    public var command: String
    public var startedAt: Date
    public var heartbeatAt: Date
    public var stoppedAt: Date?
    public var runningTasks: Int
    /// The earliest expiry among its claims.
    public var leaseExpiresAt: Date?
}

public struct StoredConnection: Sendable, Equatable {
    public var id: String
    public var handler: String
    public var environment: String
    public var configHash: String
    public var configJSON: String
    public var enabled: Bool
    public var state: ConnectionState
    public var stateReason: String?
    public var deletedAt: Date?
}

public struct StoredSchedule: Sendable, Equatable {
    public var connectionId: String
    public var taskType: String
    public var rootTaskId: String
    /// The schedule as text (`every 30m`, `cron "0 3 * * 0"`): a change resets the due time.
    public var spec: String
    public var nextDueAt: Date?
    public var lastDueAt: Date?
}

/// A task that may be claimed, with what its execution needs.
public struct StoredTask: Sendable, Equatable {
    public var id: String
    public var connectionId: String
    public var taskType: String
    public var scanId: String
    public var parentTaskId: String?
    public var depth: Int
    public var metadata: JSONValue?
    /// The child's committed checkpoint, or for a root task the connection's for its type.
    public var checkpoint: JSONValue?
    public var state: TaskState
    public var trigger: Trigger
    public var attempt: Int
    public var nextRunAt: Date
    public var rateLimitedSeconds: Double
    public var executionId: String?
    public var owner: TaskOwner?
}

/// A child an agent asked for, validated, with its deterministic id.
public struct NewChild: Sendable, Equatable {
    public var id: String
    public var key: String
    public var taskType: String
    public var metadata: JSONValue?
}

/// What becomes of a task after one execution.
public enum TaskTransition: Sendable, Equatable {
    case succeeded
    case failed(FailureReason, String?)
    /// Run again at `at` as attempt `attempt`.
    case retry(at: Date, attempt: Int)
    /// Rate limited: run again at `until` without using an attempt.
    case snooze(until: Date, addingRateLimitedSeconds: Double)
    /// Stopped by the host (shutdown): queued again as it was.
    case requeue
}

/// One execution's outcome, applied by `Store.complete` in one transaction.
public struct TaskCompletion: Sendable {
    public var record: TaskRecord
    public var transition: TaskTransition
    /// Committed only with success: staged children are dropped when the parent fails.
    public var children: [NewChild] = []
    /// The checkpoint the agent staged: committed on the child's success, or on the root's scan success.
    public var checkpoint: JSONValue?
    public var stats: AgentReport.Stats?
    /// Auth failure: stop the connection's schedules.
    public var pauseConnection: String?
    /// The task counted against a connection or handler limit: its end makes room that a host
    /// sharing the state may be waiting for.
    public var freesLimitedRoom = false
    /// When set and the completion closes its scan, the same transaction reads the scan's
    /// `AlertFacts`, with this many earlier successful scans: the alert rules then judge exactly
    /// the state the close committed, and the host needs no second trip to the store per scan.
    public var alertHistory: Int?

    public init(record: TaskRecord, transition: TaskTransition) {
        self.record = record
        self.transition = transition
    }
}

public struct ScanSummary: Sendable, Equatable {
    public enum Status: String, Sendable { case running, success, failure }
    public var id: String
    public var connectionId: String
    public var taskType: String
    public var rootTaskId: String
    public var trigger: Trigger
    public var status: Status
    public var startedAt: Date
    public var endedAt: Date?
    public var tasks: Int
    public var succeeded: Int
    public var failed: Int
    public var skipped: Int
    public var records: Int
    public var checkpointCommitted: Bool
    /// The distinct `stats` schema fingerprints of the scan's executions, sorted and joined.
    public var schemaFingerprint: String? = nil

    public var durationSeconds: Double? { endedAt.map { $0.timeIntervalSince(startedAt) } }
}

public struct CompletionResult: Sendable, Equatable {
    /// Children that were new in the scan.
    public var childrenAdded = 0
    /// Children that already existed and had completed: recorded as skipped, not run again.
    public var duplicatesSkipped = 0
    /// The scan, when this completion closed it.
    public var closedScan: ScanSummary?
    /// What the alert rules need about the closed scan, when the completion asked (`TaskCompletion.alertHistory`).
    public var alertFacts: AlertFacts?
}

/// A schedule's tick that is due: what `openScans` needs to open its scan and move it on.
public struct ScheduledTick: Sendable, Equatable {
    public var connectionId: String
    public var taskType: String
    public var handler: String
    public var rootTaskId: String
    public var dueAt: Date
    public var nextDue: Date?

    public init(connectionId: String, taskType: String, handler: String, rootTaskId: String, dueAt: Date, nextDue: Date?) {
        self.connectionId = connectionId
        self.taskType = taskType
        self.handler = handler
        self.rootTaskId = rootTaskId
        self.dueAt = dueAt
        self.nextDue = nextDue
    }
}

/// The result of asking for a root tick.
public enum ScanOpening: Sendable, Equatable {
    case opened(scanId: String)
    /// A scan of the same connection and type is still open (no overlap).
    case skipped(openScanId: String)
    /// Another host sharing the state enqueued this tick first (each tick is enqueued once).
    case alreadyEnqueued
}

public struct LifecycleDelivery: Sendable, Equatable {
    public var eventId: Int
    public var connectionId: String
    public var event: LifecycleEvent
    public var configJSON: String
    public var attempts: Int
}
