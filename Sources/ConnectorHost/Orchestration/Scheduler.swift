#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

public struct PassOptions: Sendable {
    /// Only these connections run (all when empty). Reconciliation always covers all.
    public var connections: Set<String> = []
    public var environment: String?
    /// `run` waits for retries and snoozes due at most this long after the pass started; later
    /// ones stay queued for the next pass.
    public var maxWaitSeconds: Double = 120
    /// Keep going: sleep until the next due time or new work, reload on SIGHUP.
    public var daemon = false

    public init(connections: Set<String> = [], environment: String? = nil, maxWaitSeconds: Double = 120, daemon: Bool = false) {
        self.connections = connections
        self.environment = environment
        self.maxWaitSeconds = maxWaitSeconds
        self.daemon = daemon
    }
}

public struct PassSummary: Sendable {
    public var changes: [Reconciler.Change] = []
    public var recovered: [Recovery.Recovered] = []
    public var opened: [String] = []
    public var skippedTicks = 0
    /// The last `shownLimit` executions, oldest first, for the table a pass prints; the counts
    /// cover them all.
    public var finished: [FinishedTask] { Array(recent[oldest...] + recent[..<oldest]) }
    /// A ring: once full, each execution overwrites the oldest (removing the first of 200 moved
    /// the other 199, per task).
    private var recent: [FinishedTask] = []
    private var oldest = 0
    public private(set) var executions = 0
    public private(set) var succeeded = 0
    /// Failed, not counting interrupted ones (re-queued, not failures).
    public private(set) var failed = 0
    public private(set) var interrupted = 0
    public var leftQueued = 0
    /// A pass can run a 10,000-child fan-out; its summary must not hold 10,000 records.
    public static let shownLimit = 200
    /// Any execution of the pass failed (interrupted ones are re-queued, not failures).
    public var anyFailed: Bool { failed > 0 }
    /// Executions run but left out of `finished`.
    public var notShown: Int { executions - recent.count }

    public init() {}

    mutating func record(_ task: FinishedTask) {
        executions += 1
        if task.interrupted {
            interrupted += 1
        } else if task.record.status == .success {
            succeeded += 1
        } else if task.record.status == .failure {
            failed += 1
        }
        if recent.count < Self.shownLimit {
            recent.append(task)
        } else {
            recent[oldest] = task
            oldest = (oldest + 1) % Self.shownLimit
        }
    }
}

/// The scheduling loop behind `run` (one pass) and `daemon` (forever).
///
/// Agents, timers and the signal listener are children of one task group, so the loop wakes only
/// for an event: an agent finished, a due time came, a signal arrived. Nothing polls.
public final class Scheduler: Sendable {
    let store: StoreAccess
    let executor: TaskExecutor
    let logger: Logger
    let inbox: SignalInbox?
    let reload: @Sendable () throws(ConfigError) -> Registry
    /// Retention, alerts, notifications and metrics; nil runs tasks only.
    let operations: HostOperations?
    /// Told whenever a task starts or ends (the CLI's progress line).
    let progress: (@Sendable (PassProgress) -> Void)?
    /// On a shared state: wakes the loop when any host queues work or frees room under a limit.
    let wakeups: StoreWakeups?

    public init(
        store: StoreAccess, executor: TaskExecutor, logger: Logger, inbox: SignalInbox?, operations: HostOperations? = nil,
        progress: (@Sendable (PassProgress) -> Void)? = nil, wakeups: StoreWakeups? = nil, reload: @escaping @Sendable () throws(ConfigError) -> Registry
    ) {
        self.wakeups = wakeups
        self.store = store
        self.executor = executor
        self.logger = logger
        self.inbox = inbox
        self.operations = operations
        self.progress = progress
        self.reload = reload
    }

    enum Event: Sendable {
        /// What became of a job handed to `lane`; `last`: the lane has stopped. A report's `slot`
        /// is the candidate's id, which held the slot; the task run can be another of the same
        /// connection (`ClaimOptions.orNextOf`).
        case lane(Lane.Report, last: Bool, lane: Lane)
        case timer(Date)
        case signal(Int32?)
        case graceExpired
        case notified
        /// The next batch of a sweep of due ticks (`DueSweep`) is to be opened.
        case sweepContinues
        /// A NOTIFY from a host sharing the state; false when the listener closed.
        case workQueued(Bool)
    }

