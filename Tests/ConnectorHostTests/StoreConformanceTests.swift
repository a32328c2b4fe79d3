import Foundation
import Synchronization
import Testing

@testable import ConnectorHost

extension HostProcessTests {
/// The `Store` contract, run on both backends: the embedded SQLite file and a real PostgreSQL
/// (a throwaway server this test process starts). What differs is only what sharing adds: leases
/// taken back, limits across hosts, stale completions ignored. Nested in the serialized suite:
/// the calls block, and the server's start-up blocks every test waiting for it.
@Suite struct StoreConformanceTests {
    let directory = TemporaryDirectory()
    static let type = "entity_ingestion_incremental"

    func fresh(_ backend: Backend) throws -> (SQLStore, String) {
        let state = try backend.freshState(in: directory)
        return (try backend.open(state), state)
    }

    /// A connection `id` with an hourly schedule whose tick is due now.
    func seed(_ store: SQLStore, _ id: String = "c", now: Date) throws -> String {
        let connection = StoredConnection(
            id: id, handler: "h", environment: "default", configHash: "hash-\(id)", configJSON: "{\"handler\":\"h\"}", enabled: true, state: .active, stateReason: nil,
            deletedAt: nil)
        _ = try store.saveConnection(connection, deliver: false, now: now)
        let root = DeterministicID.rootTaskId(appId: store.appId, connectionId: id, taskType: Self.type)
        try store.saveSchedules(connectionId: id, [StoredSchedule(connectionId: id, taskType: Self.type, rootTaskId: root, spec: "every 1h", nextDueAt: now, lastDueAt: nil)], now: now)
        return root
    }

    func record(_ task: StoredTask, executionId: String, status: TaskRecord.Status = .success, reason: FailureReason? = nil, now: Date) -> TaskRecord {
        TaskRecord(
            taskId: task.id, taskExecutionId: executionId, scanId: task.scanId, parentTaskId: task.parentTaskId, connectionId: task.connectionId, handler: "h",
            type: task.taskType, trigger: task.trigger, status: status, failureReason: reason, exitCode: status == .success ? 0 : 1, signal: nil, timedOut: false,
            startedAt: now, durationMs: 25, attempt: task.attempt, result: nil, error: status == .success ? nil : "failed", stderrTail: "")
    }

    /// The PostgreSQL connection's exchanges with its server so far (0 on SQLite).
    func roundTrips(_ store: SQLStore) throws -> Int {
        try store.locked { (db) throws(StoreError) in (db as? PostgresDatabase)?.roundTrips ?? 0 }
    }

    /// The statements the PostgreSQL connection has run so far (0 on SQLite).
    func statementsRun(_ store: SQLStore) throws -> Int {
        try store.locked { (db) throws(StoreError) in (db as? PostgresDatabase)?.statementsRun ?? 0 }
    }

    func owner(_ name: String) -> TaskOwner {
        TaskOwner(hostPid: getpid(), hostStartTicks: HostIdentity.current.startTicks, hostId: "test/\(name)", machine: HostIdentity.current.machine)
    }

    /// Claims the task and completes it with `transition`.
    @discardableResult
    func run(
        _ store: SQLStore, _ taskId: String, _ transition: TaskTransition = .succeeded, children: [NewChild] = [], checkpoint: JSONValue? = nil,
        alertHistory: Int? = nil, pauseConnection: String? = nil, stats: AgentReport.Stats? = nil, now: Date
    ) throws -> CompletionResult {
        let executionId = DeterministicID.random()
        let task = try #require(try store.claim(taskId: taskId, executionId: executionId, owner: owner("a"), now: now))
        var status = TaskRecord.Status.success
        var reason: FailureReason?
        if case .failed(let r, _) = transition { (status, reason) = (.failure, r) }
        var completion = TaskCompletion(record: record(task, executionId: executionId, status: status, reason: reason, now: now), transition: transition)
        completion.children = children
        completion.checkpoint = checkpoint
        completion.alertHistory = alertHistory
        completion.pauseConnection = pauseConnection
        completion.stats = stats
        return try store.complete(completion, now: now)
    }

