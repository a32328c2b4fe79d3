import ConnectorHost
import Foundation

enum StatusCommand {
    static let spec = CommandSpec(
        name: "status", abstract: "Show each connection's health and the host's state: last scan, next run, success rate, p95 duration, alerts.",
        options: [Common.json, Common.config, Common.state],
        discussion: """
            Success rate and p95 duration cover the last 24 hours of executions. Connections are shown as the last `run` or `daemon` saw them.
            On a PostgreSQL state, HOSTS lists the hosts seen in the last 24 hours: each one's heartbeat, running tasks and the
            earliest expiry of its leases; a host whose heartbeat is older than its lease is shown as gone.
            """)

    struct ConnectionStatus {
        var id: String
        var handler: String
        var environment: String
        var state: String
        var lastScan: ScanSummary?
        var nextDue: Date?
        var successRate: Double?
        var p95Ms: Int?
        var openAlerts: Int
    }

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args)
        let store = try Common.openStore(registry)
        var rows: [ConnectionStatus] = []
        let queue: Int
        let running: Int
        let alerts: [Alert]
        let hosts: [HostRecord]
        do {
            alerts = try store.alerts(includeResolved: false, limit: 100_000)
            let schedules = try store.schedules()
            let since = Date().addingTimeInterval(-86400)
            for c in try store.connections(includeDeleted: false) {
                let day = try store.executions(ExecutionFilter(limit: 1_000_000, connectionId: c.id, since: since)).filter { $0.status == .success || $0.status == .failure }
                let ok = day.filter { $0.status == .success }
                rows.append(
                    ConnectionStatus(
                        id: c.id, handler: c.handler, environment: c.environment, state: c.state == .needsReauth ? "needs re-auth" : c.state.rawValue,
                        lastScan: try store.scans(connectionId: c.id, limit: 1).first,
                        nextDue: c.state == .active ? schedules.filter { $0.connectionId == c.id }.compactMap(\.nextDueAt).min() : nil,
                        successRate: day.isEmpty ? nil : Double(ok.count) / Double(day.count),
                        p95Ms: ok.isEmpty ? nil : percentile95(ok.map(\.durationMs)), openAlerts: alerts.filter { $0.connectionId == c.id }.count))
            }
            queue = try store.queueDepth()
            running = try store.runningCount()
            hosts = try store.hosts(since: since)
        } catch {
            throw .store(error)
        }
        let now = Date()
        let shared = store.isShared
        let holder = shared ? nil : InstanceLock.holder(statePath: registry.statePath)
        let size = shared ? 0 : ["", "-wal"].compactMap { try? FileManager.default.attributesOfItem(atPath: registry.statePath + $0)[.size] as? Int }.reduce(0, +)
        if args.flag("json") {
            var host = JSONObject()
            host["stateFile"] = .string(registry.stateDescription)
            host["stateBytes"] = .int(size)
            host["shared"] = .bool(shared)
            host["hosts"] = .array(hosts.map { json($0, leaseSeconds: registry.leaseSeconds, now: now) })
            host["lockHolderPid"] = holder.map { .int(Int($0)) } ?? .null
            host["queueDepth"] = .int(queue)
            host["running"] = .int(running)
            host["openAlerts"] = .int(alerts.count)
            var o = JSONObject()
            o["host"] = .object(host)
            o["connections"] = .array(rows.map(json))
            Common.emit(JSONValue.object(o).serialized())
            return ExitCode.success
        }
        var table = Table(headers: ["CONNECTION", "HANDLER", "ENV", "STATE", "LAST SCAN", "AT", "NEXT DUE", "SUCCESS 24H", "P95", "ALERTS"])
        for r in rows {
            table.rows.append([
                r.id, r.handler, r.environment, r.state, r.lastScan?.status.rawValue ?? "never", r.lastScan.map { Timestamp.short($0.startedAt) } ?? "",
                r.nextDue.map(Timestamp.short) ?? "", r.successRate.map { String(format: "%.0f%%", $0 * 100) } ?? "", r.p95Ms.map { formatDuration(ms: $0) } ?? "",
                String(r.openAlerts),
            ])
        }
        guard shared else {
            Common.emit(
                table.rendered + "\n\nstate \(registry.statePath) (\(size / 1024) KiB); " + (holder.map { "locked by pid \($0)" } ?? "not locked")
                    + "; \(queue) queued, \(running) running; \(alerts.count) open alert(s)")
            return ExitCode.success
        }
        var hostTable = Table(headers: ["HOST", "COMMAND", "STATE", "HEARTBEAT", "RUNNING", "LEASES UNTIL"])
        for h in hosts {
            hostTable.rows.append([
                h.id, h.command, hostState(h, leaseSeconds: registry.leaseSeconds, now: now), Timestamp.short(h.heartbeatAt), String(h.runningTasks),
                h.leaseExpiresAt.map(Timestamp.short) ?? "",
            ])
        }
        let live = hosts.filter { hostState($0, leaseSeconds: registry.leaseSeconds, now: now) == "up" }.count
        Common.emit(
            table.rendered + "\n\n" + (hosts.isEmpty ? "no hosts seen in the last 24 hours" : hostTable.rendered) + "\n\nstate \(registry.stateDescription) (shared); "
                + "\(live) host(s) up; \(queue) queued, \(running) running; \(alerts.count) open alert(s)")
        return ExitCode.success
    }

    /// up, stopped (it said so on its way out), or gone (no heartbeat within its lease: it died,
    /// and its tasks are taken back by the others).
    static func hostState(_ h: HostRecord, leaseSeconds: Double, now: Date) -> String {
        if h.stoppedAt != nil { return "stopped" }
        return now.timeIntervalSince(h.heartbeatAt) > leaseSeconds ? "gone" : "up"
    }

    static func json(_ h: HostRecord, leaseSeconds: Double, now: Date) -> JSONValue {
        var o = JSONObject()
        o["id"] = .string(h.id)
        o["machine"] = .string(h.machine)
        o["pid"] = .int(h.pid)
        o["command"] = .string(h.command)
        o["state"] = .string(hostState(h, leaseSeconds: leaseSeconds, now: now))
        o["startedAt"] = .string(Timestamp.iso8601(h.startedAt))
        o["heartbeatAt"] = .string(Timestamp.iso8601(h.heartbeatAt))
        o["runningTasks"] = .int(h.runningTasks)
        o["leaseExpiresAt"] = h.leaseExpiresAt.map { .string(Timestamp.iso8601($0)) } ?? .null
        return .object(o)
    }

    static func percentile95(_ values: [Int]) -> Int {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)]
    }

    static func json(_ r: ConnectionStatus) -> JSONValue {
        var o = JSONObject()
        o["connectionId"] = .string(r.id)
        o["handler"] = .string(r.handler)
        o["environment"] = .string(r.environment)
        o["state"] = .string(r.state)
        o["lastScan"] = r.lastScan.map(ScansCommand.json) ?? .null
        o["nextDueAt"] = r.nextDue.map { .string(Timestamp.iso8601($0)) } ?? .null
        o["successRate24h"] = r.successRate.map { .number(String(format: "%.4f", $0)) } ?? .null
        o["p95DurationMs24h"] = r.p95Ms.map { .int($0) } ?? .null
        o["openAlerts"] = .int(r.openAlerts)
        return .object(o)
    }
}
