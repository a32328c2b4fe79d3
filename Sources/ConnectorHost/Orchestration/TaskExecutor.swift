#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// What one claimed task's execution came to, after its outcome was committed.
public struct FinishedTask: Sendable {
    public var record: TaskRecord
    public var transition: TaskTransition
    public var completion: CompletionResult
    /// Stopped by the host's shutdown: re-queued, not a failure of the pass.
    public var interrupted: Bool
}

/// Runs one claimed task end to end: the agent, child validation, the retry decision, and the
/// single transaction that records all of it. Shared by `exec` and the scheduler.
public struct TaskExecutor: Sendable {
    public var store: StoreAccess
    public var runner: AgentRunner
    public var logger: Logger
    /// Earlier successful scans the alert rules compare against: a completion that closes its
    /// scan reads the scan's `AlertFacts` in its own transaction (`TaskCompletion.alertHistory`).
    /// nil: the completion does not read them (`HostOperations` then reads them itself).
    public var alertHistory: Int?

    public init(store: StoreAccess, runner: AgentRunner, logger: Logger, alertHistory: Int? = nil) {
        self.store = store
        self.runner = runner
        self.logger = logger
        self.alertHistory = alertHistory
    }

    /// Runs a task already claimed.
    public func execute(_ task: StoredTask, executionId: String, registry: Registry) async throws(StoreError) -> FinishedTask {
        try await SupervisorThreads.perform { cancelFD in
            Result { () throws(StoreError) in try executeBlocking(task, executionId: executionId, registry: registry, cancelFD: cancelFD) }
        }.get()
    }

    /// The whole execution on the calling supervisor thread: store calls are made directly (a
    /// wait for SQLite's lock blocks this thread, never one of the async pool).
    func executeBlocking(_ task: StoredTask, executionId: String, registry: Registry, cancelFD: Int32) throws(StoreError) -> FinishedTask {
        let outcome = try run(task, executionId: executionId, registry: registry, cancelFD: cancelFD)
        let result = try store.store.complete(outcome.completion, now: Date())
        return finish(outcome, result)
    }

    /// A task's agent has ended and its outcome is decided, not yet committed.
    struct Outcome: Sendable {
        var completion: TaskCompletion
        var interrupted: Bool
        var children: Int
    }

    /// Runs the claimed task's agent and decides its outcome: child validation, the retry
    /// decision. Reads the store (the scan's size) but writes nothing.
    /// `whileRunning` is called at each `ChildMilestone` of the agent (`AgentRunner.runBlocking`).
    func run(
        _ task: StoredTask, executionId: String, registry: Registry, cancelFD: Int32, payloadSlot: PayloadSlot? = nil,
        whileRunning: (ChildMilestone) -> Void = { _ in }
    ) throws(StoreError) -> Outcome {
        let store = self.store.store
        let now = Date()
        guard let connection = registry.connections[task.connectionId], let handler = registry.handlers[connection.handler] else {
            let record = TaskRecord(
                taskId: task.id, taskExecutionId: executionId, scanId: task.scanId, parentTaskId: task.parentTaskId, connectionId: task.connectionId,
                handler: "", type: task.taskType, trigger: task.trigger, status: .failure, failureReason: .nonRetryableError, exitCode: nil, signal: nil,
                timedOut: false, startedAt: now, durationMs: 0, attempt: task.attempt, result: nil,
                error: "connection \(task.connectionId) is no longer in the config", stderrTail: "")
            var completion = TaskCompletion(record: record, transition: .failed(.nonRetryableError, record.error))
            completion.alertHistory = alertHistory
            return Outcome(completion: completion, interrupted: false, children: 0)
        }
        let context = TaskContext(
            taskId: task.id, taskExecutionId: executionId, scanId: task.scanId, parentTaskId: task.parentTaskId, connectionId: connection.id,
            taskType: task.taskType, trigger: task.trigger, attempt: task.attempt, taskMetadata: task.metadata, persistentTaskMetadata: task.checkpoint)
        let execution = runner.runBlocking(
            handler: handler, connection: connection, context: context, configDirectory: registry.directory, cancelFD: cancelFD,
            payloadSlot: payloadSlot, onSpawn: { process in try? store.recordSpawn(taskId: task.id, executionId: executionId, agent: process) }, whileRunning: whileRunning)
        var record = execution.record
        record.records = execution.report.stats?.records
        var verdict = execution.verdict
        var children: [NewChild] = []
        if record.status == .success && !execution.report.children.isEmpty {
            let tasksInScan = try store.taskCount(scanId: task.scanId)
            let validation = ChildRequests.validate(
                execution.report.children,
                context: .init(
                    appId: runner.appId, scanId: task.scanId, parentTaskId: task.id, parentTaskType: task.taskType, parentDepth: task.depth,
                    handlerTaskTypes: handler.taskTypes, tasksInScan: tasksInScan, limits: registry.limits))
            switch validation {
            case .success(let valid):
                children = valid
            case .failure(let failure):
                verdict.status = .failure
                verdict.failureReason = .nonRetryableError
                verdict.error = failure.description
                record.status = .failure
                record.failureReason = .nonRetryableError
                record.error = failure.description
            }
        }
        let decision = RetryDecision.decide(
            verdict: verdict, attempt: task.attempt, rateLimitedSoFar: task.rateLimitedSeconds, policy: handler.retry ?? registry.retry, now: Date())
        var completion = TaskCompletion(record: record, transition: decision.transition)
        completion.alertHistory = alertHistory
        if record.status == .success {
            completion.children = children
            completion.checkpoint = execution.report.checkpoint
        }
        completion.stats = execution.report.stats
        completion.pauseConnection = decision.pauseConnection
        completion.freesLimitedRoom = connection.maxConcurrency != nil || handler.maxConcurrency != nil
        return Outcome(completion: completion, interrupted: verdict.interrupted, children: children.count)
    }