    @Test(arguments: Backend.allCases)
    func hostsOpeningAFreshStateTogetherMigrateOnceAndShareOneAppId(_ backend: Backend) throws {
        let state = try backend.freshState(in: directory)
        let ids = Mutex<[String]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do {
                let id = try backend.open(state).appId
                ids.withLock { $0.append(id) }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(Set(ids.withLock { $0 }).count == 1)
    }

    @Test(arguments: Backend.allCases)
    func eachTickIsEnqueuedOnceAndScansNeverOverlap(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        let root = try seed(store, now: now)
        let next = now.addingTimeInterval(3600)
        let first = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .schedule, dueAt: now, nextDue: next, now: now)
        guard case .opened = first else { Issue.record("expected a scan, got \(first)"); return }
        // A second host saw the same tick due: it must not enqueue it again, nor record a skip.
        #expect(try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .schedule, dueAt: now, nextDue: next, now: now) == .alreadyEnqueued)
        // A manual trigger while the scan is open is a skipped tick.
        let manual = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        guard case .skipped = manual else { Issue.record("expected a skip, got \(manual)"); return }
        #expect(try store.queueDepth() == 1)
        #expect(try store.schedules().first?.nextDueAt.map { abs($0.timeIntervalSince(next)) < 0.001 } == true)
    }

