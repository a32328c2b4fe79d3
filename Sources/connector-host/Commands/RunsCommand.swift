import ConnectorHost
import Foundation

enum RunsCommand {
    static let spec = CommandSpec(
        name: "runs", abstract: "List task executions, newest first, or show one in full (runs show <taskExecutionId>).",
        arguments: [ArgumentSpec(name: "show", help: "`show` to print one execution in full.", optional: true), ArgumentSpec(name: "taskExecutionId", help: "With show: the execution.", optional: true)],
        options: [
            Common.limit, .value("type", "type", "Only this task type."), .value("connection", "id", "Only this connection."),
            .value("status", "status", "Only success, failure, running or skipped."), .value("since", "duration", "Only executions started this recently (e.g. 24h)."),
            Common.json, Common.config, Common.state,
        ],
        discussion: "Default limit 20. --json prints an array of task records (runs show --json: one record).")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args)
        let store = try Common.openStore(registry)
        if let id = try Common.showTarget(args, spec, idName: "taskExecutionId") { return try show(id, store: store, json: args.flag("json")) }
        var filter = ExecutionFilter(limit: try Common.limit(args, default: 20), taskType: args.value("type"), connectionId: args.value("connection"))
        if let text = args.value("status") {
            guard let status = TaskRecord.Status(rawValue: text) else {
                throw CommandFailure(code: ExitCode.usage, message: "error: --status takes success, failure, running or skipped, got '\(text)'")
            }
            filter.status = status
        }
        if let seconds = try Common.duration(args, "since") { filter.since = Date().addingTimeInterval(-Double(seconds)) }
        let records: [TaskRecord]
        do { records = try store.executions(filter) } catch { throw .store(error) }
        if args.flag("json") {
            Common.emit(JSONValue.array(records.map(\.json)).serialized())
            return ExitCode.success
        }
        guard !records.isEmpty else {
            Common.emit("no executions match")
            return ExitCode.success
        }
        var table = Table(headers: ["TIME", "CONNECTION", "TYPE", "TASK", "ATTEMPT", "STATUS", "REASON", "DURATION", "RECORDS", "EXECUTION"])
        for r in records {
            table.rows.append([
                Timestamp.short(r.startedAt), r.connectionId, r.type, String(r.taskId.prefix(8)), String(r.attempt), r.status.rawValue, r.failureReason?.rawValue ?? "",
                formatDuration(ms: r.durationMs), r.records.map(String.init) ?? "", r.taskExecutionId,
            ])
        }
        Common.emit(table.rendered)
        return ExitCode.success
    }

    static func show(_ id: String, store: SQLStore, json: Bool) throws(CommandFailure) -> Int32 {
        let found: TaskRecord?
        do { found = try store.execution(id: id) } catch { throw .store(error) }
        guard let record = found else {
            throw CommandFailure(code: ExitCode.failure, message: "error: no execution \(id) in \(store.location) (ids are listed by `connector-host runs`)")
        }
        Common.emit(json ? record.json.serialized() : RecordText.describe(record, stderrLines: nil))
        return ExitCode.success
    }
}