    /// The committed outcome, logged.
    func finish(_ outcome: Outcome, _ result: CompletionResult) -> FinishedTask {
        let record = outcome.completion.record
        log(record, transition: outcome.completion.transition, result: result, children: outcome.children)
        return FinishedTask(record: record, transition: outcome.completion.transition, completion: result, interrupted: outcome.interrupted)
    }

    /// Runs `first`, then each job the scheduler reserves on `lane`, on one supervisor thread.
    /// Returns at once; the lane reports each job's fate.
    func startLane(_ lane: Lane, with first: Lane.Job) {
        SupervisorThreads.shared.run { [self] in
            runLane(lane, first: first)
            lane.cancellation.close()
        }
    }

    /// The lane's loop. Once an agent is spawned, the previous agent's outcome is committed and
    /// the lane's reservation claimed, in one transaction, while the agent runs; when it ends,
    /// the task claimed ahead starts at once. The commit, the claim and the scheduler's turn so
    /// overlap an agent instead of standing between two. A task is still claimed before its agent
    /// starts, and an outcome committed after its agent ends; a host that crashes in between
    /// leaves both tasks running in the store, and the next start re-queues them (`Recovery`).
    /// With no reservation in time, the outcome is committed with the next claim once the agent
    /// has ended, still as one transaction.
    func runLane(_ lane: Lane, first: Lane.Job) {
        let store = self.store.store
        let cancelFD = lane.cancellation.readFD
        // An agent's outcome, decided and not yet committed.
        var pending: (outcome: Outcome, job: Lane.Job)?
        // A task claimed while the previous agent ran, not started yet.
        var ahead: (job: Lane.Job, task: StoredTask)?
        var next: Lane.Job? = first
        // The lane's payload file (`PayloadSlot`). Removed before the lane's last report: once
        // the scheduler has it, the host may exit before this thread returns.
        let payloadSlot = PayloadSlot(payloads: runner.payloads)
        func report(_ previous: (outcome: Outcome, job: Lane.Job), _ result: CompletionResult, last: Bool = false) {
            if last { payloadSlot.close() }
            lane.post(.finished(finish(previous.outcome, result), slot: previous.job.slot, connection: previous.job.connection), last: last)
        }
        func fail(_ error: StoreError, _ jobs: [Lane.Job?]) {
            payloadSlot.close()
            Self.fail(lane, error, jobs)
        }
        // Puts a task claimed ahead back in the queue, unrun.
        func giveBack(_ claimed: (job: Lane.Job, task: StoredTask)) throws(StoreError) {
            _ = try store.releaseClaim(taskId: claimed.task.id, executionId: claimed.job.claim.executionId, now: Date())
            lane.post(.notClaimed(slot: claimed.job.slot, connection: claimed.job.connection, stillQueued: true))
        }
        while true {
            let current: (job: Lane.Job, task: StoredTask)
            // Cancelled (the host is stopping): nothing more starts; reserved tasks stay queued.
            let cancelled = lane.cancellation.isFired
            if let claimed = ahead, !cancelled, !lane.isClosed {
                current = claimed
                ahead = nil
            } else {
                if let claimed = ahead {
                    // Stopping: the task claimed ahead goes back to the queue, never started.
                    ahead = nil
                    do throws(StoreError) {
                        try giveBack(claimed)
                    } catch {
                        fail(error, [claimed.job, pending?.job])
                        return
                    }
                    next = lane.takeReservation()
                }
                let claim = cancelled ? nil : next
                let committed: (CompletionResult?, StoredTask?)
                do {
                    committed = try store.complete(pending?.outcome.completion, thenClaim: claim?.claim, now: Date())
                } catch {
                    fail(error, [pending?.job, next])
                    return
                }
                if let previous = pending, let result = committed.0 { report(previous, result, last: next == nil) }
                pending = nil
                // No job: the lane closed itself when it found no reservation.
                guard let job = next else { return }
                guard let task = committed.1 else {
                    payloadSlot.close()
                    lane.stop(with: .notClaimed(slot: job.slot, connection: job.connection, stillQueued: false))
                    return
                }
                current = (job, task)
            }

            var hookFailure: (error: StoreError, reserved: Lane.Job?)?
            let outcome: Outcome
            do throws(StoreError) {
                outcome = try run(
                    current.task, executionId: current.job.claim.executionId, registry: current.job.registry, cancelFD: cancelFD, payloadSlot: payloadSlot
                ) { milestone in
                    if milestone == .noticed {
                        // Not a short agent: the task claimed ahead is given back rather than
                        // held from other lanes and hosts while this one runs on, and so are
                        // the reservations past one.
                        for job in lane.holdOneAtMost() {
                            lane.post(.notClaimed(slot: job.slot, connection: job.connection, stillQueued: true))
                        }
                        guard let claimed = ahead else { return }
                        ahead = nil
                        do throws(StoreError) {
                            try giveBack(claimed)
                        } catch {
                            hookFailure = (error, claimed.job)
                            lane.cancellation.fire()
                        }
                        return
                    }
                    // Just spawned: commit the previous outcome, claim the next task.
                    lane.holdFull()
                    let reserved = lane.takeReservationIfReady()
                    guard pending != nil || reserved != nil else { return }
                    do throws(StoreError) {
                        let committed = try store.complete(pending?.outcome.completion, thenClaim: reserved?.claim, now: Date())
                        if let previous = pending, let result = committed.0 { report(previous, result) }
                        pending = nil
                        if let reserved {
                            if let task = committed.1 {
                                ahead = (reserved, task)
                            } else {
                                lane.post(.notClaimed(slot: reserved.slot, connection: reserved.connection, stillQueued: false))
                            }
                        }
                    } catch {
                        // Nothing was recorded: the lane cannot go on, so its agent is stopped too.
                        hookFailure = (error, reserved)
                        lane.cancellation.fire()
                    }
                }
            } catch {
                // The task is claimed but its outcome cannot be decided (the store failed a
                // read): it stays running, and is recovered at the next start.
                fail(error, [pending?.job, ahead?.job, current.job])
                return
            }
            if let hookFailure {
                fail(hookFailure.error, [pending?.job, hookFailure.reserved, current.job])
                return
            }
            if let previous = pending {
                // The agent never started, so the previous outcome was not committed meanwhile.
                do {
                    if let result = try store.complete(previous.outcome.completion, thenClaim: nil, now: Date()).0 { report(previous, result) }
                } catch {
                    fail(error, [previous.job, current.job])
                    return
                }
            }
            pending = (outcome, current.job)
            // Interrupted: the lane takes no more work (the reservation is reported unclaimed).
            if ahead == nil { next = lane.takeReservation() }
        }
    }