    @Test(arguments: Backend.allCases)
    func aCompletionAndTheNextClaimAreRecordedTogether(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        let roots = try ["a", "b"].map { try seed(store, $0, now: now) }
        let ticks = zip(["a", "b"], roots).map { ScheduledTick(connectionId: $0, taskType: Self.type, handler: "h", rootTaskId: $1, dueAt: now, nextDue: nil) }
        _ = try store.openScans(ticks, now: now)
        let first = DeterministicID.random()
        let a = try #require(try store.claim(taskId: roots[0], executionId: first, owner: owner("a"), now: now))
        let second = DeterministicID.random()
        let next = ClaimRequest(taskId: roots[1], executionId: second, owner: owner("a"), options: ClaimOptions())
        var completion = TaskCompletion(record: record(a, executionId: first, now: now), transition: .succeeded)
        completion.alertHistory = 5
        let before = try roundTrips(store)
        let (result, b) = try store.complete(completion, thenClaim: next, now: now)
        if backend == .postgres {
            // The history, the task's move and the closing read; then the scan's close, the alert
            // facts, the claim and the COMMIT: each group one exchange with the server.
            #expect(try roundTrips(store) - before == 2)
        }
        #expect(result?.closedScan?.status == .success, "a's one-task scan closed")
        #expect(result?.alertFacts?.input.executions == ExecutionTally(succeeded: 1, failed: 0, lastFailureError: nil), "the facts read with the commit")
        #expect(try store.task(id: roots[0])?.state == .succeeded)
        #expect(b?.id == roots[1])
        #expect(try store.task(id: roots[1])?.state == .running)
        #expect(try store.task(id: roots[1])?.executionId == second)
        // The next task no longer waits: the completion is kept, the claim answers nil.
        let third = DeterministicID.random()
        let (again, none) = try store.complete(
            TaskCompletion(record: record(try #require(b), executionId: second, now: now), transition: .succeeded),
            thenClaim: ClaimRequest(taskId: roots[1], executionId: third, owner: owner("a"), options: ClaimOptions()), now: now)
        #expect(none == nil)
        #expect(again?.closedScan?.status == .success)
        #expect(try store.task(id: roots[1])?.state == .succeeded)
        let (nothing, noTask) = try store.complete(nil, thenClaim: nil, now: now)
        #expect(nothing == nil && noTask == nil)
    }

    @Test(arguments: Backend.allCases)
    func ticksOpenedTogetherAreAnsweredInOrder(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        let next = now.addingTimeInterval(3600)
        let roots = try ["a", "b", "c"].map { try seed(store, $0, now: now) }
        // "b" already has an open scan: its tick is a skip, the others open scans.
        guard case .opened(let open) = try store.openScan(
            connectionId: "b", taskType: Self.type, handler: "h", rootTaskId: roots[1], trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        else { Issue.record("expected a scan for b"); return }
        let ticks = zip(["a", "b", "c"], roots).map { ScheduledTick(connectionId: $0, taskType: Self.type, handler: "h", rootTaskId: $1, dueAt: now, nextDue: next) }
        let openings = try store.openScans(ticks, now: now)
        #expect(openings.count == 3)
        guard case .opened(let scanA) = openings[0], case .opened(let scanC) = openings[2] else { Issue.record("expected scans for a and c, got \(openings)"); return }
        #expect(openings[1] == .skipped(openScanId: open))
        #expect(Set([scanA, scanC, open]).count == 3)
        #expect(try store.queueDepth() == 3)
        // Every schedule moved on, the skipped one too; asked again, each tick is already taken.
        #expect(try store.schedules().allSatisfy { $0.nextDueAt.map { abs($0.timeIntervalSince(next)) < 0.001 } == true })
        #expect(try store.openScans(ticks, now: now) == Array(repeating: .alreadyEnqueued, count: 3))
    }

    @Test(arguments: Backend.allCases)
    func aBatchLargerThanOneLookupChunkAnswersEveryTick(_ backend: Backend) throws {
        // 70 ticks: the schedules and running scans are looked up 32 keys at a time, the last
        // chunk padded; a tick already taken and one with its scan still running sit in
        // different chunks, and the caller's order is not the key order.
        let (store, _) = try fresh(backend)
        let now = Date()
        let next = now.addingTimeInterval(3600)
        let ids = (0..<70).map { String(format: "c%02d", $0) }
        let roots = try ids.map { try seed(store, $0, now: now) }
        guard case .opened(let running) = try store.openScan(
            connectionId: "c05", taskType: Self.type, handler: "h", rootTaskId: roots[5], trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        else { Issue.record("expected a scan for c05"); return }
        #expect(try store.openScan(connectionId: "c40", taskType: Self.type, handler: "h", rootTaskId: roots[40], trigger: .schedule, dueAt: now, nextDue: next, now: now) != .alreadyEnqueued)
        let ticks = zip(ids, roots).map { ScheduledTick(connectionId: $0, taskType: Self.type, handler: "h", rootTaskId: $1, dueAt: now, nextDue: next) }.reversed()
        let before = try statementsRun(store)
        let openings = try store.openScans(Array(ticks), now: now)
        if backend == .postgres {
            // Each statement serves a chunk of up to 32 ticks: moving the schedules on, their
            // locks, the scans and their root tasks were four statements per tick (280 here).
            let statements = try statementsRun(store) - before
            #expect(statements < 40, "\(statements) statements")
        }
        for (tick, opening) in zip(ticks, openings) {
            switch tick.connectionId {
            case "c05": #expect(opening == .skipped(openScanId: running))
            case "c40": #expect(opening == .alreadyEnqueued, "its schedule had moved on")
            default:
                guard case .opened = opening else { Issue.record("\(tick.connectionId): \(opening)"); continue }
            }
        }
        #expect(try store.queueDepth() == 70, "68 opened by the batch, c05's and c40's earlier")
        #expect(try store.openScans(Array(ticks), now: now) == Array(repeating: .alreadyEnqueued, count: 70))
    }

    @Test(arguments: Backend.allCases)
    func checkpointCommitsOnlyWhenTheWholeScanSucceeded(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        let root = try seed(store, now: now)
        for round in 1...2 {
            _ = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
            let children = ["a", "b"].map { NewChild(id: "child-\(round)-\($0)", key: $0, taskType: Self.type, metadata: ["key": .string($0)]) }
            // Round 2's tasks report two schemas, the later one first.
            let schema = { (name: String) in round == 2 ? AgentReport.Stats(records: 5, bytes: 0, schema: name) : nil }
            let rootResult = try run(store, root, children: children, checkpoint: ["round": .int(round)], stats: schema("v2"), now: now)
            #expect(rootResult.childrenAdded == 2)
            #expect(try store.checkpoint(connectionId: "c", taskType: Self.type) == nil, "staged, not committed, while children run (and round 1 failed)")
            let ready = try store.readyTasks(now: now, perConnection: 10)
            #expect(Set(ready.map(\.id)) == Set(children.map(\.id)))
            try run(store, children[0].id, stats: schema("v1"), now: now)
            // Round 1: a child fails, so the scan fails and the checkpoint stays as it was.
            let last = try run(store, children[1].id, round == 1 ? .failed(.nonRetryableError, "no") : .succeeded, stats: schema("v2"), now: now)
            let closed = try #require(last.closedScan)
            #expect(closed.status == (round == 1 ? .failure : .success))
            #expect(closed.tasks == 3)
            #expect(closed.succeeded == (round == 1 ? 2 : 3) && closed.failed == (round == 1 ? 1 : 0))
            #expect(closed.checkpointCommitted == (round == 2))
            #expect(closed.records == (round == 1 ? 0 : 15))
            #expect(closed.schemaFingerprint == (round == 1 ? nil : "v1,v2"), "the scan's distinct schemas, sorted")
            #expect(closed.endedAt.map { abs($0.timeIntervalSince(now)) < 0.001 } == true)
            #expect(try store.scans(connectionId: "c", limit: 10).first { $0.id == closed.id }?.schemaFingerprint == closed.schemaFingerprint, "as stored")
            #expect(try store.failedTaskReasons(scanId: closed.id) == (round == 1 ? [.nonRetryableError: 1] : [:]))
            #expect(try store.alertFacts(for: closed, history: 0).input.executions == (round == 1 ? ExecutionTally(succeeded: 2, failed: 1, lastFailureError: "failed") : ExecutionTally(succeeded: 3)))
        }
        #expect(try store.checkpoint(connectionId: "c", taskType: Self.type) == ["round": 2])
        #expect(try store.resetCheckpoint(connectionId: "c", taskType: Self.type))
        #expect(try store.checkpoint(connectionId: "c", taskType: Self.type) == nil)
    }

    @Test(arguments: Backend.allCases)
    func aCompletionThatClosesItsScanReadsItsAlertFactsInTheSameTransaction(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let start = Date()
        let root = try seed(store, now: start)
        // Two successful scans of history, one second apart; the first closes without asking.
        var earlier: [String] = []
        for round in 0..<2 {
            let now = start.addingTimeInterval(Double(round))
            _ = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
            let result = try run(store, root, alertHistory: round == 0 ? nil : 5, now: now)
            let closed = try #require(result.closedScan)
            #expect((result.alertFacts == nil) == (round == 0), "facts only when the completion asks")
            if round == 1 { #expect(result.alertFacts?.input.previousSuccesses.map(\.id) == earlier, "the one earlier success as the baseline") }
            earlier.insert(closed.id, at: 0)
        }
        // The first scan has no baseline: its facts are read all the same.
        let first = try #require(try store.scans(connectionId: "c", limit: 10).first { $0.id == earlier[1] })
        let firstFacts = try store.alertFacts(for: first, history: 5)
        #expect(firstFacts.input.previousSuccesses.isEmpty)
        #expect(firstFacts.input.executions.succeeded == 1, "facts without a baseline")
        #expect(try store.raiseAlert(rule: .scanFailed, connectionId: "c", taskType: Self.type, message: "earlier", scanId: nil, now: start))
        #expect(try store.raiseAlert(rule: .slowScan, connectionId: "c", taskType: Self.type, message: "earlier", scanId: nil, now: start))

        let now = start.addingTimeInterval(2)
        _ = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        let children = ["a", "b"].map { NewChild(id: "facts-\($0)", key: $0, taskType: Self.type, metadata: nil) }
        #expect(try run(store, root, children: children, alertHistory: 5, now: now).alertFacts == nil, "the scan is still open")
        try run(store, children[0].id, alertHistory: 5, now: now)
        // The last task fails for auth: the same transaction pauses the connection and closes the scan.
        let last = try run(store, children[1].id, .failed(.unauthorized, "401"), alertHistory: 1, pauseConnection: "UNAUTHORIZED: 401", now: now)
        let closed = try #require(last.closedScan)
        let facts = try #require(last.alertFacts)
        #expect(facts.input.scan == closed)
        #expect(facts.input.executions == ExecutionTally(succeeded: 2, failed: 1, lastFailureError: "failed"))
        #expect(facts.input.failedTasks == [.unauthorized: 1])
        #expect(facts.input.previousSuccesses.map(\.id) == [earlier[0]], "the newest earlier success, as many as asked")
        #expect(facts.input.connectionNeedsReauth, "the pause made in the same transaction is seen")
        #expect(facts.input.reauthReason == "UNAUTHORIZED: 401")
        #expect(facts.openRules == [.scanFailed, .slowScan])
        #expect(try store.alertFacts(for: closed, history: 1) == facts, "the same facts as a separate read")
        #expect(try store.alertFacts(for: closed, history: 5).input.previousSuccesses.map(\.id) == earlier, "every earlier success, newest first")
    }

    @Test(arguments: Backend.allCases)
    func retriesSnoozesAndDuplicateChildren(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        let root = try seed(store, now: now)
        _ = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        try run(store, root, .retry(at: now.addingTimeInterval(5), attempt: 2), now: now)
        #expect(try store.readyTasks(now: now, perConnection: 10).isEmpty)
        #expect(try store.nextTaskTime(after: now).map { abs($0.timeIntervalSince(now) - 5) < 0.001 } == true)
        #expect(try store.task(id: root)?.attempt == 2)
        let later = now.addingTimeInterval(6)
        try run(store, root, .snooze(until: later.addingTimeInterval(10), addingRateLimitedSeconds: 10), now: later)
        #expect(try store.task(id: root)?.state == .snoozed)
        #expect(try store.task(id: root)?.rateLimitedSeconds == 10)
        let end = later.addingTimeInterval(11)
        let child = NewChild(id: "only-child", key: "k", taskType: Self.type, metadata: nil)
        #expect(try run(store, root, children: [child, child], now: end).childrenAdded == 1, "one row per deterministic id")
        try run(store, child.id, now: end)
        let scanId = try #require(try store.task(id: root)).scanId
        let executions = try store.executions(scanId: scanId)
        #expect(executions.map(\.taskId) == [root, root, root, child.id], "in the order they ran")
        #expect(try store.recentExecutions(limit: 1).first?.taskId == child.id)
        #expect(try store.metricSamples().contains { $0.name == "connector_host_task_executions_total" && $0.value >= 1 })
    }

    @Test(arguments: Backend.allCases)
    func leasesAreRenewedAndExpiredOnesTakenBack(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        let root = try seed(store, now: now)
        _ = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        let host = HostIdentity(id: "test/a", machine: "elsewhere", pid: 1, startTicks: 1)
        try store.registerHost(host, command: "daemon", now: now)
        let executionId = DeterministicID.random()
        let task = try #require(try store.claim(taskId: root, executionId: executionId, owner: owner("a"), options: ClaimOptions(leaseSeconds: 10), now: now))
        #expect(task.owner?.hostId == "test/a")
        #expect(try store.expiredLeases(now: now.addingTimeInterval(5)).isEmpty)
        #expect(try store.expiredLeases(now: now.addingTimeInterval(11)).map(\.id) == [root])
        try store.renewLeases(hostId: "test/a", until: now.addingTimeInterval(20), now: now.addingTimeInterval(9))
        #expect(try store.expiredLeases(now: now.addingTimeInterval(11)).isEmpty, "renewed")
        let hosts = try store.hosts(since: now.addingTimeInterval(-1))
        #expect(hosts.first { $0.id == "test/a" }?.runningTasks == 1)
        #expect(try !store.requeueExpired(taskId: root, executionId: executionId, note: "x", now: now.addingTimeInterval(15)), "not expired yet")
        #expect(try store.requeueExpired(taskId: root, executionId: executionId, note: "host gone", now: now.addingTimeInterval(21)))
        #expect(try store.task(id: root)?.state == .queued)
        #expect(try store.task(id: root)?.owner == nil)
        try store.hostStopped(hostId: "test/a", now: now)
        #expect(try store.hosts(since: now.addingTimeInterval(-1)).first { $0.id == "test/a" }?.stoppedAt != nil)

        // The old execution finishes after all (its host was only slow): it is history, and the
        // task, now someone else's, is left alone: no move, no children, no paused connection.
        let second = DeterministicID.random()
        _ = try #require(try store.claim(taskId: root, executionId: second, owner: owner("b"), now: now.addingTimeInterval(22)))
        var stale = TaskCompletion(record: record(task, executionId: executionId, now: now), transition: .succeeded)
        stale.children = [NewChild(id: "stale-child", key: "k", taskType: Self.type, metadata: nil)]
        stale.pauseConnection = "UNAUTHORIZED: stale"
        #expect(try store.complete(stale, now: now.addingTimeInterval(23)) == CompletionResult())
        // Nor with a claim in the same transaction (another execution that lost the task).
        stale = TaskCompletion(record: record(task, executionId: DeterministicID.random(), now: now), transition: .failed(.unauthorized, "401"))
        stale.pauseConnection = "UNAUTHORIZED: stale"
        let third = DeterministicID.random()
        let (result, claimed) = try store.complete(
            stale, thenClaim: ClaimRequest(taskId: root, executionId: third, owner: owner("a"), options: ClaimOptions()), now: now.addingTimeInterval(23))
        #expect(result == CompletionResult())
        #expect(claimed == nil, "still running under the second execution")
        #expect(try store.task(id: root)?.state == .running)
        #expect(try store.task(id: root)?.executionId == second)
        #expect(try store.task(id: "stale-child") == nil)
        #expect(try store.connection(id: "c")?.state == .active)
        #expect(try store.execution(id: executionId) != nil)
    }

    /// Limits across hosts and SKIP LOCKED hand-over: only a shared state checks these in the
    /// claim (one host enforces its own limits before claiming).
    @Test func claimsRespectLimitsAcrossHostsAndPassOverTakenTasks() throws {
        let (store, _) = try fresh(.postgres)
        let now = Date()
        let root = try seed(store, now: now)
        _ = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        let children = (0..<3).map { NewChild(id: "child-\($0)", key: "\($0)", taskType: Self.type, metadata: nil) }
        try run(store, root, children: children, now: now)
        let limited = ClaimOptions(connectionLimit: 1, orNextOf: "c")
        let a = try store.claim(taskId: "child-0", executionId: DeterministicID.random(), owner: owner("a"), options: limited, now: now)
        #expect(a?.id == "child-0")
        #expect(try store.claim(taskId: "child-1", executionId: DeterministicID.random(), owner: owner("b"), options: limited, now: now) == nil, "the connection's limit is 1")
        // Without the limit, a claim of a task already taken moves on to the connection's next one.
        let b = try store.claim(taskId: "child-0", executionId: DeterministicID.random(), owner: owner("b"), options: ClaimOptions(orNextOf: "c"), now: now)
        #expect(b?.id == "child-1")
        let handlerLimited = ClaimOptions(handler: "h", handlerLimit: 2, orNextOf: "c")
        #expect(try store.claim(taskId: "child-2", executionId: DeterministicID.random(), owner: owner("c"), options: handlerLimited, now: now) == nil, "handler h runs 2")
        #expect(try store.runningCount() == 2)
    }

    /// A new state has no statistics until autovacuum analyzes it (a minute or more), and hosts
    /// fill it meanwhile. With 1,000 connections and 300 queued tasks then, PostgreSQL planned
    /// the plain `next_run_at <= ?` through tasks_due: the whole queue walked once per connection
    /// (24 ms a read, against 1). The read must reach each connection's tasks through its own index.
    @Test func readyTasksReachEachConnectionsTasksThroughItsIndexBeforeAnyStatistics() throws {
        let (store, _) = try fresh(.postgres)
        let now = Date()
        try store.locked { (db) throws(StoreError) in
            // Nothing analyzes the tables behind the test's back.
            for table in ["connections", "tasks"] { try db.run("ALTER TABLE \(table) SET (autovacuum_enabled = false)") }
            try db.run(
                """
                INSERT INTO connections (id, handler, environment, config_hash, config_json, enabled, state, created_at, updated_at)
                SELECT 'c' || g, 'h', 'default', 'hash', '{}', 1, 'active', ?, ? FROM generate_series(1, 1000) g
                """, .date(now), .date(now))
            try db.run(
                """
                INSERT INTO tasks (id, connection_id, task_type, scan_id, state, trigger, next_run_at, created_at, updated_at)
                SELECT 't' || g, 'c' || g, 't', 's' || g, 'queued', 'schedule', ?, ?, ? FROM generate_series(1, 300) g
                """, .date(now), .date(now), .date(now))
        }
        let plan = try store.locked { (db) throws(StoreError) in
            try db.rows("EXPLAIN " + SQLStore.readyOnPostgres, [.date(now), .int(16)]) { $0.text(0) }.joined(separator: "\n")
        }
        #expect(plan.contains("tasks_ready_by_connection") && !plan.contains("tasks_due"), "\(plan)")
        #expect(try store.readyTasks(now: now, perConnection: 16).count == 300)
        #expect(try store.readyTasks(now: now.addingTimeInterval(-1), perConnection: 16).isEmpty, "none is due before its time")
    }

    /// On PostgreSQL a statement whose result is not read is sent later, with the next one read
    /// or with COMMIT: its failure must still roll the whole transaction back, and leave the
    /// connection usable.
    @Test(arguments: Backend.allCases)
    func aFailedStatementRollsItsTransactionBack(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        _ = try seed(store, now: Date())
        func environment() throws -> String? { try store.connection(id: "c")?.environment }
        #expect(throws: StoreError.self, "found at COMMIT") {
            try store.transaction { (db) throws(StoreError) in
                try db.run("UPDATE connections SET environment = 'changed' WHERE id = 'c'")
                try db.run("INSERT INTO connections (id) VALUES ('c')")
                try db.run("UPDATE connections SET handler = 'never' WHERE id = 'c'")
            }
        }
        #expect(try environment() == "default")
        #expect(throws: StoreError.self, "found by a read, thrown by the next statement") {
            try store.transaction { (db) throws(StoreError) in
                try db.run("UPDATE connections SET environment = 'changed' WHERE id = 'c'")
                try db.run("INSERT INTO connections (id) VALUES ('c')")
                if db.changes == 0 { try db.run("UPDATE connections SET environment = 'changed again' WHERE id = 'c'") }
            }
        }
        #expect(try environment() == "default")
        let rows = try store.transaction { (db) throws(StoreError) -> Int in
            try db.run("UPDATE connections SET environment = 'after' WHERE id = 'c'")
            return db.changes
        }
        #expect(rows == 1)
        #expect(try environment() == "after")
    }

    @Test(arguments: Backend.allCases)
    func alertsDeletionAndPruning(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        let root = try seed(store, now: now)
        #expect(try store.raiseAlert(rule: .scanFailed, connectionId: "c", taskType: Self.type, message: "one", scanId: nil, now: now))
        #expect(try !store.raiseAlert(rule: .scanFailed, connectionId: "c", taskType: Self.type, message: "two", scanId: nil, now: now))
        #expect(try store.alerts(includeResolved: false, limit: 10).map(\.message) == ["two"])
        #expect(Set(try store.alerts(includeResolved: false, limit: 10).map(\.rule)) == [.scanFailed])
        #expect(try store.resolveAlert(rule: .scanFailed, connectionId: "c", taskType: Self.type, now: now))
        #expect(try store.openAlertCount() == 0)
        _ = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        try run(store, root, children: [NewChild(id: "old-child", key: "k", taskType: Self.type, metadata: nil)], now: now)
        try run(store, "old-child", now: now)
        let pruned = try store.prune(before: now.addingTimeInterval(1))
        #expect(pruned.tasks == 1, "the child of a closed scan")
        #expect(pruned.alerts == 1)
        #expect(try store.executions(ExecutionFilter(limit: 10, connectionId: "c")).map(\.taskId) == [root], "each kept task's last execution stays")
        try store.deleteConnection("c", deliver: false, now: now)
        #expect(try store.connections(includeDeleted: false).isEmpty)
        #expect(try store.schedules().isEmpty)
    }

    /// Both engines keep the same indexes, by table and name: a query written once runs on both,
    /// and an index one of them lacks is a full scan there (or, the other way, writes that buy
    /// nothing: every index a row's new version matches takes an entry at each change of state).
    @Test func bothEnginesKeepTheSameIndexes() throws {
        let sqlite = try Backend.sqlite.open(try Backend.sqlite.freshState(in: directory))
        let postgres = try Backend.postgres.open(try Backend.postgres.freshState(in: directory))
        // Names only: unique constraints and primary keys are spelled differently (SQLite's rowid
        // is PostgreSQL's seq) and named by each engine itself.
        let onSQLite = try sqlite.locked { (db) throws(StoreError) in
            try db.rows("SELECT tbl_name || '.' || name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY 1", []) { $0.text(0) }
        }
        let onPostgres = try postgres.locked { (db) throws(StoreError) in
            try db.rows(
                """
                SELECT i.tablename || '.' || i.indexname FROM pg_indexes i
                WHERE i.schemaname = current_schema() AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
                ORDER BY 1
                """, []
            ) { $0.text(0) }
        }
        #expect(!onSQLite.isEmpty)
        #expect(Set(onPostgres).subtracting(onSQLite).sorted() == [], "only on PostgreSQL")
        #expect(Set(onSQLite).subtracting(onPostgres).sorted() == [], "only on SQLite")
    }

    /// A sweep reads only these ids; a connection that is disabled, paused for re-auth or deleted
    /// has its ticks left alone.
    @Test(arguments: Backend.allCases)
    func onlyActiveConnectionsHaveTheirSchedulesSwept(_ backend: Backend) throws {
        let (store, _) = try fresh(backend)
        let now = Date()
        for id in ["active", "disabled", "paused", "deleted"] { _ = try seed(store, id, now: now) }
        try store.setConnectionState("disabled", .disabled, reason: nil, now: now)
        try store.setConnectionState("paused", .needsReauth, reason: "UNAUTHORIZED", now: now)
        try store.deleteConnection("deleted", deliver: false, now: now)
        #expect(try store.activeConnectionIds() == ["active"])
        try store.setConnectionState("paused", .active, reason: nil, now: now)
        #expect(try store.activeConnectionIds() == ["active", "paused"])
    }

    /// A state a newer host has migrated is refused by an older one, with a message that says
    /// what to do, and left as it is (there is no migrating back).
    @Test(arguments: Backend.allCases)
    func aStateWithANewerSchemaIsRefusedAndLeftAlone(_ backend: Backend) throws {
        let (store, state) = try fresh(backend)
        _ = try seed(store, now: Date())
        let newer = Schema.migrations(backend == .sqlite ? .sqlite : .postgres).count + 1
        try store.locked { (db) throws(StoreError) in
            if backend == .sqlite {
                try db.execute("PRAGMA user_version = \(newer)")
            } else {
                try db.run("UPDATE meta SET value = ? WHERE key = 'schema_version'", .text(String(newer)))
            }
        }
        do {
            _ = try backend.open(state)
            Issue.record("a state of schema \(newer) opened")
        } catch let error as StoreError {
            #expect(error.kind == .schema)
            #expect(error.exitCode == 70)
            #expect(error.description.contains("schema version \(newer) is newer than this host understands (\(newer - 1)); upgrade connector-host"), "\(error)")
        }
        let version = try store.locked { (db) throws(StoreError) in
            backend == .sqlite
                ? try db.firstRow("PRAGMA user_version", []) { $0.int(0) }
                : try db.firstRow("SELECT value FROM meta WHERE key = 'schema_version'", []) { Int($0.text(0)) }
        }
        #expect(version == newer)
        #expect(try store.connections(includeDeleted: false).map(\.id) == ["c"])
    }
}
}
