import ConnectorHost
import Foundation

enum ScansCommand {
    static let spec = CommandSpec(
        name: "scans", abstract: "List scans (a root task and its fan-out), newest first, or summarise one (scans show <scanId>).",
        arguments: [ArgumentSpec(name: "show", help: "`show` to summarise one scan.", optional: true), ArgumentSpec(name: "scanId", help: "With show: the scan.", optional: true)],
        options: [.value("connection", "id", "Only this connection."), Common.limit, Common.json, Common.config, Common.state],
        discussion: "scans show prints the scan's tasks counted per state, its slowest tasks and its failures.")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args)
        let store = try Common.openStore(registry)
        if let id = try Common.showTarget(args, spec, idName: "scanId") { return try show(id, store: store, json: args.flag("json")) }
        let scans: [ScanSummary]
        let limit = try Common.limit(args, default: 20)
        do { scans = try store.scans(connectionId: args.value("connection"), limit: limit) } catch { throw .store(error) }
        if args.flag("json") {
            Common.emit(JSONValue.array(scans.map(json)).serialized())
            return ExitCode.success
        }
        guard !scans.isEmpty else {
            Common.emit("no scans yet")
            return ExitCode.success
        }
        var table = Table(headers: ["STARTED", "CONNECTION", "TYPE", "TRIGGER", "STATUS", "TASKS", "OK", "FAILED", "SKIPPED", "RECORDS", "DURATION", "SCAN"])
        for s in scans {
            table.rows.append([
                Timestamp.short(s.startedAt), s.connectionId, s.taskType, s.trigger.rawValue, s.status.rawValue, String(s.tasks), String(s.succeeded), String(s.failed),
                String(s.skipped), String(s.records), s.durationSeconds.map { formatDuration(ms: Int($0 * 1000)) } ?? "", s.id,
            ])
        }
        Common.emit(table.rendered)
        return ExitCode.success
    }

    static func show(_ id: String, store: SQLStore, json asJSON: Bool) throws(CommandFailure) -> Int32 {
        let found: ScanSummary?
        let states: [TaskState: Int]
        let executions: [TaskRecord]
        do {
            found = try store.scan(id: id)
            states = try store.taskStates(scanId: id)
            executions = try store.executions(scanId: id)
        } catch {
            throw .store(error)
        }
        guard let scan = found else {
            throw CommandFailure(code: ExitCode.failure, message: "error: no scan \(id) in \(store.location) (ids are listed by `connector-host scans`)")
        }
        let slowest = executions.filter { $0.status != .skipped }.sorted { $0.durationMs > $1.durationMs }.prefix(5)
        let failures = executions.filter { $0.status == .failure }
        let skipped = executions.filter { $0.status == .skipped }.count
        var counts = JSONObject()
        for state in [TaskState.queued, .running, .snoozed, .succeeded, .failed] { counts[state.rawValue] = .int(states[state] ?? 0) }
        counts["skipped"] = .int(skipped)
        if asJSON {
            var o = JSONObject()
            o["scan"] = json(scan)
            o["tasks"] = .object(counts)
            o["executions"] = .int(executions.count)
            o["slowest"] = .array(slowest.map(\.json))
            o["failures"] = .array(failures.map(\.json))
            Common.emit(JSONValue.object(o).serialized())
            return ExitCode.success
        }
        var lines = [
            "scan \(scan.id): \(scan.connectionId)/\(scan.taskType), \(scan.status.rawValue)",
            "  trigger     \(scan.trigger.rawValue), root task \(scan.rootTaskId)",
            "  started     \(Timestamp.short(scan.startedAt))" + (scan.endedAt.map { ", ended \(Timestamp.short($0)) (\(formatDuration(ms: Int($0.timeIntervalSince(scan.startedAt) * 1000))))" } ?? ", still running"),
            "  tasks       " + counts.members.map { "\($0.key) \($0.value.intValue ?? 0)" }.joined(separator: ", "),
            "  executions  \(executions.count), records \(scan.records)" + (scan.checkpointCommitted ? ", checkpoint committed" : ""),
        ]
        if !slowest.isEmpty {
            lines.append("  slowest:")
            for r in slowest { lines.append("    \(formatDuration(ms: r.durationMs).padding(toLength: 10, withPad: " ", startingAt: 0)) \(r.taskId.prefix(8)) \(r.type) attempt \(r.attempt) \(r.status.rawValue)") }
        }
        if !failures.isEmpty {
            lines.append("  failures:")
            for r in failures { lines.append("    \(r.taskId.prefix(8)) attempt \(r.attempt) \(r.failureReason?.rawValue ?? ""): \(r.error ?? "") (runs show \(r.taskExecutionId))") }
        }
        Common.emit(lines.joined(separator: "\n"))
        return ExitCode.success
    }

    static func json(_ s: ScanSummary) -> JSONValue {
        var o = JSONObject()
        o["scanId"] = .string(s.id)
        o["connectionId"] = .string(s.connectionId)
        o["type"] = .string(s.taskType)
        o["rootTaskId"] = .string(s.rootTaskId)
        o["trigger"] = .string(s.trigger.rawValue)
        o["status"] = .string(s.status.rawValue)
        o["startedAt"] = .string(Timestamp.iso8601(s.startedAt))
        o["endedAt"] = s.endedAt.map { .string(Timestamp.iso8601($0)) } ?? .null
        o["durationMs"] = s.durationSeconds.map { .int(Int($0 * 1000)) } ?? .null
        o["tasks"] = .int(s.tasks)
        o["succeeded"] = .int(s.succeeded)
        o["failed"] = .int(s.failed)
        o["skipped"] = .int(s.skipped)
        o["records"] = .int(s.records)
        o["checkpointCommitted"] = .bool(s.checkpointCommitted)
        return .object(o)
    }
}
