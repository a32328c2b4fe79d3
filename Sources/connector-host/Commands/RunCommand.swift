#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConnectorHost
import Foundation

/// `run` (one pass, for cron or a systemd timer) and `daemon` (a long-running scheduler).
enum RunCommand {
    static let passOptions: [OptionSpec] = [
        Common.config, Common.state, .value("connection", "id", "Only run this connection (repeatable).", repeating: true),
        .value("environment", "name", "Only run connections of this environment."),
        .value("wait-lock", "seconds", "Wait this long for another instance to release the state lock instead of exiting 75."),
        Common.logLevel, Common.logFormat,
    ]

    static let runSpec = CommandSpec(
        name: "run", abstract: "One pass: reconcile, recover, enqueue due root tasks, run until nothing is runnable, print a summary.",
        options: passOptions + [.value("max-wait", "seconds", "Wait for retries and snoozes due at most this long after the pass started (default 120).")],
        discussion: """
            Exits 0 when every execution of the pass succeeded, 1 when any failed, 75 when another instance holds the state
            lock (the message names its pid), 78 on a bad config, 74 when the state cannot be written.
            """)

    static let daemonSpec = CommandSpec(
        name: "daemon", abstract: "Run as a scheduler: sleep until the next due time or new work; reload on SIGHUP.",
        options: passOptions,
        discussion: """
            SIGTERM or SIGINT: start nothing new, wait up to shutdownGraceSeconds (default 30) for running agents, then stop
            them; interrupted tasks are re-queued. A second SIGINT stops at once. SIGHUP reloads the config; SIGUSR1 (sent by
            `trigger`) wakes it.
            """)

    static func run(_ args: ParsedArguments, daemon: Bool) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args, checkExecutables: true)
        let logger = try Common.logger(args)
        var options = PassOptions(daemon: daemon)
        options.connections = Set(args.all("connection"))
        for id in options.connections where registry.connections[id] == nil {
            let hint = Suggestion.closest(to: id, in: registry.connections.keys).map { " (did you mean \"\($0)\"?)" } ?? ""
            throw CommandFailure(code: ExitCode.usage, message: "error: \(registry.file): no connection \"\(id)\"\(hint)")
        }
        options.environment = args.value("environment")
        if let text = args.value("max-wait") {
            guard let seconds = Double(text), seconds >= 0 else { throw CommandFailure(code: ExitCode.usage, message: "error: --max-wait takes seconds, got '\(text)'") }
            options.maxWaitSeconds = seconds
        }
        // Signals are watched before anything else, so a SIGTERM during start-up is not lost.
        let inbox = SignalInbox()
        // One pass at a time per state file. A PostgreSQL state is made for several hosts at once:
        // claims and leases keep them apart.
        var lock: InstanceLock?
        if case .file = registry.stateLocation {
            do {
                if let text = args.value("wait-lock") {
                    guard let seconds = Double(text), seconds >= 0 else { throw CommandFailure(code: ExitCode.usage, message: "error: --wait-lock takes seconds, got '\(text)'") }
                    lock = try await InstanceLock.acquire(statePath: registry.statePath, waitingUpTo: seconds)
                } else {
                    lock = try InstanceLock.acquire(statePath: registry.statePath)
                }
            } catch let failure as CommandFailure {
                throw failure
            } catch let failure as InstanceLock.Failure {
                throw CommandFailure(code: failure.exitCode, message: "error: \(failure)")
            } catch {
                throw CommandFailure(code: ExitCode.tempFail, message: "error: \(error)")
            }
        }
        defer { withExtendedLifetime(lock) {} }
        let store = try Common.openStore(registry)
        let executor = Common.executor(registry, store: store, logger: logger)
        let configFile = registry.file
        let stateOverride = args.value("state") ?? ProcessInfo.processInfo.environment["CONNECTOR_HOST_STATE"]
        let operations = Common.operations(registry, store: store, logger: logger)
        let progress = daemon ? nil : ProgressLine()
        let onProgress: (@Sendable (PassProgress) -> Void)? = progress.map { line in { @Sendable p in line.update(p) } }
        let leases = try Common.leaseKeeper(registry, store: store, command: daemon ? "daemon" : "run", logger: logger)
        defer { leases.stop() }
        let wakeups: StoreWakeups?
        do { wakeups = daemon ? try store.makeWakeups() : nil } catch { throw .store(error) }
        defer { wakeups?.close() }
        let scheduler = Scheduler(
            store: StoreAccess(store), executor: executor, logger: logger, inbox: inbox, operations: operations, progress: onProgress, wakeups: wakeups
        ) {
            () throws(ConfigError) -> Registry in
            try RegistryLoader.load(file: configFile, options: .init(checkExecutables: true, stateOverride: stateOverride))
        }
        if daemon { logger.info("daemon", "started", ["pid": String(getpid()), "config": registry.file, "state": registry.stateDescription, "host": leases.host.id]) }
        let summary: PassSummary
        do {
            summary = try await scheduler.run(registry: registry, options: options)
        } catch {
            throw .store(error)
        }
        progress?.finish()
        Common.emit(render(summary))
        if daemon { return ExitCode.success }
        return summary.anyFailed ? ExitCode.failure : ExitCode.success
    }

    static func render(_ summary: PassSummary) -> String {
        var table = Table(headers: ["CONNECTION", "TYPE", "TASK", "ATTEMPT", "STATUS", "REASON", "DURATION", "NEXT"])
        for f in summary.finished {
            let r = f.record
            let next: String
            switch f.transition {
            case .succeeded: next = "done"
            case .failed(let reason, _): next = reason == r.failureReason ? "failed" : "failed \(reason.rawValue)"
            case .retry(let at, let attempt): next = "attempt \(attempt) in \(max(0, Int(at.timeIntervalSinceNow.rounded(.up))))s"
            case .snooze(let until, _): next = "snoozed \(max(0, Int(until.timeIntervalSinceNow.rounded(.up))))s"
            case .requeue: next = "re-queued"
            }
            table.rows.append([r.connectionId, r.type, String(r.taskId.prefix(8)), String(r.attempt), r.status.rawValue, r.failureReason?.rawValue ?? "", formatDuration(ms: r.durationMs), next])
        }
        var parts = ["\(summary.executions) execution(s): \(summary.succeeded) succeeded, \(summary.failed) failed"]
        if summary.interrupted > 0 { parts.append("\(summary.interrupted) interrupted and re-queued") }
        if summary.skippedTicks > 0 { parts.append("\(summary.skippedTicks) tick(s) skipped (previous scan still running)") }
        if !summary.recovered.isEmpty { parts.append("\(summary.recovered.count) task(s) recovered from a stopped host") }
        if !summary.changes.isEmpty { parts.append("\(summary.changes.count) connection change(s)") }
        parts.append("\(summary.leftQueued) task(s) left queued")
        let omitted = summary.notShown > 0 ? "\n(\(summary.notShown) earlier execution(s) not shown; `connector-host runs` has them all)" : ""
        return (summary.finished.isEmpty ? "nothing was due" : table.rendered + omitted) + "\n" + parts.joined(separator: "; ")
    }
}
