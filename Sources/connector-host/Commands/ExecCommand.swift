import ConnectorHost
import Foundation

enum ExecCommand {
    static let spec = CommandSpec(
        name: "exec", abstract: "Run one task of a connection now and print its record.",
        arguments: [ArgumentSpec(name: "connection", help: "The connection to run.")],
        options: [Common.type, Common.config, Common.state, .flag("json", "Print the record as one JSON object."), Common.logLevel, Common.logFormat],
        discussion: """
            The execution opens a scan (trigger "manual") and is recorded in the history; child tasks it schedules run in the
            next `run`. Exits 0 on success, 1 on failure, 78 on a bad config, 75 when a scan of that connection and type is
            already running.
            """)

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args, checkExecutables: true)
        let logger = try Common.logger(args)
        let (connection, type) = try Common.connectionAndType(registry, id: args.positionals[0], type: args.value("type"))
        let store = try Common.openStore(registry)
        let executor = Common.executor(registry, store: store, logger: logger)
        let leases = try Common.leaseKeeper(registry, store: store, command: "exec", logger: logger)
        defer { leases.stop() }
        let handler = registry.handlers[connection.handler]!
        let record: TaskRecord
        do {
            _ = try Reconciler.reconcile(registry, store: store, now: Date())
            let rootTaskId = DeterministicID.rootTaskId(appId: store.appId, connectionId: connection.id, taskType: type)
            let opening = try store.openScan(
                connectionId: connection.id, taskType: type, handler: handler.name, rootTaskId: rootTaskId, trigger: .manual, dueAt: nil, nextDue: nil, now: Date())
            if case .skipped(let open) = opening {
                throw CommandFailure(code: ExitCode.tempFail, message: "error: a scan of \(connection.id)/\(type) is still running (scan \(open)); try again when it ends")
            }
            let executionId = DeterministicID.random()
            guard let task = try store.claim(taskId: rootTaskId, executionId: executionId, owner: .current, options: ClaimOptions(leaseSeconds: registry.leaseSeconds), now: Date()) else {
                throw CommandFailure(code: ExitCode.tempFail, message: "error: a running host picked up \(connection.id)/\(type) first; see its log")
            }
            let finished = try await executor.execute(task, executionId: executionId, registry: registry)
            record = finished.record
            let operations = Common.operations(registry, store: store, logger: logger)
            if try await operations.afterTask(finished) { await operations.notify() }
        } catch let failure as CommandFailure {
            throw failure
        } catch let error as StoreError {
            throw .store(error)
        } catch {
            throw CommandFailure(code: ExitCode.software, message: "error: \(error)")
        }
        if args.flag("json") {
            Common.emit(record.json.serialized())
        } else {
            Common.emit(RecordText.describe(record))
        }
        return record.status == .success ? ExitCode.success : ExitCode.failure
    }
}

/// A task record for people.
enum RecordText {
    /// `stderrLines`: how many of the stderr tail's last lines to show; nil for all of it.
    static func describe(_ r: TaskRecord, stderrLines: Int? = 10) -> String {
        var lines = ["\(r.connectionId)/\(r.type): \(r.status.rawValue)" + (r.failureReason.map { " (\($0.rawValue))" } ?? "")]
        lines.append("  task        \(r.taskId)" + (r.parentTaskId.map { " (child of \($0))" } ?? ""))
        lines.append("  execution   \(r.taskExecutionId)")
        lines.append("  scan        \(r.scanId)")
        lines.append("  handler     \(r.handler), trigger \(r.trigger.rawValue), attempt \(r.attempt)")
        lines.append("  started     \(r.startedAt.formatted(.iso8601)), took \(formatDuration(ms: r.durationMs))")
        if let code = r.exitCode { lines.append("  exit code   \(code)") }
        if let signal = r.signal { lines.append("  signal      \(signal)") }
        if r.timedOut { lines.append("  timed out   yes") }
        if let error = r.error { lines.append("  error       \(error)") }
        if let result = r.result { lines.append("  result      \(result.serialized())") }
        if let records = r.records { lines.append("  records     \(records)") }
        if !r.stderrTail.isEmpty {
            let all = r.stderrTail.split(separator: "\n", omittingEmptySubsequences: false)
            let tail = stderrLines.map { all.suffix($0) } ?? all[...]
            lines.append(stderrLines == nil ? "  stderr (tail):" : "  stderr (last lines):")
            lines += tail.map { "    \($0)" }
        }
        return lines.joined(separator: "\n")
    }
}
