import Foundation
import Testing

@testable import ConnectorHost

/// The task table keeps every task until `prune` (a 10,000-child scan is 10,000 rows), so a
/// statement the host runs per task or per pass must reach its rows through an index: one that
/// walks the table makes each task slower the longer the host runs. SQLite counts, per prepared
/// statement, the rows stepped through in full scans; this runs a scan of many children through
/// the store the way a host does and holds every statement to a few rows per use.
@Suite struct StoreQueryPlanTests {
    static let type = "entity_ingestion_incremental"

    @Test func noStatementWalksTheTaskTableOrTheHistory() throws {
        let directory = TemporaryDirectory()
        let store = try SQLStore(path: directory.path + "/state.sqlite")
        let database = try #require(store.db as? SQLiteDatabase)
        var now = Date()
        let owner = TaskOwner(hostPid: getpid(), hostStartTicks: HostIdentity.current.startTicks, hostId: "test/a", machine: HostIdentity.current.machine)
        let connection = StoredConnection(
            id: "c", handler: "h", environment: "default", configHash: "hash", configJSON: "{\"handler\":\"h\"}", enabled: true, state: .active,
            stateReason: nil, deletedAt: nil)
        _ = try store.saveConnection(connection, deliver: false, now: now)
        let root = DeterministicID.rootTaskId(appId: store.appId, connectionId: "c", taskType: Self.type)
        try store.saveSchedules(
            connectionId: "c", [StoredSchedule(connectionId: "c", taskType: Self.type, rootTaskId: root, spec: "every 1h", nextDueAt: now, lastDueAt: nil)], now: now)

        func success(_ task: StoredTask, executionId: String) -> TaskCompletion {
            let record = TaskRecord(
                taskId: task.id, taskExecutionId: executionId, scanId: task.scanId, parentTaskId: task.parentTaskId, connectionId: "c", handler: "h",
                type: task.taskType, trigger: task.trigger, status: .success, failureReason: nil, exitCode: 0, signal: nil, timedOut: false, startedAt: now,
                durationMs: 5, attempt: task.attempt, result: nil, error: nil, stderrTail: "")
            return TaskCompletion(record: record, transition: .succeeded)
        }
        func run(_ task: StoredTask, executionId: String, children: [NewChild] = []) throws {
            var completion = success(task, executionId: executionId)
            completion.children = children
            _ = try store.complete(completion, now: now)
        }

        // Two scans' worth of history, so that the table holds far more rows than any one use needs.
        let children = 300
        for scan in 0..<2 {
            now = now.addingTimeInterval(3600)
            let opening = try store.openScan(connectionId: "c", taskType: Self.type, handler: "h", rootTaskId: root, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
            guard case .opened = opening else { Issue.record("scan \(scan): expected a scan, got \(opening)"); return }
            let rootExecution = DeterministicID.random()
            let rootTask = try #require(try store.claim(taskId: root, executionId: rootExecution, owner: owner, now: now))
            let kids = (0..<children).map { NewChild(id: DeterministicID.random(), key: "item:\($0)", taskType: "child", metadata: nil) }
            try run(rootTask, executionId: rootExecution, children: kids)
            _ = database.takeFullScanSteps()
            // Counting the queue reads all of it (the host does it twice a second at most).
            #expect(try store.queueDepth() == children)
            // The host's loop: pick, then a lane's completion and next claim in one transaction.
            var previous: (StoredTask, String)?
            while true {
                let ready = try store.readyTasks(now: now, perConnection: 2)
                _ = try store.nextTaskTime(after: now)
                _ = try store.runningTasks()
                guard let next = ready.first else { break }
                let executionId = DeterministicID.random()
                let completion = previous.map { success($0.0, executionId: $0.1) }
                let claim = ClaimRequest(taskId: next.id, executionId: executionId, owner: owner, options: ClaimOptions())
                let (_, claimed) = try store.complete(completion, thenClaim: claim, now: now)
                previous = (try #require(claimed), executionId)
            }
            if let (task, id) = previous { try run(task, executionId: id) }
            #expect(try store.scan(id: rootTask.scanId)?.status == .success, "scan \(scan) closed")
            // What an operator and the alert rules read per scan.
            _ = try store.taskStates(scanId: rootTask.scanId)
            _ = try store.failedTaskReasons(scanId: rootTask.scanId)
            _ = try store.alertFacts(for: try #require(try store.scan(id: rootTask.scanId)), history: 20)
            _ = try store.runningCount()
            let walked = database.takeFullScanSteps().filter { $0.value > 0 }
            // A few rows per use (a partial index of the running tasks is scanned whole, and it
            // holds at most the concurrency); a statement walking the table is thousands.
            for (sql, steps) in walked where steps > 4 * children {
                Issue.record("scan \(scan): \(steps) rows walked by \(sql)")
            }
        }
    }
}