    /// Ends the lane on a store failure: every job it still holds is reported unrecorded (the
    /// scheduler stops the host; tasks left running are recovered at the next start).
    static func fail(_ lane: Lane, _ error: StoreError, _ jobs: [Lane.Job?]) {
        let jobs = jobs.compactMap { $0 }
        for job in jobs.dropLast() { lane.post(.failedToRecord(error, slot: job.slot, connection: job.connection)) }
        if let last = jobs.last { lane.stop(with: .failedToRecord(error, slot: last.slot, connection: last.connection)) }
    }

    func log(_ record: TaskRecord, transition: TaskTransition, result: CompletionResult, children: Int) {
        // A success and its scan's end are logged at info: when that is filtered out, as it
        // mostly is in production, their lines are not built at all (this runs for every task).
        if case .succeeded = transition, logger.minimum > .info { return }
        let label = "\(record.connectionId)/\(record.type)"
        let meta: KeyValuePairs<String, String> = ["task": record.taskId, "attempt": String(record.attempt), "ms": String(record.durationMs)]
        switch transition {
        case .succeeded:
            logger.info(label, "succeeded" + (children > 0 ? ", \(result.childrenAdded) new child task(s)" : ""), meta)
        case .failed(let reason, let message):
            logger.error(label, "failed \(reason.rawValue): \(message ?? "")", meta)
        case .retry(let at, let attempt):
            logger.warning(label, "\(record.failureReason?.rawValue ?? "failed"): \(record.error ?? ""); attempt \(attempt) at \(Timestamp.iso8601(at))", meta)
        case .snooze(let until, _):
            logger.warning(label, "rate limited; snoozed until \(Timestamp.iso8601(until))", meta)
        case .requeue:
            logger.warning(label, "interrupted; re-queued", meta)
        }
        if let scan = result.closedScan {
            logger.info(label, "scan \(scan.status.rawValue): \(scan.succeeded)/\(scan.tasks) tasks succeeded, \(scan.failed) failed, \(scan.skipped) skipped, \(scan.records) records" + (scan.checkpointCommitted ? ", checkpoint committed" : ""), ["scan": scan.id])
        }
    }
}
