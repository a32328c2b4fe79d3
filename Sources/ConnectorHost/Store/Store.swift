import Foundation

/// The host's durable state. Every method is one transaction, so a crash between two calls
/// leaves a state the next start can recover from. SQL stays behind this protocol.
public protocol Store: AnyObject, Sendable {
    /// A stable id of this installation, made when the state was created.
    var appId: String { get }
    /// Where the state lives, for messages.
    var location: String { get }

    // MARK: Connections and their lifecycle
    func connections(includeDeleted: Bool) throws(StoreError) -> [StoredConnection]
    func connection(id: String) throws(StoreError) -> StoredConnection?
    /// The ids of the connections whose schedules run (not deleted, disabled or paused for re-auth).
    func activeConnectionIds() throws(StoreError) -> Set<String>
    /// Creates or updates a connection and records CREATED/UPDATED (nil: unchanged). An update
    /// clears a needs-re-auth pause. `deliver` queues the event for the handler's lifecycle hook.
    func saveConnection(_ connection: StoredConnection, deliver: Bool, now: Date) throws(StoreError) -> LifecycleEvent?
    /// Marks the connection deleted and removes its schedules and queued tasks; history stays.
    func deleteConnection(_ id: String, deliver: Bool, now: Date) throws(StoreError)
    func setConnectionState(_ id: String, _ state: ConnectionState, reason: String?, now: Date) throws(StoreError)
    func recordEvent(connectionId: String?, kind: String, detail: String?, now: Date) throws(StoreError)
    func pendingDeliveries() throws(StoreError) -> [LifecycleDelivery]
    func finishDelivery(eventId: Int, delivered: Bool) throws(StoreError)

    // MARK: Schedules and scans
    func schedules() throws(StoreError) -> [StoredSchedule]
    /// Makes the connection's schedules exactly `desired`: new ones are added, a changed spec
    /// takes the new due time, and removed ones go (with their queued root tasks).
    func saveSchedules(connectionId: String, _ desired: [StoredSchedule], now: Date) throws(StoreError)
    /// Opens a scan and queues its root task, unless a scan of that connection and type is still
    /// open; then records the tick as skipped. A scheduled tick (`dueAt`) also moves the schedule
    /// on to `nextDue`.
    func openScan(connectionId: String, taskType: String, handler: String, rootTaskId: String, trigger: Trigger, dueAt: Date?, nextDue: Date?, now: Date) throws(StoreError) -> ScanOpening
    /// `openScan` for several scheduled ticks in one transaction (one commit, each index page
    /// written once), answered in order. The ticks are opened in key order, so two hosts' batches
    /// that overlap take their rows in the same order instead of deadlocking.
    func openScans(_ ticks: [ScheduledTick], now: Date) throws(StoreError) -> [ScanOpening]

    // MARK: Tasks
    /// Runnable tasks (due, queued or snoozed), at most `perConnection` of each connection, oldest first.
    func readyTasks(now: Date, perConnection: Int) throws(StoreError) -> [StoredTask]
    /// Marks the task running with its owner and lease, if it is still runnable and within the
    /// limits. Done before the agent is spawned. With `options.orNextOf`, a task another host
    /// holds is passed over for that connection's next free one.
    func claim(taskId: String, executionId: String, owner: TaskOwner, options: ClaimOptions, now: Date) throws(StoreError) -> StoredTask?
    /// Puts a task claimed but never started back in the queue, due as before: no execution is
    /// recorded and no interruption counted. False when the claim is no longer this one's.
    func releaseClaim(taskId: String, executionId: String, now: Date) throws(StoreError) -> Bool
    /// Records the spawned agent, so a host restarted after a crash can find it.
    func recordSpawn(taskId: String, executionId: String, agent: SpawnedProcess) throws(StoreError)
    func complete(_ completion: TaskCompletion, now: Date) throws(StoreError) -> CompletionResult
    /// Records one task's end and claims the next task of the same supervisor lane, as one
    /// transaction where the store can (a state file: one commit per task instead of two);
    /// either part may be absent. The claim sees the completion (its room under a limit).
    func complete(_ completion: TaskCompletion?, thenClaim next: ClaimRequest?, now: Date) throws(StoreError) -> (CompletionResult?, StoredTask?)
    func runningTasks() throws(StoreError) -> [StoredTask]
    /// Queues a running task again after its host died or shut down, noting why.
    func requeueInterrupted(taskId: String, note: String, now: Date) throws(StoreError)
    func task(id: String) throws(StoreError) -> StoredTask?
    func taskCount(scanId: String) throws(StoreError) -> Int
    /// The earliest time after `date` at which a queued or snoozed task becomes runnable.
    func nextTaskTime(after date: Date) throws(StoreError) -> Date?
    func queueDepth() throws(StoreError) -> Int