    /// Reconciles, recovers, enqueues what is due, and runs tasks until nothing is runnable
    /// (or, as a daemon, until SIGTERM/SIGINT).
    public func run(registry initial: Registry, options: PassOptions) async throws(StoreError) -> PassSummary {
        var registry = initial
        var summary = PassSummary()
        let start = Date()
        summary.changes = try await store { (s) throws(StoreError) in try Reconciler.reconcile(initial, store: s, now: start) }
        for change in summary.changes { logChange(change, registry) }
        let payloads = executor.runner.payloads
        summary.recovered = try await store { (s) throws(StoreError) in try Recovery.recover(store: s, payloads: payloads, now: start) }
        for r in summary.recovered {
            logger.warning("recovery", "re-queued task \(r.taskId) left running by host pid \(r.hostPid)" + (r.agentsKilled > 0 ? "; killed \(r.agentsKilled) agent process(es)" : ""))
        }
        try await operations?.atPassStart(now: start)
        await deliverLifecycleEvents(registry)
        var state = LoopState(options: options, started: start)
        let eventsResult: Result<Void, StoreError> = await withTaskGroup(of: Event.self) { group in
            if let inbox { group.addTask { .signal(await inbox.next()) } }
            if let wakeups { group.addTask { .workQueued(await wakeups.next()) } }
            do throws(StoreError) {
                // The first batch of due ticks, then the loop: the rest are opened between its other events.
                try await startSweep(&state, registry: registry, options: options, summary: &summary, group: &group)
                while true {
                    if !state.draining { try await fill(&state, registry: registry, group: &group) }
                    if state.lanes.isEmpty && state.draining { break }
                    if !state.draining && state.lanes.count < registry.concurrency {
                        // Only future times: work due now that could not start (filtered out, or
                        // held back by a limit) waits for a running task to finish instead.
                        let now = Date()
                        let taskTime = try await store { (s) throws(StoreError) in try s.nextTaskTime(after: now) }
                        // The window is counted from the pass's start, not from each wake: a task
                        // that keeps snoozing must not hold a cron-driven pass open for hours.
                        let limit = options.daemon ? Date.distantFuture : start.addingTimeInterval(options.maxWaitSeconds)
                        // A sweep under way sets the next due time when it ends.
                        let wake = [taskTime, options.daemon && state.sweep == nil ? state.nextScheduleDue : nil].compactMap { $0 }.min()
                        if let wake, wake <= limit {
                            state.arm(wake, group: &group)
                        } else if state.lanes.isEmpty && state.sweep == nil && !options.daemon {
                            break
                        }
                    }
                    guard let event = await group.next() else { break }
                    switch event {
                    case .lane(let report, let last, let lane):
                        if last {
                            state.lanes[lane.id] = nil
                        } else {
                            group.addTask {
                                let (report, last) = await lane.next()
                                return .lane(report, last: last, lane: lane)
                            }
                        }
                        try await handle(report, state: &state, registry: registry, summary: &summary, group: &group)
                    case .timer(let at):
                        if state.timer == at { state.timer = nil }
                        state.candidatesStale = true
                        if options.daemon && !state.draining { try await startSweep(&state, registry: registry, options: options, summary: &summary, group: &group) }
                    case .sweepContinues:
                        try await continueSweep(&state, registry: registry, options: options, summary: &summary, group: &group)
                    case .workQueued(let open):
                        guard open, let wakeups else { break }
                        group.addTask { .workQueued(await wakeups.next()) }
                        // Not a re-read of the queue at once: the candidates in hand are still
                        // runnable work. fill re-reads when they run out or none can start.
                        state.mayHaveMore = true
                        state.queuedElsewhere = true
                    case .notified:
                        state.notifying = false
                        if state.notifyAgain, let operations {
                            state.notifyAgain = false
                            state.notify(operations, group: &group)
                        }
                    case .graceExpired:
                        if !state.lanes.isEmpty {
                            logger.warning("shutdown", "grace period over; stopping \(state.lanes.count) running agent(s)")
                            group.cancelAll()
                        }
                    case .signal(let number):
                        guard let number, let inbox else { break }
                        group.addTask { .signal(await inbox.next()) }
                        try await handle(signal: number, state: &state, registry: &registry, options: options, summary: &summary, group: &group)
                    }
                }
                group.cancelAll()
                return .success(())
            } catch {
                group.cancelAll()
                return .failure(error)
            }
        }
        try eventsResult.get()
        summary.leftQueued = try await store { (s) throws(StoreError) in try s.queueDepth() }
        // A delivery cut short when the loop ended is not an attempt: finish it now.
        await operations?.notify()
        await operations?.writeMetrics()
        return summary
    }

    func logChange(_ change: Reconciler.Change, _ registry: Registry) {
        logger.info(change.connectionId, "connection \(change.event.rawValue)")
        if let fields = registry.connections[change.connectionId]?.fields {
            logger.debug(change.connectionId, "fields: \(LogSanitizer.sanitize(.object(fields)).serialized())")
        }
    }

    func report(_ state: inout LoopState) async {
        guard let progress else { return }
        // Counting the queue reads all of it: twice a second at most, not at every start and end
        // (that made a 10,000-child fan-out quadratic).
        let now = Date()
        if now.timeIntervalSince(state.queueCountedAt) >= 0.5 {
            state.queued = (try? await store { (s) throws(StoreError) in try s.queueDepth() }) ?? state.queued
            state.queueCountedAt = now
        }
        progress(PassProgress(running: state.lanes.count, queued: state.queued, done: state.done, failed: state.failed, elapsed: now.timeIntervalSince(state.started)))
    }

    // MARK: Starting tasks

