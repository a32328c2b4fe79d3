import Foundation

/// The store alone, in process: how many tasks a second it can enqueue, and claim and complete,
/// with no agent in the way. `bench/run.sh` reports it next to the end-to-end figures, so a
/// regression shows whether it is the database or the process handling.
public enum StoreBenchmark {
    public struct Figures: Sendable {
        public var tasks: Int
        public var enqueueSeconds: Double
        public var claimCompleteSeconds: Double
        public var enqueuePerSecond: Double { Double(tasks) / enqueueSeconds }
        public var claimCompletePerSecond: Double { Double(tasks) / claimCompleteSeconds }
    }

    /// One scan whose root fans out to `tasks` children in one completion (the enqueue), then
    /// each child claimed and completed in its own transactions, as the scheduler does.
    public static func run(path: String, tasks: Int, durability: Durability) throws(StoreError) -> Figures {
        let store = try SQLStore(path: path, durability: durability)
        let now = Date()
        let connection = StoredConnection(
            id: "bench", handler: "noop", environment: "default", configHash: "x", configJSON: "{}", enabled: true, state: .active, stateReason: nil,
            deletedAt: nil)
        _ = try store.saveConnection(connection, deliver: false, now: now)
        let rootId = DeterministicID.rootTaskId(appId: store.appId, connectionId: "bench", taskType: "t")
        guard case .opened(let scanId) = try store.openScan(
            connectionId: "bench", taskType: "t", handler: "noop", rootTaskId: rootId, trigger: .manual, dueAt: nil, nextDue: nil, now: now)
        else { throw StoreError(kind: .other, message: "a scan of the benchmark connection is already open", path: path) }

        let enqueueStart = ContinuousClock.now
        let rootExecution = DeterministicID.random()
        guard try store.claim(taskId: rootId, executionId: rootExecution, owner: .current, now: now) != nil else {
            throw StoreError(kind: .other, message: "cannot claim the benchmark root", path: path)
        }
        var rootCompletion = TaskCompletion(record: record(taskId: rootId, executionId: rootExecution, scanId: scanId, parent: nil), transition: .succeeded)
        rootCompletion.children = (0..<tasks).map { i in
            let key = "item:\(i)"
            return NewChild(id: DeterministicID.childTaskId(appId: store.appId, scanId: scanId, parentTaskId: rootId, key: key), key: key, taskType: "t", metadata: nil)
        }
        _ = try store.complete(rootCompletion, now: Date())
        let enqueueSeconds = seconds(since: enqueueStart)

        let workStart = ContinuousClock.now
        var done = 0
        while done < tasks {
            let ready = try store.readyTasks(now: Date(), perConnection: 64)
            if ready.isEmpty { break }
            for task in ready {
                let executionId = DeterministicID.random()
                guard try store.claim(taskId: task.id, executionId: executionId, owner: .current, now: Date()) != nil else { continue }
                _ = try store.complete(
                    TaskCompletion(record: record(taskId: task.id, executionId: executionId, scanId: scanId, parent: rootId), transition: .succeeded), now: Date())
                done += 1
            }
        }
        return Figures(tasks: done, enqueueSeconds: enqueueSeconds, claimCompleteSeconds: seconds(since: workStart))
    }

    static func record(taskId: String, executionId: String, scanId: String, parent: String?) -> TaskRecord {
        TaskRecord(
            taskId: taskId, taskExecutionId: executionId, scanId: scanId, parentTaskId: parent, connectionId: "bench", handler: "noop", type: "t",
            trigger: parent == nil ? .manual : .child, status: .success, failureReason: nil, exitCode: 0, signal: nil, timedOut: false, startedAt: Date(),
            durationMs: 1, attempt: 1, result: nil, error: nil, stderrTail: "")
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }
}