    // MARK: Hosts and leases
    /// Whether other hosts may claim this state's tasks (PostgreSQL): then claims are leased, and
    /// any host takes back a claim whose lease expired.
    var isShared: Bool { get }
    func registerHost(_ host: HostIdentity, command: String, now: Date) throws(StoreError)
    /// Records the host's heartbeat and extends the leases of its running tasks to `until`.
    func renewLeases(hostId: String, until: Date, now: Date) throws(StoreError)
    func hostStopped(hostId: String, now: Date) throws(StoreError)
    /// Running tasks whose lease ran out before `now`: their host stopped heart-beating.
    func expiredLeases(now: Date) throws(StoreError) -> [StoredTask]
    /// Queues the task again if that execution still holds it with an expired lease; returns
    /// whether it did (the host may have renewed meanwhile).
    func requeueExpired(taskId: String, executionId: String, note: String, now: Date) throws(StoreError) -> Bool
    /// Hosts seen since `since`, newest heartbeat first.
    func hosts(since: Date) throws(StoreError) -> [HostRecord]

    // MARK: Checkpoints
    func checkpoint(connectionId: String, taskType: String) throws(StoreError) -> JSONValue?
    /// Returns whether there was one.
    func resetCheckpoint(connectionId: String, taskType: String) throws(StoreError) -> Bool

    // MARK: History
    /// Records an execution that belongs to no queued task (a lifecycle delivery).
    func recordExecution(_ record: TaskRecord) throws(StoreError)
    func execution(id: String) throws(StoreError) -> TaskRecord?
    func executions(scanId: String) throws(StoreError) -> [TaskRecord]
    func recentExecutions(limit: Int) throws(StoreError) -> [TaskRecord]
    func scan(id: String) throws(StoreError) -> ScanSummary?
    func scans(connectionId: String?, limit: Int) throws(StoreError) -> [ScanSummary]

    // MARK: Operations
    /// Executions matching the filter, newest first; `running` tasks appear as records too.
    func executions(_ filter: ExecutionFilter) throws(StoreError) -> [TaskRecord]
    func taskStates(scanId: String) throws(StoreError) -> [TaskState: Int]
    /// The scan's failed tasks counted by their final failure reason (RETRY_LIMIT_EXCEEDED
    /// included, which no execution reports: the host decides it).
    func failedTaskReasons(scanId: String) throws(StoreError) -> [FailureReason: Int]
    func runningCount() throws(StoreError) -> Int
    /// Deletes history older than `before`, keeping each task's last execution, open alerts and checkpoints.
    func prune(before: Date) throws(StoreError) -> PruneResult
    func metricSamples() throws(StoreError) -> [MetricSample]

    // MARK: Alerts
    /// Opens an alert, or refreshes the open one with the same key; returns whether it is new.
    func raiseAlert(rule: AlertRule, connectionId: String, taskType: String, message: String, scanId: String?, now: Date) throws(StoreError) -> Bool
    /// Resolves the open alert with this key; returns whether there was one.
    func resolveAlert(rule: AlertRule, connectionId: String, taskType: String, now: Date) throws(StoreError) -> Bool
    func alerts(includeResolved: Bool, limit: Int) throws(StoreError) -> [Alert]
    func openAlertCount() throws(StoreError) -> Int
    /// What the alert rules need to judge a closed scan (`AlertFacts`).
    func alertFacts(for scan: ScanSummary, history: Int) throws(StoreError) -> AlertFacts
    func pendingNotifications(maxAttempts: Int) throws(StoreError) -> [PendingNotification]
    func recordNotification(alertId: Int, event: PendingNotification.Event, delivered: Bool) throws(StoreError)
}

extension Store {
    /// A claim with one host's defaults: a 30 s lease, no cross-host limits.
    public func claim(taskId: String, executionId: String, owner: TaskOwner, now: Date) throws(StoreError) -> StoredTask? {
        try claim(taskId: taskId, executionId: executionId, owner: owner, options: ClaimOptions(), now: now)
    }
}