    /// Limits are checked here per host; on a shared state the claim checks them across hosts too.
    func claimOptions(for task: StoredTask, registry: Registry) -> ClaimOptions {
        let connection = registry.connections[task.connectionId]
        let handler = connection.flatMap { registry.handlers[$0.handler] }
        return ClaimOptions(
            leaseSeconds: registry.leaseSeconds, connectionLimit: connection?.maxConcurrency, handler: handler?.name, handlerLimit: handler?.maxConcurrency,
            orNextOf: task.connectionId)
    }

    func isSelected(_ connectionId: String, registry: Registry, options: PassOptions) -> Bool {
        if !options.connections.isEmpty && !options.connections.contains(connectionId) { return false }
        if let environment = options.environment, registry.connections[connectionId]?.environment != environment { return false }
        return true
    }

    // MARK: Signals

    func handle(
        signal number: Int32, state: inout LoopState, registry: inout Registry, options: PassOptions, summary: inout PassSummary,
        group: inout TaskGroup<Event>
    ) async throws(StoreError) {
        switch number {
        case SIGTERM, SIGINT:
            if state.draining {
                if number == SIGINT {
                    logger.warning("shutdown", "second SIGINT: stopping \(state.lanes.count) agent(s) now")
                    group.cancelAll()
                    let agents = ProcessSupervisor.activeAgents.withLock { Array($0) }
                    for pid in agents { _ = killpg(pid, SIGKILL) }
                }
                return
            }
            state.draining = true
            // Reserved tasks stay queued; each lane stops after its current agent.
            for lane in state.lanes.values {
                for job in lane.close() { state.release(job.slot, connection: job.connection, handler: nil) }
            }
            let grace = registry.shutdownGraceSeconds
            logger.info("shutdown", "\(SignalNames.name(number)): starting nothing new; waiting up to \(Int(grace))s for \(state.lanes.count) running agent(s)")
            group.addTask {
                try? await Task.sleep(for: .seconds(grace))
                return .graceExpired
            }
        case SIGHUP:
            guard options.daemon else {
                logger.info("config", "SIGHUP: a run pass reads the config once; ignored")
                return
            }
            do {
                let fresh = try reload()
                let changes = try await store { (s) throws(StoreError) in try Reconciler.reconcile(fresh, store: s, now: Date()) }
                registry = fresh
                summary.changes += changes
                state.candidatesStale = true
                logger.info("config", "reloaded \(fresh.file): \(changes.count) connection change(s)")
                for change in changes { logChange(change, fresh) }
                await deliverLifecycleEvents(registry)
                try await startSweep(&state, registry: registry, options: options, summary: &summary, group: &group)
            } catch let error as ConfigError {
                logger.error("config", "reload failed, keeping the running config:\n\(error)")
            } catch let error as StoreError {
                throw error
            } catch {
                logger.error("config", "reload failed: \(error)")
            }
        case SIGUSR1:
            // `trigger` in another process queued work.
            state.candidatesStale = true
            if options.daemon { try await startSweep(&state, registry: registry, options: options, summary: &summary, group: &group) }
        default:
            break
        }
    }

    // MARK: Lifecycle

    /// Runs each pending CREATED/UPDATED/DELETED event through its handler's agent, if the handler
    /// asked for them (`"lifecycle": true`). Undelivered events are tried again next pass.
    func deliverLifecycleEvents(_ registry: Registry) async {
        guard let deliveries = try? await store({ (s) throws(StoreError) in try s.pendingDeliveries() }) else { return }
        for delivery in deliveries {
            var reader = ConfigReader(directory: registry.directory, checkExecutables: false)
            let json = (try? JSONParser.parse(delivery.configJSON)) ?? .null
            let handlerName = json["handler"]?.stringValue ?? ""
            guard let handler = registry.handlers[handlerName], handler.lifecycle,
                let connection = reader.connection(json, id: delivery.connectionId, path: "connections.\(delivery.connectionId)", handlers: registry.handlers, declaredHandlers: Array(registry.handlers.keys))
            else {
                _ = try? await store { (s) throws(StoreError) in try s.finishDelivery(eventId: delivery.eventId, delivered: true) }
                continue
            }
            let executionId = DeterministicID.random()
            let taskId = DeterministicID.uuid5(namespace: DeterministicID.namespace(appId: executor.runner.appId), name: "lifecycle:\(delivery.eventId)").uuidString.lowercased()
            let context = TaskContext(
                taskId: taskId, taskExecutionId: executionId, scanId: executionId, connectionId: connection.id, taskType: "connection_change",
                trigger: .connectionChange, attempt: delivery.attempts + 1, connectionEvent: delivery.event.rawValue)
            let execution = await executor.runner.run(handler: handler, connection: connection, context: context, configDirectory: registry.directory)
            let record = execution.record
            let delivered = record.status == .success
            _ = try? await store { (s) throws(StoreError) in
                try s.recordExecution(record)
                try s.finishDelivery(eventId: delivery.eventId, delivered: delivered)
            }
            logger.log(delivered ? .info : .error, connection.id, "lifecycle \(delivery.event.rawValue) \(delivered ? "delivered" : "failed: \(record.error ?? "")")")
        }
    }
}
